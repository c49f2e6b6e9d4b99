"""PostgreSQL faults: a paused database (every server process stopped with SIGSTOP), a stopped
one, a restarted one.

The tests start their own private cluster (:class:`postgres.TempPostgres`) so that stopping it
disturbs no other test, and serve it with real uvicorn on 127.0.0.1.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import numpy as np
import pytest
from api_support import ServerProcess, make_keys
from postgres import PG_BIN, TempPostgres, synthetic_frame, unavailable_reason

from api.state import LiveFacilities
from finder.hours import HolidayCalendar
from geodata.postgis import PostGISStore

pytestmark = pytest.mark.postgis

QUERY = {"lon": 121.47, "lat": 31.23, "k": 3}
PAUSE_S = 4.0
LOADERS = 3


@pytest.fixture(scope="module")
def cluster() -> Iterator[TempPostgres]:
    """A private PostgreSQL + PostGIS cluster (only these tests pause, stop and restart it)."""
    reason = unavailable_reason()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostGIS tests cannot run in CI: {reason}")
        pytest.skip(reason)
    server = TempPostgres.start()
    try:
        yield server
    finally:
        _signal_cluster(server, signal.SIGCONT)
        server.stop()


@pytest.fixture
def database(cluster: TempPostgres, request: pytest.FixtureRequest) -> str:
    """A migrated database of the private cluster holding 400 synthetic facilities."""
    url = cluster.create_database(request.node.name.removeprefix("test_")[:40])
    store = PostGISStore(url, application_name="test-setup")
    try:
        store.upsert_frame(synthetic_frame(400, seed=3), actor="setup")
    finally:
        store.close()
    return url


def _cluster_pids(server: TempPostgres) -> list[int]:
    """The postmaster and every process it started."""
    postmaster = int((server.data_dir / "postmaster.pid").read_text().split()[0])
    pids = [postmaster]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == postmaster:
            pids.append(int(stat.parent.name))
    return pids


def _signal_cluster(server: TempPostgres, sig: signal.Signals) -> None:
    if not (server.data_dir / "postmaster.pid").exists():
        return
    for pid in _cluster_pids(server):
        with suppress(ProcessLookupError):
            os.kill(pid, sig)


@contextmanager
def _paused(server: TempPostgres) -> Iterator[float]:
    """Every process of the cluster stopped (SIGSTOP) for the block; yields when it began."""
    _signal_cluster(server, signal.SIGSTOP)
    try:
        yield time.monotonic()
    finally:
        _signal_cluster(server, signal.SIGCONT)


def _pg_ctl(server: TempPostgres, *args: str) -> None:
    log = str(server.root / "server.log")  # not pg_ctl's output: nobody would read that pipe
    server._run([str(PG_BIN / "pg_ctl"), "-D", str(server.data_dir), "-w", "-l", log, *args])


def _start_again(server: TempPostgres) -> None:
    """Start a stopped cluster with the options it ran with (``postmaster.opts``)."""
    words = shlex.split((server.data_dir / "postmaster.opts").read_text())
    options = [w for i, w in enumerate(words[1:], 1) if w != "-D" and words[i - 1] != "-D"]
    _pg_ctl(server, "-o", shlex.join(options), "start")


def _wait_until_reachable(live: LiveFacilities) -> None:
    deadline = time.monotonic() + 10
    while not live.health().reachable:
        assert time.monotonic() < deadline, "the store did not come back"
        time.sleep(0.05)


def _serve(url: str, tmp: Path) -> ServerProcess:
    make_keys(tmp / "keys.json")
    return ServerProcess(
        {
            "FINDER_DATABASE_URL": url,
            "FINDER_API_KEYS_FILE": str(tmp / "keys.json"),
            "FINDER_LOG_LEVEL": "WARNING",
            "FINDER_INDEX_POLL_S": "0.2",
        }
    )


def test_a_paused_database_keeps_nearest_fast_and_health_503(
    cluster: TempPostgres, database: str, tmp_path: Path
) -> None:
    with _serve(database, tmp_path) as base:
        assert httpx.get(base + "/nearest", params=QUERY).status_code == 200
        latencies: list[float] = []
        statuses: set[int] = set()
        health: list[tuple[float, float, int]] = []  # (since pause, took, status)
        stop = threading.Event()

        def load() -> None:  # a modest, bounded load: about 50 requests/s per thread
            with httpx.Client(base_url=base, timeout=10) as client:
                while not stop.is_set():
                    started = time.perf_counter()
                    status = client.get("/nearest", params=QUERY).status_code
                    latencies.append(time.perf_counter() - started)
                    statuses.add(status)
                    time.sleep(0.02)

        with ThreadPoolExecutor(LOADERS) as pool:
            loaders = [pool.submit(load) for _ in range(LOADERS)]
            try:
                with _paused(cluster) as paused_at, httpx.Client(base_url=base, timeout=5) as c:
                    while (since := time.monotonic() - paused_at) < PAUSE_S:
                        started = time.perf_counter()
                        response = c.get("/health")
                        health.append((since, time.perf_counter() - started, response.status_code))
                        time.sleep(0.1)
            finally:
                stop.set()
            for done in loaders:
                done.result()

        assert statuses == {200}
        p99 = float(np.percentile(latencies, 99))
        print(f"/nearest during a {PAUSE_S:g} s pause: {len(latencies)} requests, p99 {p99:.4f} s")
        assert p99 < 0.1
        assert max(took for _, took, _ in health) < 1.0, health
        first_503 = min(since for since, _, status in health if status == 503)
        print(f"/health: 503 from {first_503:.2f} s, slowest {max(t for _, t, _ in health):.4f} s")
        assert first_503 < 2.0, health
        assert all(status == 503 for since, _, status in health if since > 2.0), health
        deadline = time.monotonic() + 10
        while httpx.get(base + "/health").status_code != 200:
            assert time.monotonic() < deadline, "health did not recover after the pause"
            time.sleep(0.1)


def test_writes_after_a_database_restart_succeed_at_the_first_attempt(
    cluster: TempPostgres, database: str
) -> None:
    store = PostGISStore(database, migrate=False)
    try:
        ids = store.frame()["id"].tolist()[:4]
        with ThreadPoolExecutor(4) as pool:  # idle pooled connections, as in a busy worker
            list(pool.map(lambda i: store.get(i), ids))
        _pg_ctl(cluster, "-m", "fast", "restart")
        for n, facility_id in enumerate(ids):
            saved = store.patch(facility_id, {"name": f"重启后{n}"}, actor="t", if_version=1)
            assert saved.version == 2
    finally:
        store.close()


def test_an_outage_is_logged_once_reminded_and_its_end_logged(
    cluster: TempPostgres, database: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = PostGISStore(database, migrate=False)
    live = LiveFacilities(store, HolidayCalendar.default(), poll_s=0.05, remind_s=0.5)
    caplog.set_level(logging.INFO, logger="api.state")
    try:
        # A stopped database: every look fails at once.
        _pg_ctl(cluster, "-m", "fast", "stop")
        try:
            with live.polling():
                time.sleep(1.6)
                assert not live.health().reachable
        finally:
            _start_again(cluster)
        # A paused database: looks hang.
        with live.polling():
            _wait_until_reachable(live)
            with _paused(cluster):
                time.sleep(1.8)
                assert not live.health().reachable
            _wait_until_reachable(live)
    finally:
        store.close()
    lines = [
        (r.levelname, r.getMessage(), r.exc_info is not None)
        for r in caplog.records
        if r.name == "api.state" and "facility store" in r.getMessage()
    ]
    starts = [line for line in lines if line[0] == "ERROR"]
    reminders = [line for line in lines if "still unreachable" in line[1]]
    ends = [line for line in lines if "answers again" in line[1]]
    assert [has_trace for _, _, has_trace in starts] == [True, False], lines
    assert "is unreachable" in starts[0][1] and "does not answer" in starts[1][1]
    assert 2 <= len(reminders) <= 6, lines  # about one per 0.5 s of 1.6 + 1.8 s outage
    assert len(ends) == 2, lines
    assert len(lines) == len(starts) + len(reminders) + len(ends), lines
