"""``GET /map``: the embeddable web map of the facilities the caller may see.

The page is built by :func:`maps.webmap.facility_map_html` from the facilities that pass
:func:`api.auth.visible` (the map filters again by the same viewer, defensively); its scripts
and stylesheets are served under ``/static`` (see :func:`mount_static`). Pages are cached per
index snapshot, viewer, parameters and five-minute interval (popups say whether a facility is
open now). The base map is the served vector one (:mod:`api.routes.basemap`) when the server
has one, else none; ``base_map`` chooses another. ``lon``/``lat`` (in ``crs``) and ``zoom`` set
the initial view.
``isochrone=<facility id>&minutes=15`` adds the area within that walk of the facility
(:func:`api.routes.walk.isochrone_feature`; the same 404 / 409 / 422 problems as
``/facilities/{id}/isochrone``) and centres the map on it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Query
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse, Response

from api.auth import visible
from api.deps import SnapshotDep, StateDep, ViewerDep
from api.errors import problem_responses
from api.routes.basemap import vector_tiles
from api.routes.walk import MAX_MINUTES, MIN_MINUTES, isochrone_feature
from geodata.crs import to_wgs84
from geodata.errors import InvalidCoordinate
from geodata.schema import AMENITIES, Kind
from maps.assets import static_dirs
from maps.webmap import BaseMap, facility_map_html

router = APIRouter(tags=["Map"])

STATIC_URL = "/static"
_PAGES = "map-pages"
_PAGE_CACHE_SIZE = 16
#: Cached pages are rebuilt at least this often, seconds: their popups show the open state now.
_PAGE_TTL_S = 300
Amenity = Literal[AMENITIES]  # type: ignore[valid-type]


def mount_static(app: FastAPI) -> None:
    """Serve the map's scripts, stylesheets and images at ``/static/<dir>/...``."""
    for key, directory in static_dirs().items():
        app.mount(f"{STATIC_URL}/{key}", StaticFiles(directory=directory), name=f"static-{key}")


@router.get(
    "/map",
    summary="Web map of the facilities",
    response_class=HTMLResponse,
    responses={
        200: {"content": {"text/html": {}}, "description": "HTML page"},
        **problem_responses(404, 409, 422),
    },
)
def web_map(
    state: StateDep,
    snapshot: SnapshotDep,
    viewer: ViewerDep,
    kind: Annotated[list[Kind] | None, Query(description="facility kinds to show")] = None,
    district: Annotated[list[str] | None, Query(description="adcodes or district names")] = None,
    amenity: Annotated[list[Amenity] | None, Query(description="amenities to require")] = None,
    base_map: Annotated[
        BaseMap | None,
        Query(description="background map; default the served base map when there is one"),
    ] = None,
    lang: Annotated[Literal["zh", "en"], Query(description="language")] = "zh",
    lon: Annotated[
        float | None, Query(ge=-180, le=180, description="centre longitude, degrees in crs")
    ] = None,
    lat: Annotated[
        float | None, Query(ge=-90, le=90, description="centre latitude, degrees in crs")
    ] = None,
    crs: Annotated[
        Literal["wgs84", "cgcs2000", "gcj02", "bd09"], Query(description="system of lon/lat")
    ] = "wgs84",
    zoom: Annotated[int | None, Query(ge=0, le=18, description="initial zoom")] = None,
    isochrone: Annotated[
        str | None, Query(description="facility id whose walking isochrone to draw")
    ] = None,
    minutes: Annotated[
        float, Query(ge=MIN_MINUTES, le=MAX_MINUTES, description="isochrone walking minutes")
    ] = 15.0,
) -> Response:
    """An HTML page with the facilities (clustered markers, popups, navigation links)."""
    tiles = vector_tiles(state)
    if base_map is None:
        base_map = "none" if tiles is None else "vector"
    extra: dict[str, Any] = {}
    if (lon is None) != (lat is None):
        missing = "lat" if lat is None else "lon"
        raise InvalidCoordinate("give both lon and lat for the map centre", field=missing)
    if lon is not None and lat is not None:
        extra["center"] = to_wgs84(lon, lat, crs)
    if zoom is not None:
        extra["zoom"] = zoom
    if isochrone is not None:
        feature = isochrone_feature(state, snapshot, viewer, isochrone, minutes=minutes)
        props = feature["properties"]
        label = f"步行{minutes:g}分钟范围" if lang == "zh" else f"{minutes:g} min walk"
        extra["extra_layers"] = [(label, feature)]
        extra.setdefault("center", (props["facility_lon"], props["facility_lat"]))
    key = (
        viewer,
        tuple(kind or ()),
        tuple(district or ()),
        tuple(amenity or ()),
        base_map,
        lang,
        isochrone and (isochrone, minutes),
        extra.get("center"),
        zoom,
        int(time.time() // _PAGE_TTL_S),
    )
    pages: OrderedDict[tuple[object, ...], str] = snapshot.memo.setdefault(_PAGES, OrderedDict())
    html = pages.get(key)
    if html is None:
        settings = state.settings
        html = facility_map_html(
            visible(snapshot.frame, viewer),
            viewer=viewer,
            kinds=kind,
            districts=district,
            amenities=amenity,
            base_map=base_map,
            language=lang,
            calendar=snapshot.index.calendar,
            boundaries=state.districts,
            tianditu_key=settings.tianditu_key or None,
            vector_tiles=tiles,
            approval_no=settings.approval_no or None,
            asset_mode="served",
            static_url=STATIC_URL,
            **extra,
        )
        pages[key] = html
        while len(pages) > _PAGE_CACHE_SIZE:
            pages.popitem(last=False)
    return HTMLResponse(html)
