"""Benchmark signed door-event ingest against a bare endpoint that only checks the signature,
and the fan-out of one event to many connected maps (server-sent events).

One command::

    python bench/events.py            # 10 s runs, 1,000 devices, 1,000 /live connections
    python bench/events.py --quick    # 4 s runs, 200 /live connections

Builds a GeoPackage store of 1,000 facilities with one registered device each, then starts

* **ours**: ``uvicorn api.app:create_app --factory`` (one worker): ``POST
  /facilities/{id}/events`` checks the HMAC signature, the body (no unknown fields), the time
  window and the device's allowance, stores the event (group commit; the answer waits for the
  commit, so the event is durable when acknowledged) and refuses replays;
* **bare**: a FastAPI app whose one route only checks the same signatures (the same keys, the
  same constant-time comparison) and answers ``{"ok": true}``, on the same uvicorn settings;

and drives them in turn with ``wrk`` (1 thread, 16 connections; each request a different
pre-signed event with its own nonce, spread over the devices), keeping each one's best of
``--rounds`` runs, with the CPU time each server process spent per event (from ``/proc``, all
threads: ours includes its writer thread; steadier than events/s on a shared machine). Afterwards
it checks that the store holds exactly as many events as ours acknowledged. Then it opens
``--listeners`` ``GET /live`` streams on ours, posts one event and measures when each stream has
it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import importlib.util
import json
import math
import resource
import secrets
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from live_server import ServerProcess, serve_app  # noqa: E402

DEVICES = 1_000
#: Pre-signed requests per measured second (each sent once: the nonces must not repeat).
REQUESTS_PER_S = 12_000


def _bench_api() -> Any:
    """``bench/api.py`` (its wrk driver), loaded by path."""
    spec = importlib.util.spec_from_file_location("bench_api", Path(__file__).with_name("api.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_store(path: Path) -> dict[str, str]:
    """A store of :data:`DEVICES` facilities, each with a device; ``{facility_id: secret}``."""
    from api.auth import create_device
    from geodata.events import event_log
    from geodata.sample import sample_frame
    from geodata.store import GeoPackageStore

    store = GeoPackageStore(path)
    try:
        frame = sample_frame(DEVICES)
        store.upsert_frame(frame, actor="bench")
        log = event_log(store)
        return {fid: create_device(log, fid)[1] for fid in frame["id"]}
    finally:
        store.close()


def write_requests(path: Path, secrets_by_id: dict[str, str], count: int) -> None:
    """``count`` signed event requests for wrk, one a line: path, signature, body (tabs)."""
    from api.auth import device_signing_key

    keys = [(fid, device_signing_key(s)) for fid, s in secrets_by_id.items()]
    at = dt.datetime.now(dt.UTC).isoformat()
    run = secrets.token_hex(4)  # nonces differ from run to run: no request is a replay
    lines = []
    for i in range(count):
        fid, key = keys[i % len(keys)]
        kind = ("entry", "entry", "entry", "opened", "occupied", "vacant")[i % 6]
        body = json.dumps({"type": kind, "at": at, "nonce": f"{run}{i:09d}"})
        signature = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
        lines.append(f"/facilities/{fid}/events\t{signature}\t{body}")
    path.write_text("\n".join(lines) + "\n")


_WRK_SCRIPT = """
local requests = {}
for line in io.lines("%s") do
  local path, signature, body = line:match("([^\t]+)\t([^\t]+)\t(.+)")
  requests[#requests + 1] = {path, body, signature}
end
local i = 0
request = function()
  i = i + 1
  local r = requests[(i - 1) %% #requests + 1]
  return wrk.format("POST", r[1], {["Content-Type"] = "application/json",
                                   ["X-Signature-SHA256"] = r[3]}, r[2])
end
"""


def create_bare_app(secrets_path: str) -> FastAPI:
    """The reference: FastAPI + the same signature check, nothing else."""
    from api.auth import device_signing_key

    keys = {
        fid: device_signing_key(secret)
        for fid, secret in json.loads(Path(secrets_path).read_text()).items()
    }
    app = FastAPI()

    @app.post("/facilities/{facility_id}/events")
    async def event(facility_id: str, request: Request) -> JSONResponse:
        body = await request.body()
        given = request.headers.get("x-signature-sha256", "").encode()
        key = keys.get(facility_id)
        expected = hmac.new(key or b"", body, hashlib.sha256).hexdigest().encode()
        if key is None or not hmac.compare_digest(expected, given):
            return JSONResponse({"ok": False}, status_code=401)
        return JSONResponse({"ok": True})

    return app


async def fan_out(base: str, listeners: int, fid: str, secret: str) -> dict[str, float]:
    """Open ``listeners`` ``/live`` streams, post one event, time its arrival on each."""
    from api.auth import device_signing_key

    host, port = base.removeprefix("http://").split(":")
    marker = f'"id": "{fid}"'.encode()

    async def listen(ready: asyncio.Event, go: asyncio.Event, arrived: list[float]) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            f"GET /live HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        await writer.drain()
        while b"event: ready" not in await reader.readline():
            pass
        ready.set()
        await go.wait()
        while True:
            line = await reader.readline()
            if not line:
                return
            if marker in line and b'"occupied"' in line:
                arrived.append(time.perf_counter())
                writer.close()
                return

    arrived: list[float] = []
    go = asyncio.Event()
    readies = [asyncio.Event() for _ in range(listeners)]
    tasks = [asyncio.create_task(listen(r, go, arrived)) for r in readies]
    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 120)
    connect_s = time.perf_counter() - started
    go.set()
    body = json.dumps({"type": "occupied", "at": dt.datetime.now(dt.UTC).isoformat()}).encode()
    signature = hmac.new(device_signing_key(secret), body, hashlib.sha256).hexdigest()
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        posted = time.perf_counter()
        answer = await client.post(
            f"/facilities/{fid}/events", content=body, headers={"X-Signature-SHA256": signature}
        )
        answer.raise_for_status()
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    latencies = sorted(t - posted for t in arrived)
    return {
        "listeners": float(len(latencies)),
        "connect_s": connect_s,
        "p50_ms": 1e3 * latencies[len(latencies) // 2],
        "max_ms": 1e3 * latencies[-1],
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 s runs, 200 listeners")
    parser.add_argument("--seconds", type=float, help="duration of each measured run")
    parser.add_argument("--rounds", type=int, default=2, help="measured runs per server")
    parser.add_argument("--listeners", type=int, help="/live connections (1,000)")
    parser.add_argument(
        "--serve-bare", nargs=2, metavar=("SECRETS", "PORT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.serve_bare:
        serve_app(create_bare_app(args.serve_bare[0]), int(args.serve_bare[1]))
        return 0
    bench = _bench_api()
    seconds = args.seconds or (4.0 if args.quick else 10.0)
    listeners = args.listeners or (200 if args.quick else 1_000)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, listeners + 512)), hard))
    with tempfile.TemporaryDirectory(prefix="bench-events-") as tmp:
        work = Path(tmp)
        store = work / "store.gpkg"
        secrets_by_id = build_store(store)
        (work / "secrets.json").write_text(json.dumps(secrets_by_id))
        servers = {
            "ours": ServerProcess(
                {"FINDER_STORE": str(store), "FINDER_LOG_LEVEL": "WARNING"},
                timeout_s=300,
                log=work / "ours.log",
            ),
            "bare": ServerProcess(
                command=lambda port: [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--serve-bare",
                    str(work / "secrets.json"),
                    str(port),
                ],
                ready="/docs",
                timeout_s=300,
                log=work / "bare.log",
            ),
        }
        with contextlib.ExitStack() as running:
            urls = {name: running.enter_context(server) for name, server in servers.items()}
            best: dict[str, dict[str, float]] = {}
            cpu_us: dict[str, float] = {}
            acknowledged = 0
            for _ in range(args.rounds):
                for name, url in urls.items():
                    requests = work / f"requests-{secrets.token_hex(4)}.tsv"
                    write_requests(requests, secrets_by_id, int(REQUESTS_PER_S * seconds))
                    script = work / "events.lua"
                    script.write_text(_WRK_SCRIPT % requests)
                    process = servers[name].process
                    assert process is not None  # started by the ``with``
                    before = bench.cpu_s(process.pid)
                    result = bench.run_wrk(url, seconds, script)
                    used = 1e6 * (bench.cpu_s(process.pid) - before) / result["requests"]
                    cpu_us[name] = min(cpu_us.get(name, math.inf), used)
                    if name == "ours":
                        acknowledged += int(result["requests"])
                    if name not in best or result["rps"] > best[name]["rps"]:
                        best[name] = result
            with sqlite3.connect(store) as con:
                stored = con.execute("SELECT count(*) FROM facility_events").fetchone()[0]
            fid, secret = next(iter(secrets_by_id.items()))
            spread = asyncio.run(fan_out(urls["ours"], listeners, fid, secret))
    print(f"{'':6} {'events/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/event':>13}")
    for name in ("ours", "bare"):
        r = best[name]
        print(
            f"{name:6} {r['rps']:>10,.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
            f"{cpu_us[name]:>13.0f}"
        )
    print(f"ours / bare: {best['ours']['rps'] / best['bare']['rps']:.2f}")
    print(f"ours acknowledged {acknowledged:,} events (no refusal); the store holds {stored:,}")
    print(
        f"/live fan-out: {spread['listeners']:,.0f} streams (connected in "
        f"{spread['connect_s']:.1f} s) had the event after p50 {spread['p50_ms']:.0f} ms, "
        f"max {spread['max_ms']:.0f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
