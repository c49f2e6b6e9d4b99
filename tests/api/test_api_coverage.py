"""``/coverage...`` on the live server: counts only what the caller may see, problems, sites.

References: the facilities each caller may see by the written access rule
(``api_support.visible_rows``), located in districts by a geopandas spatial join, and
:func:`finder.coverage.coverage_table` / :func:`finder.siting.suggest_sites` run directly on
those facilities.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
from pathlib import Path

import geopandas as gpd
import httpx
import pandas as pd
import pytest
from api_support import SECRET_ID, SECRET_NAME, SECRET_ORG, Live, facility_rows, visible_rows

from finder.coverage import build_sample_grid, coverage_table
from geodata.boundaries import load_districts

HUANGPU = "310101"


@pytest.fixture(scope="module")
def districts() -> gpd.GeoDataFrame:
    return load_districts()


def _counted(organizations: frozenset[str] = frozenset()) -> pd.DataFrame:
    rows = visible_rows(facility_rows(), organizations=organizations)
    return rows[rows["status"] == "open"]


def _per_district(rows: pd.DataFrame, districts: gpd.GeoDataFrame) -> dict[str, int]:
    points = gpd.GeoDataFrame(
        rows[["id"]], geometry=gpd.points_from_xy(rows["lon"], rows["lat"]), crs="EPSG:4326"
    )
    joined = gpd.sjoin(points, districts[["adcode", "geometry"]], predicate="within")
    return {str(k): int(v) for k, v in joined["adcode"].value_counts().items()}


def _table(client: httpx.Client, **params: object) -> dict[str, object]:
    r = client.get("/coverage", params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    body: dict[str, object] = r.json()
    return body


def test_anonymous_counts_public_open_facilities_only(
    anon: httpx.Client, districts: gpd.GeoDataFrame
) -> None:
    body = _table(anon, radius_m=1000)
    meta = body["metadata"]
    assert isinstance(meta, dict)
    rows = _counted()
    assert meta["counted"] == {
        "kinds": ["mother_room", "worker_station", "rest_stop"],
        "access": ["public"],
        "status": ["open"],
        "facilities": len(rows),
    }
    assert meta["area_basis"] and meta["radius_m"] == 1000
    expected = _per_district(rows, districts)
    got = {d["adcode"]: d["facilities"] for d in body["districts"]}  # type: ignore[attr-defined]
    assert got == {a: expected.get(a, 0) for a in districts["adcode"]}
    assert SECRET_NAME not in str(body) and SECRET_ID not in str(body)


def test_key_of_an_organisation_counts_its_employees_rooms(
    live: Live, anon: httpx.Client, districts: gpd.GeoDataFrame
) -> None:
    with live.client(live.keys.org_a) as client:
        insider = _table(client, radius_m=1000, adcode=HUANGPU)
    outsider = _table(anon, radius_m=1000, adcode=HUANGPU)
    rows = _counted(frozenset({SECRET_ORG}))
    assert insider["metadata"]["counted"]["facilities"] == len(rows)  # type: ignore[index]
    assert insider["metadata"]["counted"]["access"] == ["public", "employees"]  # type: ignore[index]
    (inside,) = insider["districts"]  # type: ignore[misc]
    (outside,) = outsider["districts"]  # type: ignore[misc]
    assert inside["facilities"] == _per_district(rows, districts)[HUANGPU]
    assert inside["facilities"] == outside["facilities"] + 1  # the secret room
    assert inside["n_mother_room"] == outside["n_mother_room"] + 1


def test_table_equals_coverage_table_on_the_visible_facilities(
    anon: httpx.Client, districts: gpd.GeoDataFrame
) -> None:
    body = _table(anon, radius_m=1500, kind="rest_stop", adcode="310106")
    rows = _counted()
    rows = rows[rows["kind"] == "rest_stop"]
    grid = build_sample_grid(districts)
    expected = coverage_table(
        grid, rows["lon"], rows["lat"], radius_m=1500, kind=rows["kind"], adcodes=["310106"]
    ).to_json()["districts"]
    assert body["metadata"]["counted"]["kinds"] == ["rest_stop"]  # type: ignore[index]
    assert len(body["districts"]) == len(expected)
    for got, want in zip(body["districts"], expected, strict=True):
        assert got == pytest.approx(want)


def test_csv_and_geojson(anon: httpx.Client) -> None:
    r = anon.get("/coverage", params={"f": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(r.text)))
    assert len(table) == 16 and {"adcode", "covered_share", "largest_gap_m"} <= set(table[0])
    for row in table:  # rounded as the CLI's CSV: 0.1 percentage point, whole metres
        assert re.fullmatch(r"\d(\.\d{1,3})?", row["covered_share"]), row["covered_share"]
        assert re.fullmatch(r"\d*", row["largest_gap_m"]), row["largest_gap_m"]
    r = anon.get("/coverage", params={"f": "geojson", "adcode": HUANGPU})
    assert r.headers["content-type"].startswith("application/geo+json")
    collection = r.json()
    assert [f["properties"]["adcode"] for f in collection["features"]] == [HUANGPU]
    assert collection["features"][0]["geometry"]["type"] in {"Polygon", "MultiPolygon"}
    assert collection["metadata"]["counted"]["access"] == ["public"]


@pytest.mark.parametrize(
    ("path", "params", "status", "parameter"),
    [
        ("/coverage", {"radius_m": 99}, 400, "radius_m"),
        ("/coverage", {"radius_m": 5001}, 400, "radius_m"),
        ("/coverage", {"radius_m": "far"}, 400, "radius_m"),
        ("/coverage", {"adcode": "31x101"}, 400, "adcode"),
        ("/coverage", {"adcode": "999999"}, 404, None),
        ("/coverage", {"f": "xml"}, 400, "f"),
        ("/coverage/gaps", {}, 400, "adcode"),
        ("/coverage/gaps", {"adcode": "999999"}, 404, None),
        ("/coverage/suggest", {"adcode": HUANGPU, "n": 0}, 400, "n"),
        ("/coverage/suggest", {"adcode": HUANGPU, "n": 51}, 400, "n"),
        ("/coverage/suggest", {"adcode": HUANGPU, "objective": "votes"}, 400, "objective"),
        ("/coverage/suggest", {"adcode": "999999"}, 404, None),
        ("/coverage/map", {"adcode": "999999"}, 404, None),
        ("/coverage/map", {"radius_m": 20}, 400, "radius_m"),
    ],
)
def test_problems(
    anon: httpx.Client, path: str, params: dict[str, object], status: int, parameter: str | None
) -> None:
    r = anon.get(path, params=params)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["status"] == status
    if parameter is not None:
        assert parameter in [e.get("parameter") for e in problem["errors"]]


def test_gaps(anon: httpx.Client) -> None:
    r = anon.get("/coverage/gaps", params={"adcode": HUANGPU, "radius_m": 300})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    gaps = r.json()
    assert gaps["metadata"]["counted"]["access"] == ["public"]
    assert gaps["features"], "300 m leaves gaps in Huangpu"
    areas = [f["properties"]["area_m2"] for f in gaps["features"]]
    assert areas == sorted(areas, reverse=True)
    assert all(f["properties"]["adcode"] == HUANGPU for f in gaps["features"])


def test_suggest(anon: httpx.Client) -> None:
    r = anon.get("/coverage/suggest", params={"adcode": HUANGPU, "radius_m": 500, "n": 3})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/geo+json")
    sites = r.json()
    assert len(sites["features"]) == 3
    meta = sites["metadata"]
    assert meta["after_share"] >= meta["before_share"]
    assert meta["counted"]["access"] == ["public"]
    assert [f["properties"]["rank"] for f in sites["features"]] == [1, 2, 3]
    assert all(f["geometry"]["type"] == "Point" for f in sites["features"])


def test_coverage_map_serves_its_assets(anon: httpx.Client) -> None:
    r = anon.get("/coverage/map", params={"adcode": HUANGPU, "radius_m": 800})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "/static/" in r.text
    assert SECRET_NAME not in r.text
    for asset in sorted(set(re.findall(r'src="(/static/[^"]+)"', r.text)))[:3]:
        assert anon.get(asset).status_code == 200


def test_atlas_pdf_counts_what_the_caller_may_see(anon: httpx.Client, tmp_path: Path) -> None:
    r = anon.get("/coverage/atlas.pdf", params={"paper": "A4"}, timeout=300)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    out = tmp_path / "atlas.pdf"
    out.write_bytes(r.content)
    info = subprocess.run(["pdfinfo", str(out)], check=True, capture_output=True, text=True)
    assert "Pages:           17" in info.stdout  # the overview and 16 districts
    first = subprocess.run(
        ["pdftotext", "-f", "1", "-l", "1", str(out), "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "仅计对公众开放的设施" in "".join(first.split())
    assert SECRET_NAME not in r.text
    r = anon.get("/coverage/atlas.pdf", params={"paper": "A5"})
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem")
