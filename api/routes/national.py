"""``/coverage/national``: the national picture, per province, per city and per county.

* ``GET /coverage/national`` - :func:`finder.national.national_coverage` as JSON (``provinces``,
  ``cities``, ``counties`` ranked by the 15-minute share) or CSV (one table, ``level`` column);
* ``GET /coverage/national.pdf`` - the printed national sheet (:mod:`maps.national`).

Like every coverage answer they count only the open facilities the caller may see, say what
they counted, and say their population basis (a population raster set with
``FINDER_POPULATION_RASTER``, else the 2020 census county totals spread evenly). Answers are
cached per snapshot, caller visibility and parameters with the other coverage answers.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from starlette.responses import Response

from api.deps import SnapshotDep, StateDep, ViewerDep
from api.errors import problem_responses
from api.routes.common import JSONBytesResponse
from api.routes.coverage import KindParam, RadiusParam, _cached, _kinds_key, counted_facilities
from api.state import AppState, Snapshot
from finder.national import NationalCoverage, national_coverage, rounded_national
from geodata.cells import frame_to_csv
from geodata.schema import Viewer
from maps.paper import Orientation, Paper

router = APIRouter(prefix="/coverage", tags=["Coverage"])


def _national(
    state: AppState, snapshot: Snapshot, viewer: Viewer, kinds: tuple[str, ...], radius_m: float
) -> tuple[NationalCoverage, dict[str, object]]:
    def build() -> tuple[NationalCoverage, dict[str, object]]:
        counted = counted_facilities(snapshot, viewer, kinds)
        result = national_coverage(
            state.grid, counted.lon, counted.lat, radius_m=radius_m, kind=counted.kind
        )
        return result, counted.summary

    return _cached(snapshot, ("national", viewer, kinds, radius_m), build)


@router.get(
    "/national",
    summary="The national picture: coverage per province and city, counties ranked",
    responses={
        200: {
            "description": "provinces, cities and ranked counties",
            "content": {"application/json": {}, "text/csv": {}},
        },
        **problem_responses(400),
    },
)
def coverage_national(
    state: StateDep,
    snapshot: SnapshotDep,
    viewer: ViewerDep,
    radius_m: RadiusParam = 1000.0,
    kind: KindParam = None,
    f: Annotated[Literal["json", "csv"], Query(description="output format")] = "json",
) -> Response:
    """One row per province and per city (facilities, per 10,000 residents, shares of area and
    of people within ``radius_m`` and within a 15-minute walk, covered twice, largest gap) and
    the counties ranked by their 15-minute share; provinces and cities are sums of counties."""
    result, counted = _national(state, snapshot, viewer, _kinds_key(kind), radius_m)
    if f == "csv":
        return Response(
            frame_to_csv(rounded_national(result.to_frame())),
            media_type="text/csv; charset=utf-8",
        )
    document = result.to_json()
    document["metadata"]["counted"] = counted
    return JSONBytesResponse(document)


@router.get(
    "/national.pdf",
    summary="The printed national sheet (PDF)",
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {}}, "description": "province map and ranking"},
        **problem_responses(400),
    },
)
def coverage_national_pdf(
    state: StateDep,
    snapshot: SnapshotDep,
    viewer: ViewerDep,
    radius_m: RadiusParam = 1000.0,
    kind: KindParam = None,
    paper: Annotated[Paper, Query(description="paper size")] = "A3",
    orientation: Annotated[Orientation, Query(description="page orientation")] = "landscape",
) -> Response:
    """The province choropleth (share of people within ``radius_m``) and the province ranking
    of ``finder print --national``, for the facilities the caller may see."""
    kinds = _kinds_key(kind)

    def build() -> bytes:
        from maps.national import print_national_sheet  # matplotlib: loaded when first printed

        result, counted = _national(state, snapshot, viewer, kinds, radius_m)
        with tempfile.TemporaryDirectory() as folder:
            sheet = print_national_sheet(
                Path(folder) / "national.pdf",
                result,
                state.districts,
                paper=paper,
                orientation=orientation,
                approval_number=state.settings.approval_no or None,
                counted=counted,
            )
            return sheet.path.read_bytes()

    key = ("national.pdf", viewer, kinds, radius_m, paper, orientation)
    return Response(
        _cached(snapshot, key, build),
        media_type="application/pdf",
        headers={"Content-Disposition": 'inline; filename="coverage-national.pdf"'},
    )
