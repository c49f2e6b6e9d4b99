"""Opening hours in words, the next change of state, and that change in words."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from finder.hours import (
    HolidayCalendar,
    OpenState,
    change_in_words,
    hours_in_words,
    next_change,
    state_at,
)
from geodata.errors import InvalidInput, InvalidOpeningHours


@pytest.fixture(scope="module")
def calendar() -> HolidayCalendar:
    return HolidayCalendar.default()


@pytest.mark.parametrize(
    ("expr", "zh", "en"),
    [
        ("24/7", "全天开放", "Open 24/7"),
        ("Mo-Su 00:00-24:00", "全天开放", "Open 24/7"),
        ("全天", "全天开放", "Open 24/7"),
        (
            "Mo-Fr 09:00-18:00; PH off",
            "周一至周五 09:00–18:00，法定节假日休息",
            "Mon–Fri 09:00–18:00; closed on public holidays",
        ),
        ("Sa-Su 10:00-16:00", "周六、周日 10:00–16:00", "Sat, Sun 10:00–16:00"),
        ("Sa,Su 10:00-16:00", "周六、周日 10:00–16:00", "Sat, Sun 10:00–16:00"),
        (
            "Mo-Fr 08:00-12:00,13:30-17:30; Sa 09:00-12:00; Su,PH off",
            "周一至周五 08:00–12:00、13:30–17:30，周六 09:00–12:00，周日、法定节假日休息",
            "Mon–Fri 08:00–12:00, 13:30–17:30; Sat 09:00–12:00; closed on Sun, public holidays",
        ),
        ("Mo-Su 22:00-06:00", "每天 22:00–次日06:00", "Daily 22:00–next day 06:00"),
        ("Mo-Fr 20:00-26:00", "周一至周五 20:00–次日02:00", "Mon–Fri 20:00–next day 02:00"),
        ("10:00-22:00", "每天 10:00–22:00", "Daily 10:00–22:00"),
        ("Mo,We,Fr 09:00-17:00", "周一、周三、周五 09:00–17:00", "Mon, Wed, Fri 09:00–17:00"),
        ("Fr-Mo 09:00-17:00", "周一、周五至周日 09:00–17:00", "Mon, Fri–Sun 09:00–17:00"),
        (
            "Mo-Fr 09:00-18:00; PH 10:00-15:00",
            "周一至周五 09:00–18:00，法定节假日 10:00–15:00",
            "Mon–Fri 09:00–18:00; public holidays 10:00–15:00",
        ),
        (
            "Mo-Sa 09:00-21:00; SH off",
            "周一至周六 09:00–21:00，学校假期休息",
            "Mon–Sat 09:00–21:00; closed on school holidays",
        ),
        ("Mo-Fr", "周一至周五 全天", "Mon–Fri all day"),
        ("off", "不开放", "Closed"),
        ("ｍｏ－ｆｒ ０９：００－１８：００", "周一至周五 09:00–18:00", "Mon–Fri 09:00–18:00"),
        # what is not understood stays in its normal form, never half-translated
        ("Jan-Mar Mo-Fr 09:00-17:00", "Jan-Mar Mo-Fr 09:00-17:00", "Jan-Mar Mo-Fr 09:00-17:00"),
        ('Mo-Fr 09:00-17:00 "预约"', 'Mo-Fr 09:00-17:00 "预约"', 'Mo-Fr 09:00-17:00 "预约"'),
        ("Mo-Fr 10:00+", "Mo-Fr 10:00+", "Mo-Fr 10:00+"),
    ],
)
def test_hours_in_words(expr: str, zh: str, en: str) -> None:
    assert hours_in_words(expr) == zh
    assert hours_in_words(expr, "en") == en


def test_hours_in_words_refuses_bad_input() -> None:
    with pytest.raises(InvalidOpeningHours):
        hours_in_words("Mo-Fr 25:99-xx")
    with pytest.raises(InvalidInput):
        hours_in_words("24/7", "fr")


OFFICE = "Mo-Fr 09:00-18:00; PH off"


@pytest.mark.parametrize(
    ("expr", "now", "state", "moment", "zh", "en"),
    [
        (OFFICE, "2026-11-26 10:00", "closed", "2026-11-26 18:00", "18:00 关门", "closes 18:00"),
        (OFFICE, "2026-11-26 07:30", "open", "2026-11-26 09:00", "09:00 开门", "opens 09:00"),
        (
            OFFICE,
            "2026-11-26 18:00",
            "open",
            "2026-11-27 09:00",
            "明天 09:00 开门",
            "opens tomorrow 09:00",
        ),
        (
            OFFICE,
            "2026-11-27 19:00",
            "open",
            "2026-11-30 09:00",
            "周一 09:00 开门",
            "opens Mon 09:00",
        ),
        # National Day 2026: October 1-7 off, work resumes on Thursday the 8th
        (
            OFFICE,
            "2026-09-30 19:00",
            "open",
            "2026-10-08 09:00",
            "10-08 09:00 开门",
            "opens 10-08 09:00",
        ),
        # overnight: the change is tomorrow morning
        (
            "Mo-Su 22:00-06:00",
            "2026-11-26 23:00",
            "closed",
            "2026-11-27 06:00",
            "明天 06:00 关门",
            "closes tomorrow 06:00",
        ),
        (
            "Mo-Fr 08:00-12:00,13:30-17:30",
            "2026-11-26 12:10",
            "open",
            "2026-11-26 13:30",
            "13:30 开门",
            "opens 13:30",
        ),
    ],
)
def test_next_change(
    calendar: HolidayCalendar, expr: str, now: str, state: str, moment: str, zh: str, en: str
) -> None:
    when = datetime.fromisoformat(now)
    change = next_change(expr, when, calendar)
    assert change == (OpenState(state), datetime.fromisoformat(moment))
    # the state does change there, and not a minute earlier
    assert state_at(expr, change[1], calendar) is OpenState(state)
    assert state_at(expr, change[1] - timedelta(minutes=1), calendar) is not OpenState(state)
    assert change_in_words(*change, when) == zh
    assert change_in_words(*change, when, "en") == en


@pytest.mark.parametrize("expr", ["24/7", "off", None, "", "Mo-Fr sunrise-sunset"])
def test_no_next_change(calendar: HolidayCalendar, expr: str | None) -> None:
    assert next_change(expr, datetime(2026, 11, 26, 10, 0), calendar) is None


def test_no_next_change_where_the_calendar_is_not_known(calendar: HolidayCalendar) -> None:
    assert next_change(OFFICE, datetime(2099, 1, 5, 10, 0), calendar) is None
