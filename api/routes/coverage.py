"""``/coverage...``: how well facilities cover the districts, where the gaps are, where to add.

Every figure counts only the facilities the caller may see (the viewer of the question's
:class:`finder.index.FacilityFilter`: anonymous callers count public facilities only, so no
answer reveals an employees-only room) and only open ones (``status`` ``open``, the status rule
of ``docs/api.md``). Each answer says what it counted (``counted``: kinds,
access classes, statuses, number of facilities) and what the area shares refer to
(``area_basis``).

* ``GET /coverage`` - the per-district table (:func:`finder.coverage.coverage_table`) as JSON,
  CSV or GeoJSON (district polygons with the figures);
* ``GET /coverage/gaps`` - the parts of districts out of reach, GeoJSON polygons (WGS-84);
* ``GET /coverage/suggest`` - proposed new sites (:func:`finder.siting.suggest_sites`);
* ``GET /coverage/map`` - the coverage web map (:func:`maps.coveragemap.coverage_map_html`);
* ``GET /coverage/atlas.pdf`` - the printable atlas of every district (:mod:`maps.atlas`);
* ``GET /coverage/sheet.pdf`` - the printable sheet of one district (:mod:`maps.printmap`).

The sample grid is built once in the lifespan; answers are cached per snapshot, caller
visibility and parameters (a few per snapshot).
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Query
from starlette.responses import HTMLResponse, Response

from api.deps import SnapshotDep, StateDep, ViewerDep
from api.errors import problem_responses
from api.routes.basemap import vector_tiles
from api.routes.common import GeoJSONResponse, JSONBytesResponse
from api.routes.webmap import STATIC_URL
from api.state import AppState, Snapshot
from finder.coverage import (
    CountedFacilities,
    SampleGrid,
    coverage_layers,
    coverage_table,
    region_coverage,
    rounded_table,
)
from finder.coverage import counted_facilities as count_selected
from finder.index import FacilityFilter
from finder.lru import LRUCache
from finder.siting import Objective, SitingResult, observed_use_near, suggest_sites
from finder.usage import MAX_PERIOD_DAYS, USE_WINDOW_DAYS, use_window
from geodata.boundaries import Region
from geodata.cells import frame_to_csv
from geodata.schema import Kind, Viewer
from maps.paper import Orientation, Paper

router = APIRouter(prefix="/coverage", tags=["Coverage"])

MIN_RADIUS_M = 100.0
MAX_RADIUS_M = 5000.0
MAX_SITES = 50
_CACHE = "coverage-answers"
_CACHE_SIZE = 16
T = TypeVar("T")

RadiusParam = Annotated[
    float,
    Query(ge=MIN_RADIUS_M, le=MAX_RADIUS_M, description="reach, geodesic metres (100-5000)"),
]
KindParam = Annotated[list[Kind] | None, Query(description="facility kinds to count (default all)")]
WeightParam = Annotated[
    Literal["none", "use"],
    Query(
        description="`use`: weight demand by observed use, door entries per day of the "
        "facilities near each place (docs/coverage.md); `none`: plain area or people"
    ),
]
UseDaysParam = Annotated[
    int,
    Query(
        ge=1,
        le=MAX_PERIOD_DAYS,
        description="window of observed use: whole days before today, China time",
    ),
]
ADCODE_ANY_LEVEL = r"^\d{2}(\d{2}){0,2}$"
AdcodeParam = Annotated[
    str,
    Query(
        pattern=ADCODE_ANY_LEVEL,
        description="adcode of a county (310101), city (4101) or province (41)",
    ),
]


def counted_facilities(
    snapshot: Snapshot, viewer: Viewer, kinds: Sequence[str]
) -> CountedFacilities:
    """The open facilities of ``kinds`` (all when empty) that ``viewer`` may see: the only
    facilities any answer counts (:func:`finder.coverage.counted_facilities`)."""
    return count_selected(snapshot.index, _where(viewer, kinds))


def _where(viewer: Viewer, kinds: Sequence[str]) -> FacilityFilter:
    """The question every coverage answer asks: open facilities of ``kinds`` (all when
    empty) that ``viewer`` may see."""
    return FacilityFilter(kinds=kinds or None, viewer=viewer)


def _cached(snapshot: Snapshot, key: Hashable, build: Callable[[], T]) -> T:
    """``build()`` once per snapshot and key (the last few kept)."""
    answers: LRUCache[Hashable, Any] = snapshot.memo.setdefault(_CACHE, LRUCache(_CACHE_SIZE))
    return answers.get_or_build(key, build)  # type: ignore[no-any-return]


def _kinds_key(kind: Sequence[str] | None) -> tuple[str, ...]:
    return tuple(sorted(set(kind or ())))


@router.get(
    "",
    summary="Coverage of districts by facilities within a radius",
    responses={
        200: {
            "description": "per-district figures",
            "content": {"application/json": {}, "text/csv": {}, "application/geo+json": {}},
        },
        **problem_responses(404),
    },
)
def coverage(
    state: StateDep,
    snapshot: SnapshotDep,
    viewer: ViewerDep,
    radius_m: RadiusParam = 1000.0,
    kind: KindParam = None,
    adcode: Annotated[
        str | None,
        Query(
            pattern=ADCODE_ANY_LEVEL,
            description="a county, city (4101) or province (41): its counties and, for a city "
            "or province, the aggregate in `regions` (default all districts)",
        ),
    ] = None,
    f: Annotated[Literal["json", "csv", "geojson"], Query(description="output format")] = "json",
) -> Response:
    """Per district: area (and population) shares within ``radius_m`` of a counted facility,
    shares reached twice, the largest gap, facilities per kind and per 10,000 residents."""
    kinds = _kinds_key(kind)

    def build() -> tuple[Any, CountedFacilities]:
        counted = counted_facilities(snapshot, viewer, kinds)
        lon, lat = counted.lon, counted.lat
        if adcode is None:
            result = coverage_table(state.grid, lon, lat, radius_m=radius_m, kind=counted.kind)
        else:
            result = region_coverage(
                state.regions, [adcode], lon, lat, radius_m=radius_m, kind=counted.kind
            )
        return result, counted

    result, counted = _cached(snapshot, ("table", viewer, kinds, radius_m, adcode), build)
    if f == "csv":
        return Response(
            frame_to_csv(rounded_table(result.table_with_regions())),
            media_type="text/csv; charset=utf-8",
        )
    if f == "geojson":
        grid = state.regions.grid_for(result.table["adcode"].tolist())
        document = result.to_geojson(grid.districts)
        document["metadata"]["counted"] = counted.summary
        return GeoJSONResponse(document)
    document = result.to_json()
    document["metadata"]["counted"] = counted.summary
    return JSONBytesResponse(document)


@router.get(
    "/gaps",
    summary="Parts of districts out of reach (GeoJSON)",
    response_class=GeoJSONResponse,
    responses={
        200: {"description": "gap polygons, WGS-84", "content": {"application/geo+json": {}}},
        **problem_responses(404),
    },
)
def coverage_gaps(
    state: StateDep,
    snapshot: SnapshotDep,
    viewer: ViewerDep,
    adcode: AdcodeParam,
    radius_m: RadiusParam = 1000.0,
    kind: KindParam = None,
) -> Response:
    """The gap polygons of a county, or of every county of a city or province (largest first;
    ``area_m2`` per polygon)."""
    kinds = _kinds_key(kind)
    region = state.regions.region(adcode)

    def build() -> dict[str, Any]:
        counted = counted_facilities(snapshot, viewer, kinds)
        gaps = coverage_layers(
            state.regions.grid_for(region.counties),
            counted.lon,
            counted.lat,
            radius_m=radius_m,
            adcodes=list(region.counties),
        )["gaps"]
        gaps["metadata"]["counted"] = counted.summary
        gaps["metadata"]["adcode"] = adcode
        return gaps

    return GeoJSONResponse(_cached(snapshot, ("gaps", viewer, kinds, radius_m, adcode), build))


@router.get(
    "/suggest",
    summary="Proposed new sites for a district (GeoJSON)",
    response_class=GeoJSONResponse,
    responses={
        200: {
            "description": "proposed sites (points, WGS-84) with before/after shares",
            "content": {"application/geo+json": {}},
        },
        **problem_responses(404),
    },
)
def coverage_suggest(
    state: StateDep,
    snapshot: SnapshotDep,
    viewer: ViewerDep,
    adcode: AdcodeParam,
    radius_m: RadiusParam = 1000.0,
    n: Annotated[int, Query(ge=1, le=MAX_SITES, description="number of sites (1-50)")] = 5,
    objective: Annotated[
        Literal["area", "population"],
        Query(description="maximise newly covered area or population"),
    ] = "area",
    kind: KindParam = None,
    weight: WeightParam = "none",
    use_days: UseDaysParam = USE_WINDOW_DAYS,
) -> Response:
    """``n`` new sites that together reach the most uncovered area (or people) of a district.

    ``metadata.before_share`` and ``after_share`` are the district's covered shares (0-1)
    without and with the proposed sites; ``metadata.weighting`` says how demand was weighted
    (with ``weight=use``: the window, the measured and unmeasured facilities). ``weight=use``
    where no facility near the district has door counts in the window is a 400 problem.
    """
    kinds = _kinds_key(kind)
    region = state.regions.region(adcode)
    window = use_window(use_days) if weight == "use" else None

    def build() -> dict[str, Any]:
        counted = counted_facilities(snapshot, viewer, kinds)
        result = _suggested(
            state, snapshot, viewer, kinds, counted, region, radius_m, n, objective, window
        )
        document = result.to_geojson()
        document["metadata"]["counted"] = counted.summary
        document["metadata"]["area_basis"] = state.grid.area_basis
        return document

    key = ("suggest", viewer, kinds, radius_m, adcode, n, objective, window)
    return GeoJSONResponse(_cached(snapshot, key, build))


def _suggested(
    state: AppState,
    snapshot: Snapshot,
    viewer: Viewer,
    kinds: tuple[str, ...],
    counted: CountedFacilities,
    region: Region,
    radius_m: float,
    n: int,
    objective: Objective,
    window: tuple[dt.date, dt.date] | None,
) -> SitingResult:
    """New sites for a region (:func:`finder.siting.suggest_sites`), weighted by the observed
    use over ``window`` (:func:`finder.usage.use_window`) when one is given."""
    grid = state.regions.merged_grid(region)
    use = None
    if window is not None:
        index = snapshot.index
        use = observed_use_near(
            state.events.log,
            index.frame.iloc[index.select(_where(viewer, kinds))],
            grid.district(region.adcode),
            radius_m,
            window,
        )
    return suggest_sites(
        grid,
        region.adcode,
        counted.lon,
        counted.lat,
        n_sites=n,
        radius_m=radius_m,
        objective=objective,
        use=use,
    )


@router.get(
    "/map",
    summary="Coverage web map",
    response_class=HTMLResponse,
    responses={
        200: {"content": {"text/html": {}}, "description": "HTML page"},
        **problem_responses(404),
    },
)
def coverage_map(
    state: StateDep,
    snapshot: SnapshotDep,
    viewer: ViewerDep,
    adcode: Annotated[
        str | None,
        Query(
            pattern=ADCODE_ANY_LEVEL,
            description="county whose reach and gaps to draw, or a city or province to map",
        ),
    ] = None,
    radius_m: RadiusParam = 1000.0,
    kind: KindParam = None,
) -> Response:
    """An HTML page: choropleth of covered shares, gaps hatched on top, the counted facilities.

    Scripts and stylesheets come from ``/static`` (no third-party request).
    """
    kinds = _kinds_key(kind)
    grid, county = state.grid, None
    if adcode is not None:  # 404 for an unknown district
        region = state.regions.region(adcode)
        grid = state.regions.grid_for(region.counties, exact=region.level != "county")
        county = region.adcode if region.level == "county" else None

    def build() -> str:
        return _coverage_page(state, grid, snapshot, viewer, kinds, radius_m, county)

    return HTMLResponse(_cached(snapshot, ("map", viewer, kinds, radius_m, adcode), build))


def _coverage_page(
    state: AppState,
    grid: SampleGrid,
    snapshot: Snapshot,
    viewer: Viewer,
    kinds: tuple[str, ...],
    radius_m: float,
    adcode: str | None,
) -> str:
    from maps.coveragemap import coverage_map_html  # Folium: loaded when a map is first drawn

    counted = counted_facilities(snapshot, viewer, kinds)
    return coverage_map_html(
        grid,
        counted.lon,
        counted.lat,
        kind=counted.kind,
        radius_m=radius_m,
        adcode=adcode,
        asset_mode="served",
        static_url=STATIC_URL,
        vector_tiles=vector_tiles(state),
        approval_no=state.settings.approval_no or None,
    )


@router.get(
    "/atlas.pdf",
    summary="Printable atlas of every district (PDF)",
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {}}, "description": "overview + one page each"},
        **problem_responses(400),
    },
)
def coverage_atlas(
    state: StateDep,
    snapshot: SnapshotDep,
    viewer: ViewerDep,
    radius_m: RadiusParam = 1000.0,
    kind: KindParam = None,
    paper: Annotated[Paper, Query(description="paper size")] = "A4",
    orientation: Annotated[Orientation, Query(description="page orientation")] = "landscape",
) -> Response:
    """The atlas of ``finder print --all-districts`` (:func:`maps.atlas.print_atlas`) for the
    facilities the caller may see: an overview page, then one coverage sheet per district."""
    kinds = _kinds_key(kind)

    def build() -> bytes:
        from maps.atlas import print_atlas  # matplotlib: loaded when a sheet is first printed

        counted = counted_facilities(snapshot, viewer, kinds)
        with tempfile.TemporaryDirectory() as folder:
            atlas = print_atlas(
                Path(folder) / "atlas.pdf",
                state.grid,
                counted.lon,
                counted.lat,
                counted.kind,
                radius_m=radius_m,
                paper=paper,
                orientation=orientation,
                approval_number=state.settings.approval_no or None,
                counted=counted.summary,
            )
            return atlas.path.read_bytes()

    key = ("atlas", viewer, kinds, radius_m, paper, orientation)
    return Response(
        _cached(snapshot, key, build),
        media_type="application/pdf",
        headers={"Content-Disposition": 'inline; filename="coverage-atlas.pdf"'},
    )


@router.get(
    "/sheet.pdf",
    summary="Printable coverage sheet of one district (PDF)",
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {}}, "description": "one A4 / A3 sheet"},
        **problem_responses(400, 404),
    },
)
def coverage_sheet_pdf(
    state: StateDep,
    snapshot: SnapshotDep,
    viewer: ViewerDep,
    adcode: Annotated[str, Query(pattern=r"^\d{6}$", description="district to print")],
    radius_m: RadiusParam = 1000.0,
    kind: KindParam = None,
    paper: Annotated[Paper, Query(description="paper size")] = "A4",
    orientation: Annotated[Orientation, Query(description="page orientation")] = "landscape",
    suggest: Annotated[
        int, Query(ge=0, le=MAX_SITES, description="new sites to propose and mark (0-50)")
    ] = 0,
    weight: WeightParam = "none",
    use_days: UseDaysParam = USE_WINDOW_DAYS,
) -> Response:
    """The sheet of ``finder print --district`` (:func:`maps.printmap.print_coverage_map`) for
    the facilities the caller may see (404 for an unknown district); the console's print
    button. With ``suggest``, the sites of ``/coverage/suggest`` (``n=suggest``, ``weight``,
    ``use_days``) are marked, and a footer line says how they were chosen."""
    kinds = _kinds_key(kind)
    state.grid.district(adcode)  # 404 for an unknown district
    window = use_window(use_days) if suggest and weight == "use" else None

    def build() -> bytes:
        from maps.printmap import print_coverage_map  # matplotlib, as for the atlas

        counted = counted_facilities(snapshot, viewer, kinds)
        sites = None
        if suggest:
            region = state.regions.region(adcode)
            sites = _suggested(
                state, snapshot, viewer, kinds, counted, region, radius_m, suggest, "area", window
            )
        with tempfile.TemporaryDirectory() as folder:
            printed = print_coverage_map(
                Path(folder) / "sheet.pdf",
                state.grid,
                counted.lon,
                counted.lat,
                counted.kind,
                adcode=adcode,
                radius_m=radius_m,
                paper=paper,
                orientation=orientation,
                approval_number=state.settings.approval_no or None,
                counted=counted.summary,
                sites=sites,
            )
            return printed.path.read_bytes()

    key = ("sheet", viewer, kinds, radius_m, paper, orientation, adcode, suggest, window)
    return Response(
        _cached(snapshot, key, build),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="coverage-{adcode}.pdf"'},
    )
