"""Benchmark: nearest-facility queries on 1,000,000 facilities across China, 100,000 queries.

Measures, in one run on the same facilities and query points:

* our index: build time (from string columns, and the rebuild after one update), memory per
  facility, batch k=1 and k=5 throughput, single-query p50/p99 without filters and with two
  filters (kind + amenity), each answer exact on the WGS-84 ellipsoid;
* beside it: pykdtree's KD-tree on unit-sphere xyz (k=1, timed from the lon/lat arrays to the
  picks like ours; ours and it alternate, best of three rounds each), shapely
  ``STRtree.query_nearest`` on lon/lat (planar), scikit-learn ``BallTree`` with the haversine
  metric, and PostGIS geography KNN (``ORDER BY geog <-> point LIMIT k``) when a server is given
  with ``--postgis-dsn`` or the ``FINDER_BENCH_DSN`` environment variable (skipped with a
  message otherwise);
* how often each reference returns a facility that is not the nearest on the ellipsoid, and a
  check of our answers against a brute-force geodesic search over all facilities.

The facilities are synthetic: 70 % around 60 city centres, 30 % spread over the country, with
random kinds, access classes, amenities, stars, statuses and opening hours (seeded).

    python bench/nearest.py                      # 1,000,000 facilities, 100,000 queries
    python bench/nearest.py --quick              # 100,000 facilities, 10,000 queries
    python bench/nearest.py --postgis-dsn postgresql://user@127.0.0.1:5432/db
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import shapely

from finder.index import FacilityIndex
from geodata.geodesy import GEOD
from geodata.schema import AMENITIES, KINDS, Viewer

CHINA = (73.0, 18.0, 135.0, 53.0)
EVERYONE = Viewer(see_all=True)
HOURS = ("24/7", "Mo-Fr 08:30-17:30; PH off", "Mo-Su 07:00-22:00", "Mo-Sa 09:00-18:00", None)


def synthetic_points(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """WGS-84 lon/lat: 70 % around 60 fixed city centres, 30 % uniform over the China box."""
    centres = np.random.default_rng(20261126)
    c_lon = centres.uniform(CHINA[0] + 12, CHINA[2] - 3, 60)
    c_lat = centres.uniform(CHINA[1] + 4, CHINA[3] - 8, 60)
    city = rng.integers(0, 60, n)
    urban = rng.random(n) < 0.7
    lon = np.where(urban, c_lon[city] + rng.normal(0, 0.2, n), rng.uniform(CHINA[0], CHINA[2], n))
    lat = np.where(urban, c_lat[city] + rng.normal(0, 0.2, n), rng.uniform(CHINA[1], CHINA[3], n))
    return np.clip(lon, CHINA[0], CHINA[2]), np.clip(lat, CHINA[1], CHINA[3])


def synthetic_facilities(n: int, seed: int) -> dict[str, Any]:
    """Columns for :meth:`FacilityIndex.from_arrays` (strings, as a store would hand them)."""
    rng = np.random.default_rng(seed)
    lon, lat = synthetic_points(n, rng)
    access = np.array(["public", "members", "employees"], dtype=object)[
        rng.choice(3, n, p=[0.8, 0.15, 0.05])
    ]
    orgs = np.array([f"org-{i}" for i in range(500)], dtype=object)
    amenity_sets = [
        ";".join(a for a, keep in zip(AMENITIES, row, strict=True) if keep)
        for row in rng.random((256, len(AMENITIES))) < 0.4
    ]
    return {
        "ids": np.array([f"F{i:08d}" for i in range(n)], dtype=object),
        "lon": lon,
        "lat": lat,
        "kinds": np.array(KINDS, dtype=object)[rng.integers(0, len(KINDS), n)],
        "access": access,
        "organization": np.where(access == "employees", orgs[rng.integers(0, 500, n)], None),
        "amenities": np.array(amenity_sets, dtype=object)[rng.integers(0, 256, n)],
        "star_rating": np.where(rng.random(n) < 0.7, rng.integers(1, 6, n), np.nan),
        "status": np.array(["open", "temporarily_closed", "closed"], dtype=object)[
            rng.choice(3, n, p=[0.95, 0.03, 0.02])
        ],
        "opening_hours": np.array(HOURS, dtype=object)[rng.integers(0, len(HOURS), n)],
    }


def unit_sphere(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """xyz on the unit sphere of lon/lat degrees, shape ``(n, 3)``."""
    lon_r, lat_r = np.radians(lon), np.radians(lat)
    cos_lat = np.cos(lat_r)
    return np.column_stack([cos_lat * np.cos(lon_r), cos_lat * np.sin(lon_r), np.sin(lat_r)])


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def geodesic_to(
    q_lon: np.ndarray, q_lat: np.ndarray, lon: np.ndarray, lat: np.ndarray, picks: np.ndarray
) -> np.ndarray:
    _a, _b, dist = GEOD.inv(q_lon, q_lat, lon[picks], lat[picks])
    return np.asarray(dist)


def wrong_share(reference_m: np.ndarray, ours_m: np.ndarray) -> float:
    """Share of queries whose reference answer is farther than ours (a tie is not wrong)."""
    return float(np.mean(reference_m > ours_m + 1e-6))


def brute_force_check(
    index: FacilityIndex,
    data: dict[str, Any],
    q_lon: np.ndarray,
    q_lat: np.ndarray,
    ours: np.ndarray,
    count: int,
) -> int:
    """Queries (of ``count``) whose k=1 answer differs from a geodesic search over everything."""
    n = data["lon"].size
    mismatches = 0
    for i in range(count):
        _a, _b, dist = GEOD.inv(
            np.full(n, q_lon[i]), np.full(n, q_lat[i]), data["lon"], data["lat"]
        )
        best = float(dist.min())
        if best != ours[i]:
            mismatches += 1
    return mismatches


def postgis_rate(
    dsn: str, data: dict[str, Any], q_lon: np.ndarray, q_lat: np.ndarray, count: int
) -> tuple[float, np.ndarray]:
    """PostGIS geography KNN queries per second, and the facility picked for each query."""
    import psycopg  # only needed for this optional reference

    with psycopg.connect(dsn, autocommit=True) as con:
        con.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        con.execute("DROP TABLE IF EXISTS bench_facility")
        con.execute("CREATE TABLE bench_facility (pos integer, geog geography(Point, 4326))")
        buffer = io.StringIO()
        for i, (x, y) in enumerate(zip(data["lon"].tolist(), data["lat"].tolist(), strict=True)):
            buffer.write(f"{i}\tSRID=4326;POINT({x!r} {y!r})\n")
        with con.cursor().copy("COPY bench_facility (pos, geog) FROM STDIN") as copy:
            copy.write(buffer.getvalue())
        con.execute("CREATE INDEX ON bench_facility USING gist (geog)")
        con.execute("ANALYZE bench_facility")
        sql = (
            "SELECT pos FROM bench_facility ORDER BY geog <-> "
            "ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography LIMIT 1"
        )
        picks = np.empty(count, dtype=np.int64)
        with con.cursor() as cur:
            cur.execute(sql, (float(q_lon[0]), float(q_lat[0])))
            start = time.perf_counter()
            for i in range(count):
                cur.execute(sql, (float(q_lon[i]), float(q_lat[i])))
                row = cur.fetchone()
                picks[i] = -1 if row is None else row[0]
            elapsed = time.perf_counter() - start
        con.execute("DROP TABLE bench_facility")
    return count / elapsed, picks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 facilities, 10,000 queries")
    parser.add_argument("--facilities", type=int)
    parser.add_argument("--queries", type=int)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgis-dsn", default=os.environ.get("FINDER_BENCH_DSN"))
    args = parser.parse_args()
    n = args.facilities or (100_000 if args.quick else 1_000_000)
    m = args.queries or (10_000 if args.quick else 100_000)
    singles = min(m, 20_000)
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"{n:,} facilities, {m:,} queries"
    )

    data = synthetic_facilities(n, args.seed)
    q_lon, q_lat = synthetic_points(m, np.random.default_rng(args.seed + 1))
    columns = {k: v for k, v in data.items() if k not in ("ids", "lon", "lat")}
    build_s, index = timed(
        lambda: FacilityIndex.from_arrays(data["ids"], data["lon"], data["lat"], **columns)
    )
    moved = index.record(0) | {"lon": 100.0, "lat": 30.0}
    rebuild_s, _updated = timed(lambda: index.with_changes(pd.DataFrame([moved])))
    memory = index.memory_bytes()
    beyond = (memory["kd_tree"] + memory["filters"] + memory["uids"]) / n

    from pykdtree.kdtree import KDTree  # reference only

    no_filter = {"viewer": EVERYONE, "statuses": None}
    pyk_build, pyk_tree = timed(lambda: KDTree(unit_sphere(data["lon"], data["lat"])))
    t1 = pyk_s = np.inf
    for _round in range(3):
        t, batch1 = timed(lambda: index.nearest_batch(q_lon, q_lat, k=1, **no_filter))
        t1 = min(t1, t)
        t, (_d, pyk_pick) = timed(lambda: pyk_tree.query(unit_sphere(q_lon, q_lat), k=1))
        pyk_s = min(pyk_s, t)
    t5, _batch5 = timed(lambda: index.nearest_batch(q_lon, q_lat, k=5, **no_filter))
    ours_m = batch1.distance_m[:, 0]

    def latencies(**kw: Any) -> tuple[np.ndarray, np.ndarray]:
        """Microseconds of each single query, and the distance (m) of its answer (NaN: none)."""
        out = np.empty(singles)
        found = np.full(singles, np.nan)
        for i in range(singles):
            start = time.perf_counter()
            answer = index.nearest(float(q_lon[i]), float(q_lat[i]), **kw)
            out[i] = time.perf_counter() - start
            if answer:
                found[i] = answer[0].distance_m
        return out * 1e6, found

    index.nearest(float(q_lon[0]), float(q_lat[0]), kinds=["mother_room"], amenities=["fridge"])
    plain_us, plain_m = latencies(**no_filter)
    two_us, _two_m = latencies(kinds=["mother_room"], amenities=["fridge"], **no_filter)
    default_us, _default_m = latencies(kinds=["mother_room"], amenities=["fridge"])
    # The single path (first ball, chords, geodesics) against the batch path, query by query.
    single_differ = int(np.count_nonzero(plain_m != ours_m[:singles]))

    st_build, strtree = timed(lambda: shapely.STRtree(shapely.points(data["lon"], data["lat"])))
    st_s, st_pick = timed(
        lambda: strtree.query_nearest(shapely.points(q_lon, q_lat), all_matches=False)[1]
    )
    st_wrong = wrong_share(geodesic_to(q_lon, q_lat, data["lon"], data["lat"], st_pick), ours_m)

    from sklearn.neighbors import BallTree  # reference only

    bt_build, ball = timed(
        lambda: BallTree(
            np.radians(np.column_stack([data["lat"], data["lon"]])), metric="haversine"
        )
    )
    bt_s, (_d, bt_pick) = timed(
        lambda: ball.query(np.radians(np.column_stack([q_lat, q_lon])), k=1)
    )
    bt_wrong = wrong_share(
        geodesic_to(q_lon, q_lat, data["lon"], data["lat"], bt_pick[:, 0]), ours_m
    )
    sphere_wrong = wrong_share(
        geodesic_to(q_lon, q_lat, data["lon"], data["lat"], pyk_pick.astype(np.int64)), ours_m
    )
    checked = 20 if not args.quick else 50
    mismatches = brute_force_check(index, data, q_lon, q_lat, ours_m, checked)

    def row(label: str, value: str, reference: str = "", ratio: str = "") -> None:
        print(f"{label:<46}{value:>16}{reference:>26}{ratio:>10}")

    print()
    row("measure", "ours", "reference", "ratio")
    row(
        "build from string columns (s)",
        f"{build_s:.3f}",
        f"STRtree {st_build:.3f}",
        f"{build_s / st_build:.2f}x",
    )
    row("", "", f"pykdtree {pyk_build:.3f}", f"{build_s / pyk_build:.2f}x")
    row(
        "rebuild after moving one facility (s)",
        f"{rebuild_s:.3f}",
        f"STRtree {st_build:.3f}",
        f"{rebuild_s / st_build:.2f}x",
    )
    row("", "", f"BallTree {bt_build:.3f}", f"{rebuild_s / bt_build:.2f}x")
    row("index memory beyond coordinates (B/facility)", f"{beyond:.1f}", "target 64")
    row(
        "batch k=1 vs pykdtree unit sphere (queries/s)",
        f"{m / t1:,.0f}",
        f"pykdtree {m / pyk_s:,.0f}",
        f"{pyk_s / t1:.2f}x",
    )
    row("", "", "target >= 0.90x")
    row("batch k=1 (queries/s)", f"{m / t1:,.0f}", f"STRtree {m / st_s:,.0f}", f"{st_s / t1:.1f}x")
    row(
        "batch k=1 vs BallTree haversine (queries/s)",
        f"{m / t1:,.0f}",
        f"BallTree {m / bt_s:,.0f}",
        f"{bt_s / t1:.1f}x",
    )
    row("batch k=5 (queries/s)", f"{m / t5:,.0f}")
    row(
        "single, no filter p50 / p99 (us)",
        f"{np.median(plain_us):.0f} / {np.percentile(plain_us, 99):.0f}",
    )
    row(
        "single, kind + amenity p50 / p99 (us)",
        f"{np.median(two_us):.0f} / {np.percentile(two_us, 99):.0f}",
        "target p50 <= 20",
    )
    row("single, + default access/status p50 (us)", f"{np.median(default_us):.0f}")
    row("wrong nearest facility (% of queries)", "0.000", f"STRtree {100 * st_wrong:.3f}")
    row("", "", f"BallTree {100 * bt_wrong:.3f}")
    row("", "", f"pykdtree unit sphere {100 * sphere_wrong:.3f}")
    row(f"brute-force check, {checked} queries", f"{mismatches} differ")
    row(f"single = batch (no filter), {singles:,} queries", f"{single_differ} differ")
    if args.postgis_dsn:
        count = min(m, 2_000 if args.quick else 5_000)
        rate, pg_pick = postgis_rate(args.postgis_dsn, data, q_lon, q_lat, count)
        pg_wrong = wrong_share(
            geodesic_to(q_lon[:count], q_lat[:count], data["lon"], data["lat"], pg_pick),
            ours_m[:count],
        )
        row(
            "PostGIS geography KNN (queries/s)",
            f"{m / t1:,.0f}",
            f"PostGIS {rate:,.0f}",
            f"{m / t1 / rate:.0f}x",
        )
        row("", "", f"PostGIS wrong {100 * pg_wrong:.3f}%")
    else:
        print("\nPostGIS skipped: give --postgis-dsn or set FINDER_BENCH_DSN to compare.")


if __name__ == "__main__":
    main()
