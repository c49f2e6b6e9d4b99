"""``counted_until``: the signals of a set of reports stay the same until that moment."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from finder.reports import REPORT_WINDOW, active_signals, counted_until
from geodata.schema import Report

AT = dt.datetime(2026, 12, 6, 9, 0, tzinfo=dt.UTC)

_reports = st.lists(
    st.tuples(
        st.sampled_from(["f1", "f2"]),
        st.sampled_from(["locked_during_hours", "moved"]),
        st.sampled_from(["a", "b", "c"]),
        st.integers(-30 * 60, 2 * 60),  # made, minutes from AT
        st.sampled_from(["pending", "confirmed", "dismissed"]),
        st.integers(0, 30 * 60),  # resolved, minutes after made
    ),
    max_size=8,
)


def _made(rows: list[tuple[str, str, str, int, str, int]]) -> list[Report]:
    out = []
    for n, (facility_id, kind, source, made, status, resolved) in enumerate(rows):
        created = AT + dt.timedelta(minutes=made)
        out.append(
            Report(
                report_id=n,
                facility_id=facility_id,
                type=kind,
                source=source,
                token_hash="",
                created_at=created,
                status=status,
                resolved_at=None
                if status == "pending"
                else created + dt.timedelta(minutes=resolved),
            )
        )
    return out


@settings(max_examples=200, deadline=None)
@given(_reports)
def test_signals_do_not_change_before_counted_until(
    rows: list[tuple[str, str, str, int, str, int]],
) -> None:
    reports = _made(rows)
    now = AT
    until = counted_until(reports, now)
    same = active_signals(reports, now)
    end = until if until is not None else now + 3 * REPORT_WINDOW
    step = (end - now) / 7
    for i in range(1, 7):
        assert active_signals(reports, now + step * i) == same
    assert active_signals(reports, end - dt.timedelta(microseconds=1)) == same
    if until is None:
        assert same == {}  # every report left the window or was dismissed


def test_a_report_from_a_clock_ahead_counts_when_it_was_made() -> None:
    reports = _made([("f1", "moved", "a", 0, "pending", 0), ("f1", "moved", "b", 1, "pending", 0)])
    assert active_signals(reports, AT) == {}
    assert counted_until(reports, AT) == AT + dt.timedelta(minutes=1)
