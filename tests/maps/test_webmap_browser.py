"""The facility web map in real headless Chromium (Debian's, via Playwright).

Each page is served from a loopback HTTP server (``/static/...`` from ``maps.assets.static_dirs``)
and every request the page makes is recorded. Screenshots are written to ``artifacts/maps/``.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageChops

from finder.hours import HolidayCalendar, OpenState, state_at
from geodata.crs import from_wgs84
from geodata.navigation import navigation_links
from geodata.sample import sample_frame
from geodata.schema import KINDS, Viewer
from maps.webmap import STATE_LABELS, facility_map, facility_map_html

pytestmark = pytest.mark.browser

NOW = dt.datetime(2026, 11, 26, 10, 0)  # a Thursday morning, Asia/Shanghai
READY_TIMEOUT_MS = 30_000
XSS_NAME = "<img src=x onerror=alert(1)>"
XSS_ADDRESS = "</script><script>alert(2)</script>静安区"


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return sample_frame(600, seed=7)


@pytest.fixture(scope="module")
def calendar() -> HolidayCalendar:
    return HolidayCalendar.default()


def _few_facilities() -> pd.DataFrame:
    """Four facilities about 1-2 km apart in Jing'an / Huangpu, one named like an XSS probe."""
    rows = [
        (
            "xss-1",
            XSS_NAME,
            "mother_room",
            121.4581,
            31.2242,
            XSS_ADDRESS,
            "Mo-Fr 08:30-17:30; PH off",
        ),
        ("ws-1", "南京西路工会驿站", "worker_station", 121.4700, 31.2320, "南京西路1号", "24/7"),
        ("rs-1", "人民广场户外劳动者爱心驿站", "rest_stop", 121.4800, 31.2200, None, None),
        (
            "mr-2",
            "静安寺爱心妈咪小屋",
            "mother_room",
            121.4450,
            31.2230,
            "华山路2号",
            "Mo-Su 22:00-06:00",
        ),
    ]
    frame = pd.DataFrame(
        rows, columns=["id", "name", "kind", "lon", "lat", "address", "opening_hours"]
    )
    frame["access"] = "public"
    frame["amenities"] = ["fridge;sink;nursing_chair", "hot_water;wifi", "", "sofa"]
    frame["star_rating"] = pd.array([5, None, None, 3], dtype="Int64")
    frame["phone"] = ["021-62345678", "021-60000000", None, "021-61111111"]
    frame["status"] = "open"
    return frame


def _load(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("[data-fm-ready]", timeout=READY_TIMEOUT_MS, state="attached")
    page.wait_for_timeout(400)  # let cluster animations settle


def _all_loopback(urls: list[str], base_url: str) -> list[str]:
    return [u for u in urls if not (u.startswith(base_url + "/") or u.startswith("data:"))]


def _image(png: bytes) -> Image.Image:
    return Image.open(io.BytesIO(png)).convert("RGB")


def _same_image(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and ImageChops.difference(a, b).getbbox() is None


def _visible_facility_count(page: Any) -> int:
    """Facilities drawn on screen: the sum of the cluster badges plus the single markers."""
    counts = page.eval_on_selector_all(
        ".fm-cluster .fm-badge span", "nodes => nodes.map(n => Number(n.textContent))"
    )
    singles = page.eval_on_selector_all(".fm-marker", "nodes => nodes.length")
    return int(sum(counts)) + int(singles)


def test_one_clustering_partitions_every_kind(
    sample: pd.DataFrame, local_server: Any, browser_page: Any, artifacts_dir: Any
) -> None:
    html = facility_map_html(sample, now=NOW, asset_mode="served", show_boundaries=False)
    page, _ = browser_page
    _load(page, local_server.publish("/clusters.html", html))
    # at every zoom, what is drawn over the whole world (badges and single markers, all kinds in
    # one clustering) counts each facility once, per kind too; zooming in never merges
    report = page.evaluate(
        """() => { const s = FacilityMap.instance, world = L.latLngBounds([-85, -180], [85, 180]);
             return [6, 9, 12, 15, 16, 17, 18].map(z => {
               const items = s.layer.itemsAt(z, world);
               const kinds = [0, 0, 0], seen = new Set();
               let total = 0, mixes = true;
               for (const item of items) {
                 const members = item.singles.concat(...item.clusters.map(
                   id => s.index.getLeaves(id, Infinity).map(f => f.properties.i)));
                 const own = [0, 0, 0];
                 members.forEach(i => { own[s.doc.data.kind[i]] += 1; seen.add(i); });
                 own.forEach((c, k) => { kinds[k] += c; });
                 mixes = mixes && members.length === item.count
                   && own.every((c, k) => c === item.kinds[k]);
                 total += item.count;
               }
               return [z, total, kinds, seen.size, mixes, items.length]; }); }"""
    )
    expected_kinds = [int((sample["status"] != "closed")[sample["kind"] == k].sum()) for k in KINDS]
    counts = [n_items for *_, n_items in report]
    assert counts == sorted(counts)
    for zoom, total, kinds, distinct, mixes, _ in report:
        assert total == distinct == sum(expected_kinds), zoom
        assert kinds == expected_kinds, zoom
        assert mixes, zoom  # each badge's kind counts are those of its members
    # clicking a cluster zooms in on it
    before = page.evaluate("FacilityMap.instance.map.getZoom()")
    box = page.locator(".fm-cluster").first.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_function(f"FacilityMap.instance.map.getZoom() > {before}", timeout=5_000)
    page.wait_for_timeout(400)
    page.screenshot(path=str(artifacts_dir / "cluster_zoomed.png"))


@pytest.mark.parametrize("asset_mode", ["served", "inline"])
def test_default_map_needs_only_our_server(
    sample: pd.DataFrame, local_server: Any, browser_page: Any, artifacts_dir: Any, asset_mode: str
) -> None:
    viewer = Viewer(member=True)
    html = facility_map_html(sample, viewer=viewer, now=NOW, asset_mode=asset_mode)
    url = local_server.publish(f"/default-{asset_mode}.html", html)
    page, log = browser_page
    _load(page, url)
    page.screenshot(path=str(artifacts_dir / f"default_{asset_mode}.png"))

    assert log.requests, "no request recorded"
    assert _all_loopback(log.requests, local_server.base_url) == []
    if asset_mode == "inline":
        assert log.requests == [url]
    else:
        assert any("/static/leaflet/leaflet.js" in u for u in log.requests)
    assert log.console_errors == []
    assert log.page_errors == []

    # independent count: what the viewer may see, row by row
    expected = sum(
        viewer.may_see(a, o if isinstance(o, str) else None) and s != "closed"
        for a, o, s in zip(sample["access"], sample["organization"], sample["status"], strict=True)
    )
    assert page.evaluate("FacilityMap.instance.shown") == expected
    legend = [int(c) for c in page.locator(".fm-legend-count").all_inner_texts()]
    assert len(legend) == len(KINDS) and sum(legend) == expected
    # the map is fitted to the facilities, so every one is inside a cluster badge or a marker
    assert _visible_facility_count(page) == expected
    assert page.locator(".fm-cluster").count() > 0


def test_popup_shows_escaped_text_and_links(
    local_server: Any, browser_page: Any, artifacts_dir: Any, calendar: HolidayCalendar
) -> None:
    frame = _few_facilities()
    target = frame.iloc[0]
    html = facility_map_html(
        frame, now=NOW, center=(target.lon, target.lat), zoom=16, asset_mode="served"
    )
    url = local_server.publish("/popup.html", html)
    page, log = browser_page
    _load(page, url)
    point = page.evaluate(
        """() => { const s = FacilityMap.instance; const m = s.markerFor(0);
                   const p = s.map.latLngToContainerPoint(m.getLatLng());
                   const r = s.map.getContainer().getBoundingClientRect();
                   return [p.x + r.left, p.y + r.top]; }"""
    )
    page.mouse.click(point[0], point[1])
    popup = page.locator(".leaflet-popup-content .fm-popup")
    popup.wait_for(timeout=5_000)
    page.wait_for_timeout(300)
    page.screenshot(path=str(artifacts_dir / "popup_xss.png"))

    assert popup.locator(".fm-name").inner_text() == XSS_NAME
    assert XSS_ADDRESS in popup.inner_text()
    assert page.locator("img[src='x']").count() == 0
    page.wait_for_timeout(200)
    assert log.dialogs == []
    assert log.page_errors == []

    state = state_at(target.opening_hours, NOW, calendar)
    expected_label = STATE_LABELS["zh"][{OpenState.UNKNOWN: 0, OpenState.OPEN: 1}.get(state, 2)]
    assert popup.locator(".fm-state").inner_text() == expected_label
    assert popup.locator(".fm-stars").inner_text() == "★★★★★"
    # the links are built in JS from the payload's micro-degrees; Python builds the same strings
    lon = round(target.lon * 1e6) / 1e6
    lat = round(target.lat * 1e6) / 1e6
    expected = navigation_links(lon, lat, XSS_NAME)
    for key in ("amap", "baidu", "geo"):
        assert popup.locator(f"a.fm-nav-{key}").get_attribute("href") == expected[key]
    assert popup.locator("a.fm-phone").get_attribute("href") == "tel:02162345678"


def test_english_labels(local_server: Any, browser_page: Any, calendar: HolidayCalendar) -> None:
    frame = _few_facilities()
    target = frame.iloc[1]
    html = facility_map_html(
        frame, now=NOW, center=(target.lon, target.lat), zoom=16, language="en"
    )
    page, _ = browser_page
    _load(page, local_server.publish("/english.html", html))
    assert page.locator(".fm-legend-title").inner_text() == "Legend"
    page.evaluate(
        "(() => { const m = FacilityMap.instance.markerFor(1); m.fire('click', "
        "{latlng: m.getLatLng()}, true); })()"
    )
    popup = page.locator(".leaflet-popup-content .fm-popup")
    popup.wait_for(timeout=5_000)
    state = state_at(target.opening_hours, NOW, calendar)
    assert state is OpenState.OPEN
    assert popup.locator(".fm-state").inner_text() == "Open"
    assert "Hot water, Wi-Fi" in popup.inner_text()


def _tofu_reference(page: Any, selector: str, count: int) -> Image.Image:
    """Screenshot of ``count`` private-use characters (no font has them), styled as ``selector``."""
    page.evaluate(
        """([selector, count]) => {
             const original = document.querySelector(selector);
             const copy = original.cloneNode(false);
             copy.id = 'tofu-reference';
             const codes = Array.from({length: count}, (_, i) => 0xE000 + i);
             copy.textContent = String.fromCharCode(...codes);
             original.parentNode.insertBefore(copy, original.nextSibling);
           }""",
        [selector, count],
    )
    image = _image(page.locator("#tofu-reference").screenshot())
    page.evaluate("document.getElementById('tofu-reference').remove()")
    return image


def _glyph(page: Any, character: str) -> Image.Image:
    """Screenshot of one character inside the map, in the map's font stack."""
    page.evaluate(
        """(ch) => { const d = document.createElement('div'); d.id = 'glyph-probe';
                     d.textContent = ch;
                     d.style.cssText = 'position:absolute;left:300px;top:200px;z-index:9999;'
                       + 'font-size:32px;background:#fff;color:#000;padding:2px';
                     document.querySelector('.leaflet-container').appendChild(d); }""",
        character,
    )
    image = _image(page.locator("#glyph-probe").screenshot())
    page.evaluate("document.getElementById('glyph-probe').remove()")
    return image


def test_chinese_text_renders_not_tofu(
    sample: pd.DataFrame, local_server: Any, browser_page: Any, artifacts_dir: Any
) -> None:
    html = facility_map_html(sample.head(60), now=NOW, asset_mode="served")
    page, _ = browser_page
    _load(page, local_server.publish("/cjk.html", html))
    legend = page.locator(".fm-legend")
    legend.screenshot(path=str(artifacts_dir / "legend_zh.png"))

    # the real UI elements against private-use characters in the same style: tofu looks the same
    for selector in (".fm-legend-title", ".fm-locate-button", ".fm-legend-label"):
        text = page.locator(selector).first.inner_text()
        assert re.search("[\u4e00-\u9fff]", text), text
        shown = _image(page.locator(selector).first.screenshot())
        reference = _tofu_reference(page, selector, len(text))
        assert not _same_image(shown, reference), f"{selector} {text!r} renders as tofu"
    # distinct characters have distinct glyphs (tofu boxes are all alike) and differ from tofu
    glyphs = [_glyph(page, ch) for ch in "图例营业中"]
    tofu = _glyph(page, "\ue000")
    for i, image in enumerate(glyphs):
        assert not _same_image(image, tofu)
        for other in glyphs[i + 1 :]:
            assert not _same_image(image, other)
    # the page asked for the embedded face, and it is loaded
    status = page.evaluate(
        "[...document.fonts].filter(f => f.family.includes('FacilityMap CJK')).map(f => f.status)"
    )
    assert status == ["loaded"]


def _blank_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (256, 256), (250, 250, 245)).save(out, format="PNG")
    return out.getvalue()


def test_amap_markers_sit_on_gcj02_positions(
    local_server: Any, browser_page: Any, artifacts_dir: Any
) -> None:
    frame = _few_facilities()
    target = frame.iloc[0]
    html = facility_map_html(
        frame,
        now=NOW,
        base_map="amap",
        center=(target.lon, target.lat),
        zoom=17,
        approval_no="沪S(2024)001号",
        asset_mode="served",
    )
    page, log = browser_page
    tile = _blank_png()
    intercepted: list[str] = []

    def route(request_route: Any) -> None:
        url = request_route.request.url
        host = urlparse(url).hostname or ""
        if host == "127.0.0.1":
            request_route.continue_()
        elif re.fullmatch(r"webrd0[1-4]\.is\.autonavi\.com", host):
            intercepted.append(url)
            request_route.fulfill(status=200, content_type="image/png", body=tile)
        else:
            request_route.abort()

    page.route("**/*", route)
    _load(page, local_server.publish("/amap.html", html))
    page.screenshot(path=str(artifacts_dir / "amap_gcj02.png"))

    outside = _all_loopback(log.requests, local_server.base_url)
    assert outside, "the Amap base map asked for no tiles"
    assert sorted(outside) == sorted(intercepted)
    assert all(urlparse(u).path == "/appmaptile" for u in outside)
    assert log.console_errors == []
    assert "沪S(2024)001号" in page.locator(".leaflet-control-attribution").inner_text()

    lat_lng = page.evaluate(
        "(() => { const p = FacilityMap.instance.markerFor(0).getLatLng();"
        " return [p.lng, p.lat]; })()"
    )
    lon_e6 = round(target.lon * 1e6) / 1e6
    lat_e6 = round(target.lat * 1e6) / 1e6
    gcj_lon, gcj_lat = (float(np.asarray(v)) for v in from_wgs84(lon_e6, lat_e6, "gcj02"))
    assert lat_lng == pytest.approx([gcj_lon, gcj_lat], abs=1e-9)
    # on screen: the icon's centre is the projected GCJ-02 point, far from the WGS-84 one
    icon_centre, gcj_px, wgs_px = page.evaluate(
        """([glon, glat, wlon, wlat]) => {
             const s = FacilityMap.instance; const r = s.map.getContainer().getBoundingClientRect();
             const box = s.markerFor(0).getElement().getBoundingClientRect();
             const g = s.map.latLngToContainerPoint([glat, glon]);
             const w = s.map.latLngToContainerPoint([wlat, wlon]);
             return [[box.left + box.width / 2 - r.left, box.top + box.height / 2 - r.top],
                     [g.x, g.y], [w.x, w.y]]; }""",
        [gcj_lon, gcj_lat, lon_e6, lat_e6],
    )
    assert icon_centre == pytest.approx(gcj_px, abs=1.0)
    assert np.hypot(*np.subtract(gcj_px, wgs_px)) > 100  # ~500 m at zoom 17 is ~400 px


def test_javascript_transforms_agree_with_python(local_server: Any, browser_page: Any) -> None:
    html = facility_map_html(_few_facilities(), now=NOW, show_boundaries=False)
    page, _ = browser_page
    _load(page, local_server.publish("/transforms.html", html))
    rng = np.random.default_rng(5)
    # mainland China at random, Shanghai, Beijing, Shenzhen and Zhuhai (shifted), Hong Kong,
    # Macau, Taipei and Penghu (not shifted, carved out of the box), Kinmen, Paris, New York
    places = [
        (121.4737, 31.2304),
        (116.3913, 39.9075),
        (114.0579, 22.5431),
        (113.5767, 22.2707),
        (114.1694, 22.3193),
        (113.5439, 22.1987),
        (121.5654, 25.0330),
        (119.5664, 23.5711),
        (118.3171, 24.4324),
        (2.35, 48.85),
        (-74.0, 40.7),
    ]
    lon = np.concatenate([rng.uniform(73.5, 135.0, 60), [p[0] for p in places]])
    lat = np.concatenate([rng.uniform(18.0, 53.5, 60), [p[1] for p in places]])
    js = np.array(
        page.evaluate(
            """(points) => points.map(([x, y]) => [
                 ...FacilityMap.wgs84ToGcj02(x, y), ...FacilityMap.wgs84ToBd09(x, y)])""",
            np.column_stack([lon, lat]).tolist(),
        )
    )
    gcj = np.column_stack([np.asarray(a) for a in from_wgs84(lon, lat, "gcj02")])
    bd = np.column_stack([np.asarray(a) for a in from_wgs84(lon, lat, "bd09")])
    np.testing.assert_allclose(js[:, :2], gcj, rtol=0, atol=1e-9)
    np.testing.assert_allclose(js[:, 2:], bd, rtol=0, atol=1e-9)


@pytest.mark.parametrize("base_map", ["none", "amap"])
def test_locate_me_puts_the_user_in_the_display_system(
    local_server: Any, page_factory: Any, base_map: str
) -> None:
    here_lon, here_lat = 121.4650, 31.2280
    html = facility_map_html(_few_facilities(), now=NOW, base_map=base_map, asset_mode="served")
    page, log = page_factory(
        permissions=["geolocation"],
        geolocation={"longitude": here_lon, "latitude": here_lat, "accuracy": 25},
    )
    page.route(
        re.compile(r"https://webrd0[1-4]\.is\.autonavi\.com/.*"),
        lambda r: r.fulfill(status=200, content_type="image/png", body=_blank_png()),
    )
    _load(page, local_server.publish(f"/locate-{base_map}.html", html))
    page.locator(".fm-locate-button").click()
    page.wait_for_function("FacilityMap.instance.me !== null", timeout=10_000)
    me = page.evaluate("[FacilityMap.instance.me.lng, FacilityMap.instance.me.lat]")
    if base_map == "amap":
        expected = [float(np.asarray(v)) for v in from_wgs84(here_lon, here_lat, "gcj02")]
    else:
        expected = [here_lon, here_lat]
    assert me == pytest.approx(expected, abs=1e-9)
    assert log.page_errors == []


def test_compressed_payload_loads(
    sample: pd.DataFrame, local_server: Any, browser_page: Any
) -> None:
    html = facility_map_html(sample, now=NOW, compress_payload=True, show_boundaries=False)
    payload = re.search(r'<script type="application/json" id="[^"]+">(.*?)</script>', html, re.S)
    assert payload is not None and json.loads(payload.group(1))["encoding"] == "gzip+base64"
    page, log = browser_page
    _load(page, local_server.publish("/compressed.html", html))
    expected = int((sample["status"] != "closed").sum())
    assert page.evaluate("FacilityMap.instance.positions.lat.length") == expected
    assert _visible_facility_count(page) == expected
    assert log.console_errors == [] and log.page_errors == []


def test_standalone_file_opens_from_disk(
    sample: pd.DataFrame, browser_page: Any, tmp_path: Any
) -> None:
    path = tmp_path / "map.html"
    facility_map(sample.head(80), now=NOW, asset_mode="inline").save(str(path))
    page, log = browser_page
    _load(page, path.as_uri())
    assert log.requests == [path.as_uri()]
    assert log.console_errors == [] and log.page_errors == []
    assert _visible_facility_count(page) == int((sample.head(80)["status"] != "closed").sum())


def test_empty_map_loads(local_server: Any, browser_page: Any) -> None:
    html = facility_map_html(_few_facilities().iloc[:0], now=NOW, asset_mode="served")
    page, log = browser_page
    _load(page, local_server.publish("/empty.html", html))
    assert _visible_facility_count(page) == 0
    assert page.locator(".fm-legend-count").all_inner_texts() == ["0", "0", "0"]
    assert log.console_errors == [] and log.page_errors == []
