"""``GET /basemap/{z}/{x}/{y}.mvt``: tiles of the served vector base map.

The archive (``FINDER_BASEMAP``, default ``<store>.basemap.pmtiles``; built by
``finder basemap build``) is opened once in the lifespan (:class:`geodata.basemap.BasemapArchive`).
Tiles are the stored gzip-compressed Mapbox Vector Tiles, sent as they are with
``Content-Encoding: gzip`` (inflated here for the rare client that does not accept gzip). Every
answer carries an ``ETag`` (archive version and tile address: it changes when the archive is
rebuilt) and ``Cache-Control``; ``If-None-Match`` gets ``304``. A tile of the archive's zoom range
without features is ``204 No Content``; a tile outside it, or any tile when no base map is
configured, is a ``404`` problem.
"""

from __future__ import annotations

import gzip
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from api.deps import StateDep
from api.errors import problem_responses
from api.state import AppState
from geodata.errors import NotFound

if TYPE_CHECKING:
    from maps.basemap import VectorTiles

router = APIRouter(tags=["Map"])

#: URL template of the tiles (what the pages' JavaScript asks for).
TILE_URL = "/basemap/{z}/{x}/{y}.mvt"
MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
#: Browsers keep a tile a day and then revalidate it with its ETag.
CACHE_CONTROL = "public, max-age=86400"


def vector_tiles(state: AppState) -> VectorTiles | None:
    """The served base map as the web maps need it, or None when none is configured."""
    if state.basemap is None:
        return None
    from maps.basemap import VectorTiles  # Folium: loaded when a page is first drawn

    return VectorTiles(TILE_URL, state.basemap.max_zoom, state.basemap.label_characters)


@router.get(
    TILE_URL,
    summary="Vector tile of the base map",
    response_class=Response,
    responses={
        200: {
            "content": {MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
            "description": "Mapbox Vector Tile",
        },
        204: {"description": "no feature in this tile"},
        304: {"description": "not modified (If-None-Match)"},
        **problem_responses(404),
    },
)
def basemap_tile(
    state: StateDep,
    request: Request,
    z: Annotated[int, Path(ge=0, le=30, description="zoom")],
    x: Annotated[int, Path(ge=0, description="column")],
    y: Annotated[int, Path(ge=0, description="row, from the north (XYZ)")],
) -> Response:
    """One tile (Web Mercator, WGS-84 coordinates) of the base map."""
    archive = state.basemap
    if archive is None:
        raise NotFound("this server has no base map (see finder basemap build)")
    data = archive.tile(z, x, y)  # NotFound outside the archive's range
    etag = f'"{archive.version}-{z}-{x}-{y}"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Vary": "Accept-Encoding"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    if data is None:
        return Response(status_code=204, headers=headers)
    if archive.gzipped:
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
        else:
            data = gzip.decompress(data)
    return Response(data, media_type=MEDIA_TYPE, headers=headers)
