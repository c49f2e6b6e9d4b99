"""``GET /map``: the embeddable web map of the facilities the caller may see.

The page is built by :func:`maps.webmap.facility_map_html` from the facilities the caller may
see (the index's mask of a :class:`finder.index.FacilityFilter` with the caller's viewer; the
map selects with the same filter again, adding its statuses and the parameters); its scripts
and stylesheets are served under ``/static`` (see :func:`mount_static`). Pages are cached per
index snapshot, viewer, parameters and five-minute interval (popups say whether a facility is
open now). The base map is the served vector one (:mod:`api.routes.basemap`) when the server
has one, else none; ``base_map`` chooses another. ``lon``/``lat`` (in ``crs``) and ``zoom`` set
the initial view.
``isochrone=<facility id>&minutes=15`` adds the area within that walk of the facility
(:func:`api.routes.walk.isochrone_feature`; the same 404 / 409 / 422 problems as
``/facilities/{id}/isochrone``) and centres the map on it.

``lon``/``lat`` are the viewer's position (the app's GPS): the map draws it and lists the
facilities nearest to it, which the page asks of ``/nearest`` on the same origin (as it does
after 定位), so the list is that route's answer. ``district`` must name a loaded district
(404 otherwise, like ``/coverage``).

The page is shown inside the app's WebView, so its errors are small HTML pages in the map's
language (:func:`maps.webmap.error_page_html`) with the problem's status code, not
problem+json (:class:`MapPageRoute`).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Coroutine
from http import HTTPStatus
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse, Response

from api.deps import SnapshotDep, StateDep, ViewerDep
from api.errors import ApiProblem, status_of
from api.routes.basemap import vector_tiles
from api.routes.walk import MAX_MINUTES, MIN_MINUTES, isochrone_feature
from api.state import AppState
from finder.lru import LRUCache
from geodata.crs import CrsName, to_wgs84
from geodata.errors import FacilityNotFound, FinderError, InvalidCoordinate, UnknownDistrict
from geodata.geodesy import LAT_RANGE, LON_RANGE
from geodata.schema import AMENITIES, Kind
from maps.assets import static_dirs
from maps.webmap import BaseMap, error_page_html

logger = logging.getLogger(__name__)

#: Problem slugs of :mod:`api.errors` and :mod:`api.routes.walk` -> error page of the map.
_PAGE_PROBLEMS = {
    "no-network": "no_network",
    "off-network": "off_network",
    "unauthorized": "unauthorized",
}


def _counties_of(state: AppState, districts: list[str]) -> tuple[list[str], Any]:
    """Names as given, adcodes of any level as their counties; and the boundaries that hold
    them (the service's districts, or the national ones for counties beyond them)."""
    out: list[str] = []
    for value in districts:
        if re.fullmatch(r"\d{2}(\d{2}){0,2}", value):
            out.extend(state.regions.region(value).counties)
        else:
            out.append(value)
    known = set(state.districts["adcode"]) | set(state.districts["name"])
    return out, state.districts if set(out) <= known else state.regions.places


def _error_page(request: Request, exc: Exception) -> Response:
    """The map's error page for an exception raised while answering ``/map``."""
    parameters: list[str] = []
    if isinstance(exc, RequestValidationError):
        status, problem = 400, "invalid_parameter"
        # locations are ("query", name[, index of a list item])
        parameters = [str(e["loc"][1]) for e in exc.errors() if len(e.get("loc", ())) > 1]
    elif isinstance(exc, ApiProblem):
        status, problem = exc.status, _PAGE_PROBLEMS.get(exc.slug or "", "unavailable")
    elif isinstance(exc, FinderError):
        status, _ = status_of(exc)
        field = getattr(exc, "field", None)
        if isinstance(exc, UnknownDistrict):
            problem = "unknown_district"
        elif isinstance(exc, FacilityNotFound):
            problem = "unknown_facility"
        elif field == "tianditu_key":
            problem = "base_map_unavailable"
        elif status == 400:
            problem, parameters = "invalid_parameter", [field or "query"]
        else:
            problem = "unavailable"
        if status >= 500:
            logger.error("GET /map failed: %s", exc, exc_info=exc)
    else:
        logger.error("GET /map failed", exc_info=exc)
        status, problem = 500, "unavailable"
    language = request.query_params.get("lang", "zh")
    page = error_page_html(problem, language=language, parameters=sorted(set(parameters)))
    headers = exc.headers if isinstance(exc, ApiProblem) else None
    return HTMLResponse(page, status_code=status, headers=headers)


class MapPageRoute(APIRoute):
    """A route whose every error is the map's HTML error page (see :func:`_error_page`)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_or_error(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:  # every error becomes a page; server errors are logged
                return _error_page(request, exc)

        return page_or_error


router = APIRouter(tags=["Map"], route_class=MapPageRoute)
_ERROR_PAGE: dict[str, Any] = {"content": {"text/html": {}}}

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
        **{
            status: {**_ERROR_PAGE, "description": f"{HTTPStatus(status).phrase}: error page"}
            for status in (400, 401, 404, 409, 422)
        },
        "4XX": {**_ERROR_PAGE, "description": "Client error: error page"},
        "5XX": {**_ERROR_PAGE, "description": "Server error: error page"},
    },
)
def web_map(
    request: Request,
    state: StateDep,
    snapshot: SnapshotDep,
    viewer: ViewerDep,
    kind: Annotated[list[Kind] | None, Query(description="facility kinds to show")] = None,
    district: Annotated[
        list[str] | None,
        Query(
            description="district names, or adcodes of counties, cities (4101) or provinces (41)"
        ),
    ] = None,
    amenity: Annotated[list[Amenity] | None, Query(description="amenities to require")] = None,
    base_map: Annotated[
        BaseMap | None,
        Query(description="background map; default the served base map when there is one"),
    ] = None,
    lang: Annotated[Literal["zh", "en"], Query(description="language")] = "zh",
    lon: Annotated[
        float | None,
        Query(
            ge=LON_RANGE[0],
            le=LON_RANGE[1],
            description="viewer's longitude (the map's centre), degrees in crs",
        ),
    ] = None,
    lat: Annotated[
        float | None,
        Query(
            ge=LAT_RANGE[0],
            le=LAT_RANGE[1],
            description="viewer's latitude (the map's centre), degrees in crs",
        ),
    ] = None,
    crs: Annotated[CrsName, Query(description="system of lon/lat")] = "wgs84",
    zoom: Annotated[int | None, Query(ge=0, le=18, description="initial zoom")] = None,
    isochrone: Annotated[
        str | None, Query(description="facility id whose walking isochrone to draw")
    ] = None,
    minutes: Annotated[
        float, Query(ge=MIN_MINUTES, le=MAX_MINUTES, description="isochrone walking minutes")
    ] = 15.0,
) -> Response:
    """An HTML page with the facilities (clustered markers, popups, navigation links) and the
    ones nearest to the viewer."""
    boundaries = state.districts
    if district:
        district, boundaries = _counties_of(state, district)
    tiles = vector_tiles(state)
    if base_map is None:
        base_map = "none" if tiles is None else "vector"
    extra: dict[str, Any] = {}
    if (lon is None) != (lat is None):
        missing = "lat" if lat is None else "lon"
        raise InvalidCoordinate("give both lon and lat for the map centre", field=missing)
    if lon is not None and lat is not None:
        extra["center"] = extra["origin"] = to_wgs84(lon, lat, crs)
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
        # photos are not facility data (no new snapshot): a photo added or taken down through
        # this worker rebuilds its pages at once, through another within _PAGE_TTL_S (a photo
        # taken down is never served again: its popup image then just stays away)
        state.photo_version,
    )
    pages: LRUCache[tuple[object, ...], str] = snapshot.memo.setdefault(
        _PAGES, LRUCache(_PAGE_CACHE_SIZE)
    )

    def build() -> str:
        from maps.webmap import facility_map_html  # Folium: loaded when a map is first drawn

        settings = state.settings
        shown = snapshot.visible_frame(viewer)
        first_photos = state.store.first_photos()
        return facility_map_html(
            shown.assign(photo=shown["id"].map(first_photos).fillna(-1).astype(int)),
            viewer=viewer,
            kinds=kind,
            districts=district,
            amenities=amenity,
            base_map=base_map,
            language=lang,
            calendar=snapshot.index.calendar,
            boundaries=boundaries,
            tianditu_key=settings.tianditu_key or None,
            vector_tiles=tiles,
            approval_no=settings.approval_no or None,
            asset_mode="served",
            static_url=STATIC_URL,
            nearby_url=request.app.url_path_for("nearest"),
            facility_url=request.app.url_path_for("create_facility"),
            live_url=request.app.url_path_for("live_stream"),
            **extra,
        )

    return HTMLResponse(pages.get_or_build(key, build))
