"""Is a facility open at a given time? OSM ``opening_hours`` with the Chinese holiday calendar.

Facilities carry ``opening_hours`` in OpenStreetMap syntax (``24/7``,
``Mo-Fr 08:30-17:30; PH off``, ``Mo-Su 22:00-06:00``). :func:`state_at` evaluates one expression
at a local time in China (Asia/Shanghai, UTC+8); the facility index evaluates a column of
facilities at once (``FacilityFilter(open_at=...)``), each distinct expression only once. The
parser and the evaluation rules are those of ``opening-hours-py``; this module only tells it
which days are public holidays (``PH``) and which weekend days are make-up working days (调休).

The calendar
------------
:class:`HolidayCalendar` is loaded from a small CSV file with the header ``date,type,name`` and one
row per special day::

    date,type,name
    2025-10-01,holiday,国庆节
    2025-10-11,workday,国庆节

* ``holiday``: a day off of an official holiday break (法定节假日 and the days moved into the
  break, including the Saturdays and Sundays inside it). Such a day matches ``PH``.
* ``workday``: a Saturday or Sunday that is an official working day (调休上班). It is evaluated as
  the adjacent working weekday: a Saturday as a Friday, a Sunday as a Monday, so that a room open
  ``Mo-Fr 08:30-17:30`` is open that day. It does not match ``PH``.
* any other day is an ordinary day of its own weekday.

A year is *covered* as soon as the file has one row in it. On a date of a year that is not
covered the answer is :attr:`OpenState.UNKNOWN` - never a guessed "open" - unless the expression
does not depend on the calendar at all: ``24/7`` (and anything the parser normalises to it, such
as ``Mo-Su 00:00-24:00``) is always open, and an expression without ``PH``/``SH`` whose rules treat
all seven weekdays alike (``10:00-22:00``, ``Mo-Su 07:00-23:00``) is evaluated as it stands.
:meth:`HolidayCalendar.with_provisional` covers the years 2025-2099 that have no official
arrangement with their statutory holidays (:mod:`finder.calendar`); :func:`state_and_source`
tells which answers rest on such a provisional day.

The shipped file ``finder/data/cn_calendar.csv`` (:meth:`HolidayCalendar.default`) is generated
from the ``chinese-calendar`` package by :func:`calendar_csv_from_chinese_calendar` and covers
2004-2026.

Adding a year (e.g. 2027)
~~~~~~~~~~~~~~~~~~~~~~~~~
The State Council General Office (国务院办公厅) publishes the next year's schedule
(《关于2027年部分节假日安排的通知》) each November. For each holiday break in it, add one
``holiday`` row for *every* day off (weekends inside the break included) and one ``workday`` row
for every Saturday or Sunday that is declared a working day (调休上班), e.g.::

    2027-01-01,holiday,元旦
    2027-02-06,holiday,春节
    2027-02-07,workday,春节

Add the whole year at once (one row makes the year covered, so a half-entered year gives wrong
answers), keep the header, save as UTF-8 (a BOM from Excel is accepted), and load it into the
store with ``finder calendar load FILE`` (the service lays the stored years over this calendar
with :meth:`HolidayCalendar.updated_with`), or read it with :meth:`HolidayCalendar.from_csv`. A
``workday`` row on a Monday-Friday, a duplicated date or an unknown type is refused with the line
number and field. When a newer ``chinese-calendar`` release knows the year, regenerating the
shipped file with :func:`calendar_csv_from_chinese_calendar` gives the same rows.

How the library is made to follow this calendar
-----------------------------------------------
``opening-hours-py`` has its own holiday tables (for ``CN`` only the first day of each break) and
no notion of make-up working days, and cannot be handed a calendar. So each evaluation is done on
a *proxy date* that the library sees exactly as our calendar sees the real date:

1. The real date gets a *day key*: (effective weekday, is-holiday), with the effective weekday of
   a make-up working day as described above.
2. Ordinary days (no holiday involved) are evaluated with no country, where ``PH`` never matches,
   on the date itself; a make-up working day on the nearest date with its effective weekday
   (in the same month when there is one within a week).
3. Days with a holiday involved are evaluated with ``country="DE"``, whose table in the library
   holds a public holiday, and a pair of consecutive ones, for every weekday: the proxy is the
   nearest German date whose key (and, when needed, whose previous day's key) is the one asked
   for. The German holiday dates are read from the library itself, so the library and the proxy
   table cannot disagree.
4. A rule that runs past midnight (``22:00-06:00``, ``20:00-26:00``) makes the early hours of a
   day depend on the previous day too. When the clock time lies before the latest end of such a
   range, the proxy must match the keys of *both* days. The two effective weekdays are
   consecutive except next to a make-up working day (e.g. a Monday after a working Sunday is
   "Monday after Monday"); then one of the two weekdays is replaced by one that the expression's
   weekday selectors cannot tell from it (``Mo-Fr`` cannot tell Monday from Tuesday), and if no
   such replacement exists the answer is UNKNOWN.

The state at the proxy is therefore the library's own answer for the real day, including its
override rules - ``PH off`` closes the whole holiday, including the early hours that the previous
evening's ``22:00-06:00`` would reach, while the holiday's own (overridden) evening rule still runs
on into the next morning, as the library reads it - except for
selectors on dates (months, weeks, years, ``Mo[1]``, ``easter``), which on holidays and make-up
working days are read off the proxy date instead of the real one. Times with sun events
(``sunrise``) are computed for the library's default place, and open ends (``22:00+``) are
treated as possibly running to the next midnight.

Hours in words
--------------
:func:`hours_in_words` says an expression as people write it
(``周一至周五 09:00–18:00，法定节假日休息``, ``全天开放``; English too), :func:`next_change` finds
when the state changes next (following the calendar, so across holiday breaks) and
:func:`change_in_words` says that change (``18:00 关门``, ``明天 09:00 开门``).

Text normalisation
------------------
:func:`validate_opening_hours` accepts what Chinese facility lists write: full-width characters
(``０８：３０－１７：３０``, ``；``, ``，``) are folded to ASCII (Unicode NFKC),
dash-like characters (``–—―−~〜``) become ``-`` with no spaces around it (``Mo - Fr``), runs
of white space become one space, and a value that is *only* ``全天``, ``全天候``, ``24小时``,
``24小时营业`` or ``24小时开放`` becomes ``24/7``. The result is the parser's normal form
(``mo-fr 8:30-17:30`` becomes ``Mo-Fr 08:30-17:30``). Chinese day words (``周一至周五``) are not
translated here; that is done at import by ``geodata.validate.normalize_opening_hours``.

Examples
--------
>>> from datetime import datetime
>>> cal = HolidayCalendar.default()
>>> state_at("Mo-Fr 08:30-17:30; PH off", datetime(2025, 10, 2, 10, 0), cal)  # 国庆节
<OpenState.CLOSED: 'closed'>
>>> state_at("Mo-Fr 08:30-17:30; PH off", datetime(2025, 9, 28, 10, 0), cal)  # 调休 Sunday
<OpenState.OPEN: 'open'>
>>> state_at("Mo-Fr 08:30-17:30; PH off", datetime(2030, 1, 2, 10, 0), cal)
<OpenState.UNKNOWN: 'unknown'>
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import cache, lru_cache
from importlib import resources
from os import PathLike
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal, NamedTuple
from zoneinfo import ZoneInfo

import opening_hours

from finder.calendar import STATUTORY_RULES_FROM, STATUTORY_RULES_UNTIL, statutory_holidays
from geodata.errors import (
    CalendarYearNotCovered,
    InvalidHolidayCalendar,
    InvalidInput,
    InvalidOpeningHours,
)

if TYPE_CHECKING:
    from geodata.store import CalendarDay

__all__ = [
    "LOCAL_TIMEZONE",
    "CalendarEntry",
    "CalendarSource",
    "DayType",
    "HolidayCalendar",
    "OpenState",
    "calendar_csv_from_chinese_calendar",
    "change_in_words",
    "hours_in_words",
    "local_today",
    "next_change",
    "state_and_source",
    "state_at",
    "validate_opening_hours",
]

#: The time zone of every facility; naive datetimes are read as local time there.
LOCAL_TIMEZONE = "Asia/Shanghai"

EntryType = Literal["holiday", "workday"]
DayType = Literal["holiday", "workday", "weekend", "normal"]

_CSV_HEADER = ("date", "type", "name")
_ENTRY_TYPES: tuple[EntryType, ...] = ("holiday", "workday")
#: The library country used for proxies of days with a holiday involved (see module docstring).
_PROXY_HOLIDAY_COUNTRY = "DE"
#: Years of that country's holiday table read from the library to build the proxy table.
_PROXY_YEARS = range(2000, 2040)
_DAY_S = 86_400


class OpenState(StrEnum):
    """Whether a facility is open at a moment; ``UNKNOWN`` when that cannot be told honestly."""

    OPEN = "open"
    CLOSED = "closed"
    UNKNOWN = "unknown"


class CalendarEntry(NamedTuple):
    """One row of a holiday calendar file: the day's ``type`` and the holiday ``name``."""

    type: EntryType
    name: str


class CalendarSource(StrEnum):
    """What an answer about a day rests on.

    ``OFFICIAL``: the State Council's arrangement of the year (bundled or loaded).
    ``PROVISIONAL``: only the statutory holidays computed by :mod:`finder.calendar`; the year's
    make-up working days and bridging days are not known yet.
    """

    OFFICIAL = "official"
    PROVISIONAL = "provisional"


@dataclass(frozen=True, eq=False)
class HolidayCalendar:
    """Chinese public holidays and make-up working days (调休) for a set of years.

    Parameters
    ----------
    entries
        The special days: date -> :class:`CalendarEntry` (``holiday`` or ``workday``).
    years
        The years the official arrangement covers; days of other years have no known type
        (unless ``provisional``).
    sources
        Where each year of ``years`` came from (a file name, the store), for display.
    provisional
        Whether days of a year outside ``years`` get the statutory holidays of
        :func:`finder.calendar.statutory_holidays` (years 2025-2099 only) instead of no type.

    Build one with :meth:`from_csv` or :meth:`default`, combine with :meth:`updated_with` and
    :meth:`with_provisional`; the file format is described in the module docstring.
    """

    entries: Mapping[date, CalendarEntry]
    years: frozenset[int]
    sources: Mapping[int, str] = field(default_factory=lambda: MappingProxyType({}))
    provisional: bool = False

    @classmethod
    def from_csv(cls, path: str | PathLike[str]) -> HolidayCalendar:
        """Load a calendar file (CSV ``date,type,name``, UTF-8 with or without BOM).

        Raises
        ------
        InvalidHolidayCalendar
            On a wrong header, a bad date or type, a duplicated date, or a ``workday`` that is
            not a Saturday or Sunday; the message names the file, line and field.
        OSError
            When the file cannot be read.
        """
        path = Path(path)
        return cls.from_csv_text(path.read_text(encoding="utf-8-sig"), source=str(path))

    @classmethod
    def from_csv_text(cls, text: str, *, source: str = "<text>") -> HolidayCalendar:
        """Parse the text of a calendar file; see :meth:`from_csv`."""
        rows = csv.reader(io.StringIO(text.lstrip("\ufeff")))
        header = next(rows, None)
        if header is None or tuple(cell.strip().lower() for cell in header) != _CSV_HEADER:
            raise InvalidHolidayCalendar(
                f"{source}: line 1 must be the header 'date,type,name', found {header!r}"
            )
        entries: dict[date, CalendarEntry] = {}
        for line_no, row in enumerate(rows, start=2):
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != 3:
                raise InvalidHolidayCalendar(
                    f"{source}: line {line_no} has {len(row)} fields, expected date,type,name"
                )
            day_text, type_text, name = (cell.strip() for cell in row)
            try:
                day = date.fromisoformat(day_text)
            except ValueError:
                raise InvalidHolidayCalendar(
                    f"{source}: line {line_no}, field date: {day_text!r} is not a date (YYYY-MM-DD)"
                ) from None
            entry_type = _entry_type(type_text)
            if entry_type is None:
                raise InvalidHolidayCalendar(
                    f"{source}: line {line_no}, field type: {type_text!r} is not 'holiday' "
                    "or 'workday'"
                )
            if entry_type == "workday" and day.weekday() < 5:
                raise InvalidHolidayCalendar(
                    f"{source}: line {line_no}, field date: {day} is a weekday; a 'workday' "
                    "(调休) row must be a Saturday or Sunday"
                )
            if day in entries:
                raise InvalidHolidayCalendar(
                    f"{source}: line {line_no}, field date: {day} is listed twice"
                )
            entries[day] = CalendarEntry(entry_type, name)
        if not entries:
            raise InvalidHolidayCalendar(f"{source}: the calendar has no rows")
        years = frozenset(day.year for day in entries)
        return cls(
            entries=MappingProxyType(entries),
            years=years,
            sources=MappingProxyType(dict.fromkeys(sorted(years), source)),
        )

    @classmethod
    def default(cls) -> HolidayCalendar:
        """The calendar shipped in ``finder/data/cn_calendar.csv`` (2004-2026), loaded once."""
        return _default_calendar()

    @classmethod
    def from_store_days(cls, days: Iterable[CalendarDay]) -> HolidayCalendar:
        """The calendar held by a store (:meth:`geodata.store.FacilityStore.calendar_days`).

        The rows were validated when loaded; an empty store gives a calendar of no year.
        """
        entries: dict[date, CalendarEntry] = {}
        sources: dict[int, str] = {}
        for row in days:
            day = date.fromisoformat(row.day)
            entry_type = _entry_type(row.type)
            if entry_type is None:
                raise InvalidHolidayCalendar(f"stored calendar: {row.day} has type {row.type!r}")
            entries[day] = CalendarEntry(entry_type, row.name)
            sources[day.year] = f"store: {row.source}, loaded {row.loaded_at} by {row.actor}"
        return cls(
            entries=MappingProxyType(entries),
            years=frozenset(sources),
            sources=MappingProxyType(sources),
        )

    def updated_with(self, other: HolidayCalendar) -> HolidayCalendar:
        """This calendar with every year of ``other`` taken from ``other`` instead."""
        entries = {d: e for d, e in self.entries.items() if d.year not in other.years}
        entries.update(other.entries)
        sources = {y: s for y, s in self.sources.items() if y not in other.years}
        sources.update(other.sources)
        return HolidayCalendar(
            entries=MappingProxyType(dict(sorted(entries.items()))),
            years=self.years | other.years,
            sources=MappingProxyType(dict(sorted(sources.items()))),
            provisional=self.provisional,
        )

    def with_provisional(self) -> HolidayCalendar:
        """This calendar, with the statutory holidays for the years it does not cover."""
        return replace(self, provisional=True)

    def missing_next_year(self, today: date) -> str | None:
        """From 1 November: a warning when the next year has no official arrangement."""
        next_year = today.year + 1
        if today.month < 11 or next_year in self.years:
            return None
        fallback = "provisional statutory holidays" if self.provisional else "nothing"
        return (
            f"the official holiday arrangement of {next_year} is not loaded: from "
            f"{next_year}-01-01 'open now' rests on {fallback}; load the State Council's "
            "arrangement with 'finder calendar load FILE'"
        )

    def source(self, day: date) -> CalendarSource | None:
        """What the type of ``day`` rests on; ``None`` when it is not known."""
        if day.year in self.years:
            return CalendarSource.OFFICIAL
        if self.provisional and STATUTORY_RULES_FROM <= day.year <= STATUTORY_RULES_UNTIL:
            return CalendarSource.PROVISIONAL
        return None

    def days_of(self, year: int) -> dict[date, CalendarEntry]:
        """The special days of ``year`` (provisional years: the statutory holidays), by date.

        Raises
        ------
        CalendarYearNotCovered
            When the calendar does not cover ``year``.
        """
        source = self.source(date(year, 1, 1))
        if source is CalendarSource.PROVISIONAL:
            return dict(_statutory_entries(year))
        if source is None:
            raise CalendarYearNotCovered(f"the holiday calendar does not cover {year}")
        return {d: e for d, e in sorted(self.entries.items()) if d.year == year}

    def covers(self, day: date) -> bool:
        """Whether the type of ``day`` is known (officially or provisionally)."""
        return self.source(day) is not None

    def day_type(self, day: date) -> DayType:
        """``holiday``, ``workday`` (调休 weekend day), ``weekend`` or ``normal`` (Mon-Fri).

        On a provisional day only the statutory holidays are ``holiday``, and no day is a
        ``workday``.

        Raises
        ------
        CalendarYearNotCovered
            When ``day`` lies in a year the calendar does not cover.
        """
        source = self.source(day)
        if source is None:
            covered = f"{min(self.years)}-{max(self.years)}" if self.years else "no year"
            raise CalendarYearNotCovered(
                f"the holiday calendar does not cover {day.year} (it covers {covered})"
            )
        if source is CalendarSource.PROVISIONAL:
            entry = _statutory_entries(day.year).get(day)
        else:
            entry = self.entries.get(day)
        if entry is not None:
            return entry.type
        return "weekend" if day.weekday() >= 5 else "normal"


@cache
def _statutory_entries(year: int) -> Mapping[date, CalendarEntry]:
    return MappingProxyType(
        {day: CalendarEntry("holiday", name) for day, name in statutory_holidays(year).items()}
    )


def _entry_type(text: str) -> EntryType | None:
    lowered = text.lower()
    for entry_type in _ENTRY_TYPES:
        if lowered == entry_type:
            return entry_type
    return None


@cache
def _default_calendar() -> HolidayCalendar:
    resource = resources.files("finder").joinpath("data", "cn_calendar.csv")
    return HolidayCalendar.from_csv_text(
        resource.read_text(encoding="utf-8-sig"), source="finder/data/cn_calendar.csv"
    )


def calendar_csv_from_chinese_calendar() -> str:
    """The calendar file text for every year the ``chinese-calendar`` package knows.

    Rows are sorted by date; names are the Chinese holiday names. Regenerate the shipped file
    with::

        python -c "from finder.hours import calendar_csv_from_chinese_calendar as f; \\
            open('finder/data/cn_calendar.csv', 'w', encoding='utf-8').write(f())"
    """
    import chinese_calendar

    rows: list[tuple[date, str, str]] = []
    for table, entry_type in (
        (chinese_calendar.holidays, "holiday"),
        (chinese_calendar.workdays, "workday"),
    ):
        for day, english_name in table.items():
            name = str(chinese_calendar.Holiday(english_name).chinese)
            rows.append((day, entry_type, name))
    rows.sort()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_CSV_HEADER)
    writer.writerows((day.isoformat(), entry_type, name) for day, entry_type, name in rows)
    return out.getvalue()


# --- expressions ------------------------------------------------------------------------------

_DASHES = str.maketrans(dict.fromkeys("‐‑‒–—―−~〜", "-"))
_SPACED_DASH = re.compile(r"\s*-\s*")
_ALWAYS_OPEN_WORDS = frozenset({"全天", "全天候", "24小时", "24小时营业", "24小时开放"})
_WEEKDAY_NAMES = ("mo", "tu", "we", "th", "fr", "sa", "su")
_WEEKDAY = r"(mo|tu|we|th|fr|sa|su)"
_WEEKDAY_SELECTOR = re.compile(rf"\b{_WEEKDAY}\b(?:\s*-\s*{_WEEKDAY}\b)?", re.IGNORECASE)
_DATE_DEPENDENT_DAY = re.compile(rf"\b{_WEEKDAY}\s*\[|\beaster\b", re.IGNORECASE)
_HOLIDAY_SELECTOR = re.compile(r"\b(?:PH|SH)\b", re.IGNORECASE)
_TIME_RANGE = re.compile(r"\b(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})")
_VARIABLE_TIME = re.compile(r"sunrise|sunset|dawn|dusk|\+", re.IGNORECASE)
_COMMENT = re.compile(r'"[^"]*"')
_PARSE_POSITION = re.compile(r"-->\s*\d+:(\d+)")

_DayKey = tuple[int, bool]
"""(effective weekday 0=Monday..6=Sunday, matches PH)."""


@dataclass(frozen=True)
class _Compiled:
    """A validated expression with what the evaluation needs to know about it."""

    text: str
    always_open: bool
    calendar_free: bool
    #: Seconds after midnight until which a rule of the previous day may still apply (0: none).
    spill_s: int
    #: weekday -> class; weekdays of one class are matched by exactly the same selectors.
    weekday_class: tuple[int, ...]
    by_country: Mapping[str | None, opening_hours.OpeningHours]


def validate_opening_hours(expr: str) -> str:
    """Check an ``opening_hours`` expression and return its normal form.

    Parameters
    ----------
    expr
        OSM ``opening_hours`` text, possibly with full-width characters or ``全天``/``24小时``
        (see the module docstring for exactly what is folded).

    Returns
    -------
    str
        The expression in the parser's normal form, e.g. ``Mo-Fr 08:30-17:30; PH closed``.

    Raises
    ------
    InvalidOpeningHours
        When the text is empty or not valid syntax; the message quotes the expression, where
        parsing stopped and what the parser expected there.
    """
    return _compile(expr).text


def _fold_text(expr: str) -> str:
    text = " ".join(unicodedata.normalize("NFKC", expr).translate(_DASHES).split())
    text = _SPACED_DASH.sub("-", text)
    return "24/7" if text in _ALWAYS_OPEN_WORDS else text


@lru_cache(maxsize=4096)
def _compile(expr: str) -> _Compiled:
    text = _fold_text(expr)
    if not text:
        raise InvalidOpeningHours("opening_hours is empty", field="opening_hours")
    if not opening_hours.validate(text):
        raise InvalidOpeningHours(_parse_error_message(expr, text), field="opening_hours")
    parsed = opening_hours.OpeningHours(text)
    normal = str(parsed.normalize())
    return _Compiled(
        text=normal,
        always_open=normal == "24/7",
        calendar_free=_is_calendar_free(normal),
        spill_s=_spill_seconds(normal),
        weekday_class=_weekday_classes(normal),
        by_country=MappingProxyType(
            {
                None: opening_hours.OpeningHours(normal),
                _PROXY_HOLIDAY_COUNTRY: opening_hours.OpeningHours(
                    normal, country=_PROXY_HOLIDAY_COUNTRY
                ),
            }
        ),
    )


def _parse_error_message(expr: str, text: str) -> str:
    try:
        opening_hours.OpeningHours(text)
    except Exception as exc:  # the parser's ParserError, which its type stubs do not declare
        detail = str(exc)
    else:
        detail = ""
    lines = [line.strip(" =|") for line in detail.strip().splitlines()]
    expected = next((line for line in reversed(lines) if line.startswith("expected")), "")
    position = _PARSE_POSITION.search(detail)
    where = ""
    if position is not None:
        column = int(position.group(1))
        where = f" at character {column} ({text[column - 1 :]!r})" if text else ""
    reason = f": {expected}" if expected else ""
    return f"not valid OpenStreetMap opening_hours syntax: {expr!r}{where}{reason}"


def _weekday_classes(text: str) -> tuple[int, ...]:
    """Group weekdays that no day selector of ``text`` can tell apart.

    Over-splitting is harmless (it only makes more answers UNKNOWN), so anything not understood
    (``Mo[1]``, ``easter``) keeps every weekday apart.
    """
    selectors = _COMMENT.sub('""', text)
    if _DATE_DEPENDENT_DAY.search(selectors):
        return tuple(range(7))
    signature = [0] * 7
    for bit, match in enumerate(_WEEKDAY_SELECTOR.finditer(selectors)):
        first = _WEEKDAY_NAMES.index(match.group(1).lower())
        last = _WEEKDAY_NAMES.index(match.group(2).lower()) if match.group(2) else first
        for offset in range((last - first) % 7 + 1):
            signature[(first + offset) % 7] |= 1 << bit
    classes: dict[int, int] = {}
    return tuple(classes.setdefault(s, len(classes)) for s in signature)


def _is_calendar_free(text: str) -> bool:
    selectors = _COMMENT.sub('""', text)
    return _HOLIDAY_SELECTOR.search(selectors) is None and len(set(_weekday_classes(text))) == 1


def _spill_seconds(text: str) -> int:
    """Latest time of day (s) that a time range started the day before may reach (0: none)."""
    selectors = _COMMENT.sub('""', text)
    if _VARIABLE_TIME.search(selectors):
        return _DAY_S
    spill = 0
    for match in _TIME_RANGE.finditer(selectors):
        start_h, start_m, end_h, end_m = (int(g) for g in match.groups())
        start = start_h * 3600 + start_m * 60
        end = end_h * 3600 + end_m * 60
        if end <= start:
            spill = max(spill, end)
        elif end > _DAY_S:
            spill = max(spill, min(end - _DAY_S, _DAY_S))
    return spill


# --- evaluation -------------------------------------------------------------------------------


@cache
def _local_zone() -> ZoneInfo:
    return ZoneInfo(LOCAL_TIMEZONE)


def local_today() -> date:
    """Today's date in China (Asia/Shanghai)."""
    return datetime.now(_local_zone()).date()


def _local_naive(when: datetime) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        return when.replace(tzinfo=None)
    return when.astimezone(_local_zone()).replace(tzinfo=None)


def _day_key(calendar: HolidayCalendar, day: date) -> _DayKey:
    day_type = calendar.day_type(day)
    if day_type == "holiday":
        return (day.weekday(), True)
    if day_type == "workday":
        return (4 if day.weekday() == 5 else 0, False)
    return (day.weekday(), False)


@cache
def _holiday_proxies() -> Mapping[tuple[int, bool | None, bool], tuple[int, ...]]:
    """Ordinals of proxy-country dates by (weekday, previous day PH or None for any, PH).

    Only keys with a holiday on the day or the day before are listed; the rest need no country.
    """
    reader = opening_hours.OpeningHours("PH", country=_PROXY_HOLIDAY_COUNTRY)
    start = datetime(_PROXY_YEARS.start, 1, 1)
    end = datetime(_PROXY_YEARS.stop, 1, 1)
    holidays: set[int] = set()
    for begin, finish, state, _ in reader.intervals(start, end):
        if state == opening_hours.State.OPEN and finish is not None:
            holidays.update(range(begin.toordinal(), finish.toordinal()))
    table: dict[tuple[int, bool | None, bool], list[int]] = {}
    for ordinal in range(start.toordinal() + 1, end.toordinal()):
        today = ordinal in holidays
        before = ordinal - 1 in holidays
        weekday = date.fromordinal(ordinal).weekday()
        if today:
            table.setdefault((weekday, None, True), []).append(ordinal)
        if today or before:
            table.setdefault((weekday, before, today), []).append(ordinal)
    needed = [(w, b, t) for w in range(7) for b in (False, True) for t in (False, True) if b or t]
    missing = [key for key in needed if key not in table]
    if missing:
        raise RuntimeError(
            f"opening-hours-py's {_PROXY_HOLIDAY_COUNTRY} holiday table has no proxy for {missing}"
        )
    return MappingProxyType({key: tuple(ordinals) for key, ordinals in table.items()})


def _nearest(ordinals: Sequence[int], target: int) -> int:
    i = bisect_left(ordinals, target)
    candidates = ordinals[max(i - 1, 0) : i + 1]
    return min(candidates, key=lambda o: abs(o - target))


def _plain_proxy(weekday: int, near: date) -> date:
    """The date nearest to ``near`` with ``weekday``, preferring one in the same month."""
    back = (near.weekday() - weekday) % 7
    if back == 0:
        return near
    candidates = (near - timedelta(days=back), near + timedelta(days=7 - back))
    return min(candidates, key=lambda d: (d.month != near.month, abs((d - near).days)))


def _proxy(previous: _DayKey | None, current: _DayKey, near: date) -> tuple[str | None, date]:
    """(country, date) that the library sees with ``current`` (and ``previous``) keys."""
    weekday, holiday = current
    before = None if previous is None else previous[1]
    if not holiday and not before:
        return None, _plain_proxy(weekday, near)
    ordinals = _holiday_proxies()[(weekday, before, holiday)]
    return _PROXY_HOLIDAY_COUNTRY, date.fromordinal(_nearest(ordinals, near.toordinal()))


def _align(
    previous: _DayKey, current: _DayKey, weekday_class: tuple[int, ...]
) -> tuple[_DayKey, _DayKey] | None:
    """Make the two keys consecutive weekdays without changing what the rules see, or None."""
    if (current[0] - previous[0]) % 7 == 1:
        return previous, current
    day_before = (current[0] - 1) % 7
    if weekday_class[day_before] == weekday_class[previous[0]]:
        return (day_before, previous[1]), current
    day_after = (previous[0] + 1) % 7
    if weekday_class[day_after] == weekday_class[current[0]]:
        return previous, (day_after, current[1])
    return None


def _library_state(compiled: _Compiled, country: str | None, at: datetime) -> OpenState:
    state, _comment = compiled.by_country[country].state(at)
    if state == opening_hours.State.OPEN:
        return OpenState.OPEN
    if state == opening_hours.State.CLOSED:
        return OpenState.CLOSED
    return OpenState.UNKNOWN


def _evaluate(
    compiled: _Compiled, local: datetime, calendar: HolidayCalendar
) -> tuple[OpenState, CalendarSource | None]:
    if compiled.always_open:
        return OpenState.OPEN, None
    if compiled.calendar_free:
        return _library_state(compiled, None, local), None
    day = local.date()
    source = calendar.source(day)
    if source is None:
        return OpenState.UNKNOWN, None
    current = _day_key(calendar, day)
    previous: _DayKey | None = None
    seconds = local.hour * 3600 + local.minute * 60 + local.second
    if seconds < compiled.spill_s:
        yesterday = day - timedelta(days=1)
        source_before = calendar.source(yesterday)
        if source_before is None:
            return OpenState.UNKNOWN, None
        if source_before is CalendarSource.PROVISIONAL:
            source = source_before
        aligned = _align(_day_key(calendar, yesterday), current, compiled.weekday_class)
        if aligned is None:
            return OpenState.UNKNOWN, None
        previous, current = aligned
    country, proxy = _proxy(previous, current, day)
    return _library_state(compiled, country, datetime.combine(proxy, local.time())), source


def state_at(expr: str | None, when: datetime, calendar: HolidayCalendar) -> OpenState:
    """Whether a facility with hours ``expr`` is open at ``when``.

    Parameters
    ----------
    expr
        OSM ``opening_hours`` expression; ``None`` or blank means the hours are not known.
    when
        The moment: naive = local time in Asia/Shanghai; aware = converted to Asia/Shanghai.
    calendar
        Public holidays and make-up working days, e.g. :meth:`HolidayCalendar.default`.

    Returns
    -------
    OpenState
        ``UNKNOWN`` for missing hours, for hours the expression itself marks unknown, for dates
        the calendar does not cover (unless the expression does not depend on the calendar), and
        for the rare overnight case described in the module docstring.

    Raises
    ------
    InvalidOpeningHours
        When ``expr`` is not valid syntax.
    """
    return state_and_source(expr, when, calendar)[0]


def state_and_source(
    expr: str | None, when: datetime, calendar: HolidayCalendar
) -> tuple[OpenState, CalendarSource | None]:
    """:func:`state_at` and the calendar the answer rests on.

    The source is ``None`` where the answer does not depend on the calendar (``24/7``, hours
    that treat every day alike, unknown hours, a day not covered), ``PROVISIONAL`` where the day
    (or, for the early hours of an overnight rule, the day before) has only the statutory
    holidays (:meth:`HolidayCalendar.with_provisional`), else ``OFFICIAL``.

    Raises
    ------
    InvalidOpeningHours
        When ``expr`` is not valid syntax.
    """
    if expr is None or not expr.strip():
        return OpenState.UNKNOWN, None
    return _evaluate(_compile(expr), _local_naive(when), calendar)


# --- hours in words -----------------------------------------------------------------------------

_WORD_DAYS = {
    "zh": ("周一", "周二", "周三", "周四", "周五", "周六", "周日"),
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
}
_WORDS: dict[str, dict[str, str]] = {
    "zh": {
        "always": "全天开放",
        "never": "不开放",
        "daily": "每天",
        "PH": "法定节假日",
        "SH": "学校假期",
        "all_day": "全天",
        "range": "至",
        "list": "、",
        "times": "、",
        "rules": "，",
        "overnight": "次日",
        "closed_rule": "{days}休息",
        "open_rule": "{days} {times}",
        "today": "{time} {change}",
        "tomorrow": "明天 {time} {change}",
        "weekday": "{day} {time} {change}",
        "later": "{date} {time} {change}",
        "opens": "开门",
        "closes": "关门",
    },
    "en": {
        "always": "open 24/7",
        "never": "closed",
        "daily": "daily",
        "PH": "public holidays",
        "SH": "school holidays",
        "all_day": "all day",
        "range": "–",
        "list": ", ",
        "times": ", ",
        "rules": "; ",
        "overnight": "next day ",
        "closed_rule": "closed on {days}",
        "open_rule": "{days} {times}",
        "today": "{change} {time}",
        "tomorrow": "{change} tomorrow {time}",
        "weekday": "{change} {day} {time}",
        "later": "{change} {date} {time}",
        "opens": "opens",
        "closes": "closes",
    },
}
_WORD_DAY_TOKEN = r"(?:Mo|Tu|We|Th|Fr|Sa|Su|PH|SH)(?:-(?:Mo|Tu|We|Th|Fr|Sa|Su))?"
_WORD_RULE = re.compile(
    rf"^(?:(?P<days>{_WORD_DAY_TOKEN}(?:,{_WORD_DAY_TOKEN})*)(?: |$))?"
    r"(?P<what>closed|off|open|\d\d:\d\d-\d\d:\d\d(?:,\d\d:\d\d-\d\d:\d\d)*)?$"
)
#: How far :func:`next_change` looks ahead, days (the longest holiday break is nine days).
NEXT_CHANGE_HORIZON_DAYS = 10


def _words(language: str) -> dict[str, str]:
    if language not in _WORDS:
        raise InvalidInput(f"unknown language {language!r}; use zh or en", field="lang")
    return _WORDS[language]


def _days_in_words(selector: str, language: str) -> str:
    words = _words(language)
    names = _WORD_DAYS[language]
    if selector == "Mo-Su":
        return words["daily"]
    parts = []
    for token in selector.split(","):
        if token in ("PH", "SH"):
            parts.append(words[token])
            continue
        first, _, last = token.partition("-")
        a = _WEEKDAY_NAMES.index(first.lower())
        if not last:
            parts.append(names[a])
            continue
        b = _WEEKDAY_NAMES.index(last.lower())
        if (b - a) % 7 == 1:  # two days: a list reads better than a range ("周六、周日")
            parts.append(names[a] + words["list"] + names[b])
        else:
            parts.append(names[a] + words["range"] + names[b])
    return words["list"].join(parts)


def _times_in_words(times: str, language: str) -> str:
    words = _words(language)
    out = []
    for span in times.split(","):
        start, end = span.split("-")
        if start == "00:00" and end == "24:00":
            out.append(words["all_day"])
            continue
        hours, minutes = (int(p) for p in end.split(":"))
        if end <= start or hours >= 24:
            end = f"{words['overnight']}{hours % 24:02d}:{minutes:02d}"
        out.append(f"{start}–{end}")
    return words["times"].join(out)


def hours_in_words(expr: str, language: str = "zh") -> str:
    """Opening hours as people write them, e.g. ``周一至周五 09:00–18:00，法定节假日休息``.

    Parameters
    ----------
    expr
        OSM ``opening_hours`` expression (any form :func:`validate_opening_hours` accepts).
    language
        ``"zh"`` or ``"en"`` (``Mon–Fri 09:00–18:00; closed on public holidays``).

    Returns
    -------
    str
        The rules in their order, joined with ``，`` (``; `` in English): weekday ranges
        (``周一至周五``; two days as a list, ``周六、周日``; every day ``每天``), ``PH`` as
        法定节假日, ``SH`` as 学校假期, time ranges with an en dash, ``00:00-24:00`` as 全天,
        overnight ends with 次日 (``22:00–次日06:00``), ``off``/``closed`` as 休息, and
        ``24/7`` as 全天开放. An expression with anything else (months, weeks, comments,
        ``sunrise``, open ends) is returned in its normal form rather than half-translated.

    Raises
    ------
    InvalidOpeningHours
        When ``expr`` is not valid syntax.
    InvalidInput
        For an unknown language.

    Examples
    --------
    >>> hours_in_words("Mo-Fr 09:00-18:00; PH off")
    '周一至周五 09:00–18:00，法定节假日休息'
    >>> hours_in_words("Sa,Su 10:00-16:00", "en")
    'Sat, Sun 10:00–16:00'
    """
    words = _words(language)
    text = validate_opening_hours(expr)
    if text == "24/7":
        return _capitalised(words["always"])
    rules = []
    for rule in text.split("; "):
        match = _WORD_RULE.match(rule)
        if match is None or not (match["days"] or match["what"]):
            return text
        days = _days_in_words(match["days"] or "Mo-Su", language)
        what = match["what"] or "open"
        if what in ("closed", "off"):
            rules.append(
                words["never"] if match["days"] is None else words["closed_rule"].format(days=days)
            )
        else:
            times = words["all_day"] if what == "open" else _times_in_words(what, language)
            rules.append(words["open_rule"].format(days=days, times=times))
    return _capitalised(words["rules"].join(rules))


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def next_change(
    expr: str | None, when: datetime, calendar: HolidayCalendar
) -> tuple[OpenState, datetime] | None:
    """The next moment the open state of ``expr`` changes after ``when``, and the state then.

    Parameters
    ----------
    expr
        OSM ``opening_hours`` expression (``None`` or blank: unknown hours).
    when
        The moment, as in :func:`state_at` (naive: Asia/Shanghai local time).
    calendar
        Holiday calendar, as in :func:`state_at`.

    Returns
    -------
    (state, moment) or None
        The first local (naive) minute within :data:`NEXT_CHANGE_HORIZON_DAYS` days at which
        :func:`state_at` differs from its value at ``when``, with that state; ``None`` when the
        state is unknown now, does not change within the horizon (``24/7``), or the hours use
        times that move (``sunrise``, open ends). States can only change at a time written in
        the expression or at midnight, so only those moments are evaluated.

    Raises
    ------
    InvalidOpeningHours
        When ``expr`` is not valid syntax.
    """
    if expr is None or not expr.strip():
        return None
    compiled = _compile(expr)
    local = _local_naive(when).replace(second=0, microsecond=0)
    now_state = _evaluate(compiled, local, calendar)[0]
    if now_state is OpenState.UNKNOWN or compiled.always_open:
        return None
    if _VARIABLE_TIME.search(_COMMENT.sub('""', compiled.text)):
        return None
    minutes = {0}
    for match in re.finditer(r"\b(\d{1,2}):(\d{2})\b", _COMMENT.sub('""', compiled.text)):
        minutes.add((int(match[1]) * 60 + int(match[2])) % (24 * 60))
    day = datetime.combine(local.date(), datetime.min.time())
    for offset in range(NEXT_CHANGE_HORIZON_DAYS + 1):
        for minute in sorted(minutes):
            moment = day + timedelta(days=offset, minutes=minute)
            if moment <= local:
                continue
            state = _evaluate(compiled, moment, calendar)[0]
            if state is not now_state:
                return state, moment
    return None


def change_in_words(state: OpenState, moment: datetime, now: datetime, language: str = "zh") -> str:
    """A change of :func:`next_change` as people say it: ``18:00 关门``, ``明天 09:00 开门``.

    Parameters
    ----------
    state
        The state after the change (``OPEN``: opens, otherwise: closes).
    moment, now
        The moment of the change and the present, naive local times (Asia/Shanghai).
    language
        ``"zh"`` or ``"en"`` (``closes 18:00``, ``opens tomorrow 09:00``, ``opens Mon 09:00``).

    Returns
    -------
    str
        Today's changes by time only, tomorrow's with 明天, within a week with the weekday,
        later with the date (``12-01``).
    """
    words = _words(language)
    change = words["opens"] if state is OpenState.OPEN else words["closes"]
    clock = moment.strftime("%H:%M")
    days = (moment.date() - _local_naive(now).date()).days
    if days <= 0:
        template = "today"
    elif days == 1:
        template = "tomorrow"
    elif days < 7:
        template = "weekday"
    else:
        template = "later"
    return words[template].format(
        time=clock,
        change=change,
        day=_WORD_DAYS[language][moment.weekday()],
        date=moment.strftime("%m-%d"),
    )
