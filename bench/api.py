"""Benchmark ``GET /nearest`` of the service against a bare FastAPI KD-tree endpoint.

One command::

    python bench/api.py            # 100,000 facilities, 15 s per run
    python bench/api.py --quick    # 10,000 facilities, 4 s per run

Builds a GeoPackage store of synthetic facilities (:func:`geodata.sample.sample_frame`), starts

* **ours**: ``uvicorn api.app:create_app --factory`` (one worker, the production entry point,
  with its request log going to a file), answering ``/nearest`` with the full GeoJSON
  (navigation links, open state, access control, parameter validation);
* **bare**: a FastAPI app with one route that runs the same lookup
  (:meth:`finder.index.FacilityIndex.nearest` over the same facilities) and answers the ids and
  distances as plain JSON, on the same uvicorn settings;

after a warm-up run of each (``--warmup``, 20 s: ours renders the static JSON of a facility the
first time it answers it and keeps it, so a fresh worker spends its first tens of seconds
rendering; the warm-up brings it close to a long-running worker, which has them all, and the
bare endpoint has nothing to warm), drives them in turn (alternating, ``--rounds`` times,
keeping each one's best run, which damps the noise of a shared machine) with ``wrk`` (Debian
package ``wrk``; 1 thread, 16 connections, loopback only), every request asking for the 5 nearest
facilities to a random point in Shanghai. Prints requests/s, p50 and p99 latency of both and
the ratio, and the CPU time each server process spent per request (from ``/proc``; steadier than
requests/s on a shared machine, where other jobs take turns on the CPUs). Without ``wrk`` it
falls back to a bounded asyncio + httpx client (16 connections), which itself costs CPU and so
reads lower.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from fastapi import FastAPI

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from live_server import ServerProcess, serve_app  # noqa: E402

#: Query points are drawn in this WGS-84 box (central Shanghai and suburbs).
BOX = (121.10, 30.90, 121.80, 31.45)
CONNECTIONS = 16
K = 5
#: The request both servers answer once ready.
READY = "/nearest?lon=121.47&lat=31.23"

_WRK_SCRIPT = """
math.randomseed(20261126)
request = function()
  local lon = %f + math.random() * %f
  local lat = %f + math.random() * %f
  return wrk.format("GET", string.format("/nearest?lon=%%.6f&lat=%%.6f&%s", lon, lat))
end
"""


def create_bare_app(store_path: str) -> FastAPI:
    """The reference: FastAPI + the same index lookup, minimal JSON out."""
    from finder.index import FacilityIndex
    from geodata.store import GeoPackageStore

    store = GeoPackageStore(store_path)
    index = FacilityIndex.from_frame(store.frame())
    store.close()
    app = FastAPI()

    @app.get("/nearest")
    async def nearest(lon: float, lat: float, k: int = 5) -> dict[str, object]:
        results = index.nearest(lon, lat, k=k)
        return {
            "ids": [r.facility_id for r in results],
            "distance_m": [r.distance_m for r in results],
        }

    return app


def _parse_ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip()).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def drive_wrk(
    url: str,
    seconds: float,
    workdir: Path,
    *,
    query: str = f"k={K}",
    box: tuple[float, float, float, float] = BOX,
) -> dict[str, float]:
    """Requests/s, p50 and p99 (ms) from wrk: ``/nearest?lon=&lat=&<query>``, random points
    in ``box`` (min lon, min lat, max lon, max lat)."""
    script = workdir / "nearest.lua"
    script.write_text(_WRK_SCRIPT % (box[0], box[2] - box[0], box[1], box[3] - box[1], query))
    return run_wrk(url, seconds, script)


def run_wrk(url: str, seconds: float, script: Path | None = None) -> dict[str, float]:
    """Requests/s, p50 and p99 (ms) and the requests answered, of ``wrk`` (1 thread,
    16 connections) against ``url``, its requests made by the Lua ``script`` when given;
    raises on any failed request."""
    lua = ["-s", str(script)] if script is not None else []
    out = subprocess.run(
        ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds:.0f}s", "--latency", *lua, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _parse_ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _parse_ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} failed requests\n{out}")
    done = float(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "requests": done}


def drive_httpx(url: str, seconds: float) -> dict[str, float]:
    """The same load from 16 asyncio workers sharing one httpx client."""
    rng = random.Random(20261126)
    latencies: list[float] = []

    async def worker(client: httpx.AsyncClient, stop: float) -> None:
        while time.perf_counter() < stop:
            lon = BOX[0] + rng.random() * (BOX[2] - BOX[0])
            lat = BOX[1] + rng.random() * (BOX[3] - BOX[1])
            t0 = time.perf_counter()
            r = await client.get(url + "/nearest", params={"lon": lon, "lat": lat, "k": K})
            latencies.append(time.perf_counter() - t0)
            r.raise_for_status()

    async def main() -> float:
        limits = httpx.Limits(max_connections=CONNECTIONS)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            start = time.perf_counter()
            await asyncio.gather(*(worker(client, start + seconds) for _ in range(CONNECTIONS)))
            return time.perf_counter() - start

    elapsed = asyncio.run(main())
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": 1e3 * latencies[len(latencies) // 2],
        "p99_ms": 1e3 * latencies[int(len(latencies) * 0.99)],
        "requests": float(len(latencies)),
    }


def cpu_s(pid: int) -> float:
    """CPU time (user + system, all threads) the process ``pid`` has used, seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def build_store(path: Path, total: int) -> None:
    """A GeoPackage store of ``total`` synthetic facilities."""
    from geodata.sample import sample_frame
    from geodata.store import GeoPackageStore

    store = GeoPackageStore(path)
    try:
        store.upsert_frame(sample_frame(total), actor="bench")
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 facilities, 4 s runs")
    parser.add_argument("--facilities", type=int, help="number of facilities")
    parser.add_argument("--seconds", type=float, help="duration of each measured run")
    parser.add_argument(
        "--rounds", type=int, default=2, help="measured runs per server, alternating (best kept)"
    )
    parser.add_argument(
        "--warmup", type=float, help="warm-up run per server, s (default 20; --quick: 2)"
    )
    parser.add_argument(
        "--client", choices=("wrk", "httpx"), default="wrk" if shutil.which("wrk") else "httpx"
    )
    parser.add_argument("--serve-bare", nargs=2, metavar=("STORE", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_bare:
        serve_app(create_bare_app(args.serve_bare[0]), int(args.serve_bare[1]))
        return 0
    total = args.facilities or (10_000 if args.quick else 100_000)
    seconds = args.seconds or (4.0 if args.quick else 15.0)
    warmup = args.warmup if args.warmup is not None else (2.0 if args.quick else 20.0)
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        work = Path(tmp)
        store = work / "store.gpkg"
        t0 = time.perf_counter()
        build_store(store, total)
        print(f"store: {total:,} facilities built in {time.perf_counter() - t0:.1f} s")
        servers = {
            "ours": ServerProcess(
                {"FINDER_STORE": str(store), "FINDER_LOG_LEVEL": "INFO"},
                ready=READY,
                timeout_s=300,
                log=work / "ours.log",
            ),
            "bare": ServerProcess(
                command=lambda port: [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--serve-bare",
                    str(store),
                    str(port),
                ],
                ready=READY,
                timeout_s=300,
                log=work / "bare.log",
            ),
        }
        results: dict[str, dict[str, float]] = {}
        with contextlib.ExitStack() as running:
            urls = {name: running.enter_context(server) for name, server in servers.items()}
            drive = (lambda u, s: drive_wrk(u, s, work)) if args.client == "wrk" else drive_httpx
            for url in urls.values():
                drive(url, warmup)  # warm-up: caches, connections, rendered facilities
            cpu_us: dict[str, float] = {}
            for _ in range(args.rounds):  # alternate, keep each server's best round
                for name, url in urls.items():
                    process = servers[name].process
                    assert process is not None  # started by the ``with``
                    pid = process.pid
                    before = cpu_s(pid)
                    run = drive(url, seconds)
                    used = 1e6 * (cpu_s(pid) - before) / run["requests"]
                    cpu_us[name] = min(cpu_us.get(name, math.inf), used)
                    if name not in results or run["rps"] > results[name]["rps"]:
                        results[name] = run
        logged = sum(1 for _ in (work / "ours.log").open(encoding="utf-8", errors="replace"))
    print(
        f"/nearest, k={K}, {CONNECTIONS} connections, best of {args.rounds} x {seconds:.0f} s, "
        f"client {args.client}, "
        f"one uvicorn worker each, {os.cpu_count()} CPUs shared with the client"
    )
    print(f"{'':6} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>11}")
    for name, r in results.items():
        print(
            f"{name:6} {r['rps']:9.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {cpu_us[name]:11.0f}"
        )
    ratio = results["ours"]["rps"] / results["bare"]["rps"]
    print(f"ours / bare throughput: {ratio:.2f} (request log lines written by ours: {logged:,})")
    print(f"bare / ours CPU time per request: {cpu_us['bare'] / cpu_us['ours']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
