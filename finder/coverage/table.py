"""The coverage table: shares, double coverage and largest gap per district, and their sum
per region."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import ArrayLike, NDArray
from shapely.geometry import mapping

from finder.coverage.aggregate import county_sums, sum_counties
from finder.coverage.facilities import FacilityPoints, NearbyFacilities, check_radius
from finder.coverage.grid import DistrictCells, FloatArray, SampleGrid, build_sample_grid
from geodata.boundaries import Region, assign_adcode, resolve_region
from geodata.errors import InvalidInput, UnknownDistrict
from geodata.geodesy import check_points
from geodata.schema import KINDS


@dataclass(frozen=True)
class CoverageResult:
    """Per-district coverage figures.

    Attributes
    ----------
    table
        One row per district: ``adcode``, ``name``, ``population`` (2020 census), ``area_km2``
        (geodesic area of the basis), ``facilities`` (facilities located in the district),
        ``n_<kind>`` per facility kind, ``facilities_per_10k`` (per 10,000 residents),
        ``covered_share`` and ``covered_twice_share`` (fractions 0-1 of the basis area with at
        least one / two facilities within ``radius_m``), ``largest_gap_m`` (greatest distance from
        a point of the district to its nearest facility, metres; NaN without facilities),
        ``gap_lon``/``gap_lat`` (where, WGS-84 degrees), ``pop_covered_share`` and
        ``pop_covered_twice_share`` (fractions of the population layer; NaN without one) and
        ``cell_m`` (sample cell side, metres).
    radius_m
        Reach radius, metres (geodesic).
    area_basis
        What area shares refer to: the district polygons (water included) or a land mask.
    population_basis
        Population layer used for the weighted shares, or ``None``.
    facility_count
        Number of facilities considered.
    computed_at
        UTC time of the computation.
    """

    table: pd.DataFrame
    radius_m: float
    area_basis: str
    population_basis: str | None
    facility_count: int
    computed_at: dt.datetime
    regions: tuple[dict[str, Any], ...] = ()

    def metadata(self) -> dict[str, Any]:
        """Radius, bases, count and time as a JSON-ready dict."""
        return {
            "radius_m": self.radius_m,
            "area_basis": self.area_basis,
            "population_basis": self.population_basis,
            "facility_count": self.facility_count,
            "computed_at": self.computed_at.isoformat(),
        }

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-ready dict: ``metadata`` and ``districts`` (one dict per row),
        and ``regions`` (the aggregate of each province or city asked for) when there are any."""
        document = {"metadata": self.metadata(), "districts": _records(self.table)}
        if self.regions:
            document["regions"] = _records(pd.DataFrame(list(self.regions)))
        return document

    def table_with_regions(self) -> pd.DataFrame:
        """The per-county table followed by one aggregate row per province or city (CSV)."""
        if not self.regions:
            return self.table
        regions = pd.DataFrame(list(self.regions)).astype({"counties": "Int64"})
        return pd.concat([self.table, regions], ignore_index=True)

    def to_geojson(self, districts: gpd.GeoDataFrame) -> dict[str, Any]:
        """District polygons (WGS-84) with the table's figures as properties (a choropleth layer).

        Districts of ``districts`` missing from the table are left out.
        """
        rows = {r["adcode"]: r for r in _records(self.table)}
        features = [
            {"type": "Feature", "properties": rows[str(a)], "geometry": mapping(g)}
            for a, g in zip(districts["adcode"], districts.geometry, strict=True)
            if str(a) in rows
        ]
        return {"type": "FeatureCollection", "metadata": self.metadata(), "features": features}


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for row in table.to_dict(orient="records"):
        clean: dict[str, Any] = {}
        for key, value in row.items():
            if value is None or value is pd.NA:
                clean[str(key)] = None
            elif isinstance(value, np.integer):
                clean[str(key)] = int(value)
            elif isinstance(value, float | np.floating):
                clean[str(key)] = None if math.isnan(value) else float(value)
            else:
                clean[str(key)] = value
        records.append(clean)
    return records


def _largest_gap(
    cells: DistrictCells, nearby: NearbyFacilities, d1_m: FloatArray, *, candidates: int = 3
) -> tuple[float, float, float]:
    """Greatest nearest-facility distance over the district, refined around the worst cells.

    ``d1_m`` holds the exact nearest distance of covered cells and ``inf`` for the others. The
    others are first bounded from a coarse lattice (4 cells apart) by the triangle inequality;
    only cells whose upper bound reaches the best lower bound are searched exactly, so the
    worst cell is the same as if every cell had been searched. Around the worst few cells a
    sub-grid (``cell_m / 4``, then ``cell_m / 16`` around the best) refines the point.

    Returns ``(distance_m, x_m, y_m)``; the distance is a lower bound within about
    ``cell_m / 20`` of the supremum except in slivers narrower than a cell.
    """
    known = d1_m.copy()
    open_cells = np.flatnonzero(~np.isfinite(d1_m))
    if open_cells.size:
        known[open_cells] = -np.inf
        ux, uy = cells.x_m[open_cells], cells.y_m[open_cells]
        step = cells.cell_m * (4 if open_cells.size > 1024 else 1)
        ix = np.rint((ux - ux.min()) / step).astype(np.int64)
        iy = np.rint((uy - uy.min()) / step).astype(np.int64)
        keys, owner = np.unique(iy * (int(ix.max()) + 1) + ix, return_inverse=True)
        cx = ux.min() + (keys % (int(ix.max()) + 1)) * step
        cy = uy.min() + (keys // (int(ix.max()) + 1)) * step
        coarse = nearby.nearest_two(cx, cy)[:, 0]
        offset = np.hypot(ux - cx[owner], uy - cy[owner])
        lower = float(
            max(
                (coarse[owner] - offset).max(),
                np.max(d1_m, initial=-np.inf, where=np.isfinite(d1_m)),
            )
        )
        search = np.flatnonzero(coarse[owner] + offset >= lower)
        known[open_cells[search]] = nearby.nearest_two(ux[search], uy[search])[:, 0]
    top: list[int] = []
    remaining = known.copy()
    for _ in range(min(candidates, remaining.size)):
        worst = int(np.argmax(remaining))
        if not np.isfinite(remaining[worst]):
            break
        top.append(worst)
        remaining[worst] = -np.inf
    best = (float(known[top[0]]), float(cells.x_m[top[0]]), float(cells.y_m[top[0]]))
    # two stages of 9 x 9 points, cell_m / 4 then cell_m / 16 apart, around the worst cells
    steps = np.arange(-4, 5)
    ox, oy = (a.ravel() for a in np.meshgrid(steps, steps))
    starts = [(float(cells.x_m[i]), float(cells.y_m[i])) for i in top]
    for spacing in (cells.cell_m / 4.0, cells.cell_m / 16.0):
        for x0, y0 in starts:
            sx, sy = x0 + ox * spacing, y0 + oy * spacing
            inside = shapely.contains_xy(cells.polygon_local, sx, sy)
            if not inside.any():
                continue
            d = nearby.nearest_two(sx[inside], sy[inside])[:, 0]
            j = int(np.argmax(d))
            if d[j] > best[0]:
                best = (float(d[j]), float(sx[inside][j]), float(sy[inside][j]))
        starts = [(best[1], best[2])]
    return best


def coverage_table(
    grid: SampleGrid,
    lon: ArrayLike,
    lat: ArrayLike,
    *,
    radius_m: float = 1000.0,
    kind: Sequence[str] | NDArray[Any] | None = None,
    adcodes: Iterable[str] | None = None,
) -> CoverageResult:
    """Coverage of each district by facilities within ``radius_m``.

    Parameters
    ----------
    grid
        Sample cells from :func:`build_sample_grid`.
    lon, lat
        Facility locations, WGS-84 degrees (the caller filters kinds and access beforehand, e.g.
        with :func:`counted_facilities`). Facilities outside a district still cover it.
    radius_m
        Reach, geodesic metres.
    kind
        Facility kind per facility (see ``geodata.schema.KINDS``) for the per-kind counts.
    adcodes
        Only these districts (default all).

    Returns
    -------
    CoverageResult

    Raises
    ------
    InvalidInput
        On bad coordinates, radius or kinds.
    UnknownDistrict
        If an adcode of ``adcodes`` is not in the grid.
    """
    radius = check_radius(radius_m)
    facilities = FacilityPoints.from_lonlat(lon, lat)
    lon_arr, lat_arr = check_points(lon, lat)
    kinds = None if kind is None else np.asarray(kind, dtype=object).ravel()
    if kinds is not None:
        if kinds.shape != lon_arr.shape:
            raise InvalidInput("kind must have one entry per facility", field="kind")
        unknown = set(kinds.tolist()) - set(KINDS)
        if unknown:
            raise InvalidInput(f"unknown facility kind(s): {sorted(unknown)}", field="kind")
    selected = list(grid.cells) if adcodes is None else [grid.district(a) for a in adcodes]
    located = pd.Series(assign_adcode(lon_arr, lat_arr, grid.districts), dtype=object)
    counts = located.value_counts()
    by_kind = (
        pd.crosstab(located, pd.Series(kinds, dtype=object))
        if kinds is not None and located.notna().any()
        else pd.DataFrame()
    )
    rows: list[dict[str, Any]] = []
    margin_m = max(3.0 * radius, 3000.0)
    for cells in selected:
        row: dict[str, Any] = {
            "adcode": cells.adcode,
            "name": cells.name,
            "population": cells.population,
            "area_km2": cells.area_km2,
            "facilities": int(counts.get(cells.adcode, 0)),
        }
        for k in KINDS:
            if kinds is None:
                row[f"n_{k}"] = None
            elif cells.adcode in by_kind.index and k in by_kind.columns:
                row[f"n_{k}"] = int(by_kind.loc[cells.adcode, k])
            else:
                row[f"n_{k}"] = 0
        row["facilities_per_10k"] = (
            row["facilities"] / cells.population * 1e4 if cells.population else math.nan
        )
        row.update(_district_figures(cells, facilities, radius, margin_m))
        row["cell_m"] = cells.cell_m
        rows.append(row)
    table = pd.DataFrame(rows)
    table["population"] = table["population"].astype("Int64")
    return CoverageResult(
        table=table,
        radius_m=radius,
        area_basis=grid.area_basis,
        population_basis=grid.population_basis,
        facility_count=int(lon_arr.size),
        computed_at=dt.datetime.now(dt.UTC),
    )


class RegionGrids:
    """Sample grids for adcodes of any level: the base grid when it holds every county asked
    for, else a grid of those counties built on first use (the last few kept).

    Parameters
    ----------
    grid
        The base grid (e.g. the service's districts).
    places
        Boundaries that resolve any adcode (:func:`geodata.boundaries.load_places`), or a
        function loading them on first use (the national ones take a few hundred MB).
    keep
        Number of built grids kept.
    """

    def __init__(
        self,
        grid: SampleGrid,
        places: gpd.GeoDataFrame | Callable[[], gpd.GeoDataFrame],
        *,
        keep: int = 8,
    ) -> None:
        self.grid = grid
        self._places = places
        self._keep = keep
        self._built: dict[tuple[str, ...], SampleGrid] = {}
        self._lock = threading.Lock()

    @property
    def places(self) -> gpd.GeoDataFrame:
        """The boundaries that resolve any adcode (loaded on first use)."""
        with self._lock:
            if not isinstance(self._places, gpd.GeoDataFrame):
                self._places = self._places()
            return self._places

    def region(self, code: str) -> Region:
        """The region of an adcode of any level (:func:`geodata.boundaries.resolve_region`),
        looked up in the base grid's districts first."""
        try:
            return resolve_region(self.grid.districts, code)
        except UnknownDistrict:
            return resolve_region(self.places, code)

    def grid_for(self, counties: Sequence[str], *, exact: bool = False) -> SampleGrid:
        """A grid holding every one of ``counties`` (adcodes); with ``exact``, those only."""
        known = set(self.grid.districts["adcode"].astype(str))
        if set(counties) == known or (not exact and set(counties) <= known):
            return self.grid
        return self._build(tuple(sorted(counties)), merged=False)

    def merged_grid(self, region: Region) -> SampleGrid:
        """A grid with ``region`` as one district (its counties' union, population summed):
        for questions asked of a whole city or province, such as new sites."""
        if region.level == "county":
            return self.grid_for(region.counties)
        return self._build((region.adcode,), merged=True, region=region)

    def _build(
        self, key: tuple[str, ...], *, merged: bool, region: Region | None = None
    ) -> SampleGrid:
        if key not in self._built:
            wanted = region.counties if region is not None else key
            counties = self.places[self.places["adcode"].isin(wanted)].reset_index(drop=True)
            if merged and region is not None:
                population = counties["population"]
                counties = gpd.GeoDataFrame(
                    {
                        "adcode": [region.adcode],
                        "name": [region.name],
                        "population": pd.array(
                            [int(population.sum()) if population.notna().any() else None],
                            dtype="Int64",
                        ),
                    },
                    geometry=[shapely.union_all(np.asarray(counties.geometry.values))],
                    crs=counties.crs,
                )
            while len(self._built) >= self._keep:
                self._built.pop(next(iter(self._built)))
            self._built[key] = build_sample_grid(counties)
        return self._built[key]


def region_coverage(
    grids: RegionGrids,
    codes: Sequence[str],
    lon: ArrayLike,
    lat: ArrayLike,
    *,
    radius_m: float = 1000.0,
    kind: Sequence[str] | NDArray[Any] | None = None,
) -> CoverageResult:
    """Coverage of provinces, cities and counties: their counties' table plus one aggregate
    row per province or city (:attr:`CoverageResult.regions`, see :func:`aggregate_coverage`).

    Parameters
    ----------
    grids
        Grids of any region.
    codes
        Adcodes of any level (``41``, ``4101``, ``410102``).
    lon, lat, radius_m, kind
        As :func:`coverage_table`.

    Raises
    ------
    UnknownDistrict
        For an adcode with no county (:class:`geodata.errors.NationalBoundariesMissing` when
        the national boundaries would have it).
    InvalidInput
        For a malformed adcode, bad coordinates, radius or kinds.
    """
    regions = [grids.region(c) for c in codes]
    counties = tuple(dict.fromkeys(c for r in regions for c in r.counties))
    result = coverage_table(
        grids.grid_for(counties), lon, lat, radius_m=radius_m, kind=kind, adcodes=counties
    )
    aggregates = [aggregate_coverage(result.table, r) for r in regions if r.level != "county"]
    return dataclasses.replace(result, regions=tuple(aggregates))


def aggregate_coverage(
    table: pd.DataFrame, region: Region, *, people: ArrayLike | None = None
) -> dict[str, Any]:
    """One row for a province or city from its counties' rows of a coverage table.

    The counties are added up by :func:`finder.coverage.aggregate.sum_counties` (as the national
    table adds them up): counts and populations are sums; area shares are weighted by county
    area, population shares by ``people`` (per row of ``table``; default the census
    population); the largest gap is the largest of the counties' (with its place);
    ``facilities_per_10k`` is recomputed from the sums.
    """
    mine = table["adcode"].isin(region.counties).to_numpy()
    weight = None if people is None else np.asarray(people, dtype=float)[mine]
    rows = county_sums(table[mine], people=weight).assign(region=region.adcode)
    [summed] = sum_counties(rows, "region").to_dict(orient="records")
    out: dict[str, Any] = {
        "adcode": region.adcode,
        "name": region.name,
        "level": region.level,
        "counties": int(summed["counties"]),
        "population": None if pd.isna(summed["population"]) else int(summed["population"]),
        "area_km2": float(summed["area_km2"]),
        "facilities": int(summed["facilities"]),
    }
    for k in KINDS:
        count = summed[f"n_{k}"]
        out[f"n_{k}"] = None if pd.isna(count) else int(count)
    for column in (
        "facilities_per_10k",
        "covered_share",
        "covered_twice_share",
        "largest_gap_m",
        "gap_lon",
        "gap_lat",
        "pop_covered_share",
        "pop_covered_twice_share",
    ):
        out[column] = float(summed[column])
    return out


def _district_figures(
    cells: DistrictCells, facilities: FacilityPoints, radius_m: float, margin_m: float
) -> dict[str, float]:
    nan = math.nan
    figures = {
        "covered_share": nan,
        "covered_twice_share": nan,
        "largest_gap_m": nan,
        "gap_lon": nan,
        "gap_lat": nan,
        "pop_covered_share": nan,
        "pop_covered_twice_share": nan,
    }
    if cells.n_cells == 0:
        return figures
    if facilities.size == 0:
        figures.update(covered_share=0.0, covered_twice_share=0.0)
        if cells.pop_weight.sum() > 0:
            figures.update(pop_covered_share=0.0, pop_covered_twice_share=0.0)
        return figures
    nearby = NearbyFacilities(cells, facilities, margin_m)
    local = nearby.local_xy
    disk_cells = math.pi * radius_m**2 / cells.cell_m**2
    if local.shape[0] * disk_cells < cells.n_cells:
        # sparse: count the cells inside each facility's circle instead of searching per cell
        count = cells.count_within(local[:, 0], local[:, 1], radius_m)
        once, twice = count >= 1, count >= 2
        d1 = np.full(cells.n_cells, np.inf)
    else:
        nearest = nearby.nearest_two(cells.x_m, cells.y_m, within_m=radius_m, open_search=False)
        once, twice = nearest[:, 0] <= radius_m, nearest[:, 1] <= radius_m
        d1 = nearest[:, 0]
    figures["covered_share"] = float(np.mean(once))
    figures["covered_twice_share"] = float(np.mean(twice))
    gap_m, gx, gy = _largest_gap(cells, nearby, d1)
    gap_lon, gap_lat = cells.to_lonlat.transform(gx, gy)
    figures.update(largest_gap_m=gap_m, gap_lon=float(gap_lon), gap_lat=float(gap_lat))
    total = float(cells.pop_weight.sum())
    if total > 0:
        pop_nearest = nearby.nearest_two(
            cells.pop_x_m, cells.pop_y_m, within_m=radius_m, open_search=False
        )
        w = cells.pop_weight
        figures["pop_covered_share"] = float(w[pop_nearest[:, 0] <= radius_m].sum() / total)
        figures["pop_covered_twice_share"] = float(w[pop_nearest[:, 1] <= radius_m].sum() / total)
    return figures


def rounded_table(table: pd.DataFrame) -> pd.DataFrame:
    """A coverage table rounded for people: shares (fractions) to 0.1 percentage point,
    metres to whole metres, km2 and per-10,000 figures to 0.01, degrees to 1e-6 (~0.1 m)."""
    out = table.copy()
    for column in out.columns:
        name = str(column)
        if not pd.api.types.is_float_dtype(out[column]):
            continue
        if "share" in name:
            out[column] = out[column].round(3)
        elif name.endswith("_m"):
            out[column] = out[column].round(0).astype("Int64")
        elif name.endswith(("_km2", "_per_10k")):
            out[column] = out[column].round(2)
        elif name.endswith(("_lon", "_lat")):
            out[column] = out[column].round(6)
    return out
