"""Support of the door-event tests: test facilities, devices, signed posts, the live stream."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx

from api.auth import create_device, device_signing_key
from geodata.events import event_log
from geodata.schema import Facility
from geodata.store import FacilityStore, GeoPackageStore

#: Test facilities lie east of the sample facilities (121.10-121.90), one 0.01 degree apart.
_places = itertools.count()


def add_facility(store: FacilityStore, fid: str, kind: str, **fields: Any) -> tuple[float, float]:
    """Create a public facility, open around the clock, at a place of its own; its lon/lat."""
    n = next(_places)
    lon, lat = round(121.93 + 0.01 * (n % 5), 6), round(31.50 + 0.01 * (n // 5), 6)
    store.create(
        Facility(
            id=fid,
            name=f"测试{fid}",
            kind=kind,
            lon=lon,
            lat=lat,
            adcode="310115",
            district="浦东新区",
            opening_hours="24/7",
            **fields,
        ),
        actor="test",
    )
    return lon, lat


def store_env(store: FacilityStore) -> dict[str, str]:
    """The environment that names a server's store to the command line."""
    if isinstance(store, GeoPackageStore):
        return {"FINDER_STORE": str(store.path)}
    return {"FINDER_DATABASE_URL": store.database_url}  # type: ignore[attr-defined]


def add_device(store: FacilityStore, fid: str) -> str:
    """Register a device for a facility; its secret."""
    return create_device(event_log(store), fid)[1]


def signed(secret: str, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """A body and its headers, signed as a device does."""
    body = json.dumps(payload).encode()
    signature = hmac.new(device_signing_key(secret), body, hashlib.sha256).hexdigest()
    return body, {"X-Signature-SHA256": signature, "Content-Type": "application/json"}


def event(type_: str, **more: Any) -> dict[str, Any]:
    """An event happening now."""
    return {"type": type_, "at": dt.datetime.now(dt.UTC).isoformat(), **more}


def post(client: httpx.Client, fid: str, secret: str, payload: dict[str, Any]) -> httpx.Response:
    body, headers = signed(secret, payload)
    return client.post(f"/facilities/{fid}/events", content=body, headers=headers)


def post_once_known(
    client: httpx.Client, fid: str, secret: str, payload: dict[str, Any]
) -> httpx.Response:
    """Post the first event of a new device: servers read new devices within a second, until
    then they answer 401 (and store nothing), so try again for a few seconds."""
    deadline = time.monotonic() + 5
    while True:
        response = post(client, fid, secret, payload)
        if response.status_code != 401 or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


def nearest_props(client: httpx.Client, lon: float, lat: float, **params: Any) -> dict[str, Any]:
    """Properties (and ``id``) of the nearest facility to a point."""
    response = client.get("/nearest", params={"lon": lon, "lat": lat, "k": 1, **params})
    response.raise_for_status()
    feature = response.json()["features"][0]
    return {"id": feature["id"], **feature["properties"]}


def _nearest_id(client: httpx.Client, lon: float, lat: float) -> str | None:
    """The id of the nearest facility to a point; None while the server's index has none (a
    server over an empty store answers before its poller has seen the first facility)."""
    response = client.get("/nearest", params={"lon": lon, "lat": lat, "k": 1})
    response.raise_for_status()
    features = response.json()["features"]
    return str(features[0]["id"]) if features else None


def wait_for_facility(client: httpx.Client, fid: str, lon: float, lat: float) -> None:
    """Wait until the server indexed a facility created in its store."""
    deadline = time.monotonic() + 10
    while _nearest_id(client, lon, lat) != fid:
        assert time.monotonic() < deadline, f"{fid} did not reach the server's index"
        time.sleep(0.05)


def live_events(response: httpx.Response) -> Iterator[tuple[str, dict[str, Any]]]:
    """The events of a ``/live`` stream (name, data), as they come."""
    name = ""
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            yield name, json.loads(line[len("data: ") :])


def initial_states(response: httpx.Response) -> dict[str, dict[str, Any]]:
    """The states a ``/live`` stream starts with (until its ``ready`` event), by id."""
    states = {}
    for name, data in live_events(response):
        if name == "ready":
            return states
        states[data["id"]] = data
    raise AssertionError("the stream ended before its ready event")
