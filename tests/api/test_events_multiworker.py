"""Two server processes on one store (each backend): a signed ``occupied`` event posted to one
shows in the other's ``/nearest`` and on its ``/live`` stream (what the map listens to) within
one second."""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Iterator
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
)

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
