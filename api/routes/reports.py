"""Users' reports: anyone reports a problem with a facility; staff confirm or dismiss it.

* ``POST /facilities/{id}/reports`` (anonymous): ``{"type": ..., "note": ...}``; the answer is
  the report's ``id`` and a ``token`` (shown once) with which ``GET /reports/{id}?token=...``
  tells the reporter what became of it. Throttled per client address
  (:class:`api.ratelimit.SourceLimiter`, ``FINDER_REPORTS_PER_HOUR``; 429 with ``Retry-After``).
* ``POST /reports/{id}/photo?token=...`` (the reporter): the report's one photo, the image as
  the body, checked and re-encoded as staff's photos are (:mod:`api.routes.photos`) and kept
  in the same store table marked with the report; throttled with the reports.
  ``GET /reports/{id}/photo`` serves its thumbnail to the reporter (``?token=``) and to staff.
* ``GET /reports``, ``POST /reports/{id}/confirm``, ``POST /reports/{id}/dismiss``,
  ``GET /reports/{id}/photo`` without a token and ``POST /reports/{id}/photo/publish`` need an
  ``edit`` key that may write the report's facility. A report's photo is never public: only
  publishing, a staff action on a confirmed report, copies it to the facility's photos.

A report changes what others see only under the rule of :mod:`finder.reports` (two distinct
sources within 24 hours, or a staff confirmation); a report, a confirmation and a dismissal
through this worker make its copy of the signals (:class:`api.live.LiveDoors`) read them at
once, other workers within a second. No route here tells whether a facility the
caller may not see exists: a hidden facility and a missing one give the same 404 problem, and
so do a report of a hidden facility, a missing report and a wrong token.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.auth import Principal
from api.deps import EditorDep, PrincipalDep, StateDep, _require_scope
from api.errors import ApiProblem, problem_responses
from api.routes.common import JSONBytesResponse
from api.routes.facilities import _visible
from api.routes.photos import PHOTO_BODY, jpeg_response, photo_media_type, photo_of_body
from api.state import AppState
from finder.reports import REPORT_WINDOW, ReportSignal, active_signals
from geodata.errors import FacilityNotFound, ReportNotFound
from geodata.schema import Report, ReportStatus, ReportType
from geodata.store import FacilityStore

router = APIRouter(tags=["Reports"])


class ReportIn(BaseModel):
    """A user's report about a facility."""

    model_config = ConfigDict(extra="forbid")

    type: ReportType
    note: str | None = Field(default=None, max_length=500, description="what is wrong, in words")


def all_report_signals(
    store: FacilityStore, now: dt.datetime | None = None
) -> dict[str, tuple[ReportSignal, ...]]:
    """The active report signals of every facility at ``now`` (default: this moment), from the
    reports of the rule's window (:func:`finder.reports.active_signals`)."""
    now = now or dt.datetime.now(dt.UTC)
    return active_signals(store.reports(since=now - REPORT_WINDOW, limit=None), now)


def report_signals(
    store: FacilityStore, facility_id: str, now: dt.datetime | None = None
) -> tuple[ReportSignal, ...]:
    """The active report signals of one facility at ``now`` (default: this moment)."""
    now = now or dt.datetime.now(dt.UTC)
    recent = store.reports(facility_id=facility_id, since=now - REPORT_WINDOW, limit=None)
    return active_signals(recent, now).get(facility_id, ())


def _source_hash(store: FacilityStore, address: str) -> str:
    """The keyed hash of a client address: all that is stored of where a report came from, so
    that distinct sources can be counted without keeping anyone's address."""
    return hmac.new(store.report_salt().encode(), address.encode(), hashlib.sha256).hexdigest()


def _throttled(request: Request, state: AppState) -> str:
    """The client's address, after taking one request from its reports' allowance (a 429
    problem with ``Retry-After`` when it has none left)."""
    address = request.client.host if request.client else "unknown"
    wait_s = state.report_limiter.take(address)
    if wait_s > 0:
        retry = str(max(1, math.ceil(wait_s)))
        raise ApiProblem(
            429,
            f"too many reports from this address; try again in {retry} s",
            slug="too-many-requests",
            headers={"Retry-After": retry},
        )
    return address


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _photo_url(request: Request, report_id: int, token: str | None) -> str:
    """Where the report's photo is sent and seen: with the reporter's token, or for staff."""
    path = str(request.url_for("report_photo", report_id=report_id).path)
    return path if token is None else f"{path}?token={token}"


def _report_json(
    report: Report,
    signals: tuple[ReportSignal, ...],
    request: Request,
    token: str | None = None,
) -> dict[str, Any]:
    """What anyone allowed to see a report sees (never its source; the token only to the
    reporter who sent it, in the photo's URL)."""
    photo_url = _photo_url(request, report.report_id, token) if report.has_photo else None
    return {
        "id": report.report_id,
        "facility_id": report.facility_id,
        "type": report.type,
        "note": report.note,
        "status": report.status,
        "created_at": report.created_at.isoformat(),
        "resolved_at": report.resolved_at and report.resolved_at.isoformat(),
        "counted": any(s.kind == report.type for s in signals),
        "photo_url": photo_url,
    }


def _reporters_report(
    store: FacilityStore, report_id: int, token: str, principal: Principal
) -> Report:
    """The report the token is of, if the caller may still see its facility (404 otherwise, as
    for a missing report)."""
    report = store.report(report_id)
    if not hmac.compare_digest(report.token_hash, _token_hash(token)):
        raise ReportNotFound(f"no report {report_id}")
    try:
        _visible(store, report.facility_id, principal)
    except FacilityNotFound:
        raise ReportNotFound(f"no report {report_id}") from None
    return report


def _staff_report(store: FacilityStore, report_id: int, editor: Principal) -> Report:
    """A report whose facility the editor may write (404 for any other, as for a missing one)."""
    report = store.report(report_id)
    try:
        facility = store.get(report.facility_id)
    except FacilityNotFound:
        raise ReportNotFound(f"no report {report_id}") from None
    if not editor.may_write(facility.access, facility.organization):
        raise ReportNotFound(f"no report {report_id}")
    return report


@router.post(
    "/facilities/{facility_id}/reports",
    status_code=201,
    summary="Report a problem with a facility",
    response_class=JSONBytesResponse,
    responses={
        201: {"description": "The report's id, and the token to see what became of it"},
        **problem_responses(404, 422, 429),
    },
)
def create_report(
    facility_id: str,
    body: Annotated[ReportIn, Body()],
    request: Request,
    principal: PrincipalDep,
    state: StateDep,
) -> Response:
    """Report that a facility was locked during its hours, closed for good, moved, has wrong
    details, lacks a listed amenity, or something else. Anonymous; keep the ``token`` of the
    answer to see what became of the report (``status_url``)."""
    address = _throttled(request, state)
    _visible(state.store, facility_id, principal)
    token = secrets.token_urlsafe(24)
    report = state.store.add_report(
        facility_id,
        body.type,
        note=body.note,
        source=_source_hash(state.store, address),
        token_hash=_token_hash(token),
    )
    state.doors.refresh_signals()
    status_url = str(request.url_for("report_status", report_id=report.report_id).path)
    status_url += f"?token={token}"
    return JSONBytesResponse(
        {
            "id": report.report_id,
            "token": token,
            "status": report.status,
            "status_url": status_url,
            "photo_url": _photo_url(request, report.report_id, token),
        },
        status_code=201,
        headers={"Location": status_url},
    )


@router.get(
    "/reports/{report_id}",
    summary="What became of a report (for its reporter)",
    response_class=JSONBytesResponse,
    responses=problem_responses(404),
)
def report_status(
    report_id: int,
    request: Request,
    token: Annotated[str, Query(max_length=100, description="the token of the report's answer")],
    principal: PrincipalDep,
    state: StateDep,
) -> Response:
    """The report's status (``pending``, ``confirmed``, ``dismissed``) and whether it counts
    now (``counted``: the facility's signal of its type is active under the rule)."""
    report = _reporters_report(state.store, report_id, token, principal)
    signals = report_signals(state.store, report.facility_id)
    return JSONBytesResponse(_report_json(report, signals, request, token))


@router.get(
    "/reports",
    summary="Users' reports of the facilities this key may edit",
    response_class=JSONBytesResponse,
    responses=problem_responses(401, 403, 404),
)
def list_reports(
    request: Request,
    editor: EditorDep,
    state: StateDep,
    facility_id: Annotated[str | None, Query(description="only this facility's")] = None,
    status: Annotated[ReportStatus | None, Query(description="only reports in this status")] = (
        "pending"
    ),
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Reports, newest first, with whether each counts now under the rule and the name of
    its facility."""
    store = state.store
    if facility_id is not None:
        facility = _visible(store, facility_id, editor)
        if not editor.may_write(facility.access, facility.organization):
            raise FacilityNotFound(f"no facility with id {facility_id!r}")
    found = store.reports(facility_id=facility_id, status=status, limit=limit)
    facilities = store.frame_of([r.facility_id for r in found])
    writable = {
        fid
        for fid, access, org in zip(
            facilities["id"], facilities["access"], facilities["organization"], strict=True
        )
        if editor.may_write(access, org)
    }
    names = dict(zip(facilities["id"], facilities["name"], strict=True))
    shown = [r for r in found if r.facility_id in writable]
    signals = all_report_signals(store)
    return JSONBytesResponse(
        {
            "reports": [
                {
                    **_report_json(r, signals.get(r.facility_id, ()), request),
                    "facility_name": names[r.facility_id],
                }
                for r in shown
            ]
        }
    )


def _resolve(
    report_id: int, status: str, editor: Principal, state: AppState, request: Request
) -> Response:
    _staff_report(state.store, report_id, editor)
    report = state.store.resolve_report(report_id, status, actor=editor.name)
    state.doors.refresh_signals()
    signals = report_signals(state.store, report.facility_id)
    return JSONBytesResponse(_report_json(report, signals, request))


@router.post(
    "/reports/{report_id}/confirm",
    summary="Confirm a report (it counts at once)",
    response_class=JSONBytesResponse,
    responses=problem_responses(401, 403, 404),
)
def confirm_report(
    report_id: int, request: Request, editor: EditorDep, state: StateDep
) -> Response:
    """Staff confirm the report: its signal is active for 24 hours from now (its photo stays
    unpublished: see ``POST /reports/{id}/photo/publish``)."""
    return _resolve(report_id, "confirmed", editor, state, request)


@router.post(
    "/reports/{report_id}/dismiss",
    summary="Dismiss a report (it never counts)",
    response_class=JSONBytesResponse,
    responses=problem_responses(401, 403, 404),
)
def dismiss_report(
    report_id: int, request: Request, editor: EditorDep, state: StateDep
) -> Response:
    """Staff dismiss the report: it no longer counts towards any signal."""
    return _resolve(report_id, "dismissed", editor, state, request)


@router.post(
    "/reports/{report_id}/photo",
    status_code=201,
    summary="Send the photo of a report (for its reporter)",
    response_class=JSONBytesResponse,
    responses=problem_responses(404, 409, 413, 415, 422, 429),
    openapi_extra=PHOTO_BODY,
)
async def add_report_photo(
    report_id: int,
    request: Request,
    token: Annotated[str, Query(max_length=100, description="the token of the report's answer")],
    principal: PrincipalDep,
    state: StateDep,
) -> Response:
    """Send one photo with a report (the body: a JPEG, PNG or WebP image, re-encoded without
    metadata). Throttled like reports; seen only by the reporter (``photo_url``) and by staff
    who may edit the facility, never by the public unless staff publish it."""
    _throttled(request, state)
    report = await run_in_threadpool(_reporters_report, state.store, report_id, token, principal)
    if report.has_photo:
        raise ApiProblem(409, f"report {report_id} has its photo already", slug="conflict")
    media_type = photo_media_type(request)
    photo = await photo_of_body(request, media_type, state.settings.photo_max_mb)
    if not await run_in_threadpool(state.store.add_report_photo, report_id, photo):
        raise ApiProblem(409, f"report {report_id} has its photo already", slug="conflict")
    url = _photo_url(request, report_id, token)
    return JSONBytesResponse(
        {"photo_url": url, "width": photo.width, "height": photo.height},
        status_code=201,
        headers={"Location": url},
    )


@router.get(
    "/reports/{report_id}/photo",
    summary="The thumbnail of a report's photo (for its reporter and staff)",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "The thumbnail (JPEG)"},
        **problem_responses(401, 403, 404),
    },
)
def report_photo(
    report_id: int,
    request: Request,
    principal: PrincipalDep,
    state: StateDep,
    token: Annotated[
        str | None,
        Query(max_length=100, description="the reporter's token; staff send their key instead"),
    ] = None,
) -> Response:
    """The thumbnail of the report's photo: to the reporter with the token, or to an ``edit``
    key that may write the facility; the same 404 for anyone else as for a missing report."""
    if token is not None:
        _reporters_report(state.store, report_id, token, principal)
    else:
        _require_scope(principal, "edit", "seeing a report's photo without its token")
        _staff_report(state.store, report_id, principal)
    return jpeg_response(
        state.store.report_photo(report_id, thumb=True), public=False, request=request
    )


@router.post(
    "/reports/{report_id}/photo/publish",
    status_code=201,
    summary="Publish a confirmed report's photo as a photo of its facility",
    response_class=JSONBytesResponse,
    responses=problem_responses(401, 403, 404, 409),
)
def publish_report_photo(
    report_id: int, request: Request, editor: EditorDep, state: StateDep
) -> Response:
    """Staff copy the photo of a report they confirmed to the facility's photos, which
    everyone who may see the facility sees (confirming a report alone publishes nothing)."""
    report = _staff_report(state.store, report_id, editor)
    if report.status != "confirmed":
        raise ApiProblem(
            409,
            f"report {report_id} is {report.status}: confirm it before publishing its photo",
            slug="conflict",
        )
    n = state.store.publish_report_photo(report_id, actor=editor.name)
    state.photos_changed()
    url = str(request.url_for("facility_photo", facility_id=report.facility_id, n=n).path)
    return JSONBytesResponse(
        {"n": n, "url": url, "thumb_url": f"{url}?size=thumb"},
        status_code=201,
        headers={"Location": url},
    )
