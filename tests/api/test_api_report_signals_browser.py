"""The served web map in Debian's Chromium follows users' reports: once two distinct sources
report a station locked, the open popup and the nearby list say "reported locked" and by how
many, as the map's user sees it. Both store backends; a screenshot goes to ``artifacts/maps/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import Live
from browser_support import PHONE, open_page
from events_support import add_facility, wait_for_facility

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "maps"
TIMEOUT_MS = 30_000


def _report(live: Live, facility_id: str, address: str) -> None:
    transport = httpx.HTTPTransport(local_address=address)
    with live.client(transport=transport) as client:
        r = client.post(f"/facilities/{facility_id}/reports", json={"type": "locked_during_hours"})
    assert r.status_code == 201, r.text


def _shows(page: Any, selector: str, text: str) -> None:
    page.wait_for_function(
        f"document.querySelector({selector!r}) && "
        f"document.querySelector({selector!r}).innerText.includes({text!r})",
        timeout=TIMEOUT_MS,
    )


def test_the_map_shows_a_station_reported_locked_by_two_users(
    edit_live: Live, chromium: Any, request: pytest.FixtureRequest
) -> None:
    lon, lat = add_facility(edit_live.store, "map-station-1", "worker_station", address="测试路2号")
    with edit_live.client() as client:
        wait_for_facility(client, "map-station-1", lon, lat)
    context, page, log = open_page(chromium, viewport=PHONE)
    try:
        page.goto(f"{edit_live.url}/map?lon={lon}&lat={lat}&crs=wgs84")
        page.wait_for_selector("[data-fm-ready]", state="attached", timeout=TIMEOUT_MS)
        item = page.locator('.fm-item[data-id="map-station-1"]')
        item.wait_for(timeout=TIMEOUT_MS)
        item.click()
        page.wait_for_selector(".fm-popup", timeout=TIMEOUT_MS)
        _report(edit_live, "map-station-1", "127.0.2.2")
        one = page.inner_text(".fm-popup")
        _report(edit_live, "map-station-1", "127.0.2.3")
        _shows(page, ".fm-popup", "多人报告锁门")
        _shows(page, '.fm-item[data-id="map-station-1"]', "多人报告锁门")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"reported-locked-{request.node.callspec.id}.png"))
        text = page.inner_text(".fm-popup")
    finally:
        context.close()
    assert "多人报告锁门" not in one
    assert "用户报告" in text and "2人报告" in text
    assert log.page_errors == []
