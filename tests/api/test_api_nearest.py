"""``GET /nearest`` against a brute-force geodesic search (pyproj) over the visible facilities."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import pytest
from api_support import CENTRE, SECRET_ID, Live, brute_nearest, facility_rows, visible_rows

from finder.hours import HolidayCalendar, state_at
from geodata.crs import from_wgs84, to_wgs84
from geodata.navigation import navigation_links


@pytest.mark.parametrize(
    ("lon", "lat", "k", "kind"),
    [
        (121.4737, 31.2304, 5, None),
        (121.80, 31.05, 10, "rest_stop"),
        (121.20, 31.40, 1, "mother_room"),
        (121.50, 31.30, 100, None),
    ],
)
def test_nearest_matches_brute_force(
    anon: httpx.Client, lon: float, lat: float, k: int, kind: str | None
) -> None:
    params: dict[str, object] = {"lon": lon, "lat": lat, "k": k}
    if kind:
        params["kind"] = kind
    r = anon.get("/nearest", params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/geo+json")
    body = r.json()
    expected = brute_nearest(facility_rows(), lon, lat, k=k, kind=kind)
    got = [(f["id"], f["properties"]["distance_m"]) for f in body["features"]]
    assert [g[0] for g in got] == [e[0] for e in expected]
    np.testing.assert_allclose([g[1] for g in got], [e[1] for e in expected], atol=0.051)
    for feature, (_, _, bearing) in zip(body["features"], expected, strict=True):
        diff = (feature["properties"]["bearing_deg"] - bearing + 180) % 360 - 180
        assert abs(diff) <= 0.051
        props = feature["properties"]
        assert props["walk_s_est"] == pytest.approx(props["distance_m"] / (4.8 / 3.6), abs=1)
        assert props["access"] == "public"


def test_geometry_and_links_in_each_system(anon: httpx.Client) -> None:
    rows = facility_rows().set_index("id")
    qlon, qlat = (v[0] for v in from_wgs84(np.array([CENTRE[0]]), np.array([CENTRE[1]]), "gcj02"))
    wgs = anon.get("/nearest", params={"lon": CENTRE[0], "lat": CENTRE[1], "k": 3}).json()
    gcj = anon.get("/nearest", params={"lon": qlon, "lat": qlat, "k": 3, "crs": "gcj02"}).json()
    assert [f["id"] for f in gcj["features"]] == [f["id"] for f in wgs["features"]]
    assert gcj["crs"] == "gcj02"
    for feature in gcj["features"]:
        row = rows.loc[feature["id"]]
        x, y = from_wgs84(np.array([row["lon"]]), np.array([row["lat"]]), "gcj02")
        assert feature["geometry"]["coordinates"] == pytest.approx([x[0], y[0]], abs=1e-6)
        assert feature["properties"]["crs"] == "gcj02"
        nav = feature["properties"]["navigation"]
        amap = parse_qs(urlsplit(nav["amap"]).query)
        assert amap["coordinate"] == ["gaode"]
        alon, alat = (float(v) for v in amap["position"][0].split(","))
        assert (alon, alat) == pytest.approx((x[0], y[0]), abs=2e-6)
        baidu = parse_qs(urlsplit(nav["baidu"]).query)
        assert baidu["coord_type"] == ["bd09ll"]
        blat, blon = (float(v) for v in baidu["location"][0].split(","))
        bx, by = from_wgs84(np.array([row["lon"]]), np.array([row["lat"]]), "bd09")
        assert (blon, blat) == pytest.approx((bx[0], by[0]), abs=2e-6)
        glat, glon = (float(v) for v in nav["geo"][4:].split("?")[0].split(","))
        assert (glon, glat) == pytest.approx((row["lon"], row["lat"]), abs=2e-6)
    bd = anon.get(
        "/nearest", params={"lon": CENTRE[0], "lat": CENTRE[1], "k": 1, "crs": "bd09"}
    ).json()
    qx, qy = to_wgs84(np.array([CENTRE[0]]), np.array([CENTRE[1]]), "bd09")
    expected = brute_nearest(facility_rows(), float(qx[0]), float(qy[0]), k=1)
    assert bd["features"][0]["id"] == expected[0][0]


def test_open_state_and_open_now(anon: httpx.Client) -> None:
    rows = facility_rows().set_index("id")
    calendar = HolidayCalendar.default().with_provisional()  # as the service (load_calendar)
    before = dt.datetime.now(ZoneInfo("Asia/Shanghai")).replace(tzinfo=None)
    body = anon.get("/nearest", params={"lon": 121.5, "lat": 31.2, "k": 30}).json()
    after = dt.datetime.now(ZoneInfo("Asia/Shanghai")).replace(tzinfo=None)
    for feature in body["features"]:
        expr = rows.loc[feature["id"], "opening_hours"]
        allowed = {state_at(expr, before, calendar).value, state_at(expr, after, calendar).value}
        assert feature["properties"]["open_state"] in allowed
    open_now = anon.get(
        "/nearest", params={"lon": 121.5, "lat": 31.2, "k": 30, "open_now": "true"}
    ).json()
    assert all(f["properties"]["open_state"] == "open" for f in open_now["features"])


def test_max_distance_and_amenity(anon: httpx.Client) -> None:
    body = anon.get(
        "/nearest",
        params={"lon": 121.47, "lat": 31.23, "k": 100, "max_distance_m": 3000, "amenity": "toilet"},
    ).json()
    expected = [
        e
        for e in brute_nearest(facility_rows(), 121.47, 31.23, k=100, amenity="toilet")
        if e[1] <= 3000
    ]
    assert [f["id"] for f in body["features"]] == [e[0] for e in expected]


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"lon": 121.4, "lat": 31.2, "k": 0}, "k"),
        ({"lon": 121.4, "lat": 31.2, "k": 101}, "k"),
        ({"lon": 200, "lat": 31.2}, "lon"),
        ({"lon": 121.4}, "lat"),
        ({"lon": "abc", "lat": 31.2}, "lon"),
        ({"lon": 121.4, "lat": 31.2, "crs": "utm"}, "crs"),
        ({"lon": 121.4, "lat": 31.2, "max_distance_m": 50_001}, "max_distance_m"),
        ({"lon": 121.4, "lat": 31.2, "max_distance_m": 0}, "max_distance_m"),
        ({"lon": 121.4, "lat": 31.2, "kind": "spa"}, "kind"),
        ({"lon": 121.4, "lat": 31.2, "amenity": "pool"}, "amenity"),
        ({"lon": "nan", "lat": 31.2}, "lon"),
    ],
)
def test_bad_parameters_are_problems(
    anon: httpx.Client, params: dict[str, object], parameter: str
) -> None:
    r = anon.get("/nearest", params=params)
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["status"] == 400 and problem["instance"] == "/nearest"
    assert parameter in [e.get("parameter") for e in problem["errors"]]


def test_private_keys_see_their_facilities(live: Live) -> None:
    params = {"lon": CENTRE[0], "lat": CENTRE[1], "k": 1}
    with live.client(live.keys.org_a) as client:
        assert client.get("/nearest", params=params).json()["features"][0]["id"] == SECRET_ID
    with live.client(live.keys.member) as client:
        ids = [f["id"] for f in client.get("/nearest", params=params | {"k": 3}).json()["features"]]
        assert SECRET_ID not in ids and "members-1" in ids
    expected = visible_rows(facility_rows(), member=True)
    assert "members-1" in set(expected["id"])


def test_navigation_links_are_those_of_geodata_navigation(anon: httpx.Client) -> None:
    rows = facility_rows().set_index("id")
    body = anon.get("/nearest", params={"lon": 121.45, "lat": 31.25, "k": 100}).json()
    assert len(body["features"]) == 100
    for feature in body["features"]:
        row = rows.loc[feature["id"]]
        expected = navigation_links(float(row["lon"]), float(row["lat"]), str(row["name"]))
        assert feature["properties"]["navigation"] == expected
