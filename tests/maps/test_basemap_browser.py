"""The served base map in headless Chromium at phone size, from a real uvicorn server.

The service (``create_app`` with a GeoPackage store and the base map built from the Jing'an
extract) runs in a subprocess on a free 127.0.0.1 port (``live_server``); Chromium is another
process.
The screenshot is written to ``artifacts/maps/basemap_phone.png``.
"""

from __future__ import annotations

import io
import itertools
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pytest
from live_server import ServerProcess
from PIL import Image

from geodata.basemap import ROAD_CLASSES, basemap_from_osm
from geodata.sample import sample_frame
from geodata.store import GeoPackageStore

pytestmark = pytest.mark.browser

JINGAN = Path(__file__).resolve().parents[1] / "data" / "shanghai_jingan.osm"
PHONE = {"width": 390, "height": 844}
#: Fill colours of streets in basemap.js (white streets; pale yellow motorways and trunks).
ROAD_FILLS = ((255, 255, 255), (251, 236, 200))
BACKGROUND = (243, 241, 237)
#: Colour of street names in basemap.js.
LABEL_INK = (92, 88, 83)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("basemap-browser")
    store = tmp / "store.gpkg"
    frame = sample_frame(60, seed=5)
    # five facilities in view, on the street map
    frame.loc[frame.index[:5], "lon"] = [121.4700, 121.4760, 121.4722, 121.4790, 121.4745]
    frame.loc[frame.index[:5], "lat"] = [31.2330, 31.2280, 31.2262, 31.2335, 31.2318]
    frame["status"] = "open"
    writer = GeoPackageStore(store)
    writer.upsert_frame(frame, actor="fixture")
    writer.close()
    basemap_from_osm(JINGAN, tmp / "store.gpkg.basemap.pmtiles")  # found beside the store
    with ServerProcess({"FINDER_STORE": str(store), "FINDER_LOG_LEVEL": "WARNING"}) as url:
        yield url


def _roads() -> list[tuple[str, list[tuple[float, float]]]]:
    """(highway, WGS-84 points) of the extract's streets."""
    root = ET.parse(JINGAN).getroot()
    nodes = {
        n.get("id"): (float(n.get("lon", 0)), float(n.get("lat", 0))) for n in root.iter("node")
    }
    roads = []
    for way in root.iter("way"):
        tags = {t.get("k"): t.get("v") for t in way.iter("tag")}
        if tags.get("highway") in ROAD_CLASSES:
            roads.append((str(tags["highway"]), [nodes[nd.get("ref")] for nd in way.iter("nd")]))
    return roads


def _near(colour: np.ndarray, wanted: tuple[int, int, int], tolerance: int = 6) -> bool:
    return bool(np.abs(colour.astype(int) - np.array(wanted)).max() <= tolerance)


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance of each point of ``p`` (n x 2) to segment ``a``-``b``, pixels."""
    ab = b - a
    t = np.clip(((p - a) @ ab) / max(float(ab @ ab), 1e-9), 0, 1)
    return np.hypot(*(p - (a + t[:, None] * ab)).T)


def test_phone_map_paints_streets_from_our_own_tiles(
    service: str, page_factory: Any, artifacts_dir: Path
) -> None:
    page, log = page_factory(viewport=PHONE, device_scale_factor=1)
    page.goto(f"{service}/map?lon=121.4737&lat=31.2304&zoom=16", wait_until="load")
    page.wait_for_selector("[data-fm-ready]", timeout=30_000, state="attached")
    page.wait_for_load_state("networkidle", timeout=30_000)
    page.wait_for_timeout(1500)  # canvas tiles are painted after their data arrives
    container = page.locator(".leaflet-container")
    container.screenshot(path=str(artifacts_dir / "basemap_phone.png"))
    image = np.asarray(Image.open(io.BytesIO(container.screenshot())).convert("RGB"))
    height, width = image.shape[:2]

    # every request went to the service itself (or is inline), and tiles were among them
    origin = urlparse(service).netloc
    foreign = [
        u for u in log.requests if not u.startswith("data:") and urlparse(u).netloc != origin
    ]
    assert foreign == []
    assert any("/basemap/" in u and u.endswith(".mvt") for u in log.requests)
    assert log.page_errors == []
    fonts = page.evaluate(
        "[...document.fonts].filter(f => f.family.includes('FacilityMap CJK')).map(f => f.status)"
    )
    assert fonts == ["loaded"]  # labels wait for the embedded CJK font (no tofu)

    def to_px(points: list[tuple[float, float]]) -> np.ndarray:
        js = "(pts) => pts.map(([lon, lat]) => { const p = FacilityMap.instance.map"
        js += ".latLngToContainerPoint([lat, lon]); return [p.x, p.y]; })"
        return np.array(page.evaluate(js, [list(p) for p in points]), dtype=float)

    markers = to_px(
        page.evaluate(
            "(() => { const d = FacilityMap.instance; const out = [];"
            " d.map.eachLayer(l => { if (l.getLatLng) { const p = l.getLatLng();"
            " out.push([p.lng, p.lat]); } }); return out; })()"
        )
        or [(0.0, 0.0)]
    )
    roads = [(highway, to_px(points)) for highway, points in _roads()]

    def clear_of_markers(p: np.ndarray) -> bool:
        return bool(np.hypot(*(markers - p).T).min() > 30)

    def uncovered(points: list[np.ndarray]) -> list[np.ndarray]:
        """The points where the map itself is on top (not a control, the legend or the list)."""
        js = (
            "(pts) => { const box = FacilityMap.instance.map.getContainer()"
            ".getBoundingClientRect(); const pane = document.querySelector('.leaflet-map-pane');"
            " return pts.map(([x, y]) => { const e = document.elementFromPoint(box.left + x,"
            " box.top + y); return !!e && (pane.contains(e) || e === pane.parentElement); }); }"
        )
        keep = page.evaluate(js, [[float(p[0]), float(p[1])] for p in points])
        return [p for p, k in zip(points, keep, strict=True) if k]

    # points along long segments of wider streets: painted in a street colour
    on_road = []
    for highway, px in roads:
        if ROAD_CLASSES[highway][0] not in ("trunk", "primary", "secondary", "tertiary"):
            continue
        for a, b in itertools.pairwise(px):
            if np.hypot(*(b - a)) < 40:
                continue
            for t in (0.3, 0.5, 0.7):
                p = a + t * (b - a)
                inside = 20 < p[0] < width - 20 and 20 < p[1] < height - 60
                if inside and clear_of_markers(p) and uncovered([p]):
                    on_road.append(image[int(p[1]), int(p[0])])
    assert len(on_road) >= 10
    painted = sum(any(_near(c, fill) for fill in ROAD_FILLS) for c in on_road)
    assert painted >= 0.75 * len(on_road), f"{painted} of {len(on_road)} road points painted"

    # points far from every street: plain background
    grid = np.array(
        [(x, y) for x in range(20, width - 20, 10) for y in range(20, height - 60, 10)],
        dtype=float,
    )
    distance = np.full(len(grid), np.inf)
    for _, px in roads:
        for a, b in itertools.pairwise(px):
            distance = np.minimum(distance, _segment_distance(grid, a, b))
    empty = uncovered(
        [p for p, d in zip(grid, distance, strict=True) if d > 25 and clear_of_markers(p)]
    )
    assert len(empty) >= 5
    background = sum(_near(image[int(p[1]), int(p[0])], BACKGROUND) for p in empty)
    assert background >= 0.8 * len(empty), f"{background} of {len(empty)} empty points plain"

    # street names are painted (in the label ink; a broken label index paints none); the
    # controls, legend and attribution are masked out
    ink = np.abs(image.astype(int) - np.array(LABEL_INK)).max(axis=2) <= 40
    boxes = page.evaluate(
        "[...document.querySelectorAll('.leaflet-control, .fm-legend')].map(e => {"
        " const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })"
    )
    for left, top, right, bottom in boxes:
        ink[max(0, int(top) - 2) : int(bottom) + 2, max(0, int(left) - 2) : int(right) + 2] = False
    assert ink.sum() > 500, f"{ink.sum()} label pixels"
