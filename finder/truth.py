"""One honest answer to "is it open now?": the timetable, the door, the sensor and the reports.

:func:`live_answer` combines

* the timetable's state now (:func:`finder.hours.state_and_source`),
* the live state of the facility's devices (:class:`DoorState`, folded from door and sensor
  events with :meth:`DoorState.with_event`),
* what users reported (:class:`ReportSignal`, one per kind of report),
* the last verification: a staff visit (the facility's ``verified_at``), door activity or a
  user confirmation, whichever is newest,

into a :class:`LiveAnswer`: a state (:class:`LiveState`), the source it rests on, when that
evidence happened, and a confidence that decays with the time since the last verification. The
rules, in order (``docs/live.md`` explains them to users):

1. **Reported locked**: a report signal of a kind in :data:`LOCKED_REPORT_KINDS` is active, and
   the door has not opened since the last report or the staff confirmation
   (:func:`reported_locked`). Whether a signal is active is the rule of :mod:`finder.reports`
   alone (two distinct sources within 24 hours, or one report confirmed by staff: staff are
   trusted); this module takes the active signals as they are and never counts again.
2. **Locked**: the door's last open/lock event is ``locked``, it happened today (China time),
   and the timetable does not say closed. A lock from an earlier day is the routine lock after
   closing and does not count. A timetable that says closed stays **closed**.
3. **Closed**: the timetable says closed.
4. **Occupied**: a mother room whose occupancy sensor said ``occupied`` within
   :data:`OCCUPIED_HOLD` and not ``vacant`` since. Occupied is open (the room is usable once
   free): ``open_now`` keeps it.
5. **Open**: the timetable says open, or the hours are unknown but the door opened (or someone
   entered) today.
6. **Unknown** otherwise.

Confidence: ``0.5 ** (age_days / CONFIDENCE_HALF_LIFE_DAYS)`` where ``age_days`` is the time
since the last verification in whole minutes (:func:`age_minutes`; 0 without a verification), so
that it changes at most once a minute; labelled ``high`` from 0.7 (about two weeks),
``medium`` from 0.3 (about seven weeks), else ``low``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import NamedTuple
from zoneinfo import ZoneInfo

from finder.hours import LOCAL_TIMEZONE, OpenState

#: Report kinds that say the facility cannot be entered.
LOCKED_REPORT_KINDS = frozenset({"locked_during_hours", "closed_for_good"})
#: The report kind of a user confirming the facility is as described (a verification).
CONFIRMATION_KIND = "confirmed"
#: An ``occupied`` reading older than this is not believed (a sensor that stopped reporting).
OCCUPIED_HOLD = dt.timedelta(hours=2)
CONFIDENCE_HALF_LIFE_DAYS = 30.0
_HALF_LIFE_MINUTES = CONFIDENCE_HALF_LIFE_DAYS * 1440
_MINUTE = dt.timedelta(minutes=1)
_ZONE = ZoneInfo(LOCAL_TIMEZONE)


class LiveState(StrEnum):
    """The honest state of a facility now."""

    OPEN = "open"
    CLOSED = "closed"
    UNKNOWN = "unknown"
    LOCKED = "locked"
    OCCUPIED = "occupied"
    REPORTED_LOCKED = "reported_locked"


class VerifiedBy(StrEnum):
    """What the last verification of a facility was."""

    STAFF_VISIT = "staff_visit"
    DOOR_ACTIVITY = "door_activity"
    USER_CONFIRMATION = "user_confirmation"


@dataclass(frozen=True)
class ReportSignal:
    """An active signal of one report kind about one facility: from how many distinct sources,
    the first and last counted report, and when staff confirmed one (``None``: not confirmed;
    times aware)."""

    kind: str
    count: int
    first_at: dt.datetime
    last_at: dt.datetime
    confirmed_at: dt.datetime | None = None

    @property
    def evidence_at(self) -> dt.datetime:
        """The newest evidence of the signal: its last report or the staff confirmation."""
        if self.confirmed_at is None:
            return self.last_at
        return max(self.last_at, self.confirmed_at)


class DoorState(NamedTuple):
    """The last door and occupancy readings of a facility's devices (times aware UTC).

    ``door`` is ``"opened"`` or ``"locked"`` (an ``entry`` counts as opened); ``occupancy`` is
    ``"occupied"`` or ``"vacant"``; ``activity_at`` is the newest event of any type. A named
    tuple: immutable, and a new state per event costs a third of a frozen dataclass's.
    """

    door: str | None = None
    door_at: dt.datetime | None = None
    occupancy: str | None = None
    occupancy_at: dt.datetime | None = None
    activity_at: dt.datetime | None = None

    def with_event(self, type_: str, at: dt.datetime) -> DoorState:
        """This state after an event (in any order: an older event than the one held changes
        nothing, so folding the same events twice gives the same state)."""
        door, door_at = self.door, self.door_at
        occupancy, occupancy_at = self.occupancy, self.occupancy_at
        activity_at = at if self.activity_at is None or at > self.activity_at else self.activity_at
        door_newer = door_at is None or at > door_at
        if type_ in ("opened", "locked") and (door_newer or at == door_at):
            door, door_at = type_, at
        elif type_ == "entry" and door_newer:  # someone came in: the door was open
            door, door_at = "opened", at
        elif type_ in ("occupied", "vacant") and (occupancy_at is None or at >= occupancy_at):
            occupancy, occupancy_at = type_, at
        # one constructor call, not a replace per change (on every event's path)
        return DoorState(door, door_at, occupancy, occupancy_at, activity_at)

    def locked_today(self, now: dt.datetime) -> bool:
        """Whether the door was locked today (China time) and has not opened since."""
        return self.door == "locked" and self.door_at is not None and _today(self.door_at, now)

    def opened_today(self, now: dt.datetime) -> bool:
        """Whether the door last opened (or someone entered) today (China time)."""
        return self.door == "opened" and self.door_at is not None and _today(self.door_at, now)


@dataclass(frozen=True)
class LiveAnswer:
    """The answer of :func:`live_answer`.

    ``source`` is what the state rests on (``timetable``, ``door``, ``sensor``, ``reports``);
    ``since`` when that evidence happened (``None`` for the timetable); ``detail`` one line
    in English, e.g. ``"open: timetable, door opened 12 minutes ago"``; ``occupied`` is the
    sensor's reading (``None`` without a recent one); ``confidence`` in 0..1; ``report`` the
    signal a ``reported_locked`` state rests on (``None`` for any other state).
    """

    state: LiveState
    source: str
    since: dt.datetime | None
    detail: str
    occupied: bool | None
    verified_at: dt.datetime | None
    verified_by: VerifiedBy | None
    confidence: float
    report: ReportSignal | None = None

    @property
    def confidence_label(self) -> str:
        """``high``, ``medium`` or ``low`` (:func:`confidence_label`)."""
        return confidence_label(self.confidence)


def age_minutes(verified_at: dt.datetime, now: dt.datetime) -> int:
    """Whole minutes from ``verified_at`` to ``now`` (both aware; 0 when ``now`` is earlier)."""
    return max(0, (now - verified_at) // _MINUTE)


def confidence_at(verified_at: dt.datetime | None, now: dt.datetime) -> float:
    """The confidence, 0..1 rounded to 3 decimals, of a facility last verified at
    ``verified_at`` (``None``: never, confidence 0), seen at ``now`` (both aware)."""
    if verified_at is None:
        return 0.0
    return confidence_after(age_minutes(verified_at, now))


def confidence_after(minutes: int) -> float:
    """The confidence, 0..1 rounded to 3 decimals, ``minutes`` after the last verification."""
    decayed: float = 0.5 ** (minutes / _HALF_LIFE_MINUTES)
    return round(decayed, 3)


def confidence_label(confidence: float) -> str:
    """``high`` from 0.7, ``medium`` from 0.3, else ``low`` (see the module docstring)."""
    if confidence >= 0.7:
        return "high"
    return "medium" if confidence >= 0.3 else "low"


def ago(moment: dt.datetime, now: dt.datetime) -> str:
    """How long ago, in words: ``"just now"``, ``"12 minutes ago"``, ``"3 hours ago"``."""
    seconds = max(0.0, (now - moment).total_seconds())
    if seconds < 60:
        return "just now"
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


def _today(moment: dt.datetime, now: dt.datetime) -> bool:
    return moment.astimezone(_ZONE).date() == now.astimezone(_ZONE).date()


def _verification(
    staff_visit: dt.date | None, door: DoorState | None, reports: dict[str, ReportSignal]
) -> tuple[dt.datetime | None, VerifiedBy | None]:
    found: list[tuple[dt.datetime, VerifiedBy]] = []
    if staff_visit is not None:
        found.append((dt.datetime.combine(staff_visit, dt.time(), _ZONE), VerifiedBy.STAFF_VISIT))
    if door is not None and door.activity_at is not None:
        found.append((door.activity_at, VerifiedBy.DOOR_ACTIVITY))
    confirmed = reports.get(CONFIRMATION_KIND)
    if confirmed is not None and confirmed.count > 0:
        found.append((confirmed.last_at, VerifiedBy.USER_CONFIRMATION))
    if not found:
        return None, None
    return max(found, key=lambda f: f[0])


def reported_locked(
    reports: tuple[ReportSignal, ...], door: DoorState | None
) -> ReportSignal | None:
    """The active signal that makes a facility "reported locked", or ``None``.

    A signal of a kind in :data:`LOCKED_REPORT_KINDS` counts unless the door opened (or someone
    entered) after its newest evidence (:attr:`ReportSignal.evidence_at`); of several, the one
    with the newest last report.
    """
    opened_at = door.door_at if door is not None and door.door == "opened" else None
    found = [
        r
        for r in reports
        if r.kind in LOCKED_REPORT_KINDS and (opened_at is None or opened_at <= r.evidence_at)
    ]
    return max(found, key=lambda r: r.last_at) if found else None


def live_answer(
    timetable: OpenState,
    *,
    now: dt.datetime,
    kind: str,
    door: DoorState | None = None,
    reports: tuple[ReportSignal, ...] = (),
    staff_visit: dt.date | None = None,
) -> LiveAnswer:
    """The honest state of one facility now (rules in the module docstring).

    Parameters
    ----------
    timetable
        The state its opening hours give now.
    now
        The moment (timezone-aware).
    kind
        The facility kind; occupancy counts for ``mother_room`` only.
    door
        Its devices' live state, ``None`` without devices or events.
    reports
        The facility's active report signals (:func:`finder.reports.active_signals`), at
        most one per kind.
    staff_visit
        The day staff last verified it (the facility's ``verified_at``).

    Example
    -------
    >>> now = dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC)
    >>> door = DoorState().with_event("opened", now - dt.timedelta(minutes=12))
    >>> live_answer(OpenState.OPEN, now=now, kind="worker_station", door=door).detail
    'open: timetable, door opened 12 minutes ago'
    """
    by_kind = {r.kind: r for r in reports}
    verified_at, verified_by = _verification(staff_visit, door, by_kind)
    confidence = confidence_at(verified_at, now)
    occupied: bool | None = None
    if (
        kind == "mother_room"
        and door is not None
        and door.occupancy_at is not None
        and (door.occupancy == "vacant" or now - door.occupancy_at <= OCCUPIED_HOLD)
    ):
        occupied = door.occupancy == "occupied"

    def answer(state: LiveState, source: str, since: dt.datetime | None, detail: str) -> LiveAnswer:
        return LiveAnswer(
            state, source, since, detail, occupied, verified_at, verified_by, confidence
        )

    door_at = door.door_at if door is not None else None
    signal = reported_locked(reports, door)
    if signal is not None:
        users = f"{signal.count} user{'s' if signal.count != 1 else ''}"
        staff = ", confirmed by staff" if signal.confirmed_at is not None else ""
        return replace(
            answer(
                LiveState.REPORTED_LOCKED,
                "reports",
                signal.last_at,
                f"reported locked {ago(signal.last_at, now)} by {users}{staff}",
            ),
            report=signal,
        )
    door_line = ""
    if door is not None and door.door is not None and door_at is not None:
        door_line = f"door {door.door} {ago(door_at, now)}"
    if door is not None and door.locked_today(now) and timetable != OpenState.CLOSED:
        return answer(LiveState.LOCKED, "door", door_at, f"locked: {door_line}")
    if timetable == OpenState.CLOSED:
        return answer(LiveState.CLOSED, "timetable", None, _joined("closed: timetable", door_line))
    sensor_at = door.occupancy_at if door is not None and occupied is not None else None
    if occupied and sensor_at is not None:
        return answer(
            LiveState.OCCUPIED, "sensor", sensor_at, f"occupied: sensor {ago(sensor_at, now)}"
        )
    vacant_line = f"vacant {ago(sensor_at, now)}" if sensor_at is not None else ""
    if timetable == OpenState.OPEN:
        return answer(
            LiveState.OPEN, "timetable", None, _joined("open: timetable", door_line, vacant_line)
        )
    if door is not None and door.opened_today(now):
        return answer(LiveState.OPEN, "door", door_at, _joined("open: " + door_line, vacant_line))
    return answer(LiveState.UNKNOWN, "timetable", None, "unknown: no opening hours")


def _joined(*parts: str) -> str:
    first, *rest = [p for p in parts if p]
    return ", ".join([first, *rest])
