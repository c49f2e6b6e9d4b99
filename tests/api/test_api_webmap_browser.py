"""The web map served by a live ``finder serve`` in Debian's Chromium, as a rider uses it.

At phone (390x844) and desktop size, with the browser's position set by the test (Playwright's
``geolocation``, i.e. CDP ``Emulation.setGeolocationOverride``), tapping 定位 lists the same
facilities in the same order as ``/nearest`` answers with the same filters; the "open now"
toggle hides a closed facility from the list and from the map; the search box finds facilities
by part of their name; a facility named like an XSS probe stays text; every request stays on the
service's origin. Both store backends. Screenshots go to ``artifacts/maps/``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from api_support import Live, facility_rows
from browser_support import DESKTOP, PHONE, open_page
from pyproj import Geod

from geodata.crs import from_wgs84

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "maps"
#: The rider's position: Pudong, away from the sample facilities (checked below).
HERE = (121.6000, 31.0500)
XSS_NAME = "<img src=x onerror=alert(1)>测试妈咪小屋"
#: (id, name, kind, hours, metres east of HERE): B is closed whatever the time.
OURS = [
    ("ux-a", "测试驿站甲", "worker_station", "24/7", 40),
    ("ux-b", XSS_NAME, "mother_room", "off", 80),
    ("ux-c", "测试驿站丙号", "rest_stop", "24/7", 120),
    ("ux-d", "测试驿站丁", "worker_station", "24/7", 160),
]
GEOD = Geod(ellps="WGS84")
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def served(edit_live: Live) -> Live:
    """The live server with our four facilities just east of :data:`HERE`."""
    template = (
        facility_rows().query("access == 'public'").iloc[[0] * len(OURS)].reset_index(drop=True)
    )
    lon, lat, _ = GEOD.fwd(
        [HERE[0]] * len(OURS), [HERE[1]] * len(OURS), [90.0] * len(OURS), [o[4] for o in OURS]
    )
    rows = template.assign(
        id=[o[0] for o in OURS],
        name=[o[1] for o in OURS],
        kind=[o[2] for o in OURS],
        opening_hours=[o[3] for o in OURS],
        lon=np.asarray(lon),
        lat=np.asarray(lat),
        address=[f"浦东新区测试路{i + 1}号" for i in range(len(OURS))],
        status="open",
    )
    edit_live.store.upsert_frame(pd.DataFrame(rows), actor="test")
    deadline = time.monotonic() + 30  # the server rebuilds its index in the background
    while "ux-a" not in _nearest_ids(edit_live) and time.monotonic() < deadline:
        time.sleep(0.2)
    return edit_live


def _nearest_ids(live: Live, **params: Any) -> list[str]:
    query = {"lon": HERE[0], "lat": HERE[1], "k": 3, **params}
    with httpx.Client(base_url=live.url, timeout=30) as client:
        r = client.get("/nearest", params=query)
    r.raise_for_status()
    return [f["id"] for f in r.json()["features"]]


def _list_ids(page: Any) -> list[str]:
    return page.eval_on_selector_all(".fm-list .fm-item", "ns => ns.map(n => n.dataset.id)")


def _wait_for_list(page: Any, ids: list[str]) -> None:
    page.wait_for_function(
        "ids => JSON.stringify([...document.querySelectorAll('.fm-list .fm-item')]"
        ".map(n => n.dataset.id)) === JSON.stringify(ids)",
        arg=ids,
        timeout=TIMEOUT_MS,
    )


def _foreign(requests: list[str], base_url: str) -> list[str]:
    return [u for u in requests if not (u.startswith(base_url + "/") or u.startswith("data:"))]


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_locate_lists_what_nearest_answers(
    served: Live, chromium: Any, viewport: dict[str, int], request: pytest.FixtureRequest
) -> None:
    expected = _nearest_ids(served)
    assert expected == ["ux-a", "ux-b", "ux-c"]  # the situation the test needs
    context, page, log = open_page(
        chromium,
        viewport=viewport,
        permissions=["geolocation"],
        geolocation={"longitude": HERE[0], "latitude": HERE[1], "accuracy": 20},
    )
    try:
        page.goto(served.url + "/map")
        page.wait_for_selector("[data-fm-ready]", state="attached", timeout=TIMEOUT_MS)
        page.locator(".fm-locate-button").click()
        _wait_for_list(page, expected)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = request.node.callspec.id.replace("-", "_")
        page.wait_for_timeout(300)
        page.screenshot(path=str(ARTIFACTS / f"nearby_{name}.png"))

        # the list is the route's answer: names as text, the XSS probe included
        names = page.locator(".fm-list .fm-item-name").all_inner_texts()
        assert names == ["测试驿站甲", XSS_NAME, "测试驿站丙号"]
        assert "米" in page.locator(".fm-list .fm-item-meta").first.inner_text()
        assert page.locator("img[src='x']").count() == 0
        # the rider and the listed facilities are in view, close up: not a dot in an empty field
        zoom, in_view = page.evaluate(
            """() => { const s = FacilityMap.instance, b = s.map.getBounds();
                       const at = id => [s.positions.lat[s.byId.get(id)],
                                         s.positions.lng[s.byId.get(id)]];
                       return [s.map.getZoom(),
                               [b.contains(s.me), ...['ux-a', 'ux-b', 'ux-c'].map(
                                 id => b.contains(at(id)))]]; }"""
        )
        assert in_view == [True] * 4
        assert zoom >= 15

        # tapping an entry centres it and opens its popup
        page.locator(".fm-list .fm-item").nth(2).click()
        popup = page.locator(".leaflet-popup-content .fm-popup .fm-name")
        popup.wait_for(timeout=5_000)
        assert popup.inner_text() == "测试驿站丙号"
        assert "全天开放" in page.locator(".leaflet-popup-content .fm-hours").inner_text()
        # on a phone the sheet makes room for the popup and comes back when it closes
        assert page.locator(".fm-toggle").is_visible() == (viewport is DESKTOP)
        page.locator(".leaflet-popup-close-button").click()
        page.locator(".fm-toggle").wait_for(state="visible", timeout=5_000)

        # "open now" hides the closed facility, from the list and from the map
        open_ids = _nearest_ids(served, open_now="true")
        assert "ux-b" not in open_ids
        page.locator(".fm-toggle").click()
        _wait_for_list(page, open_ids)
        drawn = page.evaluate(
            """() => { const s = FacilityMap.instance;
                       const all = s.layer.itemsAt(18, s.map.getBounds().pad(2));
                       return all.flatMap(item => item.singles).map(i => s.doc.data.id[i]); }"""
        )
        assert "ux-a" in drawn and "ux-b" not in drawn

        # the search works on the loaded data: part of a name, and the probe stays text
        page.locator(".fm-search").fill("丙号")
        _wait_for_list(page, ["ux-c"])
        page.locator(".fm-toggle").click()  # open now off again: the closed room is findable
        page.locator(".fm-search").fill("onerror")
        _wait_for_list(page, ["ux-b"])
        assert page.locator(".fm-list .fm-item-name").inner_text() == XSS_NAME
        assert page.locator("img[src='x']").count() == 0

        page.wait_for_timeout(200)
        assert log.dialogs == []
        assert log.page_errors == [] and log.console_errors == []
        assert _foreign(log.requests, served.url) == []
        assert any("/nearest?" in u for u in log.requests)
    finally:
        context.close()


def test_app_position_lists_nearest_without_locating(served: Live, chromium: Any) -> None:
    """``/map?lon=&lat=&crs=gcj02`` (the app's own GPS): the list is there from the start."""
    glon, glat = (float(np.asarray(v)) for v in from_wgs84(HERE[0], HERE[1], "gcj02"))
    context, page, log = open_page(chromium, viewport=PHONE)
    try:
        page.goto(f"{served.url}/map?lon={glon:.7f}&lat={glat:.7f}&crs=gcj02&kind=worker_station")
        page.wait_for_selector("[data-fm-ready]", state="attached", timeout=TIMEOUT_MS)
        with httpx.Client(base_url=served.url, timeout=30) as client:
            answer = client.get(
                "/nearest",
                params={"lon": glon, "lat": glat, "crs": "gcj02", "k": 3, "kind": "worker_station"},
            ).json()
        expected = [f["id"] for f in answer["features"]]
        assert expected[:2] == ["ux-a", "ux-d"]
        _wait_for_list(page, expected)
        assert _foreign(log.requests, served.url) == []
        assert log.page_errors == []
    finally:
        context.close()
