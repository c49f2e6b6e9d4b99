"""Use of facilities for planners: visits per facility, day and hour, from door ``entry`` events.

A visit is one ``entry`` event (a door counter or a registration terminal counting one person
in); days and hours are China time (Asia/Shanghai). Nothing identifies a visitor: the events
carry counts only (:mod:`geodata.events`).

:func:`usage_table` is the one aggregation (``GET /usage``, ``finder usage``);
:func:`usage_report` sums it per facility and hour of the day and says which facilities had a
counting device (the printed table of :mod:`maps.usagesheet`, and siting weighted by use in
:mod:`finder.siting`, over :func:`use_window`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from finder.hours import LOCAL_TIMEZONE, local_today
from geodata.errors import InvalidInput
from geodata.events import Device, EventLog

#: The columns of :func:`usage_table`, in order.
USAGE_COLUMNS: tuple[str, ...] = (
    "id",
    "name",
    "kind",
    "district",
    "adcode",
    "date",
    "hour",
    "visits",
)
#: Longest period of one usage table or report, days.
MAX_PERIOD_DAYS = 366


def _day_bounds(first: dt.date, last: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The UTC moments from the start of ``first`` to the end of ``last``, China time."""
    zone = ZoneInfo(LOCAL_TIMEZONE)
    start = dt.datetime.combine(first, dt.time(), zone)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def usage_table(facilities: pd.DataFrame, entries: pd.DataFrame) -> pd.DataFrame:
    """Visits per facility, day and hour: one row per hour with at least one visit.

    Parameters
    ----------
    facilities
        Facility frame (``id``, ``name``, ``kind``, ``district``, ``adcode``): the facilities
        counted (filter it for the caller first).
    entries
        ``facility_id`` and ``at`` (timezone-aware) of ``entry`` events
        (:meth:`geodata.events.EventLog.entries`); entries of other facilities are ignored.

    Returns
    -------
    pandas.DataFrame
        :data:`USAGE_COLUMNS`, ``date`` as ISO text and ``hour`` 0-23 (China time), ordered by
        adcode, id, date and hour.
    """
    local = entries["at"].dt.tz_convert(LOCAL_TIMEZONE)
    counted = (
        pd.DataFrame(
            {
                "id": entries["facility_id"].astype(object),
                "date": local.dt.strftime("%Y-%m-%d"),
                "hour": local.dt.hour.astype("int64"),
            }
        )
        .groupby(["id", "date", "hour"], as_index=False)
        .size()
        .rename(columns={"size": "visits"})
    )
    about = facilities[["id", "name", "kind", "district", "adcode"]]
    table = about.merge(counted, on="id", how="inner")
    table = table.sort_values(["adcode", "id", "date", "hour"], ignore_index=True)
    return table[list(USAGE_COLUMNS)]


def usage_from_log(
    log: EventLog, facilities: pd.DataFrame, first: dt.date, last: dt.date
) -> pd.DataFrame:
    """:func:`usage_table` of ``facilities`` from ``first`` to ``last`` (China time days,
    both included), from the entries in a store's event log."""
    start, end = _day_bounds(first, last)
    return usage_table(facilities, log.entries(facilities["id"].tolist(), start, end))


#: Default window of observed use for planners, days: four weeks, so every weekday counts
#: four times.
USE_WINDOW_DAYS = 28


@dataclass(frozen=True)
class UsageReport:
    """Use of some facilities over whole days (China time), from one :func:`usage_table`.

    Attributes
    ----------
    first, last
        The period, both days included.
    facilities
        One row per facility asked about, in the order given: ``id``, ``name``, ``kind``,
        ``access``, ``district``, ``adcode``, ``lon``, ``lat``, ``measured_days`` (days of the
        period on which the facility had a counting device registered; 0 = *unmeasured*),
        ``visits`` (``entry`` events in the period, the sum of its :func:`usage_table` rows;
        ``<NA>`` when unmeasured: its use is unknown, not zero), ``visits_per_day`` (``visits /
        measured_days``; NaN when unmeasured) and ``peak_hour`` (0-23, the hour of the day
        with the most visits over the period, earliest on ties; ``<NA>`` without visits).
    hours
        Visits per hour of the day (0-23, China time) over all the facilities and days.
    """

    first: dt.date
    last: dt.date
    facilities: pd.DataFrame
    hours: pd.Series

    @property
    def days(self) -> int:
        """Length of the period, days."""
        return (self.last - self.first).days + 1

    @property
    def measured(self) -> NDArray[np.bool_]:
        """Per facility: whether it had a counting device in the period."""
        return np.asarray(self.facilities["measured_days"].to_numpy() > 0, dtype=bool)

    @property
    def total_visits(self) -> int:
        """Visits of every facility over the period (the sum of the usage table)."""
        return int(self.hours.sum())


def measured_days(devices: Iterable[Device], first: dt.date, last: dt.date) -> dict[str, int]:
    """Days from ``first`` to ``last`` (China time) on which each facility had a device.

    A device counts for a day when it was registered and not yet revoked at some moment of
    that day; several devices of one facility count a day once.
    """
    zone = ZoneInfo(LOCAL_TIMEZONE)
    days: dict[str, set[dt.date]] = {}
    for device in devices:
        start = max(first, dt.datetime.fromisoformat(device.created_at).astimezone(zone).date())
        end = last
        if device.revoked_at is not None:
            revoked = dt.datetime.fromisoformat(device.revoked_at).astimezone(zone).date()
            end = min(last, revoked)
        mine = days.setdefault(device.facility_id, set())
        mine.update(start + dt.timedelta(days=i) for i in range((end - start).days + 1))
    return {facility_id: len(dates) for facility_id, dates in days.items()}


def usage_report(
    log: EventLog, facilities: pd.DataFrame, first: dt.date, last: dt.date
) -> UsageReport:
    """Use of ``facilities`` from ``first`` to ``last`` (China time days, both included).

    Counts come from :func:`usage_from_log` (the table of ``GET /usage``), so the report's
    visits add up to that table's; which facilities are measured comes from the devices of
    ``log`` (:func:`measured_days`).

    Parameters
    ----------
    log
        The store's event log.
    facilities
        Facility frame (``id``, ``name``, ``kind``, ``access``, ``district``, ``adcode``,
        ``lon``, ``lat``): the facilities counted (filter it for the caller first).
    first, last
        The period.

    Raises
    ------
    InvalidInput
        If ``first`` is after ``last``.
    """
    if first > last:
        raise InvalidInput("the period must start on or before its last day", field="from")
    table = usage_from_log(log, facilities, first, last)
    visits = table.groupby("id")["visits"].sum()
    by_hour = table.groupby(["id", "hour"])["visits"].sum().reset_index()
    ordered = by_hour.sort_values(["id", "visits", "hour"], ascending=[True, False, True])
    peak: pd.Series = ordered.drop_duplicates("id").set_index("id")["hour"]
    ids = facilities["id"].astype(str)
    days = measured_days(log.devices(), first, last)
    counted = ids.map(visits).fillna(0).astype("int64").to_numpy()
    # a facility without a device cannot have entries; were one found, its days are the period
    known = np.array([days.get(i, 0) for i in ids], dtype=np.int64)
    known = np.where((known == 0) & (counted > 0), (last - first).days + 1, known)
    about = ["id", "name", "kind", "access", "district", "adcode", "lon", "lat"]
    frame = facilities[about].reset_index(drop=True)
    frame["measured_days"] = known
    frame["visits"] = pd.Series(counted, dtype="Int64").mask(known == 0)
    frame["visits_per_day"] = np.where(known > 0, counted / np.maximum(known, 1), np.nan)
    frame["peak_hour"] = pd.array(ids.map(peak).to_numpy(), dtype="Int64")
    hours = table.groupby("hour")["visits"].sum().reindex(range(24), fill_value=0)
    return UsageReport(first, last, frame, hours.astype("int64"))


def use_window(days: int, *, today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The ``days`` whole days before today (China time): ``(first, last)``, last = yesterday.

    Today is left out because it is not over: a morning's count would understate it.

    Raises
    ------
    InvalidInput
        Unless ``1 <= days <= 366``.
    """
    if not 1 <= days <= MAX_PERIOD_DAYS:
        raise InvalidInput(f"use_days must be between 1 and {MAX_PERIOD_DAYS}", field="use_days")
    last = (today or local_today()) - dt.timedelta(days=1)
    return last - dt.timedelta(days=days - 1), last
