"""Two server processes on one store (each backend): a signed ``occupied`` event posted to one
shows in the other's ``/nearest`` and on its ``/live`` stream (what the map listens to) within
one second; a device's allowance is shared by the workers; a replay is refused by every worker,
also after a restart; acknowledged events survive a killed worker."""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from api_support import ServerProcess
from events_support import (
    add_device,
    add_facility,
    event,
    live_events,
    nearest_props,
    post,
    post_once_known,
)

from geodata.events import event_log
from geodata.store import FacilityStore, GeoPackageStore

WITHIN_S = 1.0
_numbers = itertools.count(1)


@pytest.fixture(params=["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)])
def shared_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[FacilityStore, dict[str, str]]]:
    """A store and the settings that name it."""
    if request.param == "gpkg":
        store: FacilityStore = GeoPackageStore(tmp_path / "store.gpkg")
        yield store, {"FINDER_STORE": str(tmp_path / "store.gpkg")}
        store.close()
        return
    from geodata.postgis import PostGISStore

    server = request.getfixturevalue("postgres_server")
    name = f"finder_events_{os.getpid()}_{next(_numbers)}"
    url = server.create_database(name, template="finder_template")
    store = PostGISStore(url)
    try:
        yield store, {"FINDER_DATABASE_URL": url}
    finally:
        store.close()
        server.drop_database(name)


def test_an_event_posted_to_one_server_shows_on_the_other_within_a_second(
    shared_store: tuple[FacilityStore, dict[str, str]],
) -> None:
    store, settings = shared_store
    lon, lat = add_facility(store, "mw-room-1", "mother_room")
    secret = add_device(store, "mw-room-1")
    env = {"FINDER_LOG_LEVEL": "WARNING", "FINDER_INDEX_POLL_S": "0", **settings}
    with ServerProcess(env) as url_a, ServerProcess(env) as url_b:
        seen: dict[str, float] = {}
        listening = threading.Event()

        def listen() -> None:
            with (
                httpx.Client(base_url=url_b, timeout=10) as client,
                client.stream("GET", "/live") as stream,
            ):
                for name, data in live_events(stream):
                    if name == "ready":
                        listening.set()
                    elif data.get("id") == "mw-room-1" and data["live_state"] == "occupied":
                        seen["map"] = time.monotonic()
                        return

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        assert listening.wait(10)
        with (
            httpx.Client(base_url=url_a, timeout=10) as a,
            httpx.Client(base_url=url_b, timeout=10) as b,
        ):
            assert nearest_props(b, lon, lat)["live_state"] == "open"
            accepted = post(a, "mw-room-1", secret, event("occupied"))
            posted = time.monotonic()
            assert accepted.status_code == 200, accepted.text
            while nearest_props(b, lon, lat)["live_state"] != "occupied":
                assert time.monotonic() - posted < 5, "the other server never showed the event"
                time.sleep(0.02)
            seen["nearest"] = time.monotonic()
        listener.join(5)
    assert seen["nearest"] - posted < WITHIN_S
    assert seen["map"] - posted < WITHIN_S


BURST = 6


def _throttled_env(settings: dict[str, str]) -> dict[str, str]:
    return {
        "FINDER_LOG_LEVEL": "WARNING",
        "FINDER_DEVICE_EVENT_BURST": str(BURST),
        "FINDER_DEVICE_EVENTS_PER_S": "0.05",
        **settings,
    }


def _stored(store: FacilityStore, fid: str) -> int:
    return sum(1 for e in event_log(store).since(0) if e.facility_id == fid)


def test_a_flooding_device_gets_one_allowance_across_workers_and_others_lose_nothing(
    shared_store: tuple[FacilityStore, dict[str, str]],
) -> None:
    store, settings = shared_store
    add_facility(store, "mw-flood-1", "rest_stop")
    add_facility(store, "mw-quiet-1", "rest_stop")
    flooding = add_device(store, "mw-flood-1")
    quiet = add_device(store, "mw-quiet-1")
    env = _throttled_env(settings)
    with (
        ServerProcess(env) as url_a,
        ServerProcess(env) as url_b,
        httpx.Client(base_url=url_a, timeout=10) as a,
        httpx.Client(base_url=url_b, timeout=10) as b,
    ):
        # a worker that knows the quiet device knows the flooding one (registered before it)
        quiet_answers = [
            post_once_known(c, "mw-quiet-1", quiet, event("entry", nonce=f"quiet-{i:04d}"))
            for i, c in enumerate((a, b))
        ]
        flood = [
            post(c, "mw-flood-1", flooding, event("entry", nonce=f"flood-{i:04d}"))
            for i in range(4 * BURST)
            for c in ((a, b)[i % 2],)
        ]
        quiet_answers += [
            post(c, "mw-quiet-1", quiet, event("entry", nonce=f"quiet-{i:04d}"))
            for i, c in enumerate((a, b, a, b), start=2)
        ]
    accepted = [r.status_code for r in flood].count(200)
    refused = [r for r in flood if r.status_code == 429]
    # per-worker buckets would accept 2 * BURST; the shared one BURST (and one refilled)
    assert BURST <= accepted <= BURST + 1, [r.status_code for r in flood]
    assert len(refused) == len(flood) - accepted
    assert all(int(r.headers["Retry-After"]) >= 1 for r in refused)
    assert [r.status_code for r in quiet_answers] == [200] * 6
    assert _stored(store, "mw-flood-1") == accepted
    assert _stored(store, "mw-quiet-1") == 6


def test_a_replay_is_refused_by_another_worker_and_after_a_restart(
    shared_store: tuple[FacilityStore, dict[str, str]],
) -> None:
    """The replay keys are kept in the store, in the transaction of the event: every worker,
    and every worker started later within the window, refuses the event again."""
    store, settings = shared_store
    add_facility(store, "mw-replay-1", "rest_stop")
    secret = add_device(store, "mw-replay-1")
    once = event("opened", nonce="replay-0001")
    env = {"FINDER_LOG_LEVEL": "WARNING", **settings}
    with (
        ServerProcess(env) as url_a,
        ServerProcess(env) as url_b,
        httpx.Client(base_url=url_a, timeout=10) as a,
        httpx.Client(base_url=url_b, timeout=10) as b,
    ):
        first = post_once_known(a, "mw-replay-1", secret, once)
        elsewhere = post_once_known(b, "mw-replay-1", secret, once)
    with ServerProcess(env) as url_c, httpx.Client(base_url=url_c, timeout=10) as c:
        restarted = post(c, "mw-replay-1", secret, once)
    assert first.status_code == 200
    assert elsewhere.status_code == 409
    assert restarted.status_code == 409
    assert _stored(store, "mw-replay-1") == 1


def test_every_acknowledged_event_survives_a_killed_worker(
    shared_store: tuple[FacilityStore, dict[str, str]],
) -> None:
    """Each 200 is sent after the batch holding its event committed: a worker killed (SIGKILL,
    no shutdown) right after answering has lost none of them."""
    store, settings = shared_store
    add_facility(store, "mw-durable-1", "rest_stop")
    secret = add_device(store, "mw-durable-1")
    env = {"FINDER_LOG_LEVEL": "WARNING", "FINDER_DEVICE_EVENT_BURST": "1000", **settings}
    server = ServerProcess(env)
    url = server.__enter__()
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            assert (
                post_once_known(client, "mw-durable-1", secret, event("entry")).status_code == 200
            )

            def send(first: int) -> list[int]:
                with httpx.Client(base_url=url, timeout=10) as own:
                    return [
                        post(
                            own, "mw-durable-1", secret, event("entry", nonce=f"d-{i:06d}")
                        ).status_code
                        for i in range(first, first + 50)
                    ]

            with ThreadPoolExecutor(4) as pool:
                answers = [s for part in pool.map(send, range(0, 200, 50)) for s in part]
    finally:
        assert server.process is not None
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(10)
    assert answers.count(200) == 200
    assert _stored(store, "mw-durable-1") == 1 + 200
