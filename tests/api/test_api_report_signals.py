"""Users' reports change the live answer: ``/nearest``, ``open_now`` and ``/live``, on two
server processes over one store of each backend.

The rule (``docs/reports.md``): a ``locked_during_hours`` signal counts once two distinct
sources reported it within 24 hours, or staff confirmed one report; a dismissal takes a report
out. Reports go to server A from distinct loopback addresses (each a source); server B reads
the signals from the store within about a second.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from api_support import SECRET_ORG, Keys, ServerProcess, make_keys
from events_support import (
    add_facility,
    initial_states,
    live_events,
    nearest_props,
    wait_for_facility,
)

from geodata.store import FacilityStore, GeoPackageStore

#: The task's bound is about two seconds (a signal read every second); generous on a busy box.
WITHIN_S = 3.0
_addresses = (f"127.0.1.{i}" for i in itertools.count(2))
_numbers = itertools.count(1)


@dataclass(frozen=True)
class Pair:
    """Two servers on one store."""

    store: FacilityStore
    keys: Keys
    a: str
    b: str

    def client(self, url: str, key: str | None = None, address: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        transport = httpx.HTTPTransport(local_address=address) if address else None
        return httpx.Client(base_url=url, headers=headers, timeout=10.0, transport=transport)


@pytest.fixture(scope="module", params=["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)])
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    tmp = tmp_path_factory.mktemp("signals")
    drop: Callable[[], None] | None = None
    if request.param == "gpkg":
        store: FacilityStore = GeoPackageStore(tmp / "store.gpkg")
        settings = {"FINDER_STORE": str(tmp / "store.gpkg")}
    else:
        from geodata.postgis import PostGISStore

        server = request.getfixturevalue("postgres_server")
        name = f"finder_signals_{os.getpid()}_{next(_numbers)}"
        url = server.create_database(name, template="finder_template")
        store = PostGISStore(url)
        settings = {"FINDER_DATABASE_URL": url}
        drop = lambda: server.drop_database(name)  # noqa: E731
    keys = make_keys(tmp / "keys.json")
    env = {
        "FINDER_API_KEYS_FILE": str(tmp / "keys.json"),
        "FINDER_LOG_LEVEL": "WARNING",
        "FINDER_INDEX_POLL_S": "0",
        **settings,
    }
    try:
        with ServerProcess(env) as a, ServerProcess(env) as b:
            yield Pair(store, keys, a, b)
    finally:
        store.close()
        if drop is not None:
            drop()


def _station(pair: Pair, fid: str, **fields: Any) -> tuple[float, float]:
    """A station open around the clock, indexed by both servers."""
    lon, lat = add_facility(pair.store, fid, "worker_station", **fields)
    for url in (pair.a, pair.b):
        with pair.client(url, pair.keys.editor) as client:
            wait_for_facility(client, fid, lon, lat)
    return lon, lat


def _report(pair: Pair, fid: str) -> int:
    """A ``locked_during_hours`` report to server A from a new source; its id."""
    with pair.client(pair.a, address=next(_addresses)) as client:
        r = client.post(f"/facilities/{fid}/reports", json={"type": "locked_during_hours"})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _staff(pair: Pair, report_id: int, action: str) -> None:
    with pair.client(pair.a, pair.keys.editor) as client:
        r = client.post(f"/reports/{report_id}/{action}")
    assert r.status_code == 200, r.text


def _answer(pair: Pair, url: str, lon: float, lat: float, **params: Any) -> dict[str, Any]:
    with pair.client(url) as client:
        return nearest_props(client, lon, lat, **params)


def _open_now(pair: Pair, url: str, lon: float, lat: float) -> list[str]:
    """The ids ``/nearest?open_now=true`` gives near a point."""
    with pair.client(url) as client:
        r = client.get("/nearest", params={"lon": lon, "lat": lat, "k": 5, "open_now": "true"})
    r.raise_for_status()
    return [f["id"] for f in r.json()["features"]]


def _until_state(pair: Pair, url: str, lon: float, lat: float, state: str) -> dict[str, Any]:
    """The answer once it says ``state`` (within :data:`WITHIN_S`)."""
    start = time.monotonic()
    while (found := _answer(pair, url, lon, lat))["live_state"] != state:
        assert time.monotonic() - start < WITHIN_S, found
        time.sleep(0.05)
    return found


def test_two_sources_flip_nearest_and_open_now_on_both_servers_one_does_not(pair: Pair) -> None:
    lon, lat = _station(pair, "sig-station-1")
    _report(pair, "sig-station-1")
    one = _answer(pair, pair.a, lon, lat)
    one_open = _open_now(pair, pair.a, lon, lat)
    _report(pair, "sig-station-1")
    two = _answer(pair, pair.a, lon, lat)  # the reporting worker reads the signals at once
    two_open = _open_now(pair, pair.a, lon, lat)
    started = time.monotonic()
    other = _until_state(pair, pair.b, lon, lat, "reported_locked")
    print(f"the other server said reported locked after {time.monotonic() - started:.2f} s")
    assert (one["live_state"], one["reported_by"]) == ("open", None)
    assert "sig-station-1" in one_open
    assert two["live_state"] == "reported_locked"
    assert two["live_detail"] == "reported locked just now by 2 users"
    assert (two["live_source"], two["reported_by"], two["report_confirmed_by_staff"]) == (
        "reports",
        2,
        False,
    )
    assert two["open_state"] == "open"  # the timetable's own answer stays as it was
    assert "sig-station-1" not in two_open
    assert other["live_detail"] == two["live_detail"]
    assert "sig-station-1" not in _open_now(pair, pair.b, lon, lat)


def test_a_staff_confirmation_alone_flips_and_a_dismissal_unflips(pair: Pair) -> None:
    lon, lat = _station(pair, "sig-station-2")
    report_id = _report(pair, "sig-station-2")
    _staff(pair, report_id, "confirm")
    confirmed = _answer(pair, pair.a, lon, lat)
    _until_state(pair, pair.b, lon, lat, "reported_locked")
    _staff(pair, report_id, "dismiss")
    dismissed = _answer(pair, pair.a, lon, lat)
    _until_state(pair, pair.b, lon, lat, "open")
    assert confirmed["live_detail"] == "reported locked just now by 1 user, confirmed by staff"
    assert confirmed["report_confirmed_by_staff"] is True
    assert dismissed["live_state"] == "open"
    assert "sig-station-2" in _open_now(pair, pair.a, lon, lat)


def test_dismissing_one_of_two_reports_unflips(pair: Pair) -> None:
    lon, lat = _station(pair, "sig-station-3")
    first = _report(pair, "sig-station-3")
    _report(pair, "sig-station-3")
    flipped = _answer(pair, pair.a, lon, lat)["live_state"]
    _staff(pair, first, "dismiss")
    assert (flipped, _answer(pair, pair.a, lon, lat)["live_state"]) == ("reported_locked", "open")


def test_a_counted_report_is_pushed_to_the_other_servers_live_stream(pair: Pair) -> None:
    _station(pair, "sig-station-4")
    _report(pair, "sig-station-4")
    pushed: dict[str, Any] = {}
    listening = threading.Event()

    def listen() -> None:
        with pair.client(pair.b) as client, client.stream("GET", "/live") as stream:
            for name, data in live_events(stream):
                if name == "ready":
                    listening.set()
                elif data.get("id") == "sig-station-4" and name == "state":
                    pushed.update(data, at=time.monotonic())
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert listening.wait(10)
    _report(pair, "sig-station-4")
    reported = time.monotonic()
    listener.join(WITHIN_S + 2)
    assert pushed, "no state event reached the stream"
    assert pushed["live_state"] == "reported_locked"
    assert pushed["reported_by"] == 2
    assert pushed["at"] - reported < WITHIN_S


def test_a_hidden_facility_stays_hidden_when_reported(pair: Pair) -> None:
    _station(pair, "sig-public-5")  # what anonymous callers find nearest instead
    lon, lat = _station(pair, "sig-hidden-1", access="employees", organization=SECRET_ORG)
    for source in ("hash-a", "hash-b"):  # reported by callers who may see it
        pair.store.add_report(
            "sig-hidden-1", "locked_during_hours", note=None, source=source, token_hash=""
        )
    with pair.client(pair.b, pair.keys.org_a) as insider:
        deadline = time.monotonic() + WITHIN_S
        while nearest_props(insider, lon, lat)["live_state"] != "reported_locked":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with insider.stream("GET", "/live") as stream:
            inside = initial_states(stream)
    for url in (pair.a, pair.b):
        with pair.client(url) as anonymous:
            assert nearest_props(anonymous, lon, lat)["id"] != "sig-hidden-1"
            assert "sig-hidden-1" not in _open_now(pair, url, lon, lat)
            with anonymous.stream("GET", "/live") as stream:
                assert "sig-hidden-1" not in initial_states(stream)
    assert inside["sig-hidden-1"]["live_state"] == "reported_locked"
