"""The rule that turns users' reports into signals (:mod:`finder.reports`)."""

from __future__ import annotations

import datetime as dt

import pytest

from finder.reports import REPORT_WINDOW, ReportSignal, active_signals
from geodata.schema import Report

NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)


def report(
    n: int,
    source: str,
    *,
    ago: dt.timedelta = dt.timedelta(hours=1),
    type_: str = "locked_during_hours",
    status: str = "pending",
    resolved_ago: dt.timedelta | None = None,
    facility_id: str = "f1",
) -> Report:
    return Report(
        report_id=n,
        facility_id=facility_id,
        type=type_,
        source=source,
        token_hash="",
        created_at=NOW - ago,
        status=status,
        resolved_at=None if resolved_ago is None else NOW - resolved_ago,
    )


def test_one_report_is_no_signal() -> None:
    assert active_signals([report(1, "a")], NOW) == {}


def test_two_sources_within_the_window_make_a_signal() -> None:
    first, second = report(1, "a", ago=dt.timedelta(hours=5)), report(2, "b")
    assert active_signals([first, second], NOW) == {
        "f1": (ReportSignal("locked_during_hours", 2, first.created_at, second.created_at),)
    }


def test_one_source_reporting_three_times_counts_once() -> None:
    reports = [report(n, "a", ago=dt.timedelta(minutes=n)) for n in range(3)]
    assert active_signals(reports, NOW) == {}
    signal = active_signals([*reports, report(9, "b")], NOW)["f1"][0]
    assert signal.count == 2


@pytest.mark.parametrize(
    "other",
    [
        report(2, "b", ago=REPORT_WINDOW + dt.timedelta(minutes=1)),  # too old
        report(2, "b", type_="moved"),  # another type
        report(2, "b", facility_id="f2"),  # another facility
        report(2, "b", status="dismissed", resolved_ago=dt.timedelta(minutes=5)),
    ],
    ids=["too-old", "other-type", "other-facility", "dismissed"],
)
def test_reports_that_do_not_add_up(other: Report) -> None:
    assert active_signals([report(1, "a"), other], NOW) == {}


def test_a_staff_confirmation_counts_for_a_window_from_when_it_was_given() -> None:
    old = report(1, "a", ago=dt.timedelta(days=3), status="confirmed")
    fresh = old.model_copy(update={"resolved_at": NOW - dt.timedelta(hours=2)})
    stale = old.model_copy(update={"resolved_at": NOW - REPORT_WINDOW - dt.timedelta(hours=1)})
    assert active_signals([fresh], NOW)["f1"] == (
        ReportSignal("locked_during_hours", 1, old.created_at, old.created_at, fresh.resolved_at),
    )
    assert active_signals([stale], NOW) == {}


def test_signals_are_in_the_order_of_the_report_types() -> None:
    reports = [
        report(1, "a", type_="moved"),
        report(2, "b", type_="moved"),
        report(3, "a"),
        report(4, "b"),
    ]
    kinds = [s.kind for s in active_signals(reports, NOW)["f1"]]
    assert kinds == ["locked_during_hours", "moved"]
