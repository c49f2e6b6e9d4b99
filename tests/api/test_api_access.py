"""An anonymous client cannot learn of an ``employees`` facility by any route.

Every check runs twice: anonymously (the facility must not show) and with a key of the host
organisation (it must show, by the very same search), so a check that cannot see the facility at
all would fail.
"""

from __future__ import annotations

import json

import httpx
import pytest
from api_support import (
    CENTRE,
    SECRET_ID,
    SECRET_NAME,
    SECRET_ORG,
    Live,
    facility_rows,
    visible_rows,
)


def _mentions_secret(text: str) -> bool:
    needles = (SECRET_ID, SECRET_NAME, json.dumps(SECRET_NAME)[1:-1], "SECRET-ADDRESS")
    return any(n in text for n in needles)


@pytest.fixture(params=["anonymous", "org"])
def who(request: pytest.FixtureRequest, live: Live) -> tuple[str, httpx.Client]:
    key = None if request.param == "anonymous" else live.keys.org_a
    client = live.client(key)
    request.addfinalizer(client.close)
    return request.param, client


def _expect(who: str, text: str) -> None:
    assert _mentions_secret(text) is (who == "org"), text[:300]


def test_nearest(who: tuple[str, httpx.Client]) -> None:
    name, client = who
    for params in (
        {"k": 100},
        {"k": 1, "kind": "mother_room"},
        {"k": 5, "open_now": "true"},
        {"k": 100, "max_distance_m": 10},
        {"k": 100, "crs": "gcj02"},
    ):
        r = client.get("/nearest", params={"lon": CENTRE[0], "lat": CENTRE[1]} | params)
        assert r.status_code == 200
        _expect(name, r.text)


def test_items_and_counts(who: tuple[str, httpx.Client]) -> None:
    name, client = who
    everything = client.get("/collections/facilities/items", params={"limit": 10_000})
    _expect(name, everything.text)
    organizations = frozenset({SECRET_ORG}) if name == "org" else frozenset()
    expected = visible_rows(facility_rows(), organizations=organizations)
    assert everything.json()["numberMatched"] == len(expected)
    for params in (
        {"access": "employees"},
        {"adcode": "310101", "kind": "mother_room"},
        {"bbox": f"{CENTRE[0] - 1e-3},{CENTRE[1] - 1e-3},{CENTRE[0] + 1e-3},{CENTRE[1] + 1e-3}"},
    ):
        r = client.get("/collections/facilities/items", params=params | {"limit": 1})
        matched = r.json()["numberMatched"]
        rows = expected
        if "access" in params:
            rows = rows[rows["access"] == "employees"]
        if "adcode" in params:
            rows = rows[(rows["adcode"] == "310101") & (rows["kind"] == "mother_room")]
        if "bbox" in params:
            rows = rows[
                ((rows["lon"] - CENTRE[0]).abs() <= 1e-3)
                & ((rows["lat"] - CENTRE[1]).abs() <= 1e-3)
            ]
        assert matched == len(rows)


def test_item_by_id_is_indistinguishable_from_missing(who: tuple[str, httpx.Client]) -> None:
    name, client = who
    secret = client.get(f"/collections/facilities/items/{SECRET_ID}")
    missing = client.get("/collections/facilities/items/secret-employees-2")
    if name == "org":
        assert secret.status_code == 200
        return
    assert secret.status_code == missing.status_code == 404
    assert secret.headers.keys() == missing.headers.keys()
    strip = {"detail", "instance"}
    assert {k: v for k, v in secret.json().items() if k not in strip} == {
        k: v for k, v in missing.json().items() if k not in strip
    }
    assert secret.json()["detail"].replace(SECRET_ID, "?") == missing.json()["detail"].replace(
        "secret-employees-2", "?"
    )
    assert client.get(f"/facilities/{SECRET_ID}").status_code == 401


def test_collection_metadata(who: tuple[str, httpx.Client]) -> None:
    _, client = who
    for path in ("/collections", "/collections/facilities", "/health", "/"):
        r = client.get(path)
        assert r.status_code == 200
        assert not _mentions_secret(r.text)


def test_map_html(who: tuple[str, httpx.Client]) -> None:
    name, client = who
    r = client.get("/map")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    _expect(name, r.text)
    filtered = client.get("/map", params={"kind": "mother_room", "district": "310101"})
    _expect(name, filtered.text)


def test_map_centre_and_zoom(anon: httpx.Client) -> None:
    from geodata.crs import from_wgs84

    glon, glat = from_wgs84(121.4737, 31.2304, "gcj02")
    r = anon.get("/map", params={"lon": glon, "lat": glat, "crs": "gcj02", "zoom": 16})
    assert r.status_code == 200
    assert "31.2304" in r.text and "121.4737" in r.text  # centred on the WGS-84 point
    bad = anon.get("/map", params={"lon": 121.47})
    assert bad.status_code == 400
    assert bad.headers["content-type"].startswith("text/html")  # the map's error page
    assert "lat" in bad.text
    assert anon.get("/map", params={"zoom": 30}).status_code == 400
