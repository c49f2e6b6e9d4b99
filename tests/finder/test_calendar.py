"""The provisional holiday calendar: statutory days by rule, checked against independent references.

References: the official arrangements of 2008-2026 in the bundled calendar (made from the
``chinese-calendar`` package, not from our rules), the published dates of 春节 (正月初一
2027-02-06, 2028-01-26), and the "寿星" closed formula for the solar term 清明.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from finder.calendar import (
    STATUTORY_RULES_FROM,
    STATUTORY_RULES_UNTIL,
    qingming,
    statutory_holidays,
)
from finder.hours import CalendarSource, HolidayCalendar, OpenState, state_and_source, state_at
from geodata.errors import CalendarYearNotCovered, InvalidHolidayCalendar

OFFICE = "Mo-Fr 09:00-18:00; PH off"


@pytest.fixture(scope="module")
def official() -> HolidayCalendar:
    return HolidayCalendar.default()


@pytest.fixture(scope="module")
def provisional(official: HolidayCalendar) -> HolidayCalendar:
    return official.with_provisional()


def _holidays(calendar: HolidayCalendar, year: int) -> dict[date, str]:
    return {
        d: e.name for d, e in calendar.entries.items() if d.year == year and e.type == "holiday"
    }


@pytest.mark.parametrize("year", [2025, 2026])
def test_statutory_days_are_official_holidays(official: HolidayCalendar, year: int) -> None:
    """Every statutory day computed by rule is a holiday of the official arrangement, by name."""
    official_days = _holidays(official, year)
    computed = statutory_holidays(year)
    assert len(computed) == 13  # 1 + 4 + 1 + 2 + 1 + 1 + 3, none coinciding in these years
    assert {d: official_days.get(d) for d in computed} == computed


def test_qingming_matches_every_official_qingming_break(official: HolidayCalendar) -> None:
    """清明 became a holiday in 2008: the computed solar term lies in each year's 清明 break."""
    for year in range(2008, 2027):
        assert _holidays(official, year).get(qingming(year)) == "清明", year


def test_qingming_matches_the_closed_formula() -> None:
    """The "寿星" formula of the 21st century: [Y*0.2422 + 4.81] - [Y/4] April (Y = year % 100)."""
    for year in range(STATUTORY_RULES_FROM, STATUTORY_RULES_UNTIL + 1):
        y = year % 100
        assert qingming(year) == date(year, 4, int(y * 0.2422 + 4.81) - y // 4), year


@pytest.mark.parametrize(
    ("year", "new_year"), [(2027, date(2027, 2, 6)), (2028, date(2028, 1, 26))]
)
def test_spring_festival_is_chuxi_to_the_third(year: int, new_year: date) -> None:
    spring = [d for d, name in statutory_holidays(year).items() if name == "春节"]
    assert spring == [new_year + timedelta(days=i) for i in range(-1, 3)]


def test_years_without_the_present_rules_are_refused() -> None:
    for year in (STATUTORY_RULES_FROM - 1, STATUTORY_RULES_UNTIL + 1):
        with pytest.raises(CalendarYearNotCovered):
            statutory_holidays(year)


@pytest.mark.parametrize(
    ("expr", "moment", "state", "source"),
    [
        (OFFICE, datetime(2027, 2, 8, 10), OpenState.CLOSED, CalendarSource.PROVISIONAL),  # 初三 Mo
        (OFFICE, datetime(2027, 2, 10, 10), OpenState.OPEN, CalendarSource.PROVISIONAL),  # 初五 We
        (OFFICE, datetime(2028, 1, 26, 10), OpenState.CLOSED, CalendarSource.PROVISIONAL),  # 初一
        (OFFICE, datetime(2028, 10, 3, 10), OpenState.CLOSED, CalendarSource.PROVISIONAL),  # 国庆
        (OFFICE, datetime(2028, 10, 4, 10), OpenState.OPEN, CalendarSource.PROVISIONAL),  # no 调休
        (OFFICE, datetime(2027, 3, 6, 10), OpenState.CLOSED, CalendarSource.PROVISIONAL),  # Sa
        (OFFICE, datetime(2026, 10, 2, 10), OpenState.CLOSED, CalendarSource.OFFICIAL),
        ("24/7", datetime(2027, 2, 8, 10), OpenState.OPEN, None),
        ("Mo-Su 08:00-20:00", datetime(2027, 2, 8, 10), OpenState.OPEN, None),
        # the early hours of 2027-01-01 depend on 2026-12-31 (official) and the day (provisional,
        # a holiday: PH off closes the whole day, as the module docstring says)
        (
            "Mo-Su 22:00-06:00; PH off",
            datetime(2027, 1, 1, 1),
            OpenState.CLOSED,
            CalendarSource.PROVISIONAL,
        ),
        ("Mo-Su 22:00-06:00; PH off", datetime(2027, 1, 4, 1), OpenState.OPEN, "provisional"),
        (OFFICE, datetime(2100, 1, 4, 10), OpenState.UNKNOWN, None),
    ],
)
def test_open_state_on_provisional_days(
    provisional: HolidayCalendar,
    expr: str,
    moment: datetime,
    state: OpenState,
    source: CalendarSource | None,
) -> None:
    assert state_and_source(expr, moment, provisional) == (state, source)


def test_without_provisional_the_answer_stays_unknown(official: HolidayCalendar) -> None:
    assert state_and_source(OFFICE, datetime(2027, 2, 10, 10), official) == (
        OpenState.UNKNOWN,
        None,
    )


def test_a_loaded_year_replaces_the_provisional_and_the_bundled_one(
    provisional: HolidayCalendar,
) -> None:
    # the official 2027 arrangement might make 2027-02-10 a bridging day and 02-20 a 调休 Saturday
    loaded = HolidayCalendar.from_csv_text(
        "date,type,name\n2027-02-10,holiday,春节\n2027-02-20,workday,春节\n", source="2027.csv"
    )
    updated = provisional.updated_with(loaded)
    assert state_and_source(OFFICE, datetime(2027, 2, 10, 10), updated) == (
        OpenState.CLOSED,
        CalendarSource.OFFICIAL,
    )
    assert state_at(OFFICE, datetime(2027, 2, 20, 10), updated) is OpenState.OPEN
    assert updated.sources[2027] == "2027.csv"
    assert updated.sources[2026] == "finder/data/cn_calendar.csv"
    # a year loaded again is replaced whole: 2026 now has one special day only
    one_day = HolidayCalendar.from_csv_text("date,type,name\n2026-01-01,holiday,元旦\n")
    assert updated.updated_with(one_day).days_of(2026) == one_day.days_of(2026)
    assert state_at(OFFICE, datetime(2028, 1, 26, 10), updated) is OpenState.CLOSED


def test_next_year_warning_from_1_november(provisional: HolidayCalendar) -> None:
    assert provisional.missing_next_year(date(2026, 10, 31)) is None
    message = provisional.missing_next_year(date(2026, 11, 1))
    assert message is not None and "2027" in message and "finder calendar load" in message
    assert provisional.missing_next_year(date(2025, 12, 31)) is None  # 2026 is bundled
    loaded = HolidayCalendar.from_csv_text("date,type,name\n2027-01-01,holiday,元旦\n")
    assert provisional.updated_with(loaded).missing_next_year(date(2026, 12, 6)) is None


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("date,type,name\n2027-01-01,holiday,元旦\n2027-13-01,holiday,x\n", "line 3, field date"),
        ("date,type,name\n2027-01-01,day off,元旦\n", "line 2, field type"),
        (
            "date,type,name\n2027-01-01,holiday,元旦\n2027-02-10,workday,春节\n",
            "line 3, field date",
        ),
    ],
)
def test_a_bad_file_names_line_and_field(text: str, where: str) -> None:
    with pytest.raises(InvalidHolidayCalendar, match=f"^2027.csv: {where}"):
        HolidayCalendar.from_csv_text(text, source="2027.csv")
