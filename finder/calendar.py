"""The statutory public holidays of a year, by the rules of 《全国年节及纪念日放假办法》.

The State Council publishes each year's official arrangement (the holiday breaks with their
moved days and make-up working days, 调休) only in November of the year before. For a year
without one, :func:`statutory_holidays` gives the days off that the law itself fixes, as amended
in 2024 and in force from 2025 (:data:`STATUTORY_RULES_FROM`):

==========  ======  =========================================================
元旦        1 day   1 January
春节        4 days  除夕 (the last day of the lunar year) to 正月初三
清明        1 day   the day of the solar term 清明 (4, 5 or 6 April)
劳动节      2 days  1-2 May
端午        1 day   五月初五
中秋        1 day   八月十五
国庆节      3 days  1-3 October
==========  ======  =========================================================

These are only the statutory days: the days moved next to them to make a break and the
weekend days worked in exchange are decided by the yearly arrangement and cannot be computed.
:meth:`finder.hours.HolidayCalendar.with_provisional` uses these days for such years and marks
the answers ``provisional``.

Lunar dates are converted with the ``lunardate`` package (its tables cover lunar years
1900-2099); the solar term 清明 (apparent solar longitude 15°) is computed here with the
low-accuracy solar theory of J. Meeus, *Astronomical Algorithms* (2nd ed., ch. 25), accurate to
about 0.01° (a quarter of an hour), in China Standard Time (UTC+8).

Examples
--------
>>> statutory_holidays(2027)[date(2027, 2, 5)]  # 除夕
'春节'
>>> qingming(2027)
datetime.date(2027, 4, 5)
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

from lunardate import LunarDate

from geodata.errors import CalendarYearNotCovered

__all__ = ["STATUTORY_RULES_FROM", "STATUTORY_RULES_UNTIL", "qingming", "statutory_holidays"]

#: First year of the present rules (the 2024 amendment, in force from 1 January 2025).
STATUTORY_RULES_FROM = 2025
#: Last year whose lunar dates ``lunardate`` knows (its 除夕 lies in lunar year ``year - 1``).
STATUTORY_RULES_UNTIL = 2099

_UTC_OFFSET_H = 8  # China Standard Time
_J2000 = 2451545.0
_QINGMING_LONGITUDE_DEG = 15.0


def _julian_day(moment: datetime) -> float:
    """Julian day of a naive UTC datetime."""
    return _J2000 + (moment - datetime(2000, 1, 1, 12)).total_seconds() / 86_400


def _apparent_solar_longitude_deg(moment: datetime) -> float:
    """Apparent geocentric longitude of the Sun (degrees, 0-360) at a naive UTC datetime.

    Meeus ch. 25, low accuracy; the difference between UT and TT (about a minute) is ignored.
    """
    t = (_julian_day(moment) - _J2000) / 36_525
    mean_longitude = 280.46646 + 36_000.76983 * t + 0.0003032 * t * t
    anomaly = math.radians(357.52911 + 35_999.05029 * t - 0.0001537 * t * t)
    centre = (
        (1.914602 - 0.004817 * t - 0.000014 * t * t) * math.sin(anomaly)
        + (0.019993 - 0.000101 * t) * math.sin(2 * anomaly)
        + 0.000289 * math.sin(3 * anomaly)
    )
    omega = math.radians(125.04 - 1934.136 * t)
    apparent = mean_longitude + centre - 0.00569 - 0.00478 * math.sin(omega)
    return apparent % 360.0


def qingming(year: int) -> date:
    """The date (China Standard Time) of the solar term 清明: the Sun reaches longitude 15°.

    Examples
    --------
    >>> qingming(2025), qingming(2026)
    (datetime.date(2025, 4, 4), datetime.date(2026, 4, 5))
    """
    for day in range(3, 8):
        # the end of the local day, in UTC
        end_utc = datetime(year, 4, day) + timedelta(hours=24 - _UTC_OFFSET_H)
        if _apparent_solar_longitude_deg(end_utc) >= _QINGMING_LONGITUDE_DEG:
            return date(year, 4, day)
    raise AssertionError(f"清明 of {year} not found between 3 and 7 April")  # pragma: no cover


def _lunar(year: int, month: int, day: int) -> date:
    solar: date = LunarDate(year, month, day).to_solar_date()
    return solar


def statutory_holidays(year: int) -> dict[date, str]:
    """The statutory days off of ``year`` by the present rules: date -> holiday name.

    Names are those of the bundled calendar (``春节``, ``清明``, ...). When two holidays fall on
    one day (中秋 on 1 October) the day is listed once, under the first of them.

    Raises
    ------
    CalendarYearNotCovered
        When ``year`` lies outside ``STATUTORY_RULES_FROM``-``STATUTORY_RULES_UNTIL``: the rules
        were different before 2025, and the lunar tables end in 2099.
    """
    if not STATUTORY_RULES_FROM <= year <= STATUTORY_RULES_UNTIL:
        raise CalendarYearNotCovered(
            f"statutory holidays are computed for {STATUTORY_RULES_FROM}-"
            f"{STATUTORY_RULES_UNTIL} only, not {year}"
        )
    new_year = _lunar(year, 1, 1)
    days: list[tuple[date, str]] = [
        (date(year, 1, 1), "元旦"),
        *((new_year + timedelta(days=offset), "春节") for offset in range(-1, 3)),
        (qingming(year), "清明"),
        (date(year, 5, 1), "劳动节"),
        (date(year, 5, 2), "劳动节"),
        (_lunar(year, 5, 5), "端午"),
        (_lunar(year, 8, 15), "中秋"),
        *((date(year, 10, day), "国庆节") for day in (1, 2, 3)),
    ]
    holidays: dict[date, str] = {}
    for day, name in days:
        holidays.setdefault(day, name)
    return dict(sorted(holidays.items()))
