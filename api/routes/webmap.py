"""``GET /map``: the embeddable web map of the facilities the caller may see.

The page is built by :func:`maps.webmap.facility_map_html` from the facilities that pass
:func:`api.auth.visible` (the map filters again by the same viewer, defensively); its scripts
and stylesheets are served under ``/static`` (see :func:`mount_static`). Pages are cached per
index snapshot, viewer and parameters.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Annotated, Literal

from fastapi import APIRouter, FastAPI, Query
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse, Response

from api.auth import visible
from api.deps import SnapshotDep, StateDep, ViewerDep
from api.errors import problem_responses
from geodata.schema import AMENITIES, Kind
from maps.assets import static_dirs
from maps.webmap import facility_map_html

router = APIRouter(tags=["Map"])

STATIC_URL = "/static"
_PAGES = "map-pages"
_PAGE_CACHE_SIZE = 16
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
        **problem_responses(),
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
        Literal["none", "osm", "tianditu", "amap"], Query(description="background map")
    ] = "none",
    lang: Annotated[Literal["zh", "en"], Query(description="language")] = "zh",
) -> Response:
    """An HTML page with the facilities (clustered markers, popups, navigation links)."""
    key = (viewer, tuple(kind or ()), tuple(district or ()), tuple(amenity or ()), base_map, lang)
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
            approval_no=settings.approval_no or None,
            asset_mode="served",
            static_url=STATIC_URL,
        )
        pages[key] = html
        while len(pages) > _PAGE_CACHE_SIZE:
            pages.popitem(last=False)
    return HTMLResponse(html)
