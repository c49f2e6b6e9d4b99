"""How to get in, users' reports and photos through a live server, on both store backends.

Reports come from distinct client addresses: each client binds its own loopback address
(127.0.0.x), so the server sees distinct sources as it would behind no proxy. The rule under
test (``docs/reports.md``): two reports of a type from distinct sources within 24 hours, or a
staff confirmation, make the signal count; one report, or one source reporting again, does not.
"""

from __future__ import annotations

import io
import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from api_support import SECRET_ID, Live, facility_rows
from browser_support import PHONE, open_page
from PIL import Image

from finder.reports import ReportSignal

RATE = 5  # reports per hour and source of the module's server
_addresses = (f"127.0.0.{i}" for i in itertools.count(2))
TIMEOUT_MS = 30_000
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "maps"


def server_env(tmp: Path) -> dict[str, str]:
    """A low report rate and photo limit, so the limits are quick to reach."""
    return {"FINDER_REPORTS_PER_HOUR": str(RATE), "FINDER_PHOTO_MAX_MB": "1"}


@pytest.fixture
def source(edit_live: Live) -> Iterator[httpx.Client]:
    """An anonymous client from a loopback address no other test uses."""
    with _from(edit_live, next(_addresses)) as client:
        yield client


def _from(live: Live, address: str, key: str | None = None) -> httpx.Client:
    return live.client(key, transport=httpx.HTTPTransport(local_address=address))


def _public_ids(live: Live, n: int, start: int) -> list[str]:
    rows = facility_rows()
    return rows.loc[rows["access"] == "public", "id"].iloc[start : start + n].tolist()


def _report(client: httpx.Client, facility_id: str, type_: str, **more: Any) -> dict[str, Any]:
    r = client.post(f"/facilities/{facility_id}/reports", json={"type": type_, **more})
    assert r.status_code == 201, r.text
    return dict(r.json())


def _status(live: Live, receipt: dict[str, Any]) -> dict[str, Any]:
    with live.client() as client:
        r = client.get(receipt["status_url"])
    assert r.status_code == 200, r.text
    return dict(r.json())


def _problem(r: httpx.Response) -> dict[str, Any]:
    """The problem document less the request-specific ``instance``."""
    assert r.headers["content-type"].startswith("application/problem+json"), r.text
    return {k: v for k, v in r.json().items() if k != "instance"}


def _jpeg_with_gps() -> bytes:
    """A photo as a phone takes it: EXIF with a GPS position, camera make and orientation."""
    image = Image.new("RGB", (640, 480), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0112] = 6  # Orientation: rotate 90 degrees to show upright
    exif[0x8825] = {1: "N", 2: (31.0, 13.0, 49.0), 3: "E", 4: (121.0, 28.0, 25.0)}
    buf = io.BytesIO()
    image.save(buf, format="JPEG", exif=exif)
    return buf.getvalue()


def test_two_reports_flip_the_signal_one_does_not(edit_live: Live) -> None:
    facility_id = _public_ids(edit_live, 1, 0)[0]
    with _from(edit_live, next(_addresses)) as first, _from(edit_live, next(_addresses)) as other:
        receipt = _report(first, facility_id, "locked_during_hours", note="门锁着")
        assert receipt["status"] == "pending"
        assert _status(edit_live, receipt)["counted"] is False
        second = _report(other, facility_id, "locked_during_hours")
    assert _status(edit_live, receipt)["counted"] is True
    assert _status(edit_live, second)["counted"] is True
    # the signal the doors engineer's "open now" takes, computed from the store
    from api.routes.reports import all_report_signals, report_signals

    signals = report_signals(edit_live.store, facility_id)
    assert [(s.kind, s.count) for s in signals] == [("locked_during_hours", 2)]
    assert all_report_signals(edit_live.store)[facility_id] == signals
    assert isinstance(signals[0], ReportSignal)
    assert signals[0].first_at <= signals[0].last_at


def test_a_source_reporting_again_counts_once(edit_live: Live, source: httpx.Client) -> None:
    facility_id = _public_ids(edit_live, 1, 1)[0]
    receipts = [_report(source, facility_id, "moved") for _ in range(3)]
    assert all(_status(edit_live, r)["counted"] is False for r in receipts)
    with edit_live.client(edit_live.keys.editor) as staff:
        listed = staff.get("/reports", params={"facility_id": facility_id}).json()["reports"]
    assert [r["id"] for r in listed] == [r["id"] for r in reversed(receipts)]
    assert all(r["counted"] is False for r in listed)
    assert all("source" not in r and "token" not in r for r in listed)
    # staff see which facility by its name (the console lists it), as the registry has it
    rows = facility_rows()
    name = rows.loc[rows["id"] == facility_id, "name"].item()
    assert name and all(r["facility_name"] == name for r in listed)


def test_reports_are_throttled_per_source(edit_live: Live, source: httpx.Client) -> None:
    facility_id = _public_ids(edit_live, 1, 2)[0]
    for _ in range(RATE):
        _report(source, facility_id, "other")
    refused = source.post(f"/facilities/{facility_id}/reports", json={"type": "other"})
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert _problem(refused)["status"] == 429
    with _from(edit_live, next(_addresses)) as someone_else:
        _report(someone_else, facility_id, "other")


def test_staff_confirm_and_dismiss(edit_live: Live, source: httpx.Client) -> None:
    facility_id = _public_ids(edit_live, 1, 3)[0]
    receipt = _report(source, facility_id, "closed_for_good")
    with edit_live.client(edit_live.keys.plain_editor) as staff:
        confirmed = staff.post(f"/reports/{receipt['id']}/confirm")
        assert confirmed.status_code == 200, confirmed.text
        assert confirmed.json()["counted"] is True
        status = _status(edit_live, receipt)
        assert (status["status"], status["counted"]) == ("confirmed", True)
        assert status["resolved_at"] is not None
        dismissed = staff.post(f"/reports/{receipt['id']}/dismiss")
        assert dismissed.json()["status"] == "dismissed"
    assert _status(edit_live, receipt)["counted"] is False
    with edit_live.client() as anonymous:
        assert anonymous.post(f"/reports/{receipt['id']}/confirm").status_code == 401


def test_wrong_token_is_a_missing_report(edit_live: Live, source: httpx.Client) -> None:
    receipt = _report(source, _public_ids(edit_live, 1, 4)[0], "wrong_details")
    with edit_live.client() as client:
        wrong = client.get(f"/reports/{receipt['id']}", params={"token": "x" * 32})
        missing = client.get("/reports/999999", params={"token": receipt["token"]})
    assert wrong.status_code == missing.status_code == 404
    assert _problem(wrong)["type"] == _problem(missing)["type"]
    assert _problem(wrong)["detail"].replace(str(receipt["id"]), "N") == _problem(missing)[
        "detail"
    ].replace("999999", "N")


def test_no_new_route_reveals_a_hidden_facility(edit_live: Live) -> None:
    """Hidden (employees-only) and missing facilities answer alike on every new route."""
    keys = edit_live.keys
    with _from(edit_live, next(_addresses), keys.org_a) as org_a:
        # someone who may see the room reports it; staff who may not see it look for it
        hidden_report = _report(org_a, SECRET_ID, "missing_amenity")
    pairs: list[tuple[str | None, str, str, dict[str, Any]]] = [
        (None, "POST", "/facilities/{}/reports", {"json": {"type": "other"}}),
        (None, "GET", "/facilities/{}/photos/0", {}),
        (None, "GET", "/facilities/{}/photos/0?size=thumb", {}),
        (keys.plain_editor, "GET", "/reports?facility_id={}", {}),
        (
            keys.plain_editor,
            "POST",
            "/facilities/{}/photos",
            {"content": _jpeg_with_gps(), "headers": {"Content-Type": "image/jpeg"}},
        ),
    ]
    for key, method, path, options in pairs:
        answers = []
        for facility_id in (SECRET_ID, "no-such-facility-1"):
            with _from(edit_live, next(_addresses), key) as client:
                r = client.request(method, path.format(facility_id), **options)
            answers.append((r.status_code, _problem(r)))
        (hidden_status, hidden), (missing_status, missing) = answers
        assert hidden_status == missing_status == 404, (method, path)
        assert hidden["detail"].replace(SECRET_ID, "X") == missing["detail"].replace(
            "no-such-facility-1", "X"
        ), (method, path)
        assert hidden["type"] == missing["type"]
    with edit_live.client(keys.plain_editor) as staff:
        for action in ("confirm", "dismiss"):
            hidden_r = staff.post(f"/reports/{hidden_report['id']}/{action}")
            missing_r = staff.post(f"/reports/999999/{action}")
            assert hidden_r.status_code == missing_r.status_code == 404
            assert _problem(hidden_r)["detail"].replace(str(hidden_report["id"]), "N") == (
                _problem(missing_r)["detail"].replace("999999", "N")
            )
        listed = staff.get("/reports").json()["reports"]
        assert hidden_report["id"] not in [r["id"] for r in listed]
    with edit_live.client(keys.editor) as admin:
        listed = admin.get("/reports", params={"facility_id": SECRET_ID}).json()["reports"]
        assert [r["id"] for r in listed] == [hidden_report["id"]]
    # the reporter's own status page stops answering for a facility they can no longer see
    with edit_live.client() as anonymous:
        r = anonymous.get(hidden_report["status_url"])
    assert r.status_code == 404


def test_photo_is_stored_without_exif_and_served_as_thumbnail(edit_live: Live) -> None:
    facility_id = _public_ids(edit_live, 1, 5)[0]
    upload = _jpeg_with_gps()
    assert b"PhoneMaker" in upload
    with edit_live.client(edit_live.keys.editor) as staff:
        r = staff.post(
            f"/facilities/{facility_id}/photos",
            content=upload,
            headers={"Content-Type": "image/jpeg"},
        )
    assert r.status_code == 201, r.text
    answer = r.json()
    assert answer["n"] == 0
    with edit_live.client() as anonymous:
        full = anonymous.get(answer["url"])
        thumb = anonymous.get(answer["thumb_url"])
    for served in (full, thumb):
        assert served.status_code == 200
        assert served.headers["content-type"] == "image/jpeg"
        assert b"Exif" not in served.content and b"PhoneMaker" not in served.content
        image = Image.open(io.BytesIO(served.content))
        assert dict(image.getexif()) == {}
        assert "exif" not in image.info and "icc_profile" not in image.info
    # turned upright as the orientation tag said: 640x480 shown rotated is 480 wide
    assert Image.open(io.BytesIO(full.content)).size == (480, 640)
    assert max(Image.open(io.BytesIO(thumb.content)).size) <= 320


def test_photo_uploads_are_checked(edit_live: Live) -> None:
    facility_id = _public_ids(edit_live, 1, 6)[0]
    path = f"/facilities/{facility_id}/photos"
    with edit_live.client(edit_live.keys.editor) as staff:
        wrong_type = staff.post(path, content=b"hello", headers={"Content-Type": "text/plain"})
        not_an_image = staff.post(path, content=b"x" * 100, headers={"Content-Type": "image/png"})
        too_large = staff.post(
            path, content=b"\xff" * (1024 * 1024 + 1), headers={"Content-Type": "image/jpeg"}
        )
        missing = staff.get(f"/facilities/{facility_id}/photos/0")
    with edit_live.client() as anonymous:
        no_key = anonymous.post(
            path, content=_jpeg_with_gps(), headers={"Content-Type": "image/jpeg"}
        )
    assert wrong_type.status_code == 415
    assert not_an_image.status_code == 422
    assert too_large.status_code == 413
    assert missing.status_code == 404
    assert no_key.status_code == 401


def test_entry_method_is_editable_and_shown(edit_live: Live) -> None:
    facility_id = "public-1"
    with edit_live.client(edit_live.keys.editor) as staff:
        etag = staff.get(f"/facilities/{facility_id}").headers["ETag"]
        refused = staff.patch(
            f"/facilities/{facility_id}",
            json={"entry_method": "call_keeper"},
            headers={"If-Match": etag},
        )
        assert refused.status_code == 422  # calling the keeper needs the number
        r = staff.patch(
            f"/facilities/{facility_id}",
            json={
                "entry_method": "call_keeper",
                "entry_phone": "021-5555 0101",
                "entry_note": "按门铃旁的电话",
            },
            headers={"If-Match": etag},
        )
        assert r.status_code == 200, r.text
    expected = {
        "entry_method": "call_keeper",
        "entry_phone": "021-5555 0101",
        "entry_note": "按门铃旁的电话",
    }
    with edit_live.client() as anonymous:
        deadline = time.monotonic() + 10
        while True:
            near = anonymous.get(
                "/nearest", params={"lon": 121.4745, "lat": 31.2304, "k": 5}
            ).json()
            props = {f["id"]: f["properties"] for f in near["features"]}[facility_id]
            if props["entry_method"] == "call_keeper" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        item = anonymous.get(f"/collections/facilities/items/{facility_id}").json()
    assert {k: props[k] for k in expected} == expected
    assert {k: item["properties"][k] for k in expected} == expected


@pytest.mark.browser
def test_popup_shows_entry_photo_and_report_button(edit_live: Live, chromium: Any) -> None:
    """In Chromium: the nearby list (from /nearest) and the popup of a facility show how to get
    in, the popup its photo (from our own origin), and its "report a problem" form sends a
    report that staff then see."""
    template = facility_rows().query("access == 'public'").iloc[[0]].reset_index(drop=True)
    row = template.assign(
        id="entry-ux-1",
        name="入口测试驿站",
        kind="worker_station",
        lon=121.6,
        lat=31.05,
        address="浦东新区入口测试路1号",
        entry_method="call_keeper",
        entry_phone="13800000000",
        entry_note="<b>按门铃</b>",
    )
    edit_live.store.upsert_frame(pd.DataFrame(row), actor="test")
    with edit_live.client(edit_live.keys.editor) as staff:
        r = staff.post(
            "/facilities/entry-ux-1/photos",
            content=_jpeg_with_gps(),
            headers={"Content-Type": "image/jpeg"},
        )
        assert r.status_code == 201, r.text
        deadline = time.monotonic() + 30  # the server picks the new facility up in the background
        while staff.get("/collections/facilities/items/entry-ux-1").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    context, page, log = open_page(
        chromium,
        viewport=PHONE,
        permissions=["geolocation"],
        geolocation={"longitude": 121.6, "latitude": 31.0502, "accuracy": 20},
    )
    try:
        page.goto(edit_live.url + "/map")
        page.wait_for_selector("[data-fm-ready]", state="attached", timeout=TIMEOUT_MS)
        page.locator(".fm-locate-button").click()  # the nearby list comes from /nearest
        item = page.locator('.fm-list .fm-item[data-id="entry-ux-1"]')
        item.wait_for(timeout=TIMEOUT_MS)
        assert item.locator(".fm-item-entry").inner_text() == "电话联系管理员开门"
        item.click()
        popup = page.locator(".leaflet-popup-content .fm-popup")
        popup.locator(".fm-entry-method").wait_for(timeout=5_000)
        assert popup.locator(".fm-entry-method").inner_text() == "电话联系管理员开门"
        assert popup.locator(".fm-entry-phone").get_attribute("href") == "tel:13800000000"
        assert popup.locator(".fm-entry-note").inner_text() == "<b>按门铃</b>"  # text, not HTML
        page.wait_for_function(
            "() => { const i = document.querySelector('.leaflet-popup-content .fm-photo');"
            " return i && i.complete && i.naturalWidth > 0; }",
            timeout=10_000,
        )
        src = popup.locator(".fm-photo").evaluate("i => i.src")
        assert src == edit_live.url + "/facilities/entry-ux-1/photos/0?size=thumb"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "popup-entry-photo-phone.png"))
        popup.locator(".fm-report-open").click()
        popup.locator(".fm-report-type").select_option("locked_during_hours")
        popup.locator(".fm-report-note").fill("下午两点锁门")
        popup.locator(".fm-report-send").click()
        popup.locator(".fm-report-status").wait_for(timeout=10_000)
        message = popup.locator(".fm-report-message").inner_text()
        page.screenshot(path=str(ARTIFACTS / "popup-report-sent-phone.png"))
    finally:
        context.close()
    assert "已收到" in message
    reports = edit_live.store.reports(facility_id="entry-ux-1")
    assert [(r.type, r.note) for r in reports] == [("locked_during_hours", "下午两点锁门")]
    assert not log.page_errors and not log.console_errors and not log.dialogs
    assert all(u.startswith((edit_live.url, "data:")) for u in log.requests), log.requests
