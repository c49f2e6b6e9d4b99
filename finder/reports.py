"""Users' reports as signals: when reports about a facility change what everybody sees.

One report is one person's word; it changes nothing for others. A *signal* of a report type
(``locked_during_hours``, ``moved``, ...) is active for a facility when, within the last
:data:`REPORT_WINDOW` (24 hours),

* reports of that type came from at least :data:`REPORTS_TO_FLIP` (2) distinct
  sources (a source is a keyed hash of the reporter's network address: one source reporting
  three times counts once), or
* staff confirmed a report of that type (the confirmation counts for the window from the moment
  it was given): staff are trusted, so a confirmation alone makes the signal active.

Dismissed reports never count. This is the one place of the rule (``docs/reports.md`` writes it
down for users); :func:`finder.truth.live_answer` takes the active
:class:`~finder.truth.ReportSignal` values as they are, so an active ``locked_during_hours`` or
``closed_for_good`` signal is a "reported locked" answer.

Example
-------
>>> import datetime as dt
>>> from geodata.schema import Report
>>> at = dt.datetime(2026, 12, 6, 9, 0, tzinfo=dt.UTC)
>>> def report(n, source):
...     return Report(report_id=n, facility_id="f1", type="locked_during_hours",
...                   source=source, token_hash="", created_at=at + dt.timedelta(minutes=n))
>>> active_signals([report(1, "a")], at + dt.timedelta(hours=1))
{}
>>> active_signals([report(1, "a"), report(2, "b")], at + dt.timedelta(hours=1))["f1"][0].count
2
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable

from finder.truth import ReportSignal
from geodata.schema import REPORT_TYPES, Report

__all__ = [
    "REPORTS_TO_FLIP",
    "REPORT_WINDOW",
    "ReportSignal",
    "active_signals",
    "counted_until",
]

#: Distinct sources whose reports make a signal active, and the window they must fall in.
REPORTS_TO_FLIP = 2
REPORT_WINDOW = dt.timedelta(hours=24)


def active_signals(
    reports: Iterable[Report],
    now: dt.datetime,
    *,
    window: dt.timedelta = REPORT_WINDOW,
    quorum: int = REPORTS_TO_FLIP,
) -> dict[str, tuple[ReportSignal, ...]]:
    """The active report signals of each facility at ``now``.

    Parameters
    ----------
    reports
        Reports of any facilities and times (older ones and dismissed ones are left out here).
    now
        The moment of the answer, timezone-aware.
    window, quorum
        The rule's parameters (see the module docstring).

    Returns
    -------
    dict
        ``{facility_id: signals}``, signals in the order of :data:`geodata.schema.REPORT_TYPES`;
        facilities without an active signal are left out.
    """
    start = now - window
    groups: dict[tuple[str, str], list[Report]] = defaultdict(list)
    confirmed: dict[tuple[str, str], dt.datetime] = {}
    for report in reports:
        if report.status == "dismissed" or report.created_at > now:
            continue
        key = (report.facility_id, report.type)
        if report.status == "confirmed" and report.resolved_at is not None:
            if start < report.resolved_at <= now:
                groups[key].append(report)
                confirmed[key] = max(report.resolved_at, confirmed.get(key, report.resolved_at))
        elif report.created_at > start:
            groups[key].append(report)
    order = {kind: i for i, kind in enumerate(REPORT_TYPES)}
    out: dict[str, list[ReportSignal]] = defaultdict(list)
    for (facility_id, kind), group in sorted(
        groups.items(), key=lambda item: (item[0][0], order[item[0][1]])
    ):
        sources = {r.source for r in group}
        if len(sources) < quorum and (facility_id, kind) not in confirmed:
            continue
        times = [r.created_at for r in group]
        out[facility_id].append(
            ReportSignal(
                kind, len(sources), min(times), max(times), confirmed.get((facility_id, kind))
            )
        )
    return {facility_id: tuple(signals) for facility_id, signals in out.items()}


def counted_until(
    reports: Iterable[Report], now: dt.datetime, *, window: dt.timedelta = REPORT_WINDOW
) -> dt.datetime | None:
    """The first moment after ``now`` when one of ``reports`` starts or stops counting: until
    then, :func:`active_signals` of the same reports gives the same answer (``None``: never).

    A report counts from when it was made (or, confirmed, from the staff confirmation) for the
    window; a dismissed report never counts. A report made "after" ``now`` (another machine's
    clock running ahead) starts counting when it was made.
    """
    moments = []
    for report in reports:
        if report.status == "dismissed":
            continue
        confirmed = report.status == "confirmed" and report.resolved_at is not None
        start = report.resolved_at if confirmed and report.resolved_at else report.created_at
        moments += [report.created_at, start, start + window]
    return min((m for m in moments if m > now), default=None)
