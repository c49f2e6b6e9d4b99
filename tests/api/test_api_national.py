"""``/coverage/national`` on the live server (both backends): three provinces of real counties and
a population raster; counts only what the caller may see; CSV and the printed sheet.

References: the open facilities each caller may see by the written access rule
(``api_support.visible_rows``), located in the counties by a geopandas spatial join.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import httpx
import numpy as np
import pandas as pd
import pytest
import rasterio
from api_support import Live, facility_rows, visible_rows
from national_support import three_provinces_file

from geodata.boundaries import load_districts

#: 40 x 40 cells of 50 persons over central Shanghai (121.38-121.58 E, 31.12-31.32 N).
PEOPLE = 40 * 40 * 50


def server_env(tmp: Path) -> dict[str, str]:
    """Three provinces' counties and a population raster for this module's server."""
    raster = tmp / "people.tif"
    profile = {"driver": "GTiff", "width": 40, "height": 40, "count": 1, "dtype": "float32"}
    transform = rasterio.Affine(0.005, 0.0, 121.38, 0.0, -0.005, 31.32)
    with rasterio.open(raster, "w", crs="EPSG:4326", transform=transform, **profile) as out:
        out.write(np.full((40, 40), 50.0, dtype=np.float32), 1)
    return {
        "FINDER_BOUNDARIES": str(three_provinces_file(tmp)),
        "FINDER_POPULATION_RASTER": str(raster),
    }


@pytest.fixture(scope="module")
def counties(tmp_path_factory: pytest.TempPathFactory) -> gpd.GeoDataFrame:
    return load_districts(three_provinces_file(tmp_path_factory.mktemp("provinces")))


def _located(rows: pd.DataFrame, counties: gpd.GeoDataFrame) -> pd.Series:
    open_rows = rows[rows["status"] == "open"]
    points = gpd.GeoDataFrame(
        open_rows[["id"]],
        geometry=gpd.points_from_xy(open_rows["lon"], open_rows["lat"]),
        crs="EPSG:4326",
    )
    joined = gpd.sjoin(points, counties[["province_adcode", "geometry"]], predicate="within")
    return joined["province_adcode"].value_counts()


def _client(live: Live, key: str | None = None) -> httpx.Client:
    """A client with a long timeout: the first national answer builds the table."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=live.url, headers=headers, timeout=180.0)


def _national(client: httpx.Client) -> dict[str, object]:
    r = client.get("/coverage/national", params={"radius_m": 1000})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    body: dict[str, object] = r.json()
    return body


@pytest.fixture(scope="module")
def anon(edit_live: Live) -> Iterator[httpx.Client]:
    with _client(edit_live) as client:
        yield client


def test_provinces_sum_their_counties_and_count_what_the_caller_sees(
    edit_live: Live, anon: httpx.Client, counties: gpd.GeoDataFrame
) -> None:
    body = _national(anon)
    meta = body["metadata"]
    assert isinstance(meta, dict)
    assert meta["population_basis"] == "population raster people.tif"
    assert meta["counted"]["access"] == ["public"]
    provinces = pd.DataFrame(body["provinces"]).set_index("adcode")
    ranked = pd.DataFrame(body["counties"])
    assert provinces.index.tolist() == ["310000", "330000", "410000"]
    assert ranked["rank"].tolist() == list(range(1, 42))
    public = _located(visible_rows(facility_rows()), counties)
    for adcode, row in provinces.iterrows():
        mine = ranked[ranked["adcode"].str[:2] == str(adcode)[:2]]
        assert row["facilities"] == mine["facilities"].sum() == public.get(adcode, 0)
        assert row["people"] == mine["people"].sum()
    # the raster's people all live in Shanghai: its share is theirs, the others have none
    assert provinces.at["310000", "people"] == PEOPLE
    assert provinces.at["410000", "people"] == 0
    assert body["provinces"][2]["pop_covered_share"] is None  # nobody to share: null
    with _client(edit_live, edit_live.keys.editor) as editor:
        everything = pd.DataFrame(_national(editor)["provinces"]).set_index("adcode")
    seen_all = _located(facility_rows(), counties)
    assert everything.at["310000", "facilities"] == seen_all["310000"]
    assert seen_all["310000"] > public["310000"]


def test_csv_is_one_table_with_levels(anon: httpx.Client) -> None:
    r = anon.get("/coverage/national", params={"f": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    table = pd.read_csv(io.StringIO(r.text), dtype={"adcode": str})
    assert table["level"].value_counts().to_dict() == {"county": 41, "province": 3, "city": 3}
    assert (table["covered_share"].dropna() == table["covered_share"].dropna().round(3)).all()


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="poppler-utils missing")
def test_printed_sheet(anon: httpx.Client, tmp_path: Path) -> None:
    r = anon.get("/coverage/national.pdf", params={"paper": "A4"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    pdf = tmp_path / "national.pdf"
    pdf.write_bytes(r.content)
    text = subprocess.run(
        ["pdftotext", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout
    text = "".join(text.split())
    assert (
        "各省级单位排名" in text
        and "上海市" in text
        and "人口栅格（populationrasterpeople.tif）" in text
    )
    bad = anon.get("/coverage/national", params={"radius_m": 1})
    assert bad.status_code == 400
    assert bad.headers["content-type"].startswith("application/problem+json")
