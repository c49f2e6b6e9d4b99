"""``/nearest?metric=walk`` and ``/facilities/{id}/isochrone`` on a live server with the
Jing'an / Huangpu street network, against :func:`finder.walk.nearest_walk` run directly on the
facilities each caller may see (by the written access rule of ``api_support.visible_rows``) and
against networkx shortest paths on the same street graph.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely
from api_support import (
    CENTRE,
    SECRET_ID,
    SECRET_NAME,
    SECRET_ORG,
    Live,
    ServerProcess,
    facility_rows,
    make_keys,
    visible_rows,
)

from finder.walk import WalkNetwork, build_facility_table, nearest_walk
from geodata.sample import sample_frame
from geodata.store import FacilityStore, GeoPackageStore
from geodata.streets import StreetNetwork, save_network, streets_from_osm

OSM = Path(__file__).resolve().parents[1] / "data" / "shanghai_jingan.osm"
BOX = (121.463, 31.2215, 121.484, 31.2395)  # inside the extract, WGS-84
N_EXTRA = 40
_numbers = itertools.count(1)


def _walk_rows() -> pd.DataFrame:
    """The standard test facilities plus ``N_EXTRA`` in the extract's box (mixed access)."""
    rng = np.random.default_rng(8)
    extra = sample_frame(N_EXTRA, seed=8).copy()
    extra["id"] = [f"walk-{i:02d}" for i in range(N_EXTRA)]
    extra["lon"] = rng.uniform(BOX[0], BOX[2], N_EXTRA)
    extra["lat"] = rng.uniform(BOX[1], BOX[3], N_EXTRA)
    return pd.concat([facility_rows(), extra], ignore_index=True)


@pytest.fixture(scope="module")
def streets() -> StreetNetwork:
    return streets_from_osm(OSM)


@pytest.fixture(scope="module")
def network(streets: StreetNetwork) -> WalkNetwork:
    return WalkNetwork(streets)


@pytest.fixture(scope="module", params=["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)])
def walk_live(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    streets: StreetNetwork,
) -> Iterator[Live]:
    """A live server with the test facilities, the extra ones and the walking network."""
    tmp = tmp_path_factory.mktemp("api-walk")
    drop = None
    if request.param == "gpkg":
        store: FacilityStore = GeoPackageStore(tmp / "store.gpkg")
        backend = {"FINDER_STORE": str(tmp / "store.gpkg")}
    else:
        from geodata.postgis import PostGISStore

        server = request.getfixturevalue("postgres_server")
        name = f"finder_walk_{os.getpid()}_{next(_numbers)}"
        url = server.create_database(name, template="finder_template")
        store = PostGISStore(url)
        backend = {"FINDER_DATABASE_URL": url}
        drop = (server, name)
    store.upsert_frame(_walk_rows(), actor="fixture")
    save_network(streets, tmp / "streets.npz")
    keys = make_keys(tmp / "keys.json")
    env = {
        "FINDER_API_KEYS_FILE": str(tmp / "keys.json"),
        "FINDER_LOG_LEVEL": "WARNING",
        "FINDER_INDEX_POLL_S": "0",
        "FINDER_STREETS": str(tmp / "streets.npz"),
        **backend,
    }
    try:
        with ServerProcess(env) as url:
            yield Live(url, keys, store, tmp / "keys.json")
    finally:
        store.close()
        if drop is not None:
            drop[0].drop_database(drop[1])


def _reference(
    network: WalkNetwork,
    lon: float,
    lat: float,
    *,
    k: int,
    kind: str | None = None,
    organizations: frozenset[str] = frozenset(),
    max_walk_m: float | None = None,
) -> list[tuple[str, float]]:
    """(id, walk_m) by finder.walk directly on the open facilities the viewer may see."""
    rows = visible_rows(_walk_rows(), organizations=organizations)
    rows = rows[rows["status"] == "open"]
    if kind:
        rows = rows[rows["kind"] == kind]
    table = build_facility_table(
        network, rows["lon"].to_numpy(float), rows["lat"].to_numpy(float), ids=list(rows["id"])
    )
    found = nearest_walk(network, table, lon, lat, k=k, max_walk_m=max_walk_m)
    return [(r.facility_id, r.walk_m) for r in found]


def _walk(client: httpx.Client, **params: object) -> dict[str, object]:
    r = client.get("/nearest", params={"metric": "walk", **params})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/geo+json")
    body: dict[str, object] = r.json()
    return body


POINTS = [(121.4737, 31.2304), (121.468, 31.235), (121.480, 31.225), (121.4655, 31.2238)]


@pytest.mark.parametrize(("lon", "lat"), POINTS)
@pytest.mark.parametrize(("k", "kind"), [(1, None), (5, None), (3, "rest_stop")])
def test_walk_equals_finder_walk_on_visible_facilities(
    walk_live: Live, network: WalkNetwork, lon: float, lat: float, k: int, kind: str | None
) -> None:
    params: dict[str, object] = {"lon": lon, "lat": lat, "k": k}
    if kind:
        params["kind"] = kind
    for key, orgs in ((None, frozenset()), (walk_live.keys.org_a, frozenset({SECRET_ORG}))):
        with walk_live.client(key) as client:
            body = _walk(client, **params)
        assert body["metric"] == "walk"
        expected = _reference(network, lon, lat, k=k, kind=kind, organizations=orgs)
        features = body["features"]
        assert isinstance(features, list)
        assert [f["id"] for f in features] == [e[0] for e in expected]
        for feature, (_, walk_m) in zip(features, expected, strict=True):
            props = feature["properties"]
            assert props["metric"] == "walk"
            assert props["walk_m"] == pytest.approx(walk_m, abs=0.006)
            assert props["walk_s"] == pytest.approx(walk_m / (4.8 / 3.6), abs=0.06)
            legs = props["origin_snap_m"] + props["network_m"] + props["facility_snap_m"]
            assert legs == pytest.approx(props["walk_m"], abs=0.02)
            assert props["walk_m"] >= props["distance_m"] - 0.1  # never shorter than a line
            if kind:
                assert props["kind"] == kind


def _networkx_walk(
    streets: StreetNetwork, network: WalkNetwork, a: tuple[float, float], b: tuple[float, float]
) -> float:
    """Whole walk between two points by networkx on the same street graph."""
    graph = nx.Graph()
    for u, v, length in zip(
        streets.edge_u.tolist(),
        streets.edge_v.tolist(),
        streets.edge_length_m.tolist(),
        strict=True,
    ):
        graph.add_edge(u, v, weight=length)
    snaps = [network.snap(*a), network.snap(*b)]
    for name, snap in zip(("a", "b"), snaps, strict=True):
        length = float(streets.edge_length_m[snap.edge])
        graph.add_edge(name, int(streets.edge_u[snap.edge]), weight=snap.fraction * length)
        graph.add_edge(name, int(streets.edge_v[snap.edge]), weight=(1 - snap.fraction) * length)
    if snaps[0].edge == snaps[1].edge:
        length = float(streets.edge_length_m[snaps[0].edge])
        graph.add_edge("a", "b", weight=abs(snaps[0].fraction - snaps[1].fraction) * length)
    along = float(nx.dijkstra_path_length(graph, "a", "b"))
    return snaps[0].snap_m + along + snaps[1].snap_m


@pytest.mark.parametrize(("lon", "lat"), POINTS[1:])
def test_walk_equals_networkx(
    anon_walk: httpx.Client, streets: StreetNetwork, network: WalkNetwork, lon: float, lat: float
) -> None:
    body = _walk(anon_walk, lon=lon, lat=lat, k=3)
    rows = _walk_rows().set_index("id")
    for feature in body["features"]:  # type: ignore[attr-defined]
        row = rows.loc[feature["id"]]
        expected = _networkx_walk(streets, network, (lon, lat), (row["lon"], row["lat"]))
        assert feature["properties"]["walk_m"] == pytest.approx(expected, abs=0.006)


@pytest.fixture(scope="module")
def anon_walk(walk_live: Live) -> Iterator[httpx.Client]:
    with walk_live.client() as client:
        yield client


def test_anonymous_never_walks_to_a_private_facility(
    walk_live: Live, anon_walk: httpx.Client
) -> None:
    # The employees-only room is the closest on foot from its own door...
    with walk_live.client(walk_live.keys.org_a) as client:
        insider = _walk(client, lon=CENTRE[0], lat=CENTRE[1], k=1)
    assert [f["id"] for f in insider["features"]] == [SECRET_ID]  # type: ignore[index]
    # ... and anonymous callers get public facilities only, however many they ask for.
    r = anon_walk.get(
        "/nearest", params={"metric": "walk", "lon": CENTRE[0], "lat": CENTRE[1], "k": 100}
    )
    assert r.status_code == 200
    assert SECRET_NAME not in r.text and SECRET_ID not in r.text
    features = r.json()["features"]
    assert len(features) > 10
    assert {f["properties"]["access"] for f in features} == {"public"}
    public_open = visible_rows(_walk_rows())
    assert {f["id"] for f in features} <= set(public_open["id"])


def test_walk_filters(walk_live: Live, anon_walk: httpx.Client, network: WalkNetwork) -> None:
    lon, lat = POINTS[1]
    limited = _walk(anon_walk, lon=lon, lat=lat, k=50, max_distance_m=800)
    expected = _reference(network, lon, lat, k=50, max_walk_m=800)
    assert [f["id"] for f in limited["features"]] == [e[0] for e in expected]  # type: ignore[index]
    assert all(f["properties"]["walk_m"] <= 800 for f in limited["features"])  # type: ignore[index]
    opened = _walk(anon_walk, lon=lon, lat=lat, k=5, open_now="true")
    assert all(f["properties"]["open_state"] == "open" for f in opened["features"])  # type: ignore[index]
    with_amenity = _walk(anon_walk, lon=lon, lat=lat, k=5, amenity="fridge")
    for feature in with_amenity["features"]:  # type: ignore[attr-defined]
        assert "fridge" in feature["properties"]["amenities"]


def test_off_network_point_falls_back_to_line(anon_walk: httpx.Client) -> None:
    params = {"lon": 121.80, "lat": 31.05, "k": 4}
    walk = _walk(anon_walk, **params)
    line = anon_walk.get("/nearest", params=params).json()
    assert walk["metric"] == "line" and walk["fallback"] == "off-network"
    assert [f["id"] for f in walk["features"]] == [f["id"] for f in line["features"]]  # type: ignore[index]
    for feature in walk["features"]:  # type: ignore[attr-defined]
        assert feature["properties"]["metric"] == "line"
        assert feature["properties"]["fallback"] == "off-network"
        assert "walk_m" not in feature["properties"]


def test_no_network_falls_back_to_line(anon: httpx.Client) -> None:
    params = {"lon": CENTRE[0], "lat": CENTRE[1], "k": 3}
    walk = _walk(anon, **params)
    line = anon.get("/nearest", params=params).json()
    assert walk["metric"] == "line" and walk["fallback"] == "no-network"
    assert [f["id"] for f in walk["features"]] == [f["id"] for f in line["features"]]  # type: ignore[index]
    r = anon.get("/facilities/public-1/isochrone")
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith("/no-network")


def _polygon(feature: dict[str, object]) -> shapely.Geometry:
    return shapely.geometry.shape(feature["geometry"])


def test_isochrone_contains_snapped_facility_and_grows(
    anon_walk: httpx.Client, network: WalkNetwork
) -> None:
    areas = []
    snap = network.snap(CENTRE[0] + 0.0008, CENTRE[1])  # public-1
    for minutes in (5, 10, 15):
        r = anon_walk.get("/facilities/public-1/isochrone", params={"minutes": minutes})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/geo+json")
        feature = r.json()
        assert feature["type"] == "Feature" and feature["id"] == "public-1"
        polygon = _polygon(feature)
        assert polygon.is_valid and polygon.contains(shapely.Point(snap.lon, snap.lat))
        areas.append(polygon)
    assert areas[0].area < areas[1].area < areas[2].area
    assert areas[2].buffer(1e-7).contains(areas[0])
    slow = _polygon(
        anon_walk.get(
            "/facilities/public-1/isochrone", params={"minutes": 15, "speed_kmh": 2.4}
        ).json()
    )
    assert slow.area < areas[2].area


def test_isochrone_hides_private_facilities(walk_live: Live, anon_walk: httpx.Client) -> None:
    hidden = anon_walk.get(f"/facilities/{SECRET_ID}/isochrone")
    missing = anon_walk.get("/facilities/no-such-facility/isochrone")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["type"] == missing.json()["type"]
    assert hidden.json()["detail"].replace(SECRET_ID, "X") == missing.json()["detail"].replace(
        "no-such-facility", "X"
    )
    with walk_live.client(walk_live.keys.org_a) as client:
        assert client.get(f"/facilities/{SECRET_ID}/isochrone").status_code == 200


@pytest.mark.parametrize("minutes", [0, 61, -5])
def test_isochrone_minutes_out_of_range(anon_walk: httpx.Client, minutes: int) -> None:
    r = anon_walk.get("/facilities/public-1/isochrone", params={"minutes": minutes})
    assert r.status_code == 400
    assert r.json()["errors"][0]["parameter"] == "minutes"


def test_isochrone_of_off_network_facility(walk_live: Live) -> None:
    rows = visible_rows(_walk_rows())
    far = rows[(rows["lon"] < 121.3) & (rows["status"] == "open")]
    with walk_live.client(walk_live.keys.editor) as client:
        r = client.get(f"/facilities/{far['id'].iloc[0]}/isochrone")
    assert r.status_code == 422
    assert r.json()["type"].endswith("/off-network")


def test_map_draws_isochrone(anon_walk: httpx.Client) -> None:
    r = anon_walk.get("/map", params={"isochrone": "public-1", "minutes": 10, "lang": "en"})
    assert r.status_code == 200
    assert "10 min walk" in r.text
    assert not re.search(
        r"""<(script|link|img)[^>]+(src|href)=["']?(https?:)?//""", r.text
    )  # no CDN
    hidden = anon_walk.get("/map", params={"isochrone": SECRET_ID})
    assert hidden.status_code == 404
