"""The staff console (``/admin``) in Debian's Chromium against a live ``finder serve``, as union
clerks use it: import a GBK list with a bad row and fix it in the page, drag a marker, resolve
an edit conflict between two browsers, read the audit trail, all on both store backends.

Every page is checked for requests leaving the origin, console errors and dialogs (an XSS-shaped
name must stay text). Screenshots at phone size go to ``artifacts/console/``.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import SECRET_ID, SECRET_NAME, Live
from browser_support import PHONE, PageLog, open_page
from playwright.sync_api import expect
from pyproj import Geod

from api.auth import create_api_key

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "console"
GEOD = Geod(ellps="WGS84")
TIMEOUT_MS = 30_000
XSS_NAME = "<img src=x onerror=alert(1)>控制台小屋"
#: Metres per CSS pixel of Leaflet's Web Mercator at zoom 0 on the equator.
_M_PER_PX_Z0 = 2 * math.pi * 6378137 / 256
#: The zoom the console shows a chosen facility at.
EDIT_ZOOM = 17

expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture
def browser_pages(chromium: Any, edit_live: Live) -> Iterator[Callable[..., tuple[Any, PageLog]]]:
    """Open console pages signed in with a key; checks each page's log when the test ends."""
    opened: list[tuple[Any, PageLog]] = []

    def signed_in(key: str, **options: Any) -> tuple[Any, PageLog]:
        context, page, log = open_page(chromium, **options)
        opened.append((context, log))
        page.goto(edit_live.url + "/admin")
        page.fill("#key", key)
        page.click("#signin-form button[type=submit]")
        expect(page.locator("#tabs")).to_be_visible()
        return page, log

    yield signed_in
    for context, log in opened:
        context.close()
        assert not log.page_errors and not log.dialogs, (log.page_errors, log.dialogs)
        assert not log.console_errors, log.console_errors
        outside = [u for u in log.requests if not u.startswith((edit_live.url, "data:", "blob:"))]
        assert not outside, outside


def _create(live: Live, **fields: Any) -> dict[str, Any]:
    body = {
        "name": "控制台测试驿站",
        "kind": "worker_station",
        "lon": 121.40,
        "lat": 31.20,
        "access": "public",
        "opening_hours": "24/7",
    } | fields
    with live.client(live.keys.editor) as editor:
        r = editor.post("/facilities", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def _stored(live: Live, fid: str) -> dict[str, Any]:
    with live.client(live.keys.editor) as editor:
        return dict(editor.get(f"/facilities/{fid}").json())


def _answered(log: PageLog, status: int) -> None:
    """Take the browser's console message about an expected ``status`` answer off ``log``."""
    message = f"status of {status}"
    assert any(message in m for m in log.console_errors), log.console_errors
    log.console_errors[:] = [m for m in log.console_errors if message not in m]


def _open_facility(page: Any, query: str, fid: str) -> None:
    page.click('#tabs [data-tab="edit"]')
    page.fill("#search", query)
    page.click(f'#results button[data-id="{fid}"]')
    expect(page.locator("#form-title")).to_contain_text(fid)
    expect(page.locator("#map")).to_have_attribute("data-zoom", str(EDIT_ZOOM))


def test_clerk_imports_a_gbk_list_fixes_a_cell_and_finds_it_nearest(
    browser_pages: Callable[..., tuple[Any, PageLog]], edit_live: Live, tmp_path: Path
) -> None:
    listing = tmp_path / "驿站名单.csv"
    listing.write_bytes(
        "编号,名称,类型,经度,纬度,开放对象,地址\n"
        ",导入测试驿站甲,工会驿站,121.3500,31.1000,public,测试路1号\n"
        ",导入测试驿站乙,工会驿站,121.35O5,31.1000,public,测试路2号\n"
        "public-1,公开爱心驿站,rest_stop,121.4745,31.2304,public,人民大道3号乙\n".encode("gbk")
    )
    page, _ = browser_pages(edit_live.keys.org_a_editor)
    page.set_input_files("#import-file", str(listing))
    page.select_option("#import-crs", "wgs84")
    page.click("#import-form button[type=submit]")

    bad = page.locator('#rejected-table tr[data-row="3"]')
    expect(bad.locator("td.reason")).to_contain_text("121.35O5")
    expect(bad.locator("td.bad input")).to_have_attribute("data-header", "经度")
    expect(page.locator("#accepted-table tbody tr")).to_have_count(2)
    update = page.locator('#accepted-table tr[data-row="4"]')
    expect(update).to_have_class("s-updated")
    expect(update.locator("li").filter(has_text="地址")).to_have_text(
        "地址 人民大道3号 → 人民大道3号乙"
    )
    assert edit_live.store.frame()["name"].eq("导入测试驿站甲").sum() == 0  # nothing written
    assert edit_live.store.get("public-1").address == "人民大道3号"

    cell = bad.locator('input[data-header="经度"]')
    cell.fill("121.3505")
    cell.press("Tab")
    page.click("#import-recheck")
    expect(page.locator("#accepted-table tbody tr")).to_have_count(3)
    expect(page.locator("#rejected-table tbody tr")).to_have_count(0)
    page.click("#import-commit")
    expect(page.locator("#import-final")).to_contain_text("新增 2，更新 1")
    with page.expect_download() as download:
        page.click("#import-report")
    report = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert (report["inserted"], report["updated"], report["rejected"]) == (2, 1, 0)
    assert edit_live.store.get("public-1").address == "人民大道3号乙"

    deadline = time.monotonic() + 30
    names: list[str] = []
    while "导入测试驿站乙" not in names[:1] and time.monotonic() < deadline:
        with edit_live.client() as anon:
            answer = anon.get("/nearest", params={"lon": 121.3505, "lat": 31.1, "k": 1})
        names = [f["properties"]["name"] for f in answer.json()["features"]]
        time.sleep(0.2)
    assert names == ["导入测试驿站乙"]

    key = edit_live.keys.org_a_editor
    stored = "() => [JSON.stringify(sessionStorage), JSON.stringify(localStorage), document.cookie]"
    in_tab, kept, cookies = page.evaluate(stored)
    assert key in in_tab and key not in kept + cookies
    page.click("#signout")
    page.reload()
    expect(page.locator("#signin")).to_be_visible()
    expect(page.locator("#tabs")).to_be_hidden()
    assert key not in "".join(page.evaluate(stored))


def test_dragging_the_marker_moves_the_stored_point_by_the_dragged_distance(
    browser_pages: Callable[..., tuple[Any, PageLog]], edit_live: Live
) -> None:
    facility = _create(edit_live, name="拖动测试驿站", lon=121.43, lat=31.18)
    page, _ = browser_pages(edit_live.keys.editor)
    _open_facility(page, "拖动测试", facility["id"])
    box = page.locator("#map .selected").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    dx_px = 150
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx_px, y, steps=15)
    page.mouse.up()
    expect(page.locator("#f-lon")).not_to_have_value(f"{facility['lon']:.7f}")
    expect(page.locator("#f-gcj")).to_contain_text("GCJ-02")
    page.click("#facility-form button[type=submit]")
    expect(page.locator("#toast")).to_have_text("已保存")

    moved = _stored(edit_live, facility["id"])
    assert moved["version"] == 2
    azimuth, _, metres = GEOD.inv(facility["lon"], facility["lat"], moved["lon"], moved["lat"])
    expected = dx_px * _M_PER_PX_Z0 * math.cos(math.radians(facility["lat"])) / 2**EDIT_ZOOM
    assert metres == pytest.approx(expected, rel=0.1)
    assert azimuth == pytest.approx(90, abs=3)  # dragged east


def test_an_edit_conflict_shows_both_versions_and_the_trail_both_changes(
    browser_pages: Callable[..., tuple[Any, PageLog]], edit_live: Live
) -> None:
    facility = _create(edit_live, name="冲突测试驿站")
    first, _ = browser_pages(edit_live.keys.editor)
    second, second_log = browser_pages(edit_live.keys.org_a_editor)
    for page in (first, second):
        _open_facility(page, "冲突测试", facility["id"])

    first.fill('#form-fields [name="name"]', "冲突测试驿站（甲改）")
    first.click("#facility-form button[type=submit]")
    expect(first.locator("#toast")).to_have_text("已保存")
    second.fill('#form-fields [name="phone"]', "021-7777")
    second.click("#facility-form button[type=submit]")

    table = second.locator("#conflict-table")
    expect(second.locator("#conflict")).to_be_visible()
    expect(table.locator('tr[data-field="phone"] td.mine')).to_have_text("021-7777")
    expect(table.locator('tr[data-field="name"] td.theirs')).to_have_text("冲突测试驿站（甲改）")
    _answered(second_log, 412)
    second.click("#keep-mine")
    expect(second.locator("#conflict")).to_be_hidden()
    expect(second.locator("#toast")).to_have_text("已保存")
    stored = _stored(edit_live, facility["id"])
    assert (stored["name"], stored["phone"], stored["version"]) == (
        "冲突测试驿站（甲改）",
        "021-7777",
        3,
    )

    second.click("#form-history")
    entries = second.locator("#history-list .entry")
    expect(entries).to_have_count(3)
    expect(entries.nth(0)).to_contain_text("org-a-editor")
    expect(entries.nth(0)).to_contain_text("021-7777")
    expect(entries.nth(1)).to_contain_text("editor")
    expect(entries.nth(1)).to_contain_text("冲突测试驿站（甲改）")

    entries.nth(1).locator("button.revert").click()  # revert the first change, as a new one
    expect(second.locator("#history-list .entry")).to_have_count(4)
    reverted = _stored(edit_live, facility["id"])
    assert (reverted["name"], reverted["phone"]) == ("冲突测试驿站", "021-7777")


def test_an_xss_shaped_name_stays_text(
    browser_pages: Callable[..., tuple[Any, PageLog]], edit_live: Live
) -> None:
    facility = _create(edit_live, name=XSS_NAME, lon=121.44, lat=31.21)
    page, _ = browser_pages(edit_live.keys.editor)
    _open_facility(page, "onerror", facility["id"])
    expect(page.locator(f'#results button[data-id="{facility["id"]}"] b')).to_have_text(XSS_NAME)
    expect(page.locator("#form-title")).to_contain_text(XSS_NAME)
    expect(page.locator('#form-fields [name="name"]')).to_have_value(XSS_NAME)
    page.click("#form-history")
    expect(page.locator("#history-title")).to_contain_text(XSS_NAME)
    assert page.locator("main img").count() == 0


def test_another_organisations_key_sees_and_edits_nothing_of_it(
    browser_pages: Callable[..., tuple[Any, PageLog]], edit_live: Live
) -> None:
    with edit_live.client(edit_live.keys.org_a_editor) as owner:
        secret = owner.get(f"/facilities/{SECRET_ID}")
        owner.patch(
            f"/facilities/{SECRET_ID}",
            json={"phone": "021-0000"},
            headers={"If-Match": secret.headers["etag"]},
        )
    page, log = browser_pages(edit_live.keys.org_x_editor)
    bodies: list[str] = []
    page.on("response", lambda r: bodies.append(r.text()) if "/static/" not in r.url else None)

    page.click('#tabs [data-tab="edit"]')
    page.fill("#search", "驿站")
    expect(page.locator("#results li").first).to_be_visible()
    page.fill("#search", SECRET_NAME)
    expect(page.locator("#results li")).to_have_count(0)
    page.click('#tabs [data-tab="history"]')
    page.fill("#history-id", SECRET_ID)
    page.click("#history-form button[type=submit]")
    expect(page.locator("#history-error")).not_to_be_empty()
    expect(page.locator("#history-list li")).to_have_count(0)
    _answered(log, 404)
    page.click('#tabs [data-tab="export"]')
    with page.expect_download() as download:
        page.click('[data-export="csv"]')
    exported = Path(download.value.path()).read_text(encoding="utf-8-sig")

    assert len(bodies) >= 3 and any(SECRET_ID in b and "404" in b for b in bodies)
    for text in [*bodies, exported, page.content()]:
        assert SECRET_NAME not in text and "021-0000" not in text
    with edit_live.client(edit_live.keys.org_x_editor) as other:  # the console's edit call
        r = other.patch(f"/facilities/{SECRET_ID}", json={"name": "x"}, headers={"If-Match": "*"})
    assert r.status_code == 404
    assert _stored(edit_live, SECRET_ID)["name"] == SECRET_NAME


def test_phone_size_keeps_the_edit_and_history_pages_usable(
    browser_pages: Callable[..., tuple[Any, PageLog]], edit_live: Live
) -> None:
    facility = _create(edit_live, name="手机测试驿站", lon=121.45, lat=31.22)
    with edit_live.client(edit_live.keys.editor) as editor:
        editor.patch(
            f"/facilities/{facility['id']}",
            json={"phone": "021-1111"},
            headers={"If-Match": f'"{facility["version"]}"'},
        )
    page, _ = browser_pages(edit_live.keys.editor, viewport=PHONE)
    _open_facility(page, "手机测试", facility["id"])
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "edit-phone.png"), full_page=True)
    for selector in ("#map", "#facility-form button[type=submit]", '[name="name"]', "#f-lon"):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    page.click("#form-history")
    expect(page.locator("#history-list .entry")).to_have_count(2)
    page.screenshot(path=str(ARTIFACTS / "history-phone.png"))
    for selector in ("#history-list .entry >> nth=0", "#history-list button.revert"):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]


def test_an_admin_key_creates_a_key_shown_once_and_revokes_it(
    browser_pages: Callable[..., tuple[Any, PageLog]], edit_live: Live
) -> None:
    page, _ = browser_pages(create_api_key(edit_live.keys_file, "browser-admin", ["admin"]))
    expect(page.locator('#tabs [data-tab="edit"]')).to_be_hidden()
    expect(page.locator("#keys-table tr[data-name='editor']")).to_be_visible()
    page.fill("#k-name", "新职员")
    page.check('#k-scopes input[value="edit"]')
    page.fill("#k-orgs", "OrgN")
    page.click("#key-form button[type=submit]")
    secret = page.locator("#key-secret-text")
    expect(secret).to_have_text(re.compile(r"^fk_"))
    key = secret.inner_text()
    with edit_live.client(key) as clerk:
        assert clerk.get("/admin/session").json()["organizations"] == ["OrgN"]
    page.locator("#keys-table tr[data-name='新职员'] button").click()
    expect(page.locator("#keys-table tr[data-name='新职员'] td").nth(3)).to_have_text("已吊销")
    with edit_live.client(key) as clerk:
        assert clerk.get("/admin/session").status_code == 401
    page.click("#signout")
    expect(secret).to_be_empty()
