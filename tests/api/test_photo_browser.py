"""Photos in Chromium, on both store backends: a phone photo is shrunk in the browser before it
is sent (the map's report form and the console's upload), and the console's edit page takes a
photo down after asking once more. Screenshots in ``artifacts/console`` and ``artifacts/maps``.

The server's photo limit is 3 MB here and the photo a 7 MB 4000 x 3000 JPEG: sent as chosen it
would be refused (413), shrunk it arrives as a JPEG of at most 1600 px.
"""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from api_support import Live, facility_rows
from browser_support import PHONE, located_phone, open_page, sign_in
from PIL import Image
from playwright.sync_api import expect

from geodata.photos import MAX_SIDE_PX

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_MS = 30_000
LIMIT_MB = 3
MAP_FACILITY = "shrink-ux-1"


def server_env(tmp: Path) -> dict[str, str]:
    """A photo limit the phone photo exceeds."""
    return {"FINDER_PHOTO_MAX_MB": str(LIMIT_MB)}


@pytest.fixture(scope="module")
def phone_photo() -> bytes:
    """A 12 MP phone photo (4000 x 3000, a noisy gradient), larger than the server's limit."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:3000, 0:4000]
    base = np.stack([x * 255 // 4000, y * 255 // 3000, (x + y) * 255 // 7000], axis=-1)
    pixels = np.clip(base + rng.integers(-40, 40, size=base.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=92)
    data = buf.getvalue()
    assert len(data) > LIMIT_MB * 1024 * 1024
    return data


def _jpeg(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (400, 300), colour).save(buf, format="JPEG")
    return buf.getvalue()


def _uploads(page: Any, path_part: str) -> list[tuple[int, str]]:
    """Body size (bytes, as sent) and type of the page's POSTs to URLs with ``path_part``."""
    sent: list[tuple[int, str]] = []

    def on_finished(request: Any) -> None:
        if request.method == "POST" and path_part in request.url:
            headers = request.all_headers()
            sent.append((int(headers.get("content-length", 0)), headers["content-type"]))

    page.on("requestfinished", on_finished)
    return sent


def _assert_shrunk(sent: tuple[int, str], original: bytes) -> None:
    size, media_type = sent
    assert 0 < size < len(original) / 5, (size, len(original))
    assert media_type == "image/jpeg"


_SHRINK = """async ([b64, side]) => {
  const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
  const file = new File([bytes], 'IMG.jpg', {type: 'image/jpeg'});
  const out = await window.FinderPhotos.shrink(file, side);
  const bitmap = await createImageBitmap(out);
  const junk = await window.FinderPhotos.shrink(new File(['not an image'], 'x.jpg'), side);
  return [out.type, out.size, bitmap.width, bitmap.height, await junk.text()];
}"""


def test_console_takes_a_photo_down_after_asking_and_shrinks_an_upload(
    edit_live: Live, chromium: Any, phone_photo: bytes
) -> None:
    rows = facility_rows()
    facility_id = str(rows.loc[rows["access"] == "public", "id"].iloc[60])
    with edit_live.client(edit_live.keys.editor) as staff:
        for colour in ((200, 30, 30), (30, 30, 200)):
            r = staff.post(
                f"/facilities/{facility_id}/photos",
                content=_jpeg(colour),
                headers={"Content-Type": "image/jpeg"},
            )
            assert r.status_code == 201, r.text
    context, page, log = open_page(chromium, viewport=PHONE)
    uploads = _uploads(page, f"/facilities/{facility_id}/photos")
    try:
        sign_in(page, edit_live.url, edit_live.keys.plain_editor, timeout_ms=TIMEOUT_MS)
        page.click('#tabs [data-tab="edit"]')
        page.fill("#search", facility_id)
        page.locator(f'#results button[data-id="{facility_id}"]').click(timeout=TIMEOUT_MS)
        photos = page.locator("#photo-list li.photo")
        expect(photos).to_have_count(2, timeout=TIMEOUT_MS)
        page.wait_for_function(
            "() => [...document.querySelectorAll('#photo-list img')]"
            ".every(i => i.complete && i.naturalWidth > 0)",
            timeout=TIMEOUT_MS,
        )
        page.locator("#photos").scroll_into_view_if_needed()
        (ROOT / "artifacts" / "console").mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ROOT / "artifacts/console/edit-photos-phone.png"), full_page=True)
        first = photos.nth(0)
        first.locator(".photo-delete").click()
        expect(first.locator(".photo-ask")).to_be_visible()
        page.locator("#photos").scroll_into_view_if_needed()
        page.screenshot(path=str(ROOT / "artifacts/console/edit-photo-delete-ask-phone.png"))
        with edit_live.client() as public:  # asking deletes nothing
            assert public.get(f"/facilities/{facility_id}/photos/0").status_code == 200
        first.locator(".photo-cancel").click()
        expect(first.locator(".photo-ask")).to_have_count(0)
        first.locator(".photo-delete").click()
        first.locator(".photo-delete-yes").click()
        expect(photos).to_have_count(1, timeout=TIMEOUT_MS)
        expect(photos.nth(0)).to_have_attribute("data-n", "1")  # the other keeps its number
        # an upload: the phone photo, shrunk before it leaves the browser
        page.set_input_files(
            "#photo-file",
            {"name": "IMG_0002.jpg", "mimeType": "image/jpeg", "buffer": phone_photo},
        )
        expect(photos).to_have_count(2, timeout=TIMEOUT_MS)
        expect(page.locator("#photo-error")).to_have_text("")
        # the facility's history names each photo change (newest first) and who made it
        page.click("#form-history")
        changes = page.locator("#history-list li.entry .meta", has_text="照片")
        expect(changes).to_have_count(4, timeout=TIMEOUT_MS)
        said = [changes.nth(i).inner_text().split(" · ")[1:] for i in range(4)]
        # this key may not read the whole trail: said in the page's language, not the server's
        expect(page.locator("#org-list")).to_have_text(
            "此密钥只能查看单个设施的修改记录（全部记录需要 read-all 权限或所属单位）"
        )
        page.screenshot(path=str(ROOT / "artifacts/console/history-photos-phone.png"))
    finally:
        context.close()
    with edit_live.client() as public:
        assert public.get(f"/facilities/{facility_id}/photos/0").status_code == 404
        assert public.get(f"/facilities/{facility_id}/photos/1").status_code == 200
    entries = edit_live.store.photos(facility_id)
    assert [(e.n, e.deleted_by) for e in entries] == [(0, "plain-editor"), (1, None), (2, None)]
    assert said == [
        ["plain-editor", "添加照片"],
        ["plain-editor", "撤下照片"],
        ["editor", "添加照片"],
        ["editor", "添加照片"],
    ]
    assert len(uploads) == 1
    _assert_shrunk(uploads[0], phone_photo)
    assert not log.page_errors and not log.dialogs
    assert all(u.startswith((edit_live.url, "data:", "blob:")) for u in log.requests), log.requests


def _facility_on_the_map(live: Live) -> None:
    template = facility_rows().query("access == 'public'").iloc[[0]].reset_index(drop=True)
    row = template.assign(id=MAP_FACILITY, name="缩小照片驿站", lon=121.64, lat=31.05)
    live.store.upsert_frame(pd.DataFrame(row), actor="test")
    deadline = time.monotonic() + 30  # the server picks the new facility up in the background
    with live.client() as client:
        while client.get(f"/collections/facilities/items/{MAP_FACILITY}").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.2)


def test_report_form_shrinks_a_phone_photo_before_sending_it(
    edit_live: Live, chromium: Any, phone_photo: bytes
) -> None:
    _facility_on_the_map(edit_live)
    context, page, log = open_page(chromium, **located_phone(121.64, 31.0502))
    uploads = _uploads(page, "/photo?token=")
    try:
        page.goto(edit_live.url + "/map")
        page.wait_for_selector("[data-fm-ready]", state="attached", timeout=TIMEOUT_MS)
        page.locator(".fm-locate-button").click()
        item = page.locator(f'.fm-list .fm-item[data-id="{MAP_FACILITY}"]')
        item.wait_for(timeout=TIMEOUT_MS)
        item.tap()
        popup = page.locator(".leaflet-popup-content .fm-popup")
        popup.locator(".fm-report-open").click()
        popup.locator(".fm-report-type").select_option("missing_amenity")
        popup.locator(".fm-report-photo").set_input_files(
            {"name": "IMG_0001.jpg", "mimeType": "image/jpeg", "buffer": phone_photo}
        )
        popup.locator(".fm-report-send").click()
        popup.locator(".fm-report-status").wait_for(timeout=TIMEOUT_MS)
        failed = popup.locator(".fm-report-photo-failed").count()
        # what the page sends: a JPEG of at most MAX_SIDE_PX; what it cannot decode: as chosen
        encoded = base64.b64encode(phone_photo).decode("ascii")
        shrunk = page.evaluate(_SHRINK, [encoded, MAX_SIDE_PX])
    finally:
        context.close()
    assert failed == 0
    assert len(uploads) == 1
    _assert_shrunk(uploads[0], phone_photo)
    (report,) = edit_live.store.reports(facility_id=MAP_FACILITY)
    stored = Image.open(io.BytesIO(edit_live.store.report_photo(report.report_id, thumb=False)))
    assert stored.size == (MAX_SIDE_PX, MAX_SIDE_PX * 3 // 4)
    media_type, size, width, height, junk = shrunk
    assert (media_type, width, height) == ("image/jpeg", MAX_SIDE_PX, MAX_SIDE_PX * 3 // 4)
    assert size < len(phone_photo) / 5
    assert junk == "not an image"  # not decodable here: sent as chosen, the server decides
    assert not log.page_errors and not log.console_errors and not log.dialogs
    assert all(u.startswith((edit_live.url, "data:", "blob:")) for u in log.requests), log.requests
