"""The coverage web map: no CDN, every layer present, colours from the coverage table."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from finder.coverage import SampleGrid, build_sample_grid, coverage_table
from finder.siting import suggest_sites
from geodata.boundaries import district_by_adcode, load_districts
from geodata.errors import InvalidInput, UnknownDistrict
from maps.coveragemap import SHARE_CLASSES, coverage_map, coverage_map_html, share_colour

JINGAN = "310106"
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def setup() -> tuple[SampleGrid, np.ndarray, np.ndarray, np.ndarray]:
    districts = load_districts()
    grid = build_sample_grid(districts[districts["adcode"].isin(["310101", JINGAN, "310109"])])
    geometry = district_by_adcode(districts, JINGAN).geometry
    rng = np.random.default_rng(4)
    west, south, east, north = geometry.bounds
    lon = rng.uniform(west - 0.01, east + 0.01, 40)
    lat = rng.uniform(south - 0.01, north + 0.01, 40)
    kind = rng.choice(["mother_room", "worker_station", "rest_stop"], 40)
    return grid, lon, lat, kind


def _geojson_layers(page: str) -> list[dict[str, Any]]:
    """The GeoJSON documents folium wrote into the page's script."""
    layers = []
    for match in re.finditer(r"geo_json_[0-9a-f]+_add\((\{.*?\})\);", page, flags=re.DOTALL):
        layers.append(json.loads(match.group(1)))
    return layers


def test_page_loads_nothing_from_the_network(
    setup: tuple[SampleGrid, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    grid, lon, lat, kind = setup
    page = coverage_map_html(grid, lon, lat, kind=kind)
    assert not re.search(r"<script[^>]+src=\"https?:", page)
    assert not re.search(r"<link[^>]+href=\"https?:", page)
    assert "L.map(" in page  # folium's map script runs on the inlined Leaflet
    assert "@font-face" in page
    served = coverage_map_html(grid, lon, lat, kind=kind, asset_mode="served", static_url="/s")
    assert '<script src="/s/leaflet/leaflet.js"></script>' in served


def test_layers_carry_the_figures(
    setup: tuple[SampleGrid, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    grid, lon, lat, kind = setup
    sites = suggest_sites(grid, JINGAN, lon, lat, n_sites=2)
    page = coverage_map_html(grid, lon, lat, kind=kind, adcode=JINGAN, sites=sites)
    table = coverage_table(grid, lon, lat).table.set_index("adcode")
    layers = _geojson_layers(page)
    choropleth = next(
        layer
        for layer in layers
        if any("covered_share" in f["properties"] for f in layer["features"])
    )
    shares = {
        f["properties"]["adcode"]: f["properties"]["covered_share"] for f in choropleth["features"]
    }
    for adcode, share in shares.items():
        assert share == pytest.approx(table.loc[adcode, "covered_share"])
    proposed = next(
        layer for layer in layers if any("rank" in f["properties"] for f in layer["features"])
    )
    coords = [f["geometry"]["coordinates"] for f in proposed["features"]]
    np.testing.assert_allclose(coords, np.column_stack([sites.lon, sites.lat]), atol=1e-9)
    for name in ("覆盖率（分区）", "1,000 米服务范围", "服务空白", "设施", "建议新址", "图例"):
        assert name in page or json.dumps(name)[1:-1] in page, name  # layer names are escaped


@pytest.mark.parametrize(("share", "index"), [(0.0, 0), (0.2, 0), (0.21, 1), (0.79, 3), (1.0, 4)])
def test_share_colour_classes(share: float, index: int) -> None:
    assert share_colour(share) == SHARE_CLASSES[index][1]
    assert share_colour(None) == share_colour(float("nan"))


def test_bad_requests(setup: tuple[SampleGrid, np.ndarray, np.ndarray, np.ndarray]) -> None:
    grid, lon, lat, _ = setup
    with pytest.raises(InvalidInput):
        coverage_map(grid, lon, lat, kind=["castle"] * lon.size)
    with pytest.raises(InvalidInput):
        coverage_map(grid, lon, lat, asset_mode="cdn")  # type: ignore[arg-type]
    with pytest.raises(UnknownDistrict):
        coverage_map(grid, lon, lat, adcode="310115")


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium")
def test_page_renders_offline_in_chromium(
    setup: tuple[SampleGrid, np.ndarray, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    grid, lon, lat, kind = setup
    path = tmp_path / "coverage.html"
    coverage_map(grid, lon, lat, kind=kind, adcode=JINGAN).save(str(path))
    requests: list[str] = []
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1000, "height": 700})
        page.on("request", lambda r: requests.append(r.url))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(path.as_uri())
        page.wait_for_selector(".leaflet-interactive")
        paths = page.locator("path.leaflet-interactive").count()
        browser.close()
    assert errors == []
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
    assert paths > 40  # districts + facility circles
