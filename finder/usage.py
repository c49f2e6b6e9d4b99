"""Use of facilities for planners: visits per facility, day and hour, from door ``entry`` events.

A visit is one ``entry`` event (a door counter or a registration terminal counting one person
in); days and hours are China time (Asia/Shanghai). Nothing identifies a visitor: the events
carry counts only (:mod:`geodata.events`).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pandas as pd

from finder.hours import LOCAL_TIMEZONE
from geodata.events import EventLog

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
