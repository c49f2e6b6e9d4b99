"""The map at phone size (390 x 844) in Chromium: a popup with a photo clears the top controls,
and the "report a problem" form sends a photo with the report.

Screenshots go to ``artifacts/maps`` for a person to look at.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from api_support import Live, facility_rows
from browser_support import located_phone, open_page
from PIL import Image

TIMEOUT_MS = 30_000
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "maps"
FACILITY_ID = "photo-ux-1"
#: The map's top controls, which a popup must not cover.
TOP_CONTROLS = (".fm-locate-button", ".leaflet-control-zoom", ".leaflet-control-layers")


def _tall_jpeg() -> bytes:
    """A phone photo in portrait: the tallest thumbnail a popup shows."""
    buf = io.BytesIO()
    Image.new("RGB", (600, 800), (40, 140, 90)).save(buf, format="JPEG")
    return buf.getvalue()


def _facility_with_photo(live: Live) -> None:
    template = facility_rows().query("access == 'public'").iloc[[0]].reset_index(drop=True)
    row = template.assign(
        id=FACILITY_ID,
        name="照片测试驿站",
        kind="worker_station",
        lon=121.62,
        lat=31.07,
        address="浦东新区照片测试路1号",
    )
    live.store.upsert_frame(pd.DataFrame(row), actor="test")
    with live.client(live.keys.editor) as staff:
        r = staff.post(
            f"/facilities/{FACILITY_ID}/photos",
            content=_tall_jpeg(),
            headers={"Content-Type": "image/jpeg"},
        )
        assert r.status_code == 201, r.text
        deadline = time.monotonic() + 30  # the server picks the new facility up in the background
        while staff.get(f"/collections/facilities/items/{FACILITY_ID}").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.2)


_STILL = """async () => {
  // the map's pane stops moving: the same transform for 500 ms
  const pane = document.querySelector('.leaflet-map-pane');
  let last = null, since = performance.now();
  while (performance.now() - since < 500) {
    await new Promise(r => setTimeout(r, 50));
    const now = getComputedStyle(pane).transform;
    if (now !== last) { last = now; since = performance.now(); }
  }
}"""

_OVERLAPS = """(selectors) => {
  const popup = document.querySelector('.leaflet-popup').getBoundingClientRect();
  const out = {popup: [popup.left, popup.top, popup.right, popup.bottom]};
  for (const s of selectors) {
    const node = document.querySelector(s);
    if (!node || !node.offsetParent) continue;
    const r = node.getBoundingClientRect();
    const overlap = r.left < popup.right && popup.left < r.right
      && r.top < popup.bottom && popup.top < r.bottom;
    out[s] = [r.left, r.top, r.right, r.bottom, overlap];
  }
  return out;
}"""


@pytest.mark.browser
def test_phone_popup_with_photo_clears_the_top_controls_and_sends_a_report_photo(
    edit_live: Live, chromium: Any
) -> None:
    _facility_with_photo(edit_live)
    context, page, log = open_page(chromium, **located_phone(121.62, 31.0702))
    try:
        page.goto(edit_live.url + "/map")
        page.wait_for_selector("[data-fm-ready]", state="attached", timeout=TIMEOUT_MS)
        page.locator(".fm-locate-button").click()  # the nearby list comes from /nearest
        item = page.locator(f'.fm-list .fm-item[data-id="{FACILITY_ID}"]')
        item.wait_for(timeout=TIMEOUT_MS)
        item.tap()
        page.wait_for_function(
            "() => { const i = document.querySelector('.leaflet-popup-content .fm-photo');"
            " return i && i.complete && i.naturalWidth > 0; }",
            timeout=10_000,
        )
        page.evaluate(_STILL)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "popup-photo-phone-controls.png"))
        boxes = page.evaluate(_OVERLAPS, list(TOP_CONTROLS))
        assert ".fm-locate-button" in boxes, boxes
        overlapping = [s for s in TOP_CONTROLS if s in boxes and boxes[s][4]]
        assert overlapping == [], boxes
        # the report form: a photo from the phone's camera goes with the report
        popup = page.locator(".leaflet-popup-content .fm-popup")
        popup.locator(".fm-report-open").click()
        photo_input = popup.locator(".fm-report-photo")
        photo_input.wait_for(timeout=5_000)
        page.evaluate(_STILL)
        page.screenshot(path=str(ARTIFACTS / "popup-report-form-phone-controls.png"))
        form_boxes = page.evaluate(_OVERLAPS, list(TOP_CONTROLS))
        assert [s for s in TOP_CONTROLS if s in form_boxes and form_boxes[s][4]] == [], form_boxes
        assert photo_input.get_attribute("accept") == "image/*"
        assert photo_input.get_attribute("capture") is not None
        popup.locator(".fm-report-type").select_option("missing_amenity")
        photo_input.set_input_files(
            {"name": "IMG_0001.jpg", "mimeType": "image/jpeg", "buffer": _tall_jpeg()}
        )
        popup.locator(".fm-report-send").click()
        popup.locator(".fm-report-status").wait_for(timeout=10_000)
        failed = popup.locator(".fm-report-photo-failed").count()
        page.screenshot(path=str(ARTIFACTS / "popup-report-photo-sent-phone.png"))
    finally:
        context.close()
    assert failed == 0
    reports = edit_live.store.reports(facility_id=FACILITY_ID)
    assert [(r.type, r.has_photo) for r in reports] == [("missing_amenity", True)]
    assert not log.page_errors and not log.console_errors and not log.dialogs
    assert all(u.startswith((edit_live.url, "data:")) for u in log.requests), log.requests
