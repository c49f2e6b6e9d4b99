"""Benchmark: the PostGIS store beside the GeoPackage store, in one run.

Measures, on the same synthetic facilities (1,000,000 around Shanghai; ``--quick``: 100,000):

* bulk import into an empty store (``upsert_frame``: one transaction with a per-row audit entry;
  PostGIS ``COPY`` into a staging table plus set-based SQL, GeoPackage ``executemany``);
* reading every facility back (``frame()``, what each API worker does to build its index);
* ``/nearest`` throughput of ``uvicorn api.app:create_app --factory --workers 2`` over each
  backend on loopback, with p50 / p99 latency: driven by ``wrk`` exactly as ``bench/api.py``
  does (its ``drive_wrk``: 16 connections, k=5 at random points in Shanghai) when the Debian
  package ``wrk`` is installed, else by a bounded Python client (``--clients`` keep-alive
  connections, each sending its next request when the previous answer arrived; it competes for
  the CPU and so reads lower), in three rounds of which the best counts (other jobs on a shared
  machine disturb single rounds); also the time from starting uvicorn to its first answer (index
  build from the store) and the resident memory of a worker.

PostgreSQL is started in a temporary directory by ``tests/postgres.py`` (Debian
``postgresql-15-postgis-3``; run as root or as ``postgres``). Ratios are PostGIS / GeoPackage.

    python bench/backends.py              # 1,000,000 facilities, 20 s per throughput run
    python bench/backends.py --quick      # 100,000 facilities, 8 s per throughput run
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from live_server import ServerProcess  # noqa: E402
from postgres import TempPostgres, synthetic_frame  # noqa: E402

from geodata.postgis import PostGISStore  # noqa: E402
from geodata.store import GeoPackageStore  # noqa: E402

ROUNDS = 3


@contextmanager
def uvicorn_workers(env: dict[str, str], workers: int) -> Iterator[tuple[int, float, float]]:
    """Run the API with ``workers`` processes; yields the port, the seconds until it first
    answered and the mean resident memory of a worker (MB)."""
    server = ServerProcess(
        env, workers, ready="/nearest?lon=121.47&lat=31.23&k=1", timeout_s=float("inf")
    )
    with server:
        assert server.process is not None
        # Both workers build their index; give the slower one time to finish before measuring.
        time.sleep(2.0)
        yield server.port, server.ready_s, worker_rss_mb(server.process.pid)


def worker_rss_mb(parent: int) -> float:
    """Mean resident set size of the worker processes of uvicorn ``parent`` (Linux), MB."""
    sizes = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
            if int(fields[1]) == parent and b"spawn_main" in cmdline:
                status = (stat.parent / "status").read_text()
                kb = next(
                    line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")
                )
                sizes.append(int(kb) / 1024)
        except (OSError, IndexError, StopIteration):
            continue
    return float(np.mean(sizes)) if sizes else float("nan")


def nearest_load(port: int, *, clients: int, duration_s: float, seed: int) -> dict[str, float]:
    """Closed-loop load: ``clients`` keep-alive connections ask ``/nearest`` (k=5) until time."""
    rng = np.random.default_rng(seed)
    paths = [
        f"/nearest?lon={x:.6f}&lat={y:.6f}&k=5"
        for x, y in zip(
            rng.uniform(121.1, 121.9, 20_000), rng.uniform(30.85, 31.45, 20_000), strict=True
        )
    ]
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    stop_at = time.perf_counter() + duration_s

    def client(i: int) -> None:
        con = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        j = i
        while (start := time.perf_counter()) < stop_at:
            con.request("GET", paths[j % len(paths)])
            response = con.getresponse()
            response.read()
            if response.status == 200:
                latencies[i].append(time.perf_counter() - start)
            else:
                errors[i] += 1
            j += clients
        con.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    all_ms = np.concatenate([np.array(x) for x in latencies]) * 1000.0
    return {
        "rps": len(all_ms) / elapsed,
        "p50_ms": float(np.percentile(all_ms, 50)),
        "p99_ms": float(np.percentile(all_ms, 99)),
        "errors": float(sum(errors)),
    }


def bench_api_module() -> ModuleType:
    """``bench/api.py`` (its name clashes with the ``api`` package, so loaded by path)."""
    spec = importlib.util.spec_from_file_location("bench_api", ROOT / "bench" / "api.py")
    if spec is None or spec.loader is None:
        raise RuntimeError("cannot load bench/api.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def drive(port: int, *, clients: int, duration_s: float, workdir: Path) -> dict[str, float]:
    """Load ``/nearest`` with wrk when installed (as bench/api.py), else with the Python client."""
    if shutil.which("wrk"):
        found: dict[str, float] = bench_api_module().drive_wrk(
            f"http://127.0.0.1:{port}", duration_s, workdir
        )
        return found | {"errors": 0.0}
    return nearest_load(port, clients=clients, duration_s=duration_s, seed=2)


def timed(label: str, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    seconds = time.perf_counter() - start
    print(f"  {label}: {seconds:.1f} s", flush=True)
    return seconds, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 facilities, short runs")
    parser.add_argument("--rows", type=int, help="number of facilities (default 1,000,000)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client connections")
    parser.add_argument("--duration-s", type=float, help="seconds per throughput run")
    args = parser.parse_args()
    rows = args.rows or (100_000 if args.quick else 1_000_000)
    duration_s = args.duration_s or (8.0 if args.quick else 20.0)

    print(f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    gen_s, frame = timed(f"generate {rows:,} facilities", synthetic_frame, rows, seed=1)
    results: dict[str, dict[str, float]] = {"postgis": {}, "gpkg": {}}
    load_by = "wrk (16 connections)" if shutil.which("wrk") else f"{args.clients} Python clients"
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("FINDER_")}
    base_env |= {"FINDER_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}

    with TempPostgres.start() as server, tempfile.TemporaryDirectory() as tmp:
        url = server.create_database("bench")
        print("PostGIS:", flush=True)
        pg = PostGISStore(url)
        results["postgis"]["import_s"], counts = timed(
            "import", pg.upsert_frame, frame, actor="bench"
        )
        assert counts["inserted"] == rows, counts
        results["postgis"]["read_s"], _ = timed("frame()", pg.frame)
        pg.close()
        print("GeoPackage:", flush=True)
        gpkg_path = Path(tmp) / "bench.gpkg"
        gpkg = GeoPackageStore(gpkg_path)
        results["gpkg"]["import_s"], counts = timed(
            "import", gpkg.upsert_frame, frame, actor="bench"
        )
        assert counts["inserted"] == rows, counts
        results["gpkg"]["read_s"], _ = timed("frame()", gpkg.frame)
        gpkg.close()
        del frame

        for backend, extra in (
            ("postgis", {"FINDER_DATABASE_URL": url}),
            ("gpkg", {"FINDER_STORE": str(gpkg_path)}),
        ):
            with uvicorn_workers(base_env | extra, workers=2) as (port, ready_s, rss_mb):
                print(
                    f"{backend}: 2 workers answered after {ready_s:.1f} s; "
                    f"{load_by} for {duration_s:g} s",
                    flush=True,
                )
                rounds = [
                    drive(
                        port,
                        clients=args.clients,
                        duration_s=duration_s / ROUNDS,
                        workdir=Path(tmp),
                    )
                    for _ in range(ROUNDS)
                ]
                load = max(rounds, key=lambda r: r["rps"])
            results[backend] |= load | {"ready_s": ready_s, "rss_mb": rss_mb}

    pg_r, gp_r = results["postgis"], results["gpkg"]
    print(
        f"\n{rows:,} facilities; /nearest k=5, uvicorn --workers 2, {load_by}, "
        f"best of {ROUNDS} rounds in {duration_s:g} s per backend (loopback, same machine)"
    )
    print(f"{'':28}{'PostGIS':>12}{'GeoPackage':>12}{'ratio':>8}")
    lines = [
        ("import (s)", "import_s", "{:.1f}"),
        ("import (facilities/s)", None, "{:,.0f}"),
        ("frame() read (s)", "read_s", "{:.1f}"),
        ("API start to first answer (s)", "ready_s", "{:.1f}"),
        ("worker memory (MB)", "rss_mb", "{:,.0f}"),
        ("/nearest requests/s", "rps", "{:,.0f}"),
        ("/nearest p50 (ms)", "p50_ms", "{:.1f}"),
        ("/nearest p99 (ms)", "p99_ms", "{:.1f}"),
        ("non-200 answers", "errors", "{:.0f}"),
    ]
    for label, key, fmt in lines:
        a = rows / pg_r["import_s"] if key is None else pg_r[key]
        b = rows / gp_r["import_s"] if key is None else gp_r[key]
        ratio = f"{a / b:.2f}" if b else "-"
        print(f"{label:28}{fmt.format(a):>12}{fmt.format(b):>12}{ratio:>8}")
    print(f"(generating the facilities took {gen_s:.1f} s)")


if __name__ == "__main__":
    main()
