"""The live members of ``/nearest`` rendered once per quiet facility equal the full rule.

:func:`api.live.live_members_of` keeps the rendered answer of a facility without a devices'
state or report signals and splices in the confidence at each moment; it must answer exactly
:func:`api.live.live_members` of :func:`api.live.answer_of` for every facility, timetable state
and moment, also after a facility got a door event or a report signal (it is no longer quiet).
"""

from __future__ import annotations

import datetime as dt

from api_support import facility_rows

from api.live import LiveDoors, answer_of, live_members, live_members_of
from api.state import LiveFacilities, Snapshot
from finder.hours import HolidayCalendar, OpenState
from geodata.events import StoredEvent, event_log
from geodata.store import FacilityStore

#: Moments a few seconds, hours and weeks apart: the confidence decays between them.
_START = dt.datetime(2026, 12, 7, 2, 30, 15, tzinfo=dt.UTC)
MOMENTS = [_START + dt.timedelta(seconds=s) for s in (0, 7, 3_600, 9 * 86_400, 61 * 86_400)]


def _assert_same(snapshot: Snapshot, doors: LiveDoors) -> int:
    """Every position, timetable state and moment: the cached and the full rendering agree."""
    compared = 0
    for moment in MOMENTS:
        for position in range(len(snapshot.index)):
            for timetable in OpenState:
                expected = live_members(answer_of(snapshot, position, doors, timetable, moment))
                got = live_members_of(snapshot, position, doors, timetable, moment)
                assert got == expected, (snapshot.facility_id(position), timetable, moment)
                compared += 1
    return compared


def test_quiet_answers_equal_the_full_rule_before_and_after_events(
    store: FacilityStore,
) -> None:
    store.upsert_frame(facility_rows(), actor="test")
    live = LiveFacilities(store, HolidayCalendar.default().with_provisional())
    doors = LiveDoors(event_log(store), reports=store)
    snapshot = live.current()
    assert _assert_same(snapshot, doors) > 100  # every facility quiet, answers cached

    # the same snapshot (its cache filled): one facility gets door events, another a signal
    door_id, reported_id = snapshot.facility_id(0), snapshot.facility_id(1)
    doors.applied(
        [
            StoredEvent(1, door_id, "opened", _START - dt.timedelta(minutes=12)),
            StoredEvent(2, door_id, "locked", _START - dt.timedelta(minutes=3)),
        ]
    )
    for source in ("a", "b"):  # two distinct sources: an active signal
        store.add_report(
            reported_id, "locked_during_hours", note=None, source=source, token_hash="h"
        )
    doors.refresh_signals()
    assert doors.state(door_id) is not None and doors.signals(reported_id)
    _assert_same(snapshot, doors)
    states = {
        live_members_of(snapshot, p, doors, OpenState.OPEN, _START).split(",")[0] for p in (0, 1)
    }
    assert states == {'"live_state":"locked"', '"live_state":"reported_locked"'}
