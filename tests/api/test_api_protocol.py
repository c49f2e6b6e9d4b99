"""Protocol correctness (issue 11, items 6, 8, 9, 10): paging links, the service region, the
access log, HEAD / OPTIONS, unknown parameters, the OpenAPI types, server paths, long URLs.

Against the live uvicorn servers of both store backends (``live``, ``edit_live``).
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pandas as pd
import pytest
from api_support import CENTRE, Live, facility_rows, visible_rows
from fastapi import FastAPI

from api.errors import add_exception_handlers
from api.middleware import ServiceMiddleware
from api.protocol import MAX_URL_BYTES

PROBLEM = "application/problem+json"
#: Points the service must refuse (issue 11) and points just off the coast it must accept.
OUTSIDE = {"null island": (0.0, 0.0), "Paris": (2.3522, 48.8566), "Seoul": (126.978, 37.5665)}
HONG_KONG_PIER = (114.1605, 22.2875)


@pytest.fixture(scope="module")
def editor(edit_live: Live) -> Iterator[httpx.Client]:
    """A client with the editor key (edit + read-all)."""
    with edit_live.client(edit_live.keys.editor) as client:
        yield client


def _facility(fid: str, lon: float, lat: float) -> dict[str, Any]:
    return {
        "id": fid,
        "name": "协议测试驿站",
        "kind": "rest_stop",
        "lon": lon,
        "lat": lat,
        "access": "public",
    }


def _is_problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    return body


# --- 6. paging keeps every filter -----------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        [("kind", "mother_room"), ("kind", "rest_stop")],
        [("status", "open"), ("status", "temporarily_closed")],
        [
            ("kind", "worker_station"),
            ("kind", "rest_stop"),
            ("status", "open"),
            ("status", "closed"),
        ],
    ],
)
def test_paging_links_keep_repeated_filters(
    anon: httpx.Client, params: list[tuple[str, str]]
) -> None:
    public = visible_rows(facility_rows())
    wanted = pd.Series(True, index=public.index)
    for name in {n for n, _ in params}:
        wanted &= public[name].isin([v for n, v in params if n == name])
    expected = sorted(public.loc[wanted, "id"])
    url: str | None = str(
        httpx.URL("/collections/facilities/items", params=[*params, ("limit", 9)])
    )
    seen: list[str] = []
    matched = []
    while url:
        page = anon.get(url).json()
        matched.append(page["numberMatched"])
        seen += [f["id"] for f in page["features"]]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
        if url:
            query = httpx.URL(url).params
            for name in {n for n, _ in params}:
                assert query.get_list(name) == [v for n, v in params if n == name]
    assert len(matched) > 3 and set(matched) == {len(expected)}
    assert seen == expected


def test_prev_link_keeps_repeated_filters(anon: httpx.Client) -> None:
    page = anon.get(
        "/collections/facilities/items",
        params=[("kind", "mother_room"), ("kind", "rest_stop"), ("offset", 20), ("limit", 10)],
    ).json()
    prev = next(link["href"] for link in page["links"] if link["rel"] == "prev")
    query = httpx.URL(prev).params
    assert query.get_list("kind") == ["mother_room", "rest_stop"]
    assert (query["offset"], query["limit"]) == ("10", "10")


# --- 8. the service region ------------------------------------------------------------------


@pytest.mark.parametrize("place", sorted(OUTSIDE))
def test_nearest_outside_the_service_region_is_refused(anon: httpx.Client, place: str) -> None:
    lon, lat = OUTSIDE[place]
    body = _is_problem(anon.get("/nearest", params={"lon": lon, "lat": lat}), 400)
    assert "service region" in body["detail"] and "Hong Kong" in body["detail"]
    assert [e["parameter"] for e in body["errors"]] == ["lon", "lat"]
    walk = anon.get("/nearest", params={"lon": lon, "lat": lat, "metric": "walk"})
    _is_problem(walk, 400)


def test_nearest_inside_the_service_region_answers(anon: httpx.Client) -> None:
    for params in (
        {"lon": HONG_KONG_PIER[0], "lat": HONG_KONG_PIER[1]},
        {"lon": 121.4781, "lat": 31.2284, "crs": "gcj02"},  # People's Square on Amap
    ):
        r = anon.get("/nearest", params=params)
        assert r.status_code == 200, r.text


@pytest.mark.parametrize("place", sorted(OUTSIDE))
def test_edits_outside_the_service_region_are_refused(
    editor: httpx.Client, edit_live: Live, place: str
) -> None:
    lon, lat = OUTSIDE[place]
    fid = f"region-{place.split()[0].lower()}"
    body = _is_problem(editor.post("/facilities", json=_facility(fid, lon, lat)), 422)
    assert [e["field"] for e in body["errors"]] == ["lon", "lat"]
    assert "service region" in body["detail"]
    with pytest.raises(LookupError):
        edit_live.store.get(fid)
    # Moving an existing facility out of the region, by PATCH or PUT, is refused too.
    before = editor.get("/facilities/public-1")
    etag = before.headers["etag"]
    patch = editor.patch(
        "/facilities/public-1", json={"lon": lon, "lat": lat}, headers={"If-Match": etag}
    )
    _is_problem(patch, 422)
    whole = before.json()
    replacement = {k: whole[k] for k in ("id", "name", "kind", "access")} | {"lon": lon, "lat": lat}
    _is_problem(
        editor.put("/facilities/public-1", json=replacement, headers={"If-Match": etag}), 422
    )
    assert edit_live.store.get("public-1").version == whole["version"]


def test_edit_at_a_ferry_pier_is_accepted(editor: httpx.Client) -> None:
    r = editor.post("/facilities", json=_facility("region-pier", *HONG_KONG_PIER))
    assert r.status_code == 201, r.text
    deleted = editor.delete("/facilities/region-pier", headers={"If-Match": r.headers["etag"]})
    assert deleted.status_code == 204


def test_import_rejects_rows_outside_the_service_region(editor: httpx.Client) -> None:
    rows = {
        "汉城驿站": (126.978, 37.5665),
        "神户驿站": (135.1955, 34.6901),
        "河内驿站": (105.8542, 21.0285),
        "乌兰巴托驿站": (106.9057, 47.8864),
        "长洲码头驿站": (114.0287, 22.2103),
    }
    text = "名称,类型,开放对象,经度,纬度\n" + "".join(
        f"{name},爱心驿站,公开,{lon},{lat}\n" for name, (lon, lat) in rows.items()
    )
    r = editor.post(
        "/facilities/import",
        files={"file": ("list.csv", io.BytesIO(text.encode()), "text/csv")},
        data={"dry_run": "true"},
    )
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["accepted"] == 1
    reasons = [i["reason"] for i in report["issues"] if i["level"] == "rejected"]
    assert len(reasons) == 4 and all("outside the service region" in t for t in reasons)


# --- 9. the access log ----------------------------------------------------------------------


def _ping_app() -> FastAPI:
    app = FastAPI()
    add_exception_handlers(app)

    @app.get("/ping/{anything}")
    def ping(anything: str) -> dict[str, str]:
        return {"pong": anything}

    @app.get("/fail/{anything}")
    def fail(anything: str) -> dict[str, str]:
        raise RuntimeError(anything)

    return app


def test_control_characters_are_escaped_in_every_log_line(caplog: pytest.LogCaptureFixture) -> None:
    logged = _ping_app()
    logged.add_middleware(ServiceMiddleware, body_timeout_s=30)

    async def call(path: str) -> int:
        transport = httpx.ASGITransport(app=logged, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return (await client.get(path)).status_code

    forged = "x%0A2026-01-01 INFO api.access: GET admin 200 0.1ms root%0D%1B[2J"
    with caplog.at_level(logging.INFO, logger="api"):
        assert asyncio.run(call("/ping/" + forged)) == 200
        assert asyncio.run(call("/fail/" + forged)) == 500
    lines = [r.getMessage() for r in caplog.records if r.name in ("api.access", "api.errors")]
    assert len(lines) == 3  # two access lines and one error line
    for line in lines:
        assert not any(ord(c) < 32 or ord(c) == 127 for c in line), line
        assert "\\x0a2026-01-01" in line and "\\x0d\\x1b[2J" in line


# --- 10. HEAD, OPTIONS, unknown parameters, OpenAPI, paths, long URLs --------------------------

GET_URLS = [
    "/",
    "/health",
    "/conformance",
    "/collections",
    "/collections/facilities/items?limit=3&kind=rest_stop&kind=mother_room",
    "/collections/facilities/items/public-1",
    "/collections/districts/items/310101",
    f"/nearest?lon={CENTRE[0]}&lat={CENTRE[1]}",
    "/coverage?radius_m=500&f=csv",
    "/map?lang=en",
    "/openapi.json",
    "/static/facilitymap/facilitymap.css",
    "/no/such/route",
]


@pytest.mark.parametrize("url", GET_URLS)
def test_head_answers_like_get_without_a_body(anon: httpx.Client, url: str) -> None:
    got = anon.get(url)
    head = anon.head(url)
    assert head.status_code == got.status_code
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers["content-length"] == str(len(got.content))
    assert head.content == b""


def test_head_on_a_route_without_get_is_405(editor: httpx.Client) -> None:
    r = editor.head("/facilities")
    assert r.status_code == 405 and r.headers["content-type"] == PROBLEM and r.content == b""


@pytest.mark.parametrize(
    ("url", "methods"),
    [
        ("/facilities/public-1", "DELETE, GET, HEAD, OPTIONS, PATCH, PUT"),
        ("/facilities", "OPTIONS, POST"),
        ("/facilities/public-1/audit", "GET, HEAD, OPTIONS"),
        ("/nearest", "GET, HEAD, OPTIONS"),
        ("/collections/facilities/items", "GET, HEAD, OPTIONS"),
    ],
)
def test_options_lists_the_allowed_methods(anon: httpx.Client, url: str, methods: str) -> None:
    r = anon.options(url)
    assert r.status_code == 204 and r.content == b""
    assert r.headers["allow"] == methods


def test_options_on_no_route_is_404(anon: httpx.Client) -> None:
    _is_problem(anon.options("/no/such/route"), 404)


def test_cors_preflight_still_answered(anon: httpx.Client) -> None:
    r = anon.options(
        "/facilities/public-1",
        headers={
            "Origin": "http://app.example",
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "If-Match, Authorization",
        },
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "http://app.example"
    assert "PUT" in r.headers["access-control-allow-methods"]


@pytest.mark.parametrize(
    ("url", "unknown", "allowed"),
    [
        ("/coverage?radius=-1", "radius", "radius_m"),
        (f"/nearest?lon={CENTRE[0]}&lat={CENTRE[1]}&radius_m=5", "radius_m", "max_distance_m"),
        ("/collections/facilities/items?kind=rest_stop&name=x", "name", "bbox-crs"),
        ("/collections?limit=5", "limit", "f"),
        ("/health?verbose=1", "verbose", "none"),
    ],
)
def test_unknown_query_parameters_are_named(
    anon: httpx.Client, url: str, unknown: str, allowed: str
) -> None:
    body = _is_problem(anon.get(url), 400)
    assert body["errors"] == [
        {"parameter": unknown, "reason": body["errors"][0]["reason"]},
    ]
    assert allowed in body["errors"][0]["reason"] and repr(unknown) in body["detail"]


def test_unknown_parameters_on_editing_routes(editor: httpx.Client) -> None:
    r = editor.post("/facilities?crs=wgs84&dry_run=1", json=_facility("region-x", *CENTRE))
    body = _is_problem(r, 400)
    assert body["errors"][0]["parameter"] == "dry_run" and "crs" in body["errors"][0]["reason"]


def test_declared_parameters_still_pass(anon: httpx.Client) -> None:
    for url in (
        "/collections/facilities/items?f=json&bbox=121,31,122,32&bbox-crs=CRS84&crs=EPSG:4326"
        "&kind=rest_stop&access=public&status=open&adcode=310101&datetime=../2100-01-01"
        "&limit=2&offset=1",
        "/map?kind=rest_stop&district=310101&amenity=wifi&base_map=none&lang=en&lon=121.47"
        "&lat=31.23&crs=wgs84&zoom=12&minutes=15",
        "/coverage?radius_m=800&kind=rest_stop&adcode=310101&f=json",
    ):
        assert anon.get(url).status_code == 200, url


def test_openapi_publishes_real_types(anon: httpx.Client) -> None:
    document = anon.get("/openapi.json").json()
    params = {
        (path, verb, p["name"]): p
        for path, operations in document["paths"].items()
        for verb, operation in operations.items()
        for p in operation.get("parameters", ())
    }
    for key, param in params.items():
        assert "anyOf" not in param["schema"] and "nullable" not in param["schema"], key
        assert param["schema"].get("type"), key
    schema = {key: p["schema"] for key, p in params.items()}
    assert schema["/nearest", "get", "max_distance_m"]["maximum"] == 50_000
    assert schema["/nearest", "get", "min_stars"].items() >= {"minimum": 1, "maximum": 5}.items()
    assert schema["/nearest", "get", "kind"]["items"]["enum"] == [
        "mother_room",
        "worker_station",
        "rest_stop",
    ]
    assert schema["/map", "get", "lon"]["minimum"] == -180
    assert schema["/map", "get", "zoom"]["maximum"] == 18
    assert schema["/coverage", "get", "adcode"]["pattern"] == r"^\d{2}(\d{2}){0,2}$"
    assert "json" in schema["/collections/facilities/items", "get", "f"]["enum"]
    assert schema["/collections/facilities/items", "get", "status"]["items"]["enum"]
    assert "EPSG:4326" in schema["/collections/facilities/items", "get", "bbox-crs"]["enum"]
    assert schema["/collections/districts/items", "get", "adcode"]["items"]["pattern"]
    bad = anon.get("/collections/districts/items", params={"adcode": "31010"})
    assert _is_problem(bad, 400)["errors"][0]["parameter"] == "adcode"
    for verb in ("put", "patch", "delete"):
        assert params["/facilities/{facility_id}", verb, "If-Match"]["required"] is True
    patch = document["components"]["schemas"]["FacilityPatch"]["properties"]["format"]
    assert patch["nullable"] is True and None in patch["enum"]  # null clears a field


def test_bad_geopackage_upload_shows_no_server_path(editor: httpx.Client) -> None:
    r = editor.post(
        "/facilities/import",
        files={"file": ("list.gpkg", io.BytesIO(b"not a GeoPackage at all" * 100), "")},
        data={"dry_run": "true"},
    )
    body = _is_problem(r, 422)
    text = r.text
    assert "/tmp" not in text and "finder-import" not in text, text
    assert "upload.gpkg" in body["detail"] or "readable" in body["detail"]


@pytest.mark.parametrize("size", [MAX_URL_BYTES + 1, 60_000])
def test_long_url_is_a_414_problem(anon: httpx.Client, size: int) -> None:
    base = f"/nearest?lon={CENTRE[0]}&lat={CENTRE[1]}&kind="
    url = base + "x" * (size - len(base))
    body = _is_problem(anon.get(url), 414)
    assert f"{MAX_URL_BYTES:,}" in body["detail"]
    assert anon.get(f"/nearest?lon={CENTRE[0]}&lat={CENTRE[1]}").status_code == 200
