"""Benchmark: per-district coverage table and siting, beside the naive geopandas way.

Run ``python bench/coverage.py`` (full) or ``python bench/coverage.py --quick``.

Shanghai, 16 districts, radius 1,000 m, 1,500 (the bundled sample when present), 10,000 and
100,000 facilities (random, uniform over the district polygons):

* ours: :func:`finder.coverage.coverage_table` (coverage, covered twice, largest gap, counts) on a
  :func:`finder.coverage.build_sample_grid` grid (built once per boundary set, timed apart);
* naive, in UTM 51N (EPSG:32651): buffer + union + intersect per district (coverage); pairwise
  lens intersections + union (exact "covered twice"); Voronoi cells clipped to each district,
  farthest vertex from the cell's facility (exact largest gap).

Times are CPU seconds of the process (``time.process_time``), so that a busy shared machine
does not distort the ratio. Both figures are printed with their ratio, and the differences of
the results (percentage points, metres). Siting: 20 new sites in 浦东新区 and 静安区 with
:func:`finder.siting.suggest_sites`, each also weighted by observed use (half the facilities
with synthetic door counts; its time beside the unweighted one); with ``--spopt`` also 5 sites
in 徐汇 by spopt's MCLP on the same demand cells and candidates. The national table over every
real county is ``bench/national.py``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from finder.coverage import build_sample_grid, counted_facilities, coverage_table
from finder.index import FacilityFilter, FacilityIndex
from finder.siting import suggest_sites
from finder.usage import UsageReport
from geodata.boundaries import load_districts
from geodata.schema import Viewer

T = TypeVar("T")
UTM51N = "EPSG:32651"
SAMPLE = Path(__file__).resolve().parents[1] / "geodata" / "data" / "sample_shanghai.gpkg"


def sample_points() -> tuple[np.ndarray, np.ndarray]:
    """WGS-84 lon/lat of the sample's facilities that coverage counts (open, every access class)."""
    index = FacilityIndex.from_geodataframe(gpd.read_file(SAMPLE, layer="facilities"))
    counted = counted_facilities(index, FacilityFilter(viewer=Viewer(see_all=True)))
    return counted.lon, counted.lat


def timed(func: Callable[[], T]) -> tuple[T, float]:
    """Result and CPU seconds of this process (robust on a shared machine; our k-d tree queries
    may use two threads, so this counts their work twice rather than hiding it)."""
    start = time.process_time()
    result = func()
    return result, time.process_time() - start


def random_points_in(
    polygons: gpd.GeoDataFrame, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Uniform random lon/lat points inside the union of ``polygons`` (rejection sampling)."""
    union = shapely.union_all(np.asarray(polygons.geometry.values))
    shapely.prepare(union)
    west, south, east, north = union.bounds
    lon: list[np.ndarray] = []
    lat: list[np.ndarray] = []
    have = 0
    while have < n:
        x = rng.uniform(west, east, 2 * n)
        y = rng.uniform(south, north, 2 * n)
        inside = shapely.contains_xy(union, x, y)
        lon.append(x[inside])
        lat.append(y[inside])
        have += int(inside.sum())
    return np.concatenate(lon)[:n], np.concatenate(lat)[:n]


def naive_coverage(
    districts: gpd.GeoDataFrame, lon: np.ndarray, lat: np.ndarray, radius_m: float, crs: str
) -> np.ndarray:
    """Covered share per district: buffer, union, intersect (projected CRS ``crs``)."""
    zones = districts.to_crs(crs)
    points = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs="EPSG:4326").to_crs(crs)
    union = shapely.union_all(points.buffer(radius_m, quad_segs=16).values)
    return np.array([zone.intersection(union).area / zone.area for zone in zones.geometry])


def naive_twice(
    districts: gpd.GeoDataFrame, lon: np.ndarray, lat: np.ndarray, radius_m: float
) -> np.ndarray:
    """Share covered at least twice: union of pairwise lens intersections."""
    zones = districts.to_crs(UTM51N)
    points = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs="EPSG:4326").to_crs(UTM51N)
    circles = points.buffer(radius_m, quad_segs=16)
    left, right = circles.sindex.query(circles.values, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    parts = []
    for start in range(0, left.size, 100_000):  # in chunks, to bound the memory
        stop = start + 100_000
        lenses = shapely.intersection(
            circles.values[left[start:stop]], circles.values[right[start:stop]]
        )
        parts.append(shapely.union_all(lenses))
    union = shapely.union_all(parts)
    return np.array([zone.intersection(union).area / zone.area for zone in zones.geometry])


def naive_gap(districts: gpd.GeoDataFrame, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Exact largest gap per district: Voronoi cells clipped to the district, farthest vertex."""
    zones = districts.to_crs(UTM51N)
    points = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs="EPSG:4326").to_crs(UTM51N)
    sites = shapely.MultiPoint(np.column_stack([points.x, points.y]))
    extent = shapely.box(*zones.total_bounds).buffer(50_000)
    cells = np.asarray(
        shapely.get_parts(shapely.voronoi_polygons(sites, extend_to=extent, ordered=True))
    )
    tree = shapely.STRtree(cells)
    xy = np.column_stack([points.x, points.y])
    gaps = []
    for zone in zones.geometry:
        best = 0.0
        for i in tree.query(zone, predicate="intersects"):
            piece = cells[i].intersection(zone)
            vertices = shapely.get_coordinates(piece)
            if len(vertices):
                best = max(best, float(np.hypot(*(vertices - xy[i]).T).max()))
        gaps.append(best)
    return np.array(gaps)


def shanghai(sizes: list[int], rng: np.random.Generator, naive_twice_max: int) -> None:
    districts = load_districts()
    grid, build_s = timed(lambda: build_sample_grid(districts))
    print(f"sample grid: {grid.n_cells:,} cells for 16 districts, built in {build_s:.2f} s (once)")
    print(
        f"{'facilities':>10} | {'ours table':>10} | {'naive cover':>11} {'twice':>7} "
        f"{'gap':>7} {'total':>7} | {'ratio':>6} | {'max |d| cover':>13} {'twice':>6} "
        f"{'gap m':>6}"
    )
    for n in sizes:
        if n == 1500 and SAMPLE.exists():
            lon, lat = sample_points()
            label = f"{lon.size:,}*"
        else:
            lon, lat = random_points_in(districts, n, rng)
            label = f"{n:,}"
        result, ours_s = timed(partial(coverage_table, grid, lon, lat))
        cover, cover_s = timed(partial(naive_coverage, districts, lon, lat, 1000.0, UTM51N))
        table = result.table
        gap, gap_s = timed(partial(naive_gap, districts, lon, lat))
        d_cover = np.abs(table["covered_share"].to_numpy() - cover).max() * 100
        d_gap = np.abs(table["largest_gap_m"].to_numpy() - gap).max()
        if lon.size <= naive_twice_max:
            twice, twice_s = timed(partial(naive_twice, districts, lon, lat, 1000.0))
            d_twice = np.abs(table["covered_twice_share"].to_numpy() - twice).max() * 100
            twice_text, d_twice_text = f"{twice_s:6.2f}s", f"{d_twice:4.2f}pp"
        else:
            twice_s, twice_text, d_twice_text = 0.0, "  skip ", "   -  "
        naive_s = cover_s + twice_s + gap_s
        print(
            f"{label:>10} | {ours_s:9.2f}s | {cover_s:10.2f}s {twice_text} {gap_s:6.2f}s "
            f"{naive_s:6.2f}s | {naive_s / ours_s:5.1f}x | {d_cover:11.2f}pp {d_twice_text} "
            f"{d_gap:6.1f}"
        )
    print("  * the bundled sample (open and temporarily closed facilities)")
    if max(sizes) > naive_twice_max:
        print(
            f"  naive 'covered twice' skipped above {naive_twice_max:,} facilities (minutes and "
            "several GB at 100,000; the issue quotes 30 s there); ratio then without it"
        )
    print("  naive: EPSG:32651 buffers of 64 segments (area 0.16 % short of the circle)")


def siting(rng: np.random.Generator, with_spopt: bool) -> None:
    districts = load_districts()
    grid = build_sample_grid(districts)
    if SAMPLE.exists():
        lon, lat = sample_points()
    else:
        lon, lat = random_points_in(districts, 1500, rng)
    use = synthetic_use(lon, lat, rng)
    for adcode in ("310115", "310106"):
        result, seconds = timed(partial(suggest_sites, grid, adcode, lon, lat, n_sites=20))
        print(
            f"siting 20 sites in {result.name}: {seconds:.2f} s, {result.n_candidates:,} "
            f"candidates, covered {result.before_share:.1%} -> {result.after_share:.1%}"
        )
        weighted, use_s = timed(partial(suggest_sites, grid, adcode, lon, lat, n_sites=20, use=use))
        print(
            f"  weighted by use ({len(use.facilities):,} facilities, half with door counts): "
            f"{use_s:.2f} s = {use_s / seconds:.2f} x unweighted, covered "
            f"{weighted.after_share:.1%}"
        )
    if with_spopt:
        spopt_compare(grid, lon, lat)


def synthetic_use(lon: np.ndarray, lat: np.ndarray, rng: np.random.Generator) -> UsageReport:
    """Door counts of every other facility (0-100 visits a day over 28 days), the rest without
    a device: what :func:`finder.siting.observed_use_near` hands to the siting."""
    measured = np.arange(lon.size) % 2 == 0
    per_day = np.where(measured, rng.uniform(0, 100, lon.size), np.nan)
    frame = pd.DataFrame(
        {
            "id": [f"f{i}" for i in range(lon.size)],
            "lon": lon,
            "lat": lat,
            "measured_days": np.where(measured, 28, 0),
            "visits_per_day": per_day,
        }
    )
    hours = pd.Series(0, index=range(24), dtype="int64")
    return UsageReport(dt.date(2026, 11, 8), dt.date(2026, 12, 5), frame, hours)


def spopt_compare(grid: Any, lon: np.ndarray, lat: np.ndarray) -> None:
    """spopt MCLP (PuLP/CBC) on a suggest_sites instance (same demand cells and candidates)."""
    import pulp
    from scipy.spatial import cKDTree
    from spopt.locate import MCLP

    from finder.coverage import FacilityPoints, NearbyFacilities, grid_points_in

    adcode, n_sites = "310104", 5  # 徐汇: 20 sites would cover all of a small district
    cells = grid.district(adcode)
    ours, ours_s = timed(partial(suggest_sites, grid, adcode, lon, lat, n_sites=n_sites))
    nearby = NearbyFacilities(cells, FacilityPoints.from_lonlat(lon, lat), 1010.0)
    nearest = nearby.nearest_two(cells.x_m, cells.y_m, within_m=1000.0, open_search=False)
    covered = nearest[:, 0] <= 1000.0
    spacing = ours.candidate_spacing_m or 250.0
    cx, cy = grid_points_in(cells.polygon_local, spacing)
    demand = np.column_stack([cells.x_m[~covered], cells.y_m[~covered]])

    def build_and_solve() -> float:
        tree = cKDTree(np.column_stack([cx, cy]))
        cost = tree.sparse_distance_matrix(
            cKDTree(demand), 1000.0, output_type="coo_matrix"
        ).toarray()
        cost = np.where(cost.T > 0, cost.T, np.inf)
        model = MCLP.from_cost_matrix(cost, np.ones(len(demand)), 1000.0, p_facilities=n_sites)
        model = model.solve(pulp.PULP_CBC_CMD(msg=False, timeLimit=300))
        if model.problem.sol_status != pulp.LpSolutionOptimal:
            print(
                "  spopt: CBC stopped without proof of optimality (PuLP status still says "
                f"{pulp.LpStatus[model.problem.status]!r})"
            )
        chosen = [i for i, v in enumerate(model.fac_vars) if v.value() > 0.5]
        reached = (cost[:, chosen] <= 1000.0).any(axis=1)
        return float(reached.sum())

    spopt_covered, spopt_s = timed(build_and_solve)
    total = cells.n_cells
    spopt_after = (covered.sum() + spopt_covered) / total
    print(
        f"spopt MCLP, {n_sites} sites in {ours.name} (same demand and candidates): "
        f"{spopt_s:.1f} s (ours {ours_s:.2f} s, "
        f"{spopt_s / ours_s:.0f}x); after {spopt_after:.2%} vs ours {ours.after_share:.2%} "
        f"({(ours.after_share - ours.before_share) / (spopt_after - ours.before_share):.1%} "
        "of the optimal gain)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run (CI)")
    parser.add_argument("--spopt", action="store_true", help="also solve with spopt MCLP")
    parser.add_argument("--naive-twice-max", type=int, default=10_000)
    args = parser.parse_args()
    rng = np.random.default_rng(20261126)
    shanghai([1500, 10_000] if args.quick else [1500, 10_000, 100_000], rng, args.naive_twice_max)
    siting(rng, args.spopt)


if __name__ == "__main__":
    main()
