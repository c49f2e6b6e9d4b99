"""Benchmark: the atlas of every district and a single-district sheet, in one run.

Run ``python bench/printmap.py`` (or ``--facilities N``). Shanghai's 16 districts, radius
1,000 m, 100,000 facilities (random, uniform over the city's bounding box, three kinds), the
OpenStreetMap extract of ``tests/data/shanghai_jingan.osm`` as context (the only extract in the
repository; a city-wide extract adds reading and drawing time). Prints wall seconds of: the
sample grid, reading the extract, the atlas (17 pages, A4 landscape) and one A3 sheet of
静安区, beside the target of issue 14 (atlas under 30 s).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from finder.coverage import build_sample_grid
from geodata.boundaries import load_districts
from geodata.osmcontext import context_from_osm
from maps.atlas import print_atlas
from maps.printmap import print_coverage_map

EXTRACT = Path(__file__).resolve().parents[1] / "tests" / "data" / "shanghai_jingan.osm"
TARGET_S = 30.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--facilities", type=int, default=100_000)
    args = parser.parse_args()
    rng = np.random.default_rng(14)
    lon = rng.uniform(121.0, 121.95, args.facilities)
    lat = rng.uniform(30.7, 31.85, args.facilities)
    kind = rng.choice(["mother_room", "worker_station", "rest_stop"], args.facilities)
    start = time.perf_counter()
    grid = build_sample_grid(load_districts())
    grid_s = time.perf_counter() - start
    start = time.perf_counter()
    context = context_from_osm(EXTRACT)
    context_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        atlas = print_atlas(Path(folder) / "atlas.pdf", grid, lon, lat, kind, context=context)
        atlas_s = time.perf_counter() - start
        size_mb = atlas.path.stat().st_size / 1e6
        start = time.perf_counter()
        print_coverage_map(
            Path(folder) / "jingan.pdf",
            grid,
            lon,
            lat,
            kind,
            adcode="310106",
            paper="A3",
            context=context,
        )
        sheet_s = time.perf_counter() - start
    print(f"facilities {args.facilities:,}; grid {grid_s:.1f} s; extract {context_s:.2f} s")
    print(
        f"atlas: {atlas.pages} pages, {size_mb:.1f} MB, {atlas_s:.1f} s "
        f"(target < {TARGET_S:.0f} s: {'met' if atlas_s < TARGET_S else 'NOT met'})"
    )
    print(f"single sheet (静安区, A3): {sheet_s:.1f} s")


if __name__ == "__main__":
    main()
