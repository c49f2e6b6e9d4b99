"""Door and sensor events in, live state out, use for planners.

* ``POST /facilities/{id}/events``: a device registered for the facility (``finder devices
  add``) posts ``{"type": "entry"|"occupied"|"vacant"|"opened"|"locked", "at": ISO time,
  "nonce": optional}``, signed: header ``X-Signature-SHA256`` is the hex HMAC-SHA256 of the raw
  body under the device's signing key, ``SHA-256(secret)`` (see ``docs/live.md``). The answer
  is 200 once the event is stored. A missing facility, a facility without devices, a revoked
  device and a wrong signature are one and the same 401 problem, so the route tells nobody
  whether a facility exists; hidden facilities' devices post like any other.
* ``GET /live``: server-sent events (``text/event-stream``), one ``state`` event per change of
  a facility's live state the caller may see (first one for each facility that has a live
  state), with the fields ``/nearest`` shows (:func:`api.live.live_fields`).
* ``GET /usage?district=ADCODE&from=&to=``: visits per facility, day and hour as CSV
  (:func:`finder.usage.usage_table`), of the facilities the caller may see;
  ``GET /usage.pdf`` (same parameters, and ``paper``, ``orientation``) prints that table per
  facility with its total (:mod:`maps.usagesheet`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import json
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import ClientDisconnect
from starlette.responses import Response, StreamingResponse

from api.deps import StateDep, ViewerDep, get_lookup, get_state
from api.errors import ApiProblem, invalid_body, invalid_parameter, problem_responses
from api.live import answer_of, live_fields
from api.routes.common import JSONBytesResponse
from api.routes.nearest import _open_states, local_minute
from api.state import AppState, Snapshot
from finder.hours import local_today
from finder.usage import MAX_PERIOD_DAYS, usage_from_log, usage_report
from geodata.cells import frame_to_csv
from geodata.errors import FacilityNotFound
from geodata.events import EVENT_TYPES, NewEvent, replay_key
from geodata.schema import Viewer
from maps.paper import Orientation, Paper

router = APIRouter(tags=["Live"])

#: Largest event body, bytes (an event is under 120).
MAX_EVENT_BYTES = 1024
SIGNATURE_HEADER = "x-signature-sha256"
#: A stream with nothing to say sends a comment this often, seconds (keeps proxies from closing).
KEEPALIVE_S = 15.0

EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]


class DeviceEvent(BaseModel):
    """What a device may send: a type, a time, a nonce. Any other field is refused."""

    model_config = ConfigDict(extra="forbid")

    type: EventType
    at: AwareDatetime
    nonce: str | None = Field(None, min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


_NOT_SIGNED = (
    "the X-Signature-SHA256 header is not the HMAC-SHA256 of this body by a device of this facility"
)


def _too_large() -> ApiProblem:
    return ApiProblem(413, f"an event is at most {MAX_EVENT_BYTES} bytes", slug="too-large")


async def _event_body(request: Request) -> bytes:
    """The request body; 413 as soon as it is (or is declared) over :data:`MAX_EVENT_BYTES`.
    Read straight from ``receive``: cheaper than Starlette's body stream, and a longer body is
    refused without reading the rest."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_EVENT_BYTES:
        raise _too_large()
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > MAX_EVENT_BYTES:
            raise _too_large()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _signer(state: AppState, facility_id: str, body: bytes, signature: str | None) -> str:
    """The device whose key signed ``body``; the one 401 problem for every other case."""
    keys = state.doors.signing_keys(facility_id)
    found = None
    if signature is not None and keys:
        given = signature.strip().lower().encode("ascii", "replace")
        for device_id, key in keys:
            expected = hmac.digest(key, body, "sha256").hex().encode("ascii")  # one C call
            if hmac.compare_digest(expected, given):
                found = device_id
    if found is None or not _exists(state.live.current(), facility_id):
        raise ApiProblem(401, _NOT_SIGNED, slug="invalid-signature")
    return found


#: Key in a snapshot's ``memo`` of the facilities found to exist by :func:`_exists`.
_SIGNING_FACILITIES = "event-facilities"


def _exists(snapshot: Snapshot, facility_id: str) -> bool:
    """Whether the snapshot holds the facility; a found one is kept in the snapshot's memo
    (only facilities with a device's valid signature are looked up, so it stays small)."""
    found: set[str] = snapshot.memo.setdefault(_SIGNING_FACILITIES, set())
    if facility_id in found:
        return True
    try:
        snapshot.index.position_of(facility_id)
    except FacilityNotFound:
        return False
    found.add(facility_id)
    return True


@router.post(
    "/facilities/{facility_id}/events",
    summary="Post a signed door or sensor event (devices)",
    response_class=JSONBytesResponse,
    responses=problem_responses(400, 401, 409, 413, 422, 429, 503),
)
async def post_event(facility_id: str, request: Request) -> Response:
    """Store one event of a facility's device; 200 ``{"seq", "type", "at"}`` once stored.

    Refused: a body over 1 KiB (413); a signature that is missing or not a device's of this
    facility (401, also for missing facilities); more than the device's rate (429 with
    ``Retry-After``, other devices are not affected); fields other than ``type``, ``at``,
    ``nonce`` (422); ``at`` further than ``FINDER_EVENT_WINDOW_S`` from now (400,
    ``stale-event``); the same event again (409, ``replayed-event``: same nonce, or without a
    nonce the same body, from the same device).
    """
    state = await get_state(request)
    body = await _event_body(request)
    device_id = _signer(state, facility_id, body, request.headers.get(SIGNATURE_HEADER))
    request.state.actor = f"device:{device_id}"
    retry_after = state.events.admit(device_id)
    if retry_after is not None:
        raise ApiProblem(
            429,
            f"device {device_id} sends more events than it may; try again in {retry_after} s",
            slug="too-many-events",
            headers={"Retry-After": str(retry_after)},
        )
    try:
        event = DeviceEvent.model_validate_json(body)
    except ValidationError as exc:
        raise invalid_body(exc) from None
    window_s = state.settings.event_window_s
    if abs((dt.datetime.now(dt.UTC) - event.at).total_seconds()) > window_s:
        raise ApiProblem(
            400,
            f"'at' is more than {window_s:g} s away from the server's clock; send events as "
            "they happen, with a synchronised clock",
            slug="stale-event",
            errors=[{"field": "at", "reason": "outside the accepted window"}],
        )
    replay = replay_key(device_id, event.at, event.nonce, body)
    seq = await state.events.write(NewEvent(facility_id, device_id, event.type, event.at, replay))
    if seq is None:
        raise ApiProblem(409, "this event was received before", slug="replayed-event")
    # the compact JSON of {"seq", "type", "at"}, written out: a type and an ISO time need no
    # escaping, and json.dumps cost more than the rest of the answer
    return JSONBytesResponse(
        f'{{"seq":{seq},"type":"{event.type}","at":"{event.at.isoformat()}"}}'.encode()
    )


#: The path of :func:`post_event` (``{facility_id}`` as the router matches it: no ``/``), served
#: ahead of the router (:func:`api.middleware.fast_endpoint`).
EVENTS_PATH = re.compile(r"/facilities/([^/]+)/events")


_PAYLOADS = "live-payloads"


def _message(state: AppState, viewer: Viewer, facility_id: str, minute: dt.datetime) -> str:
    """One facility's ``state`` event, or ``""`` when the viewer may not see it (or it is
    gone). Rendered once per facility, door state, report signals and minute in the snapshot's
    memo, so that a thousand streams cost one rendering, not a thousand."""
    snapshot = state.live.current()
    door = (state.doors.state(facility_id), state.doors.signals(facility_id))
    cache: dict[str, tuple[Any, ...]] = snapshot.memo.setdefault(_PAYLOADS, {})
    found = cache.get(facility_id)
    if found is None or found[0] != door or found[1] != minute:
        try:
            position = snapshot.index.position_of(facility_id)
        except FacilityNotFound:
            return ""
        record = snapshot.record(position)
        ((_, timetable),) = _open_states(snapshot, [position], minute)
        answer = answer_of(snapshot, position, state.doors, timetable, dt.datetime.now(dt.UTC))
        data = json.dumps({"id": facility_id, **live_fields(answer)}, ensure_ascii=False)
        found = (door, minute, record["access"], record["organization"], data)
        cache[facility_id] = found
    if not viewer.may_see(found[2], found[3]):
        return ""
    return f"event: state\ndata: {found[4]}\n\n"


@router.get(
    "/live",
    summary="Live state of facilities (server-sent events)",
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "a stream of state events"},
        **problem_responses(401),
    },
)
async def live_stream(request: Request) -> StreamingResponse:
    """``event: state`` / ``data: {"id", "live_state", ...}`` for every facility with a live
    state the caller may see, then ``event: ready``, then a ``state`` event each time one
    changes (within a second of the event reaching any worker); a comment every 15 s keeps the
    connection open."""
    lookup = await get_lookup(request)
    state = await get_state(request)
    doors = state.doors

    async def events() -> AsyncIterator[str]:
        version = doors.version
        yield "retry: 1000\n\n"
        ids: list[str] | None = doors.known()
        first = True
        while True:
            minute = local_minute()
            chunk = "".join(
                _message(state, lookup.viewer, facility_id, minute)
                for facility_id in (ids if ids is not None else doors.known())
            )
            if first:
                chunk += "event: ready\ndata: {}\n\n"
                first = False
            if chunk:
                yield chunk
            while not await doors.changes(version, KEEPALIVE_S):
                yield ": keep-alive\n\n"
            latest = doors.version
            ids = doors.changed_since(version)
            version = latest
            await asyncio.sleep(0)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


DistrictParam = Annotated[str, Query(pattern=r"^\d{6}$", description="district adcode")]
FromParam = Annotated[
    dt.date | None, Query(alias="from", description="first day (default: 6 days ago)")
]
ToParam = Annotated[dt.date | None, Query(description="last day (default: today, China time)")]


@router.get(
    "/usage",
    summary="Visits per facility, day and hour of a district (CSV)",
    responses={
        200: {"content": {"text/csv": {}}, "description": "the usage table"},
        **problem_responses(400, 401),
    },
)
async def usage(
    state: StateDep,
    viewer: ViewerDep,
    district: DistrictParam,
    from_: FromParam = None,
    to: ToParam = None,
) -> Response:
    """Visits (door ``entry`` events) per facility, day and hour, China time, of the district's
    facilities the caller may see: columns id, name, kind, district, adcode, date, hour, visits;
    hours without visits are left out."""
    first, last = _period(from_, to)
    table = await asyncio.to_thread(_usage, state, viewer, district, first, last)
    return Response(
        frame_to_csv(table),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="usage-{district}.csv"'},
    )


@router.get(
    "/usage.pdf",
    summary="Printable usage table of a district (PDF)",
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {}}, "description": "the usage table, A4 / A3"},
        **problem_responses(400, 401),
    },
)
async def usage_pdf(
    state: StateDep,
    viewer: ViewerDep,
    district: DistrictParam,
    from_: FromParam = None,
    to: ToParam = None,
    paper: Annotated[Paper, Query(description="paper size")] = "A4",
    orientation: Annotated[Orientation, Query(description="page orientation")] = "portrait",
) -> Response:
    """The table of ``/usage`` printed (:func:`maps.usagesheet.print_usage_table`): one row per
    facility of the district the caller may see (visits, visits per day, busiest hour; those
    without a counting device marked so, not as zero), the total, and visits per hour."""
    first, last = _period(from_, to)
    pdf = await asyncio.to_thread(
        _usage_pdf, state, viewer, district, first, last, paper, orientation
    )
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="usage-{district}.pdf"'},
    )


def _period(first: dt.date | None, last: dt.date | None) -> tuple[dt.date, dt.date]:
    """The days asked for: by default the seven days to today (China time)."""
    last = last or local_today()
    first = first or last - dt.timedelta(days=6)
    if first > last or (last - first).days >= MAX_PERIOD_DAYS:
        raise invalid_parameter("from", f"a period of 1 to {MAX_PERIOD_DAYS} days, from <= to")
    return first, last


def _district_frame(state: AppState, viewer: Viewer, district: str) -> pd.DataFrame:
    """The district's facilities the viewer may see, whatever their status."""
    frame = state.live.current().visible_frame(viewer)
    return frame[frame["adcode"] == district]


def _usage(
    state: AppState, viewer: Viewer, district: str, first: dt.date, last: dt.date
) -> pd.DataFrame:
    frame = _district_frame(state, viewer, district)
    return usage_from_log(state.events.log, frame, first, last)


def _usage_pdf(
    state: AppState,
    viewer: Viewer,
    district: str,
    first: dt.date,
    last: dt.date,
    paper: Paper,
    orientation: Orientation,
) -> bytes:
    from maps.usagesheet import print_usage_table  # matplotlib: loaded when first printed

    report = usage_report(state.events.log, _district_frame(state, viewer, district), first, last)
    with tempfile.TemporaryDirectory() as folder:
        printed = print_usage_table(
            Path(folder) / "usage.pdf",
            report,
            adcode=district,
            paper=paper,
            orientation=orientation,
        )
        return printed.path.read_bytes()
