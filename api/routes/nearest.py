"""``GET /nearest``: the nearest facilities for apps, as GeoJSON with navigation links.

Each feature carries the facility's public fields and, seen from the query point, the geodesic
``distance_m``, ``bearing_deg`` (clockwise from north), a straight-line walking estimate
``walk_s_est`` (seconds at 4.8 km/h), whether it is open now (``open_state``: open, closed,
unknown; Asia/Shanghai time and the Chinese holiday calendar), the calendar that state rests on
(``open_state_calendar``: ``official``, ``provisional`` for a year whose official arrangement is
not loaded, where only the statutory holidays are known, or ``null`` when the hours need no
calendar), the one honest answer of its timetable, door and sensor events and last verification
(``live_state``, ``live_source``, ``live_since``, ``live_detail``, ``occupied``,
``last_verified_at``, ``last_verified_by``, ``confidence``, ``confidence_label``,
``reported_by``, ``report_confirmed_by_staff``: see :func:`finder.truth.live_answer` and
:func:`api.live.live_fields`; ``open_now`` leaves out facilities locked today or reported
locked) and
``navigation`` links for Amap (GCJ-02), Baidu Maps (BD-09) and a ``geo:`` URI
(WGS-84).

With ``metric=walk`` the facilities are the nearest on foot along the street network
(:mod:`api.routes.walk`), each with ``walk_m`` (the whole walk, metres), ``walk_s`` (seconds at
4.8 km/h), ``network_m`` (the part along streets), ``origin_snap_m`` and ``facility_snap_m`` (the
straight legs to and from the streets) and ``metric: "walk"``. Without a walking network, or for
a point farther than 500 m from every street, the answer is the straight-line one with
``metric: "line"`` and ``fallback`` (``"no-network"``, ``"off-network"``), not an error.

Coordinates: the query point is read in ``crs`` and the features' geometries are written in
``crs`` too, so an app working in GCJ-02 (Amap, Tencent) or BD-09 (Baidu) can place them on its
map directly. RFC 7946 GeoJSON is WGS-84 only; an answer in another system says so in its
``crs`` member and in every feature's ``crs`` property.

The answer is assembled from JSON fragments of each facility, rendered when the facility is first
answered and cached (by facility id and version, see :meth:`api.state.Snapshot.stamp`), which
keeps this route close to the speed of a bare KD-tree lookup.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import Response

from api.deps import get_lookup, get_state
from api.errors import ApiProblem, problem_responses
from api.live import LiveDoors, live_members_of
from api.protocol import query_pairs
from api.routes.common import (
    GeoJSONResponse,
    collection_schema,
    feature_schema,
    geojson_response,
    lonlat_in,
)
from api.routes.walk import WalkHit, nearest_on_foot
from api.state import Snapshot
from finder.geodesy import geodesic_from
from finder.hours import CalendarSource, OpenState, state_and_source
from finder.index import WALK_SPEED_M_S, NearestResult
from finder.index.filters import filter_of
from finder.truth import LiveState, VerifiedBy
from geodata.crs import CrsName
from geodata.errors import InvalidCoordinate, InvalidOpeningHours, OffNetwork
from geodata.geodesy import LAT_RANGE, LON_RANGE
from geodata.schema import AMENITIES, KINDS, Kind
from geodata.validate import require_in_service_region

router = APIRouter()

MAX_K = 100
MAX_DISTANCE_M = 50_000.0
LOCAL_TIMEZONE = ZoneInfo("Asia/Shanghai")
#: Facility fields shown by /nearest (no provenance or bookkeeping fields).
NEAREST_FIELDS: tuple[str, ...] = (
    "name",
    "kind",
    "format",
    "address",
    "district",
    "adcode",
    "access",
    "organization",
    "opening_hours",
    "amenities",
    "star_rating",
    "area_m2",
    "phone",
    "entry_method",
    "entry_phone",
    "entry_note",
    "operator",
    "status",
    "verified_at",
)
LINE_MARK = ',"metric":"line"'
_FRAGMENTS = "nearest-fragments"
#: Most facilities whose rendered JSON a worker keeps (about 600 bytes each).
FRAGMENT_CACHE_SIZE = 100_000
_OPEN_STATES = "nearest-open-states"

Amenity = Literal[AMENITIES]  # type: ignore[valid-type]


def local_minute() -> dt.datetime:
    """The current minute in Asia/Shanghai (naive local time, as the index expects)."""
    return dt.datetime.now(LOCAL_TIMEZONE).replace(tzinfo=None, second=0, microsecond=0)


def _fragments(snapshot: Snapshot, position: int) -> tuple[bytes, bytes]:
    """(``"id"`` as JSON, the static properties' JSON without braces) of one facility, UTF-8.

    Rendered when a facility is first answered, then cached twice: by position in the
    snapshot's own ``memo`` (no check needed: the snapshot does not change), and by facility id
    and stamp in the cache the snapshots share, so a facility's fragments are rendered once
    until it changes. Each cache holds at most :data:`FRAGMENT_CACHE_SIZE` facilities.
    """
    local: dict[int, tuple[bytes, bytes]] = snapshot.memo.setdefault(_FRAGMENTS, {})
    hit = local.get(position)
    if hit is not None:
        return hit
    cache: dict[str, tuple[tuple[Any, ...], bytes, bytes]]
    cache = snapshot.shared.setdefault(_FRAGMENTS, {})
    fid, stamp = snapshot.stamp(position)
    found = cache.get(fid)
    if found is None or found[0] != stamp:
        props = snapshot.record(position, NEAREST_FIELDS)
        props["navigation"] = snapshot.links(position)
        dumped = json.dumps(props, ensure_ascii=False, separators=(",", ":"))
        found = (stamp, json.dumps(fid, ensure_ascii=False).encode(), dumped[1:-1].encode())
        if len(cache) >= FRAGMENT_CACHE_SIZE:  # also drops the facilities deleted since
            cache.clear()
        cache[fid] = found
    if len(local) >= FRAGMENT_CACHE_SIZE:
        local.clear()
    local[position] = hit = (found[1], found[2])
    return hit


def _open_states(
    snapshot: Snapshot, positions: list[int], now: dt.datetime
) -> list[tuple[str, OpenState]]:
    """Open state now of facilities by their timetable, as JSON members
    ``"open_state":..,"open_state_calendar":..`` and as the state.

    Each opening-hours expression is evaluated once a minute. ``open_state_calendar`` is the
    holiday calendar the state rests on: ``"official"``, ``"provisional"`` (statutory holidays
    only, the year's arrangement is not loaded) or ``null`` (the state needs no calendar).
    """
    minute, states = snapshot.memo.get(_OPEN_STATES, (None, {}))
    if minute != now:
        states = {}
        snapshot.memo[_OPEN_STATES] = (now, states)
    out = []
    for position in positions:
        expr = snapshot.opening_hours(position)
        members = states.get(expr)
        if members is None:
            try:
                state, source = state_and_source(expr, now, snapshot.index.calendar)
            except InvalidOpeningHours:
                state, source = OpenState.UNKNOWN, None
            members = (
                f'"open_state":"{state.value}",'
                f'"open_state_calendar":{json.dumps(source and source.value)}',
                state,
            )
            states[expr] = members
        out.append(members)
    return out


_Hit = TypeVar("_Hit", WalkHit, NearestResult)


def _usable(snapshot: Snapshot, hits: list[_Hit], blocked: frozenset[str], k: int) -> list[_Hit]:
    """The first ``k`` hits whose facility is not in ``blocked``."""
    if blocked:
        hits = [h for h in hits if snapshot.facility_id(h.position) not in blocked]
    return hits[:k]


def _live_members(
    snapshot: Snapshot,
    positions: list[int],
    states: list[tuple[str, OpenState]],
    doors: LiveDoors,
    moment: dt.datetime,
) -> list[str]:
    """The honest answer of each facility (:func:`api.live.live_members_of`)."""
    return [
        live_members_of(snapshot, p, doors, s, moment)
        for p, (_, s) in zip(positions, states, strict=True)
    ]


class NearestQuery(BaseModel):
    """The parameters of ``/nearest``."""

    model_config = ConfigDict(extra="ignore")

    lon: float = Field(ge=LON_RANGE[0], le=LON_RANGE[1], description="longitude of the point (crs)")
    lat: float = Field(ge=LAT_RANGE[0], le=LAT_RANGE[1], description="latitude of the point (crs)")
    crs: CrsName = Field(
        "wgs84", description="coordinate system of the point and of the answer's geometries"
    )
    k: int = Field(5, ge=1, le=MAX_K, description="how many facilities (1-100)")
    kind: list[Kind] | None = Field(None, description="facility kinds to keep")
    amenity: list[Amenity] | None = Field(None, description="amenities a facility must all offer")
    open_now: bool = Field(False, description="only facilities open now")
    max_distance_m: float | None = Field(
        None, gt=0, le=MAX_DISTANCE_M, description="search radius, metres"
    )
    min_stars: int | None = Field(None, ge=1, le=5, description="least star grade")
    metric: Literal["line", "walk"] = Field(
        "line",
        description="line: geodesic distance; walk: along the street network "
        "(max_distance_m then limits the walk)",
    )


_LIST_PARAMS = frozenset({"kind", "amenity"})
_FIELDS = frozenset(NearestQuery.model_fields)
_POINT = ("lon", "lat")
_NEAREST_FEATURE = feature_schema(
    {
        "name": {"type": "string"},
        "kind": {"type": "string", "enum": list(KINDS)},
        "access": {"type": "string"},
        "amenities": {"type": "array", "items": {"type": "string"}},
        "distance_m": {"type": "number", "minimum": 0},
        "bearing_deg": {"type": "number", "minimum": 0, "maximum": 360},
        "walk_s_est": {"type": "number", "minimum": 0},
        "walk_m": {"type": "number", "minimum": 0},
        "walk_s": {"type": "number", "minimum": 0},
        "network_m": {"type": "number", "minimum": 0},
        "origin_snap_m": {"type": "number", "minimum": 0},
        "facility_snap_m": {"type": "number", "minimum": 0},
        "metric": {"type": "string", "enum": ["line", "walk"]},
        "fallback": {"type": "string", "enum": ["no-network", "off-network"]},
        "open_state": {"type": "string", "enum": [s.value for s in OpenState]},
        "open_state_calendar": {
            "type": "string",
            "nullable": True,
            "enum": [*(s.value for s in CalendarSource), None],
        },
        "live_state": {"type": "string", "enum": [s.value for s in LiveState]},
        "live_source": {"type": "string", "enum": ["timetable", "door", "sensor", "reports"]},
        "live_since": {"type": "string", "format": "date-time", "nullable": True},
        "live_detail": {"type": "string"},
        "occupied": {"type": "boolean", "nullable": True},
        "last_verified_at": {"type": "string", "format": "date-time", "nullable": True},
        "last_verified_by": {
            "type": "string",
            "nullable": True,
            "enum": [*(v.value for v in VerifiedBy), None],
        },
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "confidence_label": {"type": "string", "enum": ["high", "medium", "low"]},
        "reported_by": {"type": "integer", "minimum": 1, "nullable": True},
        "report_confirmed_by_staff": {"type": "boolean"},
        "crs": {"type": "string"},
        "navigation": {
            "type": "object",
            "required": ["amap", "baidu", "geo"],
            "properties": {k: {"type": "string"} for k in ("amap", "baidu", "geo")},
        },
    },
    [
        "name",
        "kind",
        "access",
        "distance_m",
        "bearing_deg",
        "walk_s_est",
        "open_state",
        "open_state_calendar",
        "navigation",
        "crs",
    ],
)


def _openapi_parameters() -> list[dict[str, object]]:
    """The query parameters of :class:`NearestQuery` for the OpenAPI document."""
    schema = NearestQuery.model_json_schema()
    required = set(schema.get("required", ()))
    out: list[dict[str, object]] = []
    for name, prop in schema["properties"].items():
        prop = dict(prop)
        description = prop.pop("description", "")
        prop.pop("title", None)
        param: dict[str, object] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "description": description,
            "schema": prop,
        }
        if name in _LIST_PARAMS:
            param.update(style="form", explode=True)
        out.append(param)
    defs = schema.get("$defs")
    if defs:
        raise RuntimeError("NearestQuery must not need schema definitions")
    return out


def parse_query(request: Request) -> NearestQuery:
    """Validate the query string (400 problems naming each bad parameter, and ``lon`` / ``lat``
    for a point outside the service region, :func:`geodata.validate.outside_service_region`).

    Done by hand rather than by FastAPI's per-parameter machinery, which costs more than the
    whole lookup on this hot path; the OpenAPI document still lists every parameter.
    """
    values: dict[str, Any] = {}
    # decoded as Starlette's query_params are, without building them
    for key, value in query_pairs(request.scope["query_string"]):  # a repeated one: the last
        if key in _LIST_PARAMS:
            values.setdefault(key, []).append(value)
        elif key in _FIELDS:
            values[key] = value
    try:
        query = NearestQuery.model_validate(values)
    except ValidationError as exc:
        errors = [
            {"parameter": str(e["loc"][0]) if e["loc"] else "query", "reason": e["msg"]}
            for e in exc.errors()
        ]
        raise ApiProblem(
            400,
            "; ".join(f"{e['parameter']}: {e['reason']}" for e in errors),
            slug="invalid-parameter",
            errors=errors,
        ) from None
    try:
        require_in_service_region(query.lon, query.lat)
    except InvalidCoordinate as exc:
        raise ApiProblem(
            400,
            str(exc),
            slug="outside-service-region",
            errors=[{"parameter": p, "reason": "outside the service region"} for p in _POINT],
        ) from None
    return query


@router.get(
    "/nearest",
    tags=["Lookup"],
    summary="The nearest facilities (GeoJSON)",
    response_class=GeoJSONResponse,
    responses={
        200: geojson_response(
            collection_schema(_NEAREST_FEATURE, paged=False),
            "GeoJSON FeatureCollection, nearest first",
        ),
        **problem_responses(401),
    },
    openapi_extra={"parameters": _openapi_parameters()},
)
async def nearest(request: Request) -> Response:
    """The ``k`` nearest facilities the caller may use, nearest first.

    ``async`` on purpose: the lookup takes well under a millisecond, less than a trip through
    the thread pool would. For the same reason the query string is validated by
    :func:`parse_query` and the caller resolved by :func:`api.deps.get_lookup` directly, not
    through FastAPI's dependency machinery (which costs more per request than the lookup).
    """
    q = parse_query(request)
    lookup = await get_lookup(request)
    snapshot = lookup.snapshot
    lon, lat, crs, k = q.lon, q.lat, q.crs, q.k
    now = local_minute()
    doors = (await get_state(request)).doors
    moment = dt.datetime.now(dt.UTC)
    # open_now leaves out facilities locked today or reported locked: ask for as many more,
    # then drop them
    blocked = doors.not_open(moment) if q.open_now else frozenset()
    where = filter_of(  # the same (cached) filter for the same question
        {
            "kinds": q.kind,
            "amenities": q.amenity,
            "viewer": lookup.viewer,
            "min_stars": q.min_stars,
            "open_at": now if q.open_now else None,
        }
    )
    fallback = ""
    if q.metric == "walk":
        service = (await get_state(request)).walk
        if service is None:
            fallback = "no-network"
        else:
            origin = lonlat_in(lon, lat, crs)
            try:
                hits = nearest_on_foot(
                    service,
                    snapshot,
                    *origin,
                    k=k + len(blocked),
                    where=where,
                    max_walk_m=q.max_distance_m,
                )
            except OffNetwork:
                fallback = "off-network"
            else:
                hits = _usable(snapshot, hits, blocked, k)
                return _walk_answer(snapshot, hits, q, origin, now, doors, moment)
    results = snapshot.index.nearest(
        lon, lat, k=k + len(blocked), crs=crs, max_distance_m=q.max_distance_m, where=where
    )
    results = _usable(snapshot, results, blocked, k)
    positions = [r.position for r in results]
    states = _open_states(snapshot, positions, now)
    lives = _live_members(snapshot, positions, states, doors, moment)
    crs_json = f'"{crs}"'  # a name of geodata.crs: nothing to escape
    marks = f',"metric":"line","fallback":"{fallback}"' if fallback else ""
    features = [
        _feature(
            *_fragments(snapshot, r.position),
            f"{r.lon:.7f},{r.lat:.7f}",
            f'"distance_m":{r.distance_m:.1f},"bearing_deg":{r.bearing_deg:.1f},'
            f'"walk_s_est":{r.walk_s_est:.0f},{open_json},{live_json},'
            f'"crs":{crs_json}{marks}',
        )
        for r, (open_json, _), live_json in zip(results, states, lives, strict=True)
    ]
    head = (
        f'{{"type":"FeatureCollection","crs":{crs_json},"query":{_query_json(q, q.metric)}'
        f"{marks or LINE_MARK},"
        f'"numberReturned":{len(features)},"timeStamp":"{now.isoformat()}+08:00",'
    )
    return GeoJSONResponse(_collection(head, features))


def _feature(id_json: bytes, props: bytes, coordinates: str, members: str) -> bytes:
    """One feature of an answer: the facility's fragments (:func:`_fragments`) around its
    ``coordinates`` and the ``members`` of this answer (distance, open state, ...), UTF-8.

    Joined as bytes: the cached fragments are not decoded and encoded again for each answer.
    """
    return b"".join(
        (
            b'{"type":"Feature","id":',
            id_json,
            f',"geometry":{{"type":"Point","coordinates":[{coordinates}]}},"properties":{{'.encode(),
            props,
            b",",
            members.encode(),
            b"}}",
        )
    )


def _collection(head: str, features: list[bytes]) -> bytes:
    """The answer: ``head`` (the collection's members up to ``"features"``) and the features."""
    return b"".join((head.encode(), b'"features":[', b",".join(features), b"]}"))


def _query_json(q: NearestQuery, metric: str) -> str:
    """The answer's ``query`` member: point, system, k and metric as asked (compact JSON; a
    float written as :mod:`json` writes it, ``float.__repr__``)."""
    return f'{{"lon":{q.lon!r},"lat":{q.lat!r},"crs":"{q.crs}","k":{q.k},"metric":"{metric}"}}'


def _walk_answer(
    snapshot: Snapshot,
    hits: list[WalkHit],
    q: NearestQuery,
    origin: tuple[float, float],
    now: dt.datetime,
    doors: LiveDoors,
    moment: dt.datetime,
) -> Response:
    """The ``/nearest`` answer of facilities reached on foot (``metric: "walk"``)."""
    positions = [h.position for h in hits]
    states = _open_states(snapshot, positions, now)
    lives = _live_members(snapshot, positions, states, doors, moment)
    x, y = snapshot.index.lonlat(positions, crs=q.crs)
    wlon, wlat = snapshot.index.lonlat(positions)
    line_m, bearing = geodesic_from(origin[0], origin[1], wlon, wlat)
    crs_json = f'"{q.crs}"'
    features = []
    for i, (hit, (open_json, _), live_json) in enumerate(zip(hits, states, lives, strict=True)):
        w = hit.walk
        features.append(
            _feature(
                *_fragments(snapshot, hit.position),
                f"{x[i]:.7f},{y[i]:.7f}",
                f'"distance_m":{line_m[i]:.1f},"bearing_deg":{bearing[i]:.1f},'
                f'"walk_s_est":{line_m[i] / WALK_SPEED_M_S:.0f},'
                f'"walk_m":{w.walk_m:.2f},"walk_s":{w.walk_s:.1f},"network_m":{w.network_m:.2f},'
                f'"origin_snap_m":{w.origin_snap_m:.2f},"facility_snap_m":{w.facility_snap_m:.2f},'
                f'{open_json},{live_json},"crs":{crs_json},"metric":"walk"',
            )
        )
    head = (
        f'{{"type":"FeatureCollection","crs":{crs_json},"query":{_query_json(q, "walk")},'
        '"metric":"walk",'
        f'"numberReturned":{len(features)},"timeStamp":"{now.isoformat()}+08:00",'
    )
    return GeoJSONResponse(_collection(head, features))
