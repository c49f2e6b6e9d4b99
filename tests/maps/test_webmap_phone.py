"""The web map at phone size (390x844) and desktop size in Debian's Chromium: what a finger
can tap, how badges sit, what the hours say, the legend, scale and attribution, no tofu.

Pages come from the loopback server of ``conftest.py``; the "nearby" list against a live
service is tested in ``tests/api/test_api_webmap_browser.py``.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pandas as pd
import pytest
from browser_support import DESKTOP, PHONE
from test_webmap_browser import (
    XSS_NAME,
    _few_facilities,
    _image,
    _load,
    _same_image,
    _tofu_reference,
)

from finder.hours import HolidayCalendar, change_in_words, hours_in_words, next_change
from geodata.sample import sample_frame
from maps.webmap import facility_map_html

pytestmark = pytest.mark.browser

NOW = dt.datetime(2026, 11, 26, 10, 0)  # a Thursday morning, Asia/Shanghai
VIEWPORTS = pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
#: Everything a finger taps: map controls, the panel, popups (attribution links excepted).
TAP_TARGETS = (
    ".leaflet-control a:not(.leaflet-control-attribution a), .leaflet-control button, "
    ".fm-panel button, .fm-panel label, .fm-panel input[type=search], .leaflet-popup a"
)
TOUCH_PX = 44


@pytest.fixture(scope="module")
def dense() -> pd.DataFrame:
    """3,000 sample facilities: clusters of over a thousand at city zoom."""
    return sample_frame(3000, seed=3)


def _small_targets(page: Any) -> list[tuple[str, float, float]]:
    return page.evaluate(
        """([selector, least]) => [...document.querySelectorAll(selector)]
             .filter(n => n.getClientRects().length && getComputedStyle(n).visibility !== 'hidden')
             .map(n => [n.className + ' ' + n.textContent.trim().slice(0, 12),
                        n.getBoundingClientRect().width, n.getBoundingClientRect().height])
             .filter(([, w, h]) => w < least - 0.5 || h < least - 0.5)""",
        [TAP_TARGETS, TOUCH_PX],
    )


@VIEWPORTS
@pytest.mark.parametrize("language", ["zh", "en"])
def test_touch_targets_are_at_least_44px(
    local_server: Any, page_factory: Any, viewport: dict[str, int], language: str
) -> None:
    frame = _few_facilities()
    html = facility_map_html(frame, now=NOW, asset_mode="served", language=language)
    page, log = page_factory(viewport=viewport)
    _load(page, local_server.publish(f"/touch-{viewport['width']}-{language}.html", html))
    # the legend folds away on a phone and opens with one tap
    folded = page.locator(".fm-legend").get_attribute("class") or ""
    assert ("fm-folded" in folded) == (viewport is PHONE)
    if viewport is PHONE:
        assert not page.locator(".fm-legend-body").is_visible()
        page.locator(".fm-legend-toggle").click()
    assert page.locator(".fm-legend-body").is_visible()
    page.locator(".leaflet-control-layers").hover()  # the layer list opens
    assert page.locator(TAP_TARGETS).count() >= 12  # zoom, layers, 定位, legend, panel
    assert _small_targets(page) == []
    page.mouse.move(viewport["width"] / 2, 300)  # the layer list closes
    page.evaluate(
        "(() => { const m = FacilityMap.instance.markerFor(0); m.fire('click', "
        "{latlng: m.getLatLng()}, true); })()"
    )
    page.locator(".leaflet-popup-content .fm-popup").wait_for(timeout=5_000)
    page.wait_for_timeout(400)  # the pan that brings the popup into view
    assert _small_targets(page) == []
    # the whole popup is in view and clear of every control and of the panel
    boxes = page.evaluate(
        """() => { const r = n => { const b = n.getBoundingClientRect();
                                    return [b.left, b.top, b.right, b.bottom]; };
             const shown = [...document.querySelectorAll('.leaflet-control, .fm-panel')]
               .filter(n => n.getClientRects().length);
             return [r(document.querySelector('.leaflet-popup-content-wrapper')),
                     shown.map(r), [innerWidth, innerHeight]]; }"""
    )
    popup, others, (width, height) = boxes
    assert popup[0] >= 0 and popup[1] >= 0 and popup[2] <= width and popup[3] <= height
    for other in others:
        assert not (
            popup[0] < other[2]
            and other[0] < popup[2]
            and popup[1] < other[3]
            and other[1] < popup[3]
        ), (popup, other)
    assert log.page_errors == []


@VIEWPORTS
def test_badges_never_overlap_and_show_their_mix(
    dense: pd.DataFrame,
    local_server: Any,
    page_factory: Any,
    artifacts_dir: Any,
    viewport: dict[str, int],
) -> None:
    html = facility_map_html(dense, now=NOW, asset_mode="served", show_boundaries=False)
    page, log = page_factory(viewport=viewport)
    _load(page, local_server.publish(f"/badges-{viewport['width']}.html", html))
    name = "phone" if viewport is PHONE else "desktop"
    seen_thousands = False
    for zoom in (8, 9, 10, 11, 12, 13, 14, 16, 18):
        page.evaluate(
            f"FacilityMap.instance.map.setView([31.23, 121.47], {zoom}, {{animate: false}})"
        )
        page.wait_for_timeout(150)
        boxes = page.eval_on_selector_all(
            ".fm-cluster, .fm-marker",
            "ns => ns.map(n => { const r = n.getBoundingClientRect();"
            " return [r.left, r.top, r.right, r.bottom]; })",
        )
        overlapping = [
            (a, b)
            for a, b in itertools.combinations(boxes, 2)
            if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
        ]
        assert overlapping == [], (zoom, overlapping[:3])
        # the whole count is readable inside its badge ("1093", not "093")
        clipped = page.eval_on_selector_all(
            ".fm-badge span",
            "ns => ns.filter(n => n.scrollWidth > n.clientWidth).map(n => n.textContent)",
        )
        assert clipped == [], zoom
        counts = page.eval_on_selector_all(".fm-badge span", "ns => ns.map(n => n.textContent)")
        seen_thousands = seen_thousands or any(len(c) >= 4 for c in counts)
        if zoom == 11:
            page.screenshot(path=str(artifacts_dir / f"badges_{name}.png"))
    assert seen_thousands
    # a badge shows its mix: one ring segment per kind among its members, named in its title
    page.evaluate("FacilityMap.instance.map.setView([31.23, 121.47], 10, {animate: false})")
    page.wait_for_timeout(150)
    mixes = page.evaluate(
        """() => { const s = FacilityMap.instance, z = s.map.getZoom();
             const items = s.layer.itemsAt(z, s.map.getBounds().pad(0.2))
               .filter(item => item.count > 1);
             const badges = [...document.querySelectorAll('.fm-cluster')];
             return badges.map(b => [b.querySelector('.fm-badge').style.background,
                                     b.title]); }"""
    )
    assert mixes
    for background, title in mixes:
        assert background.startswith("conic-gradient(")
        segments = background.count("var(--fm-c-")
        assert segments == len([part for part in title.split("、") if part])
        assert segments >= 1
    assert any(b.count("var(--fm-c-") == 3 for b, _ in mixes)
    assert log.page_errors == [] and log.console_errors == []


def test_scale_is_metric_and_attribution_has_no_flag(local_server: Any, page_factory: Any) -> None:
    html = facility_map_html(_few_facilities(), now=NOW, asset_mode="served")
    page, _ = page_factory(viewport=PHONE)
    _load(page, local_server.publish("/scale.html", html))
    scales = page.locator(".leaflet-control-scale-line").all_inner_texts()
    assert len(scales) == 1 and scales[0].endswith(("m", "km"))
    attribution = page.locator(".leaflet-control-attribution")
    assert attribution.locator("svg").count() == 0
    assert "Leaflet" in attribution.inner_text()
    assert "\U0001f1fa\U0001f1e6" not in attribution.inner_text()


@pytest.mark.parametrize("language", ["zh", "en"])
def test_popup_says_hours_in_words(local_server: Any, page_factory: Any, language: str) -> None:
    frame = _few_facilities()
    frame["verified_at"] = ["2026-06-30", None, None, None]
    calendar = HolidayCalendar.default()
    html = facility_map_html(frame, now=NOW, language=language, asset_mode="served")
    page, _ = page_factory(viewport=PHONE)
    _load(page, local_server.publish(f"/hours-{language}.html", html))
    page.evaluate(
        "(() => { const m = FacilityMap.instance.markerFor(0); m.fire('click', "
        "{latlng: m.getLatLng()}, true); })()"
    )
    popup = page.locator(".leaflet-popup-content .fm-popup")
    popup.wait_for(timeout=5_000)
    expr = frame["opening_hours"].iloc[0]  # Mo-Fr 08:30-17:30; PH off, on a Thursday morning
    assert popup.locator(".fm-hours").inner_text() == hours_in_words(expr, language)
    change = next_change(expr, NOW, calendar)
    assert change is not None
    assert popup.locator(".fm-next").inner_text() == change_in_words(*change, NOW, language)
    assert "Mo-Fr" not in popup.inner_text()
    verified = "核实于 2026-06-30" if language == "zh" else "Verified 2026-06-30"
    assert popup.locator(".fm-verified").inner_text() == verified


@VIEWPORTS
def test_search_finds_by_part_of_a_name_as_text(
    local_server: Any, page_factory: Any, artifacts_dir: Any, viewport: dict[str, int]
) -> None:
    """The standalone map (no service to ask) still searches what it holds."""
    html = facility_map_html(_few_facilities(), now=NOW, asset_mode="served")
    page, log = page_factory(viewport=viewport)
    _load(page, local_server.publish(f"/search-{viewport['width']}.html", html))
    page.locator(".fm-search").fill("静安寺")
    page.locator(".fm-list .fm-item").first.wait_for(timeout=5_000)
    assert page.locator(".fm-list .fm-item-name").all_inner_texts() == ["静安寺爱心妈咪小屋"]
    page.locator(".fm-search").fill("onerror")
    page.wait_for_function(
        "document.querySelector('.fm-list .fm-item-name')?.textContent.includes('onerror')",
        timeout=5_000,
    )
    assert page.locator(".fm-list .fm-item-name").all_inner_texts() == [XSS_NAME]
    page.locator(".fm-list .fm-item").first.click()  # tapping opens its popup
    popup = page.locator(".leaflet-popup-content .fm-popup .fm-name")
    popup.wait_for(timeout=5_000)
    assert popup.inner_text() == XSS_NAME
    assert page.locator("img[src='x']").count() == 0
    page.locator(".leaflet-popup-close-button").click()
    page.locator(".fm-search").fill("没有这样的设施")
    page.wait_for_function(
        "document.querySelectorAll('.fm-list .fm-item').length === 0", timeout=5_000
    )
    assert page.locator(".fm-list-message").inner_text() == "没有找到符合条件的设施"
    page.screenshot(path=str(artifacts_dir / f"search_{viewport['width']}.png"))
    assert log.dialogs == [] and log.page_errors == []


def test_panel_text_is_not_tofu(local_server: Any, page_factory: Any) -> None:
    html = facility_map_html(_few_facilities(), now=NOW, asset_mode="served")
    page, _ = page_factory(viewport=PHONE)
    _load(page, local_server.publish("/panel-cjk.html", html))
    page.locator(".fm-search").fill("驿站")
    page.locator(".fm-list .fm-item").first.wait_for(timeout=5_000)
    for selector in (".fm-panel-title", ".fm-tab", ".fm-toggle span", ".fm-item-name"):
        text = page.locator(selector).first.inner_text()
        shown = _image(page.locator(selector).first.screenshot())
        reference = _tofu_reference(page, selector, len(text))
        assert not _same_image(shown, reference), f"{selector} {text!r} renders as tofu"
