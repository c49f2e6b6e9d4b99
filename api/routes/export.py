"""``GET /export``: the facilities the caller may see as CSV, XLSX or GeoJSON.

The files of ``finder export`` (:func:`geodata.export.export_bytes`), filtered by the one access
rule (:func:`api.auth.visible`): anonymous callers get the public facilities, a key what it may
see. The staff console's export buttons call it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.deps import SnapshotDep, ViewerDep
from api.errors import problem_responses
from geodata.export import EXPORT_FORMATS, export_bytes
from geodata.schema import COLUMNS

router = APIRouter(tags=["Export"])


@router.get(
    "/export",
    summary="The facilities as CSV, XLSX or GeoJSON",
    response_class=Response,
    responses={
        200: {
            "description": "the file (attachment)",
            "content": {media: {} for media, _ in EXPORT_FORMATS.values()},
        },
        **problem_responses(401),
    },
)
async def export_facilities(
    snapshot: SnapshotDep,
    viewer: ViewerDep,
    format: Annotated[Literal["csv", "xlsx", "geojson"], Query(description="file format")] = "csv",
) -> Response:
    """Every facility the caller may see, in ``COLUMNS`` order (WGS-84 lon / lat)."""
    frame = snapshot.visible_frame(viewer)[list(COLUMNS)]
    body = await run_in_threadpool(export_bytes, frame, format)
    media, suffix = EXPORT_FORMATS[format]
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="facilities{suffix}"'},
    )
