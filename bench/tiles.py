"""Benchmark: base map tiles served per second by ``finder serve`` (one uvicorn worker).

One command::

    python bench/tiles.py              # 10 s runs, best of 2 rounds
    python bench/tiles.py --seconds 4  # quicker

Builds the Jing'an archive from ``tests/data/shanghai_jingan.osm``
(:func:`geodata.basemap.basemap_from_osm`, what ``finder basemap build`` runs) and a small store
beside it, then starts

* **ours**: ``finder serve --workers 1`` on 127.0.0.1 (the production entry point, its request log
  going to a file), answering ``/basemap/{z}/{x}/{y}.mvt`` from the archive;
* **bare**: a Starlette app with one route answering the same tile bytes and headers from a dict in
  memory, on uvicorn's defaults (one worker);

and drives them in turn with ``wrk`` (bench/api.py's driver: 1 thread, 16 connections, loopback;
every request ``Accept-Encoding: gzip`` as a browser sends it). The tile addresses are what a
browser asks for when viewing Jing'an at zooms 12 to 16: every view tile over the archive's
bounds, mapped to the archive tile drawn for it (the archive stops at zoom 14; the browser
magnifies those beyond), drawn at random. Our ``/health`` in the same run is printed as a second
reference (the floor of our own middleware stack). Prints requests/s, p50 and p99 and the ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import math
import os
import platform
import sys
import tempfile
from pathlib import Path
from types import ModuleType

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from live_server import ServerProcess, serve_app  # noqa: E402

from geodata.basemap import BasemapArchive, basemap_from_osm  # noqa: E402

JINGAN = ROOT / "tests" / "data" / "shanghai_jingan.osm"
VIEW_ZOOMS = range(12, 17)
TARGET_RPS = 2000

_WRK_SCRIPT = """
math.randomseed(20261206)
wrk.headers["Accept-Encoding"] = "gzip"
local paths = {%s}
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
"""


def _bench_api() -> ModuleType:
    """``bench/api.py`` (its name clashes with the ``api`` package, so loaded by path)."""
    spec = importlib.util.spec_from_file_location("bench_api", Path(__file__).with_name("api.py"))
    if spec is None or spec.loader is None:
        raise RuntimeError("cannot load bench/api.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tile_paths(
    bounds: tuple[float, float, float, float], max_zoom: int
) -> list[tuple[int, int, int]]:
    """Archive tiles a browser asks for over ``bounds`` (WGS-84 degrees) at view zooms 12-16.

    One entry per view tile (so a zoom-14 tile magnified at zoom 16 appears 4 x 4 times).
    """
    lon0, lat0, lon1, lat1 = bounds

    def tile(z: int, lon: float, lat: float) -> tuple[int, int]:
        n = 1 << z
        x = int((lon + 180) / 360 * n)
        y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
        return x, y

    out = []
    for z in VIEW_ZOOMS:
        (xa, ya), (xb, yb) = tile(z, lon0, lat1), tile(z, lon1, lat0)
        shift = max(z - max_zoom, 0)
        for x in range(xa, xb + 1):
            for y in range(ya, yb + 1):
                out.append((z - shift, x >> shift, y >> shift))
    return out


def create_bare_app(archive_path: str, paths_file: str) -> Starlette:
    """The reference: Starlette, one route, the same tile bytes and headers from memory."""
    archive = BasemapArchive(archive_path)
    tiles: dict[str, bytes | None] = {}
    for line in Path(paths_file).read_text().split():
        z, x, y = (int(v) for v in line.split("/"))
        data = archive.tile(z, x, y)
        tiles[f"/basemap/{line}.mvt"] = None if data is None else bytes(data)

    async def tile(request: Request) -> Response:
        data = tiles[request.url.path]
        headers = {"ETag": '"bench"', "Cache-Control": "public, max-age=86400"}
        if data is None:
            return Response(status_code=204, headers=headers)
        headers["Content-Encoding"] = "gzip"
        return Response(data, media_type="application/vnd.mapbox-vector-tile", headers=headers)

    return Starlette(routes=[Route("/basemap/{z}/{x}/{y}.mvt", tile)])


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each run")
    parser.add_argument("--rounds", type=int, default=2, help="runs per server (best kept)")
    parser.add_argument("--serve-bare", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_bare:
        archive, paths_file, port = args.serve_bare
        serve_app(create_bare_app(archive, paths_file), int(port))
        return 0
    bench_api = _bench_api()
    load_before = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="bench-tiles-") as tmp:
        work = Path(tmp)
        store = work / "store.gpkg"
        bench_api.build_store(store, 1000)
        summary = basemap_from_osm(JINGAN, work / "jingan.pmtiles")
        archive = BasemapArchive(summary.path)
        mix = tile_paths(summary.bounds, archive.max_zoom)
        empty = sum(archive.tile(*t) is None for t in mix)
        addresses = [f"{z}/{x}/{y}" for z, x, y in mix]
        (work / "paths.txt").write_text("\n".join(addresses))
        script = work / "tiles.lua"
        script.write_text(_WRK_SCRIPT % ", ".join(f'"/basemap/{a}.mvt"' for a in addresses))
        first = f"/basemap/{addresses[0]}.mvt"
        servers = {
            "ours": ServerProcess(
                {"FINDER_BASEMAP": str(summary.path)},
                command=lambda port: [
                    sys.executable,
                    "-m",
                    "api.cli",
                    "serve",
                    "--store",
                    str(store),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--workers",
                    "1",
                ],
                ready=first,
                timeout_s=300,
                log=work / "ours.log",
            ),
            "bare": ServerProcess(
                command=lambda port: [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--serve-bare",
                    str(summary.path),
                    str(work / "paths.txt"),
                    str(port),
                ],
                ready=first,
                timeout_s=300,
                log=work / "bare.log",
            ),
        }
        results: dict[str, dict[str, float]] = {}
        with contextlib.ExitStack() as running:
            ours, bare = (running.enter_context(servers[name]) for name in ("ours", "bare"))
            runs = {
                "ours tiles": (ours, script),
                "bare tiles": (bare, script),
                "ours /health": (f"{ours}/health", None),
            }
            for url, lua in runs.values():
                bench_api.run_wrk(url, 2.0, lua)  # warm-up
            for _ in range(args.rounds):  # alternate, keep each one's best round
                for name, (url, lua) in runs.items():
                    run = bench_api.run_wrk(url, args.seconds, lua)
                    if name not in results or run["rps"] > results[name]["rps"]:
                        results[name] = run
    load_after = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.machine(),
    )
    print(f"machine: {model}, nproc {os.cpu_count()}, Python {platform.python_version()}")
    print(f"load average before: {load_before}; after: {load_after}")
    print(
        f"archive: Jing'an, {summary.tiles} tiles, zooms 0-{archive.max_zoom}; mix: "
        f"{len(mix)} view tiles at zooms 12-16 -> {len(set(mix))} archive tiles "
        f"({empty} of the {len(mix)} requests are 204 empty)"
    )
    print(
        f"wrk, {bench_api.CONNECTIONS} connections, best of {args.rounds} x "
        f"{args.seconds:.0f} s, one uvicorn worker each, {os.cpu_count()} CPUs shared with wrk"
    )
    print(f"{'':13} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for name, r in results.items():
        print(f"{name:13} {r['rps']:9.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f}")
    ours = results["ours tiles"]["rps"]
    print(
        f"ours / bare tiles: {ours / results['bare tiles']['rps']:.2f}; "
        f"ours tiles / ours /health: {ours / results['ours /health']['rps']:.2f}; "
        f"target >= {TARGET_RPS:,} req/s {'met' if ours >= TARGET_RPS else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
