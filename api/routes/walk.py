"""Walking on the street network: ``/nearest?metric=walk`` and ``/facilities/{id}/isochrone``.

Both need the walking network (``FINDER_STREETS``, see :mod:`api.settings`), loaded in the
lifespan into :class:`api.state.WalkService`.

Nearest on foot
---------------
:func:`nearest_on_foot` answers with :func:`finder.walk.nearest_walk` on a facility table of
exactly the facilities the index selects for the question's :class:`finder.index.FacilityFilter`
(the caller's viewer, open status, kinds, amenities, least stars): the same facilities as the
straight-line answer. Tables are built lazily per filter and kept in the snapshot's cache, so
every change of the facilities starts afresh and no table ever holds a facility the caller may
not see. ``open_now`` is applied afterwards,
asking for more walking results until ``k`` open ones are certain; ``max_distance_m`` limits the
whole walk (``max_walk_m``).

Isochrones
----------
``GET /facilities/{id}/isochrone?minutes=15&speed_kmh=4.8`` is a GeoJSON Feature (WGS-84
polygon) of the area within that walk of the facility (:func:`finder.walk.isochrone`). A
facility the caller may not see answers 404 exactly like a missing one; without a walking
network the answer is a 409 problem (``no-network``), for a facility farther than 500 m from
every street a 422 problem (``off-network``). Results are cached per facility id and version,
minutes and speed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from shapely.geometry import mapping
from starlette.responses import Response

from api.deps import SnapshotDep, StateDep, ViewerDep
from api.errors import ApiProblem, problem_responses
from api.routes.common import GeoJSONResponse
from api.state import AppState, Snapshot, WalkService
from finder.hours import OpenState
from finder.index import FacilityFilter
from finder.walk import DEFAULT_SPEED_KMH, WalkResult, isochrone, nearest_walk
from geodata.errors import FacilityNotFound, OffNetwork
from geodata.geodesy import GEOD
from geodata.schema import Viewer

router = APIRouter(tags=["Walking"])

MIN_MINUTES = 1.0
MAX_MINUTES = 60.0


@dataclass(frozen=True, slots=True)
class WalkHit:
    """A facility reached on foot: its snapshot position and the walk."""

    position: int
    walk: WalkResult


def nearest_on_foot(
    service: WalkService,
    snapshot: Snapshot,
    lon: float,
    lat: float,
    *,
    k: int,
    where: FacilityFilter,
    max_walk_m: float | None = None,
) -> list[WalkHit]:
    """The ``k`` facilities nearest on foot that pass ``where``, nearest first.

    Parameters
    ----------
    service
        The walking network and its table cache.
    snapshot
        The facilities.
    lon, lat
        The origin, WGS-84 degrees.
    k
        How many facilities.
    where
        Which facilities (the caller's viewer and the filters of ``/nearest``); its
        ``open_at`` is applied to the walking results, the rest selects the table.
    max_walk_m
        Longest whole walk, metres.

    Raises
    ------
    OffNetwork
        When the origin is farther than 500 m from every street.
    """
    open_at = where.open_at
    static = where if open_at is None else where.replace(open_at=None)
    walk_table = service.table(snapshot, ("nearest", static), lambda: snapshot.index.select(static))
    positions = walk_table.positions
    want = k
    while True:
        results = nearest_walk(
            service.network, walk_table.table, lon, lat, k=want, max_walk_m=max_walk_m
        )
        hits = [WalkHit(int(positions[r.facility_index]), r) for r in results]
        if open_at is None:
            return hits
        states = snapshot.index.open_states([h.position for h in hits], open_at)
        kept = [h for h, s in zip(hits, states, strict=True) if s is OpenState.OPEN]
        if len(kept) >= k or len(results) < want or want >= positions.size:
            return kept[:k]
        want = min(4 * want, int(positions.size))


def visible_position(snapshot: Snapshot, viewer: Viewer, facility_id: str) -> int:
    """The snapshot position of a facility the viewer may see.

    Raises
    ------
    FacilityNotFound
        When there is no such facility or the viewer may not see it (the same error).
    """
    position = snapshot.index.position_of(facility_id)
    record = snapshot.record(position)
    if not viewer.may_see(record["access"], record["organization"]):
        raise FacilityNotFound(f"no facility with id {facility_id!r}")
    return position


def isochrone_feature(
    state: AppState,
    snapshot: Snapshot,
    viewer: Viewer,
    facility_id: str,
    *,
    minutes: float,
    speed_kmh: float = DEFAULT_SPEED_KMH,
) -> dict[str, Any]:
    """The GeoJSON Feature of the area within ``minutes`` on foot of a facility (WGS-84).

    Raises
    ------
    FacilityNotFound
        For a missing facility or one the viewer may not see.
    ApiProblem
        409 without a walking network, 422 when the facility is off the network.
    """
    position = visible_position(snapshot, viewer, facility_id)
    service = state.walk
    if service is None:
        raise ApiProblem(
            409,
            "no walking network is loaded (set FINDER_STREETS or run 'finder streets')",
            slug="no-network",
        )
    fid, stamp = snapshot.stamp(position)
    columns = snapshot.index.columns
    lon, lat = float(columns.lon[position]), float(columns.lat[position])

    def build() -> dict[str, Any]:
        try:
            area = isochrone(service.network, lon, lat, minutes=minutes, speed_kmh=speed_kmh)
        except OffNetwork as exc:
            raise ApiProblem(
                422,
                f"facility {fid!r} is too far from the walking network: {exc}",
                slug="off-network",
                errors=[{"parameter": "facility_id", "reason": "off the walking network"}],
            ) from None
        area_m2 = abs(GEOD.geometry_area_perimeter(area)[0]) if not area.is_empty else 0.0
        return {
            "type": "Feature",
            "id": fid,
            "geometry": mapping(area),
            "properties": {
                "facility_id": fid,
                "minutes": minutes,
                "speed_kmh": speed_kmh,
                "walk_m": minutes * 60.0 * speed_kmh / 3.6,
                "area_m2": round(area_m2, 1),
                "facility_lon": lon,
                "facility_lat": lat,
                "crs": "wgs84",
            },
        }

    return service.isochrone((fid, stamp, minutes, speed_kmh), build)


@router.get(
    "/facilities/{facility_id}/isochrone",
    summary="Area within a walk of a facility (GeoJSON)",
    response_class=GeoJSONResponse,
    responses={
        200: {
            "description": "GeoJSON Feature, a (multi)polygon in WGS-84",
            "content": {"application/geo+json": {}},
        },
        **problem_responses(404, 409, 422),
    },
)
def facility_isochrone(
    state: StateDep,
    snapshot: SnapshotDep,
    viewer: ViewerDep,
    facility_id: Annotated[str, Path(description="facility id")],
    minutes: Annotated[
        float, Query(ge=MIN_MINUTES, le=MAX_MINUTES, description="walking time, minutes (1-60)")
    ] = 15.0,
    speed_kmh: Annotated[
        float, Query(ge=1.0, le=10.0, description="walking speed, km/h (1-10)")
    ] = DEFAULT_SPEED_KMH,
) -> Response:
    """The streets reachable within ``minutes`` on foot from the facility, as an area."""
    return GeoJSONResponse(
        isochrone_feature(
            state, snapshot, viewer, facility_id, minutes=minutes, speed_kmh=speed_kmh
        )
    )
