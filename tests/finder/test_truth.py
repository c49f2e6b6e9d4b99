"""The honest "open now?" answer: each rule of :mod:`finder.truth`, and the confidence decay."""

from __future__ import annotations

import datetime as dt

import pytest

from finder.hours import OpenState
from finder.truth import DoorState, LiveState, ReportSignal, VerifiedBy, live_answer

# 10:00 in Shanghai
NOW = dt.datetime(2026, 12, 7, 2, 0, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)


def door(*events: tuple[str, dt.timedelta]) -> DoorState:
    state = DoorState()
    for type_, before in events:
        state = state.with_event(type_, NOW - before)
    return state


def reported(
    kind: str, count: int, last_before: dt.timedelta, confirmed_before: dt.timedelta | None = None
) -> ReportSignal:
    """An active signal, as :func:`finder.reports.active_signals` gives it."""
    confirmed_at = None if confirmed_before is None else NOW - confirmed_before
    return ReportSignal(kind, count, NOW - last_before - 5 * MIN, NOW - last_before, confirmed_at)


@pytest.mark.parametrize(
    ("timetable", "kind", "state", "reports", "expected", "detail"),
    [
        (OpenState.OPEN, "worker_station", door(("opened", 12 * MIN)), (), LiveState.OPEN,
         "open: timetable, door opened 12 minutes ago"),
        (OpenState.OPEN, "worker_station", door(("opened", 60 * MIN), ("locked", 5 * MIN)), (),
         LiveState.LOCKED, "locked: door locked 5 minutes ago"),
        # the routine lock after closing yesterday does not count today
        (OpenState.OPEN, "worker_station", door(("locked", 20 * 60 * MIN)), (), LiveState.OPEN,
         "open: timetable, door locked 20 hours ago"),
        (OpenState.OPEN, "worker_station", door(("locked", 30 * MIN), ("entry", 2 * MIN)), (),
         LiveState.OPEN, "open: timetable, door opened 2 minutes ago"),
        (OpenState.CLOSED, "worker_station", door(("locked", 5 * MIN)), (), LiveState.CLOSED,
         "closed: timetable, door locked 5 minutes ago"),
        (OpenState.OPEN, "mother_room", door(("occupied", 3 * MIN)), (), LiveState.OCCUPIED,
         "occupied: sensor 3 minutes ago"),
        (OpenState.OPEN, "mother_room", door(("occupied", 9 * MIN), ("vacant", MIN)), (),
         LiveState.OPEN, "open: timetable, vacant 1 minute ago"),
        # a sensor silent for three hours is not believed
        (OpenState.OPEN, "mother_room", door(("occupied", 180 * MIN)), (), LiveState.OPEN,
         "open: timetable"),
        # occupancy counts for mother rooms only
        (OpenState.OPEN, "rest_stop", door(("occupied", 3 * MIN)), (), LiveState.OPEN,
         "open: timetable"),
        (OpenState.UNKNOWN, "rest_stop", door(("opened", 7 * MIN)), (), LiveState.OPEN,
         "open: door opened 7 minutes ago"),
        (OpenState.UNKNOWN, "rest_stop", None, (), LiveState.UNKNOWN, "unknown: no opening hours"),
        (OpenState.OPEN, "worker_station", None, (reported("locked_during_hours", 2, 40 * MIN),),
         LiveState.REPORTED_LOCKED, "reported locked 40 minutes ago by 2 users"),
        # staff are trusted: one confirmed report is a signal, and it says so
        (OpenState.OPEN, "worker_station", None,
         (reported("locked_during_hours", 1, 40 * MIN, confirmed_before=5 * MIN),),
         LiveState.REPORTED_LOCKED, "reported locked 40 minutes ago by 1 user, confirmed by staff"),
        # a door that opened before the staff confirmation does not overtake it
        (OpenState.OPEN, "worker_station", door(("opened", 10 * MIN)),
         (reported("locked_during_hours", 1, 40 * MIN, confirmed_before=5 * MIN),),
         LiveState.REPORTED_LOCKED, "reported locked 40 minutes ago by 1 user, confirmed by staff"),
        # other kinds of report say nothing about the door
        (OpenState.OPEN, "worker_station", None, (reported("moved", 2, 40 * MIN),),
         LiveState.OPEN, "open: timetable"),
        # the door opened after the reports: the reports are overtaken
        (OpenState.OPEN, "worker_station", door(("opened", 10 * MIN)),
         (reported("locked_during_hours", 2, 40 * MIN),), LiveState.OPEN,
         "open: timetable, door opened 10 minutes ago"),
    ],
)  # fmt: skip
def test_rules(
    timetable: OpenState,
    kind: str,
    state: DoorState | None,
    reports: tuple[ReportSignal, ...],
    expected: LiveState,
    detail: str,
) -> None:
    answer = live_answer(timetable, now=NOW, kind=kind, door=state, reports=reports)
    assert (answer.state, answer.detail) == (expected, detail)


def test_occupied_is_reported_only_for_a_recent_reading() -> None:
    recent = live_answer(OpenState.OPEN, now=NOW, kind="mother_room", door=door(("occupied", MIN)))
    stale = live_answer(
        OpenState.OPEN, now=NOW, kind="mother_room", door=door(("occupied", 180 * MIN))
    )
    assert (recent.occupied, recent.source, recent.since) == (True, "sensor", NOW - MIN)
    assert stale.occupied is None


def test_events_fold_in_any_order_and_twice_alike() -> None:
    events = [("opened", 50 * MIN), ("occupied", 40 * MIN), ("locked", 30 * MIN),
              ("vacant", 20 * MIN), ("entry", 60 * MIN)]  # fmt: skip
    forward = door(*events)
    assert forward == door(*reversed(events)) == door(*events, *events)
    assert (forward.door, forward.occupancy) == ("locked", "vacant")
    assert forward.activity_at == NOW - 20 * MIN


@pytest.mark.parametrize(
    ("age_days", "confidence", "label"),
    [(0, 1.0, "high"), (15, 0.707, "high"), (30, 0.5, "medium"), (60, 0.25, "low")],
)
def test_confidence_halves_every_30_days_since_the_staff_visit(
    age_days: int, confidence: float, label: str
) -> None:
    midnight = dt.datetime(2026, 12, 7, 16, 0, tzinfo=dt.UTC)  # 8 December, 00:00 in Shanghai
    visit = dt.date(2026, 12, 8) - dt.timedelta(days=age_days)
    answer = live_answer(OpenState.OPEN, now=midnight, kind="rest_stop", staff_visit=visit)
    assert answer.verified_by is VerifiedBy.STAFF_VISIT
    assert (answer.confidence, answer.confidence_label) == (confidence, label)


def test_the_newest_verification_counts() -> None:
    visit = dt.date(2026, 9, 1)
    confirmed = ReportSignal("confirmed", 1, NOW - 3 * MIN, NOW - 3 * MIN)
    by_door = live_answer(
        OpenState.OPEN, now=NOW, kind="rest_stop", door=door(("entry", MIN)), staff_visit=visit
    )
    by_user = live_answer(
        OpenState.OPEN, now=NOW, kind="rest_stop", reports=(confirmed,), staff_visit=visit
    )
    never = live_answer(OpenState.OPEN, now=NOW, kind="rest_stop")
    assert (by_door.verified_by, by_door.verified_at) == (VerifiedBy.DOOR_ACTIVITY, NOW - MIN)
    assert by_user.verified_by is VerifiedBy.USER_CONFIRMATION
    assert (never.verified_by, never.confidence, never.confidence_label) == (None, 0.0, "low")


def test_the_answer_follows_the_reports_rule() -> None:
    """One rule in one place: the answer is "reported locked" exactly when
    :func:`finder.reports.active_signals` gives a locked signal (one report: no; two sources or
    a staff confirmation: yes; a dismissal: no again)."""
    from finder.reports import active_signals
    from geodata.schema import Report

    def report(n: int, source: str, **more: object) -> Report:
        return Report(
            report_id=n,
            facility_id="f1",
            type="locked_during_hours",
            source=source,
            token_hash="",
            created_at=NOW - (40 - n) * MIN,
            **more,
        )

    def state(*reports: Report) -> LiveState:
        signals = active_signals(reports, NOW).get("f1", ())
        return live_answer(OpenState.OPEN, now=NOW, kind="worker_station", reports=signals).state

    one, other = report(1, "a"), report(2, "b")
    confirmed = report(1, "a", status="confirmed", resolved_at=NOW - MIN)
    dismissed = report(1, "a", status="dismissed", resolved_at=NOW - MIN)
    assert state(one) == LiveState.OPEN
    assert state(one, other) == LiveState.REPORTED_LOCKED
    assert state(confirmed) == LiveState.REPORTED_LOCKED
    assert state(dismissed, other) == LiveState.OPEN
