"""OGC API - Features from real clients (GDAL's OAPIF driver, OWSLib) and by hand."""

from __future__ import annotations

import httpx
import numpy as np
import pyogrio
import pytest
from api_support import SECRET_ID, Live, facility_rows, visible_rows
from owslib.ogcapi.features import Features

from geodata.boundaries import load_districts

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"


def _public_ids() -> set[str]:
    return set(visible_rows(facility_rows())["id"])


def test_landing_conformance_collections(anon: httpx.Client) -> None:
    landing = anon.get("/").json()
    rels = {link["rel"]: link for link in landing["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= set(rels)
    assert rels["service-desc"]["type"].startswith("application/vnd.oai.openapi+json")
    api = anon.get(httpx.URL(rels["service-desc"]["href"]).path).json()
    assert api["openapi"].startswith("3.0.")
    conf = anon.get("/conformance").json()["conformsTo"]
    for cls in ("core", "geojson", "oas30"):
        assert f"http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/{cls}" in conf
    collections = anon.get("/collections").json()["collections"]
    assert {c["id"] for c in collections} == {"facilities", "districts"}
    facilities = anon.get("/collections/facilities").json()
    assert any(link["rel"] == "items" for link in facilities["links"])
    public = visible_rows(facility_rows())
    bbox = facilities["extent"]["spatial"]["bbox"][0]
    expected = [public["lon"].min(), public["lat"].min(), public["lon"].max(), public["lat"].max()]
    np.testing.assert_allclose(bbox, expected, atol=1e-6)


def test_gdal_oapif_reads_every_public_facility(live: Live) -> None:
    layers = {name for name, _ in pyogrio.list_layers(f"OAPIF:{live.url}/")}
    assert {"facilities", "districts"} <= layers
    frame = pyogrio.read_dataframe(f"OAPIF:{live.url}/", layer="facilities")
    assert len(frame) == len(_public_ids())
    assert set(frame["id"]) == _public_ids()
    rows = facility_rows().set_index("id")
    got = frame.set_index("id")
    np.testing.assert_allclose(got.geometry.x, rows.loc[got.index, "lon"], atol=1e-7)
    np.testing.assert_allclose(got.geometry.y, rows.loc[got.index, "lat"], atol=1e-7)
    assert (got["name"] == rows.loc[got.index, "name"]).all()
    districts = pyogrio.read_dataframe(f"OAPIF:{live.url}/", layer="districts")
    assert sorted(districts["adcode"]) == sorted(load_districts()["adcode"])


def test_gdal_oapif_bbox_filter(live: Live) -> None:
    box = (121.40, 31.15, 121.55, 31.30)
    frame = pyogrio.read_dataframe(f"OAPIF:{live.url}/", layer="facilities", bbox=box)
    public = visible_rows(facility_rows())
    inside = public[
        (public["lon"] >= box[0])
        & (public["lon"] <= box[2])
        & (public["lat"] >= box[1])
        & (public["lat"] <= box[3])
    ]
    assert set(frame["id"]) == set(inside["id"])


def test_owslib_reads_every_public_facility(live: Live) -> None:
    api = Features(live.url)
    assert {c["id"] for c in api.collections()["collections"]} >= {"facilities", "districts"}
    assert api.collection("facilities")["id"] == "facilities"
    seen: list[str] = []
    offset = 0
    while True:
        page = api.collection_items("facilities", limit=50, offset=offset)
        seen += [f["id"] for f in page["features"]]
        assert page["numberMatched"] == len(_public_ids())
        if not any(link["rel"] == "next" for link in page["links"]):
            break
        offset += 50
    assert len(seen) == len(set(seen))
    assert set(seen) == _public_ids()
    item = api.collection_item("facilities", "public-1")
    assert item["id"] == "public-1"


def test_paging_links_walk_the_collection(anon: httpx.Client) -> None:
    url: str | None = "/collections/facilities/items?limit=37&kind=rest_stop"
    seen: list[str] = []
    while url:
        page = anon.get(url).json()
        assert page["numberReturned"] == len(page["features"]) <= 37
        seen += [f["id"] for f in page["features"]]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
    public = visible_rows(facility_rows())
    assert seen == sorted(public.loc[public["kind"] == "rest_stop", "id"])


@pytest.mark.parametrize("adcode", ["310101", "310115"])
def test_property_filters(anon: httpx.Client, adcode: str) -> None:
    body = anon.get(
        "/collections/facilities/items", params={"adcode": adcode, "limit": 10_000}
    ).json()
    public = visible_rows(facility_rows())
    expected = set(public.loc[public["adcode"] == adcode, "id"])
    assert {f["id"] for f in body["features"]} == expected
    assert body["numberMatched"] == len(expected)


def test_crs_parameter_swaps_axes_for_epsg_4326(anon: httpx.Client) -> None:
    plain = anon.get("/collections/facilities/items/public-1").json()
    r = anon.get("/collections/facilities/items/public-1", params={"crs": EPSG_4326})
    assert r.headers["content-crs"] == f"<{EPSG_4326}>"
    assert r.json()["geometry"]["coordinates"] == plain["geometry"]["coordinates"][::-1]
    lon, lat = plain["geometry"]["coordinates"]
    body = anon.get(
        "/collections/facilities/items",
        params={
            "bbox": f"{lat - 1e-4},{lon - 1e-4},{lat + 1e-4},{lon + 1e-4}",
            "bbox-crs": EPSG_4326,
            "crs": EPSG_4326,
        },
    ).json()
    assert "public-1" in [f["id"] for f in body["features"]]
    bad = anon.get("/collections/facilities/items", params={"crs": "EPSG:3857"})
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["parameter"] == "crs"


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 10_001}, "limit"),
        ({"offset": -1}, "offset"),
        ({"bbox": "1,2,3"}, "bbox"),
        ({"bbox": "121,31,120,32"}, "bbox"),
        ({"bbox": "a,b,c,d"}, "bbox"),
        ({"kind": "spa"}, "kind"),
        ({"f": "html"}, "f"),
        ({"datetime": "yesterday"}, "datetime"),
    ],
)
def test_item_parameter_errors(
    anon: httpx.Client, params: dict[str, object], parameter: str
) -> None:
    r = anon.get("/collections/facilities/items", params=params)
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["errors"][0]["parameter"] == parameter


def test_item_has_etag_and_secret_is_404(anon: httpx.Client, live: Live) -> None:
    r = anon.get("/collections/facilities/items/public-1")
    assert r.headers["etag"].strip('"').isdigit()
    with live.client(live.keys.org_a) as client:
        assert client.get(f"/collections/facilities/items/{SECRET_ID}").status_code == 200


def test_district_items(anon: httpx.Client) -> None:
    body = anon.get("/collections/districts/items", params={"limit": 100}).json()
    assert body["numberMatched"] == len(load_districts())
    one = anon.get("/collections/districts/items/310101").json()
    assert one["properties"]["adcode"] == "310101"
    assert anon.get("/collections/districts/items/999999").status_code == 404
