"""The coverage web map: no CDN, every layer present, colours from the coverage table.

The browser tests load the page in Debian's headless Chromium from the loopback server of
``conftest.py`` and read pixel colours from screenshots (written to ``artifacts/maps/``).
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
import shapely.geometry
import shapely.ops
from PIL import Image

from finder.coverage import SampleGrid, build_sample_grid, coverage_layers, coverage_table
from finder.siting import suggest_sites
from geodata.boundaries import district_by_adcode, load_districts
from geodata.errors import InvalidInput, UnknownDistrict
from maps.coveragemap import (
    GAP_HATCH_COLOUR,
    SHARE_CLASSES,
    coverage_map,
    coverage_map_html,
    share_colour,
)

JINGAN = "310106"


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
    for name in ("覆盖率（分区）", "服务空白", "设施", "建议新址", "图例"):
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


def test_legend_states_the_class_breaks_and_the_page_has_a_title(
    setup: tuple[SampleGrid, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    grid, lon, lat, kind = setup
    page = coverage_map_html(grid, lon, lat, kind=kind, radius_m=800)
    legend = page[page.index('class="coverage-legend"') :]
    lower = 0
    for index, (upper, colour) in enumerate(SHARE_CLASSES):
        upper_pct = round(upper * 100)
        assert f'data-share-class="{index}" style="background:{colour}"' in legend
        assert f"{lower}–{upper_pct}%" in legend
        lower = upper_pct
    assert 'class="coverage-title"' in page and "职工服务设施覆盖图" in page
    assert "800 米内覆盖率" in page


def test_district_labels_sit_inside_their_districts(
    setup: tuple[SampleGrid, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    grid, lon, lat, kind = setup
    page = coverage_map_html(grid, lon, lat, kind=kind)
    choropleth = next(
        layer
        for layer in _geojson_layers(page)
        if any("covered_share" in f["properties"] for f in layer["features"])
    )
    for feature in choropleth["features"]:
        props = feature["properties"]
        point = shapely.Point(props["label_lon"], props["label_lat"])
        assert shapely.geometry.shape(feature["geometry"]).contains(point), props["name"]
        assert props["share_class"] == _class_of(props["covered_share"])


def _class_of(share: float) -> int:
    return next(i for i, (upper, _) in enumerate(SHARE_CLASSES) if share <= upper)


# --- in Chromium -------------------------------------------------------------------------------


def _open(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("html[data-coverage-ready]", state="attached", timeout=30_000)


def _screenshot(page: Any) -> Image.Image:
    return Image.open(io.BytesIO(page.screenshot())).convert("RGB")


def _rgb(colour: str) -> tuple[int, int, int]:
    return (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16))


def _close(a: tuple[int, ...], b: tuple[int, ...], tolerance: int = 2) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def _centre_pixel(shot: Image.Image, box: dict[str, float], scale: float) -> tuple[int, ...]:
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    return tuple(shot.getpixel((round(x * scale), round(y * scale))))  # type: ignore[arg-type]


def _box_colours(
    shot: Image.Image, x: float, y: float, half: float, scale: float
) -> list[tuple[int, ...]]:
    crop = shot.crop(
        (
            round((x - half) * scale),
            round((y - half) * scale),
            round((x + half) * scale),
            round((y + half) * scale),
        )
    )
    return [tuple(c) for c in np.asarray(crop).reshape(-1, 3).tolist()]


_SAMPLE_POINTS_JS = """([mapName, candidates]) => {
  const map = window[mapName], origin = map.getContainer().getBoundingClientRect();
  const blocked = [...document.querySelectorAll(
      '.coverage-label, .coverage-legend, .coverage-title, .leaflet-control')]
    .map(e => e.getBoundingClientRect());
  const found = {};
  for (const [adcode, colour, lon, lat] of candidates) {
    if (adcode in found) continue;
    const p = map.latLngToContainerPoint([lat, lon]);
    const x = p.x + origin.left, y = p.y + origin.top;
    if (x < 10 || y < 10 || x > innerWidth - 10 || y > innerHeight - 10) continue;
    if (blocked.some(b => x > b.left - 8 && x < b.right + 8 && y > b.top - 8 && y < b.bottom + 8))
      continue;
    // the topmost interactive element around the point is the district's fill
    const clear = [[0, 0], [6, 0], [-6, 0], [0, 6], [0, -6]].every(([dx, dy]) => {
      const e = document.elementFromPoint(x + dx, y + dy);
      return e && e.tagName === 'path' && e.getAttribute('fill') === colour;
    });
    if (clear) found[adcode] = [x, y];
  }
  return found;
}"""


def _candidates(
    grid: SampleGrid, lon: np.ndarray, lat: np.ndarray, gaps: dict[str, Any]
) -> list[tuple[str, str, float, float]]:
    """Grid points inside each district, clear of gaps and facility markers (WGS-84)."""
    gap_area = shapely.union_all([shapely.geometry.shape(f["geometry"]) for f in gaps["features"]])
    markers = shapely.union_all(shapely.buffer(shapely.points(lon, lat), 0.003))
    table = coverage_table(grid, lon, lat).table.set_index("adcode")
    out = []
    for adcode, polygon in zip(grid.districts["adcode"], grid.districts.geometry, strict=True):
        clear = polygon.buffer(-0.002).difference(gap_area.buffer(0.002)).difference(markers)
        west, south, east, north = clear.bounds
        xs, ys = np.meshgrid(np.arange(west, east, 0.002), np.arange(south, north, 0.002))
        points = shapely.points(xs.ravel(), ys.ravel())
        inside = points[shapely.contains(clear, points)]
        colour = share_colour(float(table.loc[adcode, "covered_share"]))
        out += [(str(adcode), colour, p.x, p.y) for p in inside]
    return out


@pytest.mark.browser
def test_legend_colours_are_the_colours_on_screen(
    setup: tuple[SampleGrid, np.ndarray, np.ndarray, np.ndarray],
    local_server: Any,
    page_factory: Any,
    artifacts_dir: Path,
) -> None:
    grid, lon, lat, kind = setup
    fmap = coverage_map(grid, lon, lat, kind=kind, asset_mode="served")
    page, log = page_factory(viewport={"width": 1000, "height": 700})
    _open(page, local_server.publish("/coverage-desktop.html", fmap.get_root().render()))
    scale = page.evaluate("devicePixelRatio")
    gaps = coverage_layers(grid, lon, lat, radius_m=1000.0)["gaps"]
    points = page.evaluate(_SAMPLE_POINTS_JS, [fmap.get_name(), _candidates(grid, lon, lat, gaps)])
    shot = _screenshot(page)
    shot.save(artifacts_dir / "coverage_desktop.png")
    assert sorted(points) == sorted(grid.districts["adcode"])  # a clear spot in every district

    table = coverage_table(grid, lon, lat).table.set_index("adcode")
    classes = set()
    for adcode, (x, y) in points.items():
        index = _class_of(float(table.loc[adcode, "covered_share"]))
        classes.add(index)
        swatch = page.locator(f'.coverage-legend [data-share-class="{index}"]').bounding_box()
        on_screen = _box_colours(shot, x, y, 1, scale)
        in_legend = _centre_pixel(shot, swatch, scale)
        assert all(_close(c, in_legend) for c in on_screen), (adcode, on_screen[0], in_legend)
        assert _close(in_legend, _rgb(SHARE_CLASSES[index][1])), in_legend
    assert len(classes) >= 2

    # gaps: the hatch colour of the legend swatch is drawn inside the largest gap, over the fill
    largest = max(
        (shapely.geometry.shape(f["geometry"]) for f in gaps["features"]), key=lambda g: g.area
    )
    inner = shapely.ops.polylabel(max(getattr(largest, "geoms", [largest]), key=lambda g: g.area))
    x, y = page.evaluate(
        """([name, lat, lon]) => {
             const m = window[name], o = m.getContainer().getBoundingClientRect();
             const p = m.latLngToContainerPoint([lat, lon]);
             return [p.x + o.left, p.y + o.top]; }""",
        [fmap.get_name(), inner.y, inner.x],
    )
    hatch = _rgb(GAP_HATCH_COLOUR)
    swatch = page.locator('.coverage-legend [data-legend="gaps"]').bounding_box()
    legend_colours = _box_colours(
        shot, swatch["x"] + swatch["width"] / 2, swatch["y"] + swatch["height"] / 2, 5, scale
    )
    assert any(_close(c, hatch) for c in legend_colours)
    assert any(_close(c, hatch) for c in _box_colours(shot, x, y, 6, scale))
    assert [u for u in log.requests if not u.startswith((local_server.base_url, "data:"))] == []
    assert log.page_errors == [] and log.console_errors == []


@pytest.mark.browser
@pytest.mark.parametrize("asset_mode", ["served", "inline"])
def test_labels_are_readable_and_do_not_overlap(
    setup: tuple[SampleGrid, np.ndarray, np.ndarray, np.ndarray],
    local_server: Any,
    page_factory: Any,
    asset_mode: str,
) -> None:
    grid, lon, lat, kind = setup
    fmap = coverage_map(grid, lon, lat, kind=kind, asset_mode=asset_mode)
    page, log = page_factory(viewport={"width": 1000, "height": 700})
    own = local_server.publish(f"/coverage-labels-{asset_mode}.html", fmap.get_root().render())
    _open(page, own)
    if asset_mode == "inline":  # a standalone file: nothing but the page itself
        assert [u for u in log.requests if not u.startswith("data:")] == [own]
    names = set(grid.districts["name"])
    # at the fitted zoom every district is named; zoomed out, labels that would overlap are hidden
    for zoom_out, least in ((0, len(names)), (2, 1)):
        page.evaluate(
            "([name, out]) => { const m = window[name]; m.setZoom(m.getZoom() - out, "
            "{animate: false}); }",
            [fmap.get_name(), zoom_out],
        )
        labels = page.eval_on_selector_all(
            ".coverage-label",
            """nodes => nodes.map(n => { const r = n.getBoundingClientRect(), shown =
                 n.checkVisibility(); return [n.textContent, shown, r.left, r.top, r.right,
                 r.bottom]; })""",
        )
        assert {next(n for n in names if text.startswith(n)) for text, *_ in labels} == names
        shown = [box for _, visible, *box in labels if visible]
        assert len(shown) >= least, zoom_out
        for i, a in enumerate(shown):
            for b in shown[i + 1 :]:
                assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)
    assert len(shown) < len(names)  # zoomed out, some had to go


@pytest.mark.browser
def test_legend_folds_away_on_a_phone(
    setup: tuple[SampleGrid, np.ndarray, np.ndarray, np.ndarray],
    local_server: Any,
    page_factory: Any,
    artifacts_dir: Path,
) -> None:
    grid, lon, lat, kind = setup
    html = coverage_map_html(grid, lon, lat, kind=kind, asset_mode="served")
    page, log = page_factory(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    _open(page, local_server.publish("/coverage-phone.html", html))
    page.screenshot(path=str(artifacts_dir / "coverage_phone_folded.png"))
    legend = page.locator(".coverage-legend")
    folded = legend.bounding_box()
    assert folded is not None and folded["height"] <= 48 and folded["width"] <= 160
    assert not page.locator(".coverage-legend [data-share-class]").first.is_visible()
    title = page.locator(".coverage-title").bounding_box()
    assert title is not None and title["x"] >= 0 and title["x"] + title["width"] <= 390

    page.locator(".coverage-legend summary").tap()
    swatches = page.locator(".coverage-legend [data-share-class]")
    assert swatches.first.is_visible()
    opened = legend.bounding_box()
    assert opened is not None and opened["height"] > 100
    assert opened["y"] >= 0 and opened["y"] + opened["height"] <= 844
    page.screenshot(path=str(artifacts_dir / "coverage_phone_open.png"))
    assert log.page_errors == [] and log.console_errors == []
