"""The served web map in Debian's Chromium follows a room's sensor: a signed ``occupied`` event
shows in the open popup and in the nearby list within a second, as the map's user sees it.
Both store backends; a screenshot goes to ``artifacts/maps/``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from api_support import Live
from browser_support import PHONE, open_page
from events_support import add_device, add_facility, event, post, wait_for_facility

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "maps"
WITHIN_MS = 1000
TIMEOUT_MS = 30_000


def test_the_map_shows_a_room_occupied_within_a_second(
    edit_live: Live, chromium: Any, request: pytest.FixtureRequest
) -> None:
    lon, lat = add_facility(edit_live.store, "map-room-1", "mother_room", address="测试路1号")
    secret = add_device(edit_live.store, "map-room-1")
    with edit_live.client() as client:
        wait_for_facility(client, "map-room-1", lon, lat)
        context, page, log = open_page(chromium, viewport=PHONE)
        try:
            page.goto(f"{edit_live.url}/map?lon={lon}&lat={lat}&crs=wgs84")
            page.wait_for_selector("[data-fm-ready]", state="attached", timeout=TIMEOUT_MS)
            item = page.locator('.fm-item[data-id="map-room-1"]')
            item.wait_for(timeout=TIMEOUT_MS)
            item.click()
            page.wait_for_selector(".fm-popup", timeout=TIMEOUT_MS)
            assert "有人使用" not in page.inner_text(".fm-popup")
            time.sleep(1.5)  # the server reads the new device's key within a second
            accepted = post(client, "map-room-1", secret, event("occupied"))
            posted = time.monotonic()
            assert accepted.status_code == 200, accepted.text
            page.wait_for_function(
                "document.querySelector('.fm-popup') && "
                "document.querySelector('.fm-popup').innerText.includes('有人使用')",
                timeout=TIMEOUT_MS,
            )
            popup_s = time.monotonic() - posted
            page.wait_for_function(
                "document.querySelector('.fm-item[data-id=\"map-room-1\"]')"
                ".innerText.includes('有人使用')",
                timeout=TIMEOUT_MS,
            )
            backend = request.node.callspec.id
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"live-occupied-{backend}.png"))
            text = page.inner_text(".fm-popup")
        finally:
            context.close()
    assert popup_s * 1000 < WITHIN_MS
    assert "传感器" in text and "门禁记录" in text
    assert log.page_errors == []
