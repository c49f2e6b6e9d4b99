"""The web map on days of the provisional holiday calendar: the popup says so, in Chromium."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import pytest

from finder.hours import HolidayCalendar
from maps.webmap import (
    FLAG_PROVISIONAL,
    STATE_CLOSED,
    STATE_OPEN,
    STATE_UNKNOWN,
    UI_LABELS,
    facility_map_html,
    facility_payload,
)

OFFICE = "Mo-Fr 09:00-18:00; PH off"
SPRING_2027 = dt.datetime(2027, 2, 8, 10, 0)  # 正月初三, a Monday: a statutory day off
AFTER_SPRING_2027 = dt.datetime(2027, 2, 10, 10, 0)  # 初五, a Wednesday
OFFICIAL_DAY = dt.datetime(2026, 10, 2, 10, 0)  # 国庆节 2026, bundled


def _facilities() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["office", "always", "none"],
            "name": ["静安区总工会爱心妈咪小屋", "南京西路工会驿站", "人民广场驿站"],
            "kind": ["mother_room", "worker_station", "rest_stop"],
            "lon": [121.4581, 121.4700, 121.4800],
            "lat": [31.2242, 31.2320, 31.2200],
            "access": "public",
            "opening_hours": [OFFICE, "24/7", None],
            "status": "open",
        }
    )


@pytest.fixture(scope="module")
def calendar() -> HolidayCalendar:
    return HolidayCalendar.default().with_provisional()


@pytest.mark.parametrize(
    ("now", "office_flags"),
    [
        (SPRING_2027, STATE_CLOSED | FLAG_PROVISIONAL),
        (AFTER_SPRING_2027, STATE_OPEN | FLAG_PROVISIONAL),
        (OFFICIAL_DAY, STATE_CLOSED),
    ],
)
def test_payload_flags_provisional_states(
    calendar: HolidayCalendar, now: dt.datetime, office_flags: int
) -> None:
    doc = facility_payload(
        _facilities(), language="zh", display_crs="wgs84", now=now, calendar=calendar
    )
    flags = [f & ~4 for f in doc["data"]["flags"]]  # without the mainland bit
    assert flags == [office_flags, STATE_OPEN, STATE_UNKNOWN]
    assert doc["labels"]["provisional"] == UI_LABELS["zh"]["provisional"]


def test_without_provisional_the_map_says_unknown() -> None:
    doc = facility_payload(
        _facilities(),
        language="zh",
        display_crs="wgs84",
        now=AFTER_SPRING_2027,
        calendar=HolidayCalendar.default(),
    )
    assert doc["data"]["flags"][0] & ~4 == STATE_UNKNOWN


@pytest.mark.browser
@pytest.mark.parametrize(("now", "provisional"), [(AFTER_SPRING_2027, True), (OFFICIAL_DAY, False)])
def test_popup_says_the_calendar_is_provisional(
    local_server: Any,
    browser_page: Any,
    artifacts_dir: Any,
    calendar: HolidayCalendar,
    now: dt.datetime,
    provisional: bool,
) -> None:
    frame = _facilities()
    html = facility_map_html(
        frame,
        now=now,
        calendar=calendar,
        center=(frame.lon[0], frame.lat[0]),
        zoom=16,
        asset_mode="served",
    )
    page, log = browser_page
    page.goto(local_server.publish(f"/calendar-{now:%Y%m%d}.html", html))
    page.wait_for_selector("[data-fm-ready]", timeout=30_000, state="attached")
    page.evaluate(
        "(() => { const m = FacilityMap.instance.markerFor(0); m.fire('click', "
        "{latlng: m.getLatLng()}, true); })()"
    )
    popup = page.locator(".leaflet-popup-content .fm-popup")
    popup.wait_for(timeout=5_000)
    page.wait_for_timeout(200)
    page.screenshot(path=str(artifacts_dir / f"popup_calendar_{now:%Y%m%d}.png"))
    assert popup.locator(".fm-state").inner_text() == ("营业中" if provisional else "已关闭")
    notes = popup.locator(".fm-provisional")
    if provisional:
        assert notes.inner_text() == UI_LABELS["zh"]["provisional"]
    else:
        assert notes.count() == 0
    assert log.page_errors == []
