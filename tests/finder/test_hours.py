"""Opening hours against chinese_calendar (independent holiday reference) and opening-hours-py."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import chinese_calendar
import numpy as np
import opening_hours
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finder.hours import (
    HolidayCalendar,
    OpenState,
    calendar_csv_from_chinese_calendar,
    state_at,
    validate_opening_hours,
)
from finder.index import FacilityFilter, FacilityIndex
from geodata.errors import (
    CalendarYearNotCovered,
    InvalidHolidayCalendar,
    InvalidOpeningHours,
)

SHIPPED = Path(__file__).resolve().parents[2] / "finder" / "data" / "cn_calendar.csv"
OFFICE = "Mo-Fr 08:30-17:30; PH off"
NIGHT = "Mo-Su 22:00-06:00; PH off"
FIRST_YEAR, LAST_YEAR = 2004, 2026
SHANGHAI = ZoneInfo("Asia/Shanghai")

#: Expressions for the property tests: weekday/holiday rules, overnight rules, month selectors.
EXPRESSIONS = [
    "24/7",
    OFFICE,
    NIGHT,
    "Mo-Fr 20:00-02:00",
    "Fr-Sa 22:00-02:00; Su-Th 22:00-24:00",
    "Sa,Su,PH 10:00-16:00",
    "Mo-Fr 08:00-12:00,14:00-18:00; Sa 09:00-12:00; PH 10:00-12:00",
    "Mo-Sa 09:00-21:00; Su,PH off",
    "Mo-Fr 08:00-12:00,13:30-17:30; May-Sep Mo-Fr 08:00-12:00,14:00-18:00; PH off",
    "Mo-Su 07:00-23:00",
    "Tu-Sa 10:00-20:00; Fr 10:00-26:00; PH 12:00-18:00",
    "Mo-Fr 09:00-17:00; Sa 09:00-12:00 unknown; PH off",
    "Mo-Fr 09:00-17:00; PH 20:00-02:00",
]


@pytest.fixture(scope="module")
def calendar() -> HolidayCalendar:
    return HolidayCalendar.default()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@cache
def library_cn_holidays() -> frozenset[date]:
    """Days that opening-hours-py itself treats as PH for country CN."""
    reader = opening_hours.OpeningHours("PH", country="CN")
    days: set[date] = set()
    start, end = datetime(FIRST_YEAR - 1, 1, 1), datetime(LAST_YEAR + 1, 1, 1)
    for begin, finish, state, _ in reader.intervals(start, end):
        if state == opening_hours.State.OPEN:
            days.update(date.fromordinal(o) for o in range(begin.toordinal(), finish.toordinal()))
    return frozenset(days)


def cc_type(day: date) -> str:
    """The day type according to chinese_calendar's public functions."""
    day_off, name = chinese_calendar.get_holiday_detail(day)
    if day_off and name is not None:
        return "holiday"
    if chinese_calendar.is_workday(day):
        return "workday" if day.weekday() >= 5 else "normal"
    return "weekend"


@cache
def library_cn(expr: str) -> opening_hours.OpeningHours:
    return opening_hours.OpeningHours(expr, country="CN")


@cache
def agreeing_days() -> tuple[tuple[date, ...], tuple[date, ...]]:
    """Days where the library's CN table and chinese_calendar agree on the day and the day
    before (holiday or not) and neither is a make-up working day: there the raw library with
    country="CN" is an independent reference for state_at. Returned: all such days, and those
    of them that are holidays or follow one."""
    lib = library_cn_holidays()
    days = []
    for ordinal in range(date(2010, 1, 2).toordinal(), date(LAST_YEAR, 12, 31).toordinal()):
        day = date.fromordinal(ordinal)
        pair = (day - timedelta(days=1), day)
        if all((d in lib) == (cc_type(d) == "holiday") and cc_type(d) != "workday" for d in pair):
            days.append(day)
    near_holiday = [d for d in days if d in lib or d - timedelta(days=1) in lib]
    return tuple(days), tuple(near_holiday)


# --- the calendar ---------------------------------------------------------------------------


def test_shipped_file_is_what_chinese_calendar_says() -> None:
    assert SHIPPED.read_text(encoding="utf-8") == calendar_csv_from_chinese_calendar()


def test_every_covered_day_has_chinese_calendars_type(calendar: HolidayCalendar) -> None:
    assert calendar.years == frozenset(range(FIRST_YEAR, LAST_YEAR + 1))
    day = date(FIRST_YEAR, 1, 1)
    while day.year <= LAST_YEAR:
        assert calendar.day_type(day) == cc_type(day), day
        day += timedelta(days=1)


def test_year_outside_the_calendar_is_not_guessed(calendar: HolidayCalendar) -> None:
    assert not calendar.covers(date(2030, 5, 1))
    with pytest.raises(CalendarYearNotCovered, match="2030"):
        calendar.day_type(date(2030, 5, 1))
    assert isinstance(CalendarYearNotCovered("x"), LookupError)


def test_administrator_adds_2027(tmp_path: Path) -> None:
    # 2027-01-01 is a Friday, 2027-02-07 a Sunday, 2027-03-03 a Wednesday.
    moment_holiday, moment_makeup, moment_plain = (
        at("2027-01-01 10:00"),
        at("2027-02-07 10:00"),
        at("2027-03-03 10:00"),
    )
    default = HolidayCalendar.default()
    for moment in (moment_holiday, moment_makeup, moment_plain):
        assert state_at(OFFICE, moment, default) is OpenState.UNKNOWN
    path = tmp_path / "calendar.csv"
    extra = "2027-01-01,holiday,元旦\n2027-02-07,workday,春节\n"
    # Excel writes a BOM; the loader accepts it.
    path.write_text(SHIPPED.read_text(encoding="utf-8") + extra, encoding="utf-8-sig")
    updated = HolidayCalendar.from_csv(path)
    assert 2027 in updated.years and updated.covers(date(2027, 12, 31))
    assert updated.day_type(date(2027, 1, 1)) == "holiday"
    assert updated.day_type(date(2027, 2, 7)) == "workday"
    assert state_at(OFFICE, moment_holiday, updated) is OpenState.CLOSED
    assert state_at(OFFICE, moment_makeup, updated) is OpenState.OPEN
    assert state_at(OFFICE, moment_plain, updated) is OpenState.OPEN
    assert state_at(OFFICE, at("2027-02-06 10:00"), updated) is OpenState.CLOSED  # Saturday


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("day,kind,name\n2027-01-01,holiday,元旦\n", "header"),
        ("date,type,name\n2027-01-32,holiday,元旦\n", "line 2.*not a date"),
        ("date,type,name\n2027-01-01,festival,元旦\n", "line 2.*'festival'"),
        ("date,type,name\n2027-01-01,holiday,元旦\n2027-01-04,workday,x\n", "line 3.*weekday"),
        ("date,type,name\n2027-01-01,holiday,元旦\n2027-01-01,holiday,元旦\n", "line 3.*twice"),
        ("date,type,name\n2027-01-01,holiday\n", "line 2 has 2 fields"),
        ("date,type,name\n", "no rows"),
    ],
)
def test_bad_calendar_file_is_refused_with_line(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidHolidayCalendar, match=reason):
        HolidayCalendar.from_csv(path)


# --- holidays and make-up days (chinese_calendar is the reference) ---------------------------


@pytest.mark.parametrize(
    ("first", "last"),
    [(date(2025, 9, 24), date(2025, 10, 15)), (date(2026, 2, 10), date(2026, 3, 3))],
    ids=["national-day-2025", "spring-festival-2026"],
)
def test_office_hours_around_holidays(calendar: HolidayCalendar, first: date, last: date) -> None:
    day = first
    while day <= last:
        expected = OpenState.OPEN if chinese_calendar.is_workday(day) else OpenState.CLOSED
        assert state_at(OFFICE, datetime.combine(day, time(10)), calendar) is expected, day
        assert state_at(OFFICE, datetime.combine(day, time(18)), calendar) is OpenState.CLOSED
        day += timedelta(days=1)


@pytest.mark.parametrize(
    "day", [date(2025, 9, 28), date(2025, 10, 11), date(2026, 2, 14), date(2026, 2, 28)]
)
def test_make_up_weekend_day_opens_like_a_weekday(calendar: HolidayCalendar, day: date) -> None:
    assert day.weekday() >= 5 and chinese_calendar.is_workday(day)  # the premise: a 调休 day
    assert state_at(OFFICE, datetime.combine(day, time(10)), calendar) is OpenState.OPEN
    assert state_at(OFFICE, datetime.combine(day, time(8)), calendar) is OpenState.CLOSED
    # Weekend-only hours are closed on a working Saturday/Sunday.
    weekend = "Sa,Su 10:00-16:00"
    assert state_at(weekend, datetime.combine(day, time(11)), calendar) is OpenState.CLOSED


def test_make_up_day_keeps_its_month_for_seasonal_hours(calendar: HolidayCalendar) -> None:
    # 2026-02-28 is a working Saturday at the end of February: winter hours apply.
    seasonal = "Mar-Nov Mo-Fr 08:00-18:00; Dec-Feb Mo-Fr 09:00-17:00; PH off"
    assert calendar.day_type(date(2026, 2, 28)) == "workday"
    assert state_at(seasonal, at("2026-02-28 08:30"), calendar) is OpenState.CLOSED
    assert state_at(seasonal, at("2026-02-28 16:30"), calendar) is OpenState.OPEN
    assert state_at(seasonal, at("2026-03-02 08:30"), calendar) is OpenState.OPEN


def test_holiday_on_a_weekend_matches_ph(calendar: HolidayCalendar) -> None:
    saturday_in_break = datetime(2025, 10, 4, 11)
    assert state_at("Sa 09:00-12:00; PH off", saturday_in_break, calendar) is OpenState.CLOSED
    assert state_at("PH 10:00-12:00", saturday_in_break, calendar) is OpenState.OPEN


@settings(max_examples=300, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(FIRST_YEAR, 1, 1), max_value=datetime(LAST_YEAR, 12, 31, 23, 59)
    )
)
def test_nine_to_five_follows_chinese_calendar(moment: datetime) -> None:
    expected = chinese_calendar.is_workday(moment.date()) and 9 <= moment.hour < 17
    state = state_at("Mo-Fr 09:00-17:00; PH off", moment, HolidayCalendar.default())
    assert state is (OpenState.OPEN if expected else OpenState.CLOSED)


@settings(max_examples=300, deadline=None)
@given(
    data=st.data(),
    expr=st.sampled_from(EXPRESSIONS),
    clock=st.times(),
)
def test_agrees_with_library_where_its_cn_table_is_right(
    data: st.DataObject, expr: str, clock: time
) -> None:
    # Half of the draws are holidays or days after one, where the proxy machinery works hardest.
    days, near_holiday = agreeing_days()
    day = data.draw(st.sampled_from(near_holiday) | st.sampled_from(days))
    moment = datetime.combine(day, clock)
    state, _ = library_cn(expr).state(moment)
    assert state_at(expr, moment, HolidayCalendar.default()) is OpenState(str(state))


# --- overnight hours -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "moment", "expected"),
    [
        # An ordinary night, both sides of midnight.
        (NIGHT, "2025-10-14 23:00", OpenState.OPEN),
        (NIGHT, "2025-10-15 01:00", OpenState.OPEN),
        (NIGHT, "2025-10-15 12:00", OpenState.CLOSED),
        # Into National Day: PH off closes the holiday, its early hours included.
        (NIGHT, "2025-09-30 23:00", OpenState.OPEN),
        (NIGHT, "2025-10-01 01:00", OpenState.CLOSED),
        (NIGHT, "2025-10-02 01:00", OpenState.CLOSED),
        (NIGHT, "2025-10-08 23:00", OpenState.CLOSED),
        # Holiday nights only: the early hours after a holiday night, not those before it.
        ("PH 20:00-02:00", "2025-10-01 01:00", OpenState.CLOSED),
        ("PH 20:00-02:00", "2025-10-02 01:00", OpenState.OPEN),
        ("PH 20:00-02:00", "2025-10-09 01:00", OpenState.OPEN),
        ("PH 20:00-02:00", "2025-10-09 21:00", OpenState.CLOSED),
        # Weekday evening shift: none on Saturday night; the 调休 Sunday works like a Monday,
        # and its shift runs into the real Monday.
        ("Mo-Fr 20:00-02:00", "2025-09-28 01:00", OpenState.CLOSED),
        ("Mo-Fr 20:00-02:00", "2025-09-28 21:00", OpenState.OPEN),
        ("Mo-Fr 20:00-02:00", "2025-09-29 01:00", OpenState.OPEN),
        ("Mo-Fr 20:00-02:00", "2025-09-29 03:00", OpenState.CLOSED),
        # A bar open late on Saturday night is still open early on the 调休 Sunday.
        ("Fr-Sa 22:00-02:00", "2025-09-28 01:00", OpenState.OPEN),
        ("Fr-Sa 22:00-02:00", "2025-09-28 23:00", OpenState.CLOSED),
        # Extended hours (26:00 = 02:00 next day).
        ("Fr 10:00-26:00", "2025-10-18 01:30", OpenState.OPEN),
        ("Fr 10:00-26:00", "2025-10-18 02:30", OpenState.CLOSED),
        ("PH 10:00-26:00", "2025-10-09 01:30", OpenState.OPEN),
        ("PH 10:00-26:00", "2025-10-01 01:30", OpenState.CLOSED),
        # Monday's shift after a 调休 Sunday: every weekday its own class, no honest answer.
        ("Mo 20:00-02:00; Tu 10:00-12:00; Su 10:00-12:00", "2025-09-29 01:00", OpenState.UNKNOWN),
        # The day before 2004 is not covered; the early hours depend on it.
        ("Mo-Fr 22:00-06:00", "2004-01-01 01:00", OpenState.UNKNOWN),
    ],
)
def test_overnight_hours(
    calendar: HolidayCalendar, expr: str, moment: str, expected: OpenState
) -> None:
    assert state_at(expr, at(moment), calendar) is expected


def test_night_after_a_holiday_as_the_library_has_it(calendar: HolidayCalendar) -> None:
    # 2025-10-08 (Wed, holiday) -> 10-09 (Thu): same keys as the library's own CN pair
    # 2025-10-01 (Wed, PH) -> 10-02 (Thu, not PH).
    reference, _ = opening_hours.OpeningHours(NIGHT, country="CN").state(at("2025-10-02 01:00"))
    ours = state_at(NIGHT, at("2025-10-09 01:00"), calendar)
    assert ours is OpenState(str(reference))


# --- outside the calendar, 24/7 --------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("24/7", OpenState.OPEN),
        ("Mo-Su 00:00-24:00", OpenState.OPEN),
        ("全天", OpenState.OPEN),
        ("Mo-Su 08:00-20:00", OpenState.OPEN),  # no PH, all weekdays alike: calendar-free
        (OFFICE, OpenState.UNKNOWN),
        ("Mo-Fr 08:00-20:00", OpenState.UNKNOWN),  # a 调休 day would change the answer
        ("Sa,Su,PH 10:00-12:00", OpenState.UNKNOWN),
        ("Mo-Su 10:00-12:00; PH off", OpenState.UNKNOWN),
    ],
)
def test_year_2030(calendar: HolidayCalendar, expr: str, expected: OpenState) -> None:
    assert state_at(expr, at("2030-05-06 11:00"), calendar) is expected


def test_missing_hours_are_unknown(calendar: HolidayCalendar) -> None:
    for expr in (None, "", "  "):
        assert state_at(expr, at("2025-10-14 11:00"), calendar) is OpenState.UNKNOWN
    expr = "Mo-Fr 09:00-17:00 unknown"
    assert state_at(expr, at("2025-10-14 11:00"), calendar) is OpenState.UNKNOWN


# --- time zones ------------------------------------------------------------------------------


def test_aware_utc_is_converted_to_shanghai(calendar: HolidayCalendar) -> None:
    # 01:00 UTC on Thursday 2025-10-09 is 09:00 in Shanghai (open); naive 01:00 is local.
    assert state_at(OFFICE, datetime(2025, 10, 9, 1, 0, tzinfo=UTC), calendar) is OpenState.OPEN
    assert state_at(OFFICE, datetime(2025, 10, 9, 1, 0), calendar) is OpenState.CLOSED
    # 23:00 UTC on 2025-09-30 is already 07:00 on National Day in Shanghai.
    night = datetime(2025, 9, 30, 15, 0, tzinfo=UTC)  # 23:00 local, Sep 30
    assert state_at(NIGHT, night, calendar) is OpenState.OPEN
    assert state_at(OFFICE, datetime(2025, 9, 30, 23, 0, tzinfo=UTC), calendar) is (
        OpenState.CLOSED
    )


@settings(max_examples=100, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2026, 12, 30), timezones=st.just(UTC)
    ),
    expr=st.sampled_from(EXPRESSIONS),
)
def test_aware_equals_naive_local(moment: datetime, expr: str) -> None:
    calendar = HolidayCalendar.default()
    local = moment.astimezone(SHANGHAI).replace(tzinfo=None)
    assert state_at(expr, moment, calendar) is state_at(expr, local, calendar)


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("０８：３０－１７：３０", "08:30-17:30"),
        ("Mo-Fr 08:30－17:30；PH off", "Mo-Fr 08:30-17:30; PH closed"),
        ("Mo-Fr 08:30～12:00，14:00～17:30", "Mo-Fr 08:30-12:00,14:00-17:30"),
        ("Mo - Fr  08:30 – 17:30", "Mo-Fr 08:30-17:30"),
        ("mo-fr 8:30-17:30", "Mo-Fr 08:30-17:30"),
        ("全天", "24/7"),
        ("24小时", "24/7"),
        ("２４小时营业", "24/7"),
        ("Mo-Su 00:00-24:00", "24/7"),
        ("Mo-Su 22:00-06:00", "Mo-Su 22:00-06:00"),
    ],
)
def test_normalisation(raw: str, normal: str) -> None:
    assert validate_opening_hours(raw) == normal
    assert validate_opening_hours(normal) == normal


@pytest.mark.parametrize(
    ("expr", "where"),
    [
        ("24/24", "character 1"),
        ("Mo-Fr 08:30-17:30 PH off", "character 19 ('PH off')"),
        ("Mo-Fr 25:00-26:00", "character 7"),
        ("周一至周五 08:30-17:30", "character 1"),
        ("全天开放到晚上", "character 1"),
    ],
)
def test_invalid_expression_is_refused_with_reason(expr: str, where: str) -> None:
    with pytest.raises(InvalidOpeningHours) as caught:
        validate_opening_hours(expr)
    message = str(caught.value)
    assert repr(expr) in message and where in message and "expected" in message
    assert isinstance(caught.value, ValueError) and caught.value.field == "opening_hours"
    with pytest.raises(InvalidOpeningHours):
        state_at(expr, at("2025-10-14 11:00"), HolidayCalendar.default())


def test_empty_expression_is_refused() -> None:
    with pytest.raises(InvalidOpeningHours, match="empty"):
        validate_opening_hours("  ")


# --- vectorised form -------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    codes=st.lists(st.integers(-1, len(EXPRESSIONS) + 1), min_size=1, max_size=60),
    moment=st.datetimes(min_value=datetime(2024, 12, 25), max_value=datetime(2027, 1, 5)),
)
def test_the_index_open_filter_equals_state_at(codes: list[int], moment: datetime) -> None:
    calendar = HolidayCalendar.default()
    exprs: list[str | None] = [*EXPRESSIONS, None, "  "]
    hours = [exprs[c] if c >= 0 else None for c in codes]
    n = len(codes)
    index = FacilityIndex.from_arrays(
        [f"f{i:03d}" for i in range(n)],
        np.full(n, 121.47),
        np.full(n, 31.23),
        kinds=["rest_stop"] * n,
        opening_hours=hours,
        calendar=calendar,
    )
    expected = [state_at(h, moment, calendar) for h in hours]
    assert index.open_states(np.arange(n), moment) == expected
    is_open = index.mask(FacilityFilter(open_at=moment))
    assert is_open.tolist() == [s is OpenState.OPEN for s in expected]
