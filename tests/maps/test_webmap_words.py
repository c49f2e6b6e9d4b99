"""What the web map's payload says in words (hours, next change, last check), the nearby query
it carries, its district check and its error pages; no browser."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from test_webmap import _payload

from finder.hours import HolidayCalendar, change_in_words, hours_in_words, next_change
from geodata.boundaries import load_districts
from geodata.errors import UnknownDistrict
from maps.webmap import (
    FLAG_TEMPORARILY_CLOSED,
    STATE_CLOSED,
    error_page_html,
    facility_map,
    facility_map_html,
)

NOW = dt.datetime(2026, 11, 26, 10, 0)  # a Thursday morning


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "name": ["甲", "乙", "丙", "丁"],
            "kind": ["mother_room", "worker_station", "rest_stop", "worker_station"],
            "lon": [121.4581, 121.47, 121.48, 121.49],
            "lat": [31.2242, 31.232, 31.22, 31.23],
            "opening_hours": ["Mo-Fr 09:00-18:00; PH off", "24/7", "not valid ###", None],
            "status": ["open", "temporarily_closed", "open", "open"],
            "verified_at": ["2026-06-30", None, pd.NaT, "2025-01-02"],
            "access": "public",
        }
    )


@pytest.mark.parametrize("language", ["zh", "en"])
def test_payload_says_hours_and_changes_in_words(language: str) -> None:
    calendar = HolidayCalendar.default()
    data = _payload(facility_map_html(_frame(), now=NOW, language=language))["data"]
    assert data["id"] == ["a", "b", "c", "d"]
    words = dict(zip(data["hours_values"], data["hours_words"], strict=True))
    assert words["Mo-Fr 09:00-18:00; PH off"] == hours_in_words(
        "Mo-Fr 09:00-18:00; PH off", language
    )
    assert words["not valid ###"] == "not valid ###"  # shown as given, not an error
    nexts = dict(zip(data["hours_values"], data["hours_next"], strict=True))
    change = next_change("Mo-Fr 09:00-18:00; PH off", NOW, calendar)
    assert change is not None
    assert nexts["Mo-Fr 09:00-18:00; PH off"] == change_in_words(*change, NOW, language)
    assert nexts["24/7"] == nexts["not valid ###"] == ""
    assert data["verified"] == ["2026-06-30", "", "", "2025-01-02"]
    # a temporarily closed facility is closed whatever its hours say, and says no next change
    assert data["flags"][1] & 3 == STATE_CLOSED
    assert data["flags"][1] & FLAG_TEMPORARILY_CLOSED
    assert not data["flags"][0] & FLAG_TEMPORARILY_CLOSED


def test_nearby_query_carries_the_map_filters() -> None:
    plain = _payload(facility_map_html(_frame(), now=NOW))
    assert plain["nearby"] is None and plain["origin"] is None
    document = _payload(
        facility_map_html(
            _frame(),
            now=NOW,
            kinds=["rest_stop", "mother_room"],
            amenities=["wifi", "fridge"],
            nearby_url="/nearest",
            origin=(121.47, 31.23),
            center=(121.47, 31.23),
        )
    )
    assert document["nearby"] == {
        "url": "/nearest",
        "k": 3,
        "kind": ["mother_room", "rest_stop"],
        "amenity": ["fridge", "wifi"],
        "live": None,  # no live stream unless the service names one
    }
    streamed = _payload(
        facility_map_html(_frame(), now=NOW, nearby_url="/nearest", live_url="/live?lang=zh")
    )
    assert streamed["nearby"]["live"] == "/live?lang=zh"
    assert document["origin"] == [121.47, 31.23]
    assert document["fit"] is None  # a centre was given: no fitting
    fitted = _payload(facility_map_html(_frame(), now=NOW))["fit"]
    assert fitted == [[31.22, 121.4581], [31.232, 121.49]]


def test_unknown_district_is_refused() -> None:
    with pytest.raises(UnknownDistrict, match="999999"):
        facility_map(_frame(), now=NOW, districts=["999999"])
    districts = load_districts()
    with pytest.raises(UnknownDistrict, match="不存在区"):
        facility_map(_frame(), now=NOW, districts=["不存在区"], boundaries=districts)
    for known in ("310106", "静安区"):
        facility_map(_frame(), now=NOW, districts=[known], boundaries=districts)


def test_error_page_is_escaped_and_in_the_language() -> None:
    page = error_page_html("invalid_parameter", parameters=["<b>zoom</b>"])
    assert "地图参数有误：&lt;b&gt;zoom&lt;/b&gt;。" in page and "<b>" not in page
    assert 'lang="zh-CN"' in page and "FacilityMap CJK" in page
    english = error_page_html("unknown_district", language="en")
    assert "There is no such district." in english and 'lang="en"' in english
    assert "地图暂时无法显示" in error_page_html("no-such-problem")
