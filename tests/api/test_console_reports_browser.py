"""The console's reports tab in Chromium: staff see a pending report with its photo's
thumbnail (fetched with their key, shown from a ``blob:`` URL), confirm it, and only then
publish the photo as a facility photo. Both store backends; screenshot in ``artifacts/console``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import Live
from browser_support import PHONE, open_page, sign_in
from PIL import Image
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "console"
TIMEOUT_MS = 30_000


def _reported_with_photo(live: Live) -> tuple[str, dict[str, Any]]:
    body = {
        "name": "报告照片驿站",
        "kind": "worker_station",
        "lon": 121.41,
        "lat": 31.21,
        "access": "public",
        "opening_hours": "24/7",
    }
    with live.client(live.keys.editor) as editor:
        created = editor.post("/facilities", json=body)
    assert created.status_code == 201, created.text
    facility_id = created.json()["id"]
    photo = io.BytesIO()
    Image.new("RGB", (400, 300), (200, 80, 20)).save(photo, format="JPEG")
    transport = httpx.HTTPTransport(local_address="127.0.2.9")
    with live.client(transport=transport) as reporter:
        r = reporter.post(
            f"/facilities/{facility_id}/reports",
            json={"type": "missing_amenity", "note": "没有热水"},
        )
        assert r.status_code == 201, r.text
        receipt = r.json()
        sent = reporter.post(
            receipt["photo_url"],
            content=photo.getvalue(),
            headers={"Content-Type": "image/jpeg"},
        )
        assert sent.status_code == 201, sent.text
    return facility_id, receipt


def test_staff_see_the_report_photo_confirm_and_publish_it(edit_live: Live, chromium: Any) -> None:
    facility_id, receipt = _reported_with_photo(edit_live)
    context, page, log = open_page(chromium, viewport=PHONE)
    try:
        sign_in(page, edit_live.url, edit_live.keys.editor, timeout_ms=TIMEOUT_MS)
        page.click('#tabs [data-tab="reports"]')
        item = page.locator(f'#reports-list li[data-id="{receipt["id"]}"]')
        expect(item).to_be_visible(timeout=TIMEOUT_MS)
        expect(item.locator(".report-note")).to_have_text("没有热水")
        facility = item.locator(".report-facility")  # named, its id on hover
        expect(facility).to_have_text("报告照片驿站")
        expect(facility).to_have_attribute("title", facility_id)
        page.wait_for_function(
            f"""() => {{ const i = document.querySelector(
                  '#reports-list li[data-id="{receipt["id"]}"] .report-photo');
                return i && i.complete && i.naturalWidth > 0; }}""",
            timeout=TIMEOUT_MS,
        )
        assert item.locator(".report-photo").evaluate("i => i.src").startswith("blob:")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "reports-photo-phone.png"), full_page=True)
        with edit_live.client() as public:
            assert public.get(f"/facilities/{facility_id}/photos/0").status_code == 404
        item.locator(".report-confirm").click()
        item.locator(".report-publish").click()
        expect(item).to_have_count(0, timeout=TIMEOUT_MS)
    finally:
        context.close()
    with edit_live.client() as public:
        assert public.get(f"/facilities/{facility_id}/photos/0").status_code == 200
    assert edit_live.store.report(receipt["id"]).status == "confirmed"
    assert not log.page_errors and not log.dialogs and not log.console_errors
    assert all(u.startswith((edit_live.url, "data:", "blob:")) for u in log.requests), log.requests
