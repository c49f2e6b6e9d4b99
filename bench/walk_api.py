"""Benchmark ``GET /nearest?metric=walk`` of the service beside ``/nearest`` (straight line).

One command::

    python bench/walk_api.py            # 10,000 facilities, 15 s per run
    python bench/walk_api.py --quick    # 2,000 facilities, 4 s per run

Builds a GeoPackage store of synthetic facilities (:func:`geodata.sample.sample_frame`; a fifth
of them moved into the central Shanghai OpenStreetMap extract of ``tests/data``) and the walking
network of that extract beside it, starts one uvicorn worker of ``api.app:create_app`` on
127.0.0.1 and drives it with ``wrk`` (1 thread, 16 connections), every request from a random
point of the extract: ``/nearest`` (the reference, straight line) and ``/nearest?metric=walk``
for ``k`` = 1 and 5, alternating ``--rounds`` times and keeping each one's best run. Prints
requests/s, p50 and p99 and the ratio walk / line. The target is 2,000 walking requests/s.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from live_server import ServerProcess  # noqa: E402

#: Query points and the moved facilities lie in this WGS-84 box (inside the OSM extract).
BOX = (121.463, 31.2215, 121.484, 31.2395)
CONNECTIONS = 16
OSM = ROOT / "tests" / "data" / "shanghai_jingan.osm"


def _bench_api() -> object:
    """``bench/api.py`` (server start/stop helpers), loaded by path."""
    spec = importlib.util.spec_from_file_location("bench_api", Path(__file__).with_name("api.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_store(path: Path, total: int) -> None:
    """A GeoPackage store of ``total`` facilities, a fifth inside ``BOX``, and its network."""
    from geodata.sample import sample_frame
    from geodata.store import GeoPackageStore
    from geodata.streets import save_network, streets_from_osm

    frame = sample_frame(total).copy()
    rng = np.random.default_rng(7)
    moved = rng.choice(total, total // 5, replace=False)
    frame.loc[moved, "lon"] = rng.uniform(BOX[0], BOX[2], moved.size)
    frame.loc[moved, "lat"] = rng.uniform(BOX[1], BOX[3], moved.size)
    store = GeoPackageStore(path)
    try:
        store.upsert_frame(frame, actor="bench")
    finally:
        store.close()
    save_network(streets_from_osm(OSM), path.with_name(path.name + ".streets.npz"))


def drive(url: str, query: str, seconds: float, workdir: Path) -> dict[str, float]:
    """Requests/s, p50 and p99 (ms) of ``/nearest?...&<query>`` from wrk (bench/api.py's driver)."""
    bench_api = _bench_api()
    result: dict[str, float] = bench_api.drive_wrk(  # type: ignore[attr-defined]
        url, seconds, workdir, query=query, box=BOX
    )
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 facilities, 4 s runs")
    parser.add_argument("--facilities", type=int, help="number of facilities")
    parser.add_argument("--seconds", type=float, help="duration of each measured run")
    parser.add_argument("--rounds", type=int, default=2, help="measured runs per query (best kept)")
    args = parser.parse_args(argv)
    total = args.facilities or (2_000 if args.quick else 10_000)
    seconds = args.seconds or (4.0 if args.quick else 15.0)
    queries = {
        "line k=5": "k=5",
        "walk k=5": "k=5&metric=walk",
        "line k=1": "k=1",
        "walk k=1": "k=1&metric=walk",
    }
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-walk-api-") as tmp:
        work = Path(tmp)
        store = work / "store.gpkg"
        t0 = time.perf_counter()
        build_store(store, total)
        print(
            f"store: {total:,} facilities and the walking network"
            f" in {time.perf_counter() - t0:.1f} s"
        )
        server = ServerProcess(
            {"FINDER_STORE": str(store), "FINDER_LOG_LEVEL": "WARNING"},
            ready="/nearest?lon=121.47&lat=31.23&metric=walk",
            timeout_s=300,
            log=work / "server.log",
        )
        with server as url:
            for query in queries.values():
                drive(url, query, 2.0, work)  # warm-up: walking tables, connections
            for _ in range(args.rounds):
                for name, query in queries.items():
                    run = drive(url, query, seconds, work)
                    if name not in results or run["rps"] > results[name]["rps"]:
                        results[name] = run
    print(
        f"/nearest from random points of the Jing'an extract, {CONNECTIONS} connections, best of "
        f"{args.rounds} x {seconds:.0f} s, wrk, one uvicorn worker, {os.cpu_count()} CPUs "
        "shared with the client"
    )
    print(f"{'':9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for name, r in results.items():
        print(f"{name:9} {r['rps']:9.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f}")
    for k in (5, 1):
        ratio = results[f"walk k={k}"]["rps"] / results[f"line k={k}"]["rps"]
        print(f"walk / line throughput, k={k}: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
