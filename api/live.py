"""Live door and sensor state in every worker, the batched event writer, the honest answer.

:class:`LiveDoors` holds the :class:`~finder.truth.DoorState` of every facility with devices
and the devices' signing keys, kept fresh the way :class:`api.state.LiveFacilities` keeps the
facilities: a poller thread reads the events appended since the last one it saw
(:meth:`geodata.events.EventLog.since`, every ``poll_s``, at most 0.25 s), so an event posted to
any worker shows in every worker's answers well within a second. Signing keys are re-read every
second: a device added or revoked with ``finder devices`` counts in every worker within a second.
Events accepted by this worker are folded in at once. Server-sent-event streams wait on
:meth:`LiveDoors.changes` for the facilities whose state changed.

:class:`LiveDoors` also holds the active report signals of every facility
(:func:`finder.reports.active_signals` of the reports of the rule's window, kept in memory):
every :data:`SIGNALS_EVERY_S` the poller reads the store's reports change counter
(:meth:`geodata.store.FacilityStore.report_counter`, one small query) and reads the window's
reports again only when it moved (so a report or a staff decision made through any worker counts
in every worker within about a second); when a report it holds leaves the window
(:func:`finder.reports.counted_until`) it works the signals out again from the reports it holds,
so a signal whose window ended goes out without asking the store. A report or
a staff confirm or dismiss through this worker reads them at once
(:meth:`LiveDoors.refresh_signals`). Requests read only this copy, never the store: when the
store is down they are answered from the last signals read. A change of a facility's signals is
a change of its live state like an event's (``/live`` pushes it).

:class:`EventWriter` appends events to the store in batches, on a thread of its own: every
request waits until the transaction holding its event committed (durable before the 200), and
the requests that arrive while one batch is written go together in the next (group commit).

:func:`live_members` renders the honest answer (:func:`finder.truth.live_answer`) of one
facility as the JSON members that ``/nearest`` and ``/live`` share.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from api.ratelimit import SourceLimiter
from api.state import Snapshot
from finder.hours import LOCAL_TIMEZONE, OpenState
from finder.reports import REPORT_WINDOW, active_signals, counted_until
from finder.truth import (
    DoorState,
    LiveAnswer,
    ReportSignal,
    age_minutes,
    confidence_after,
    confidence_label,
    live_answer,
    reported_locked,
)
from geodata.errors import StoreUnavailable
from geodata.events import EventLog, NewEvent, StoredEvent
from geodata.schema import Report

logger = logging.getLogger(__name__)
_ZONE = ZoneInfo(LOCAL_TIMEZONE)

#: Longest interval between two looks for new events, seconds.
MAX_POLL_S = 0.25
#: Interval between two reads of the devices' signing keys, seconds.
KEYS_EVERY_S = 1.0
#: Interval between two looks at the reports change counter, seconds.
SIGNALS_EVERY_S = 1.0


class ReportSource(Protocol):
    """What :class:`LiveDoors` reads of the store's reports (a
    :class:`~geodata.store.FacilityStore` is one)."""

    def report_counter(self) -> int: ...

    def reports(
        self, *, since: dt.datetime | None = None, limit: int | None = 1000
    ) -> list[Report]: ...


#: Most events one transaction of :class:`EventWriter` appends.
MAX_BATCH = 2_000
#: Devices whose allowance is kept at once (24 bytes each in the shared bucket file).
MAX_DEVICES_THROTTLED = 100_000


class LiveDoors:
    """The live state of the facilities' devices in this worker.

    Parameters
    ----------
    log
        The store's event log.
    reports
        The store's reports (``None``: no reports).
    poll_s
        Interval between two looks for events appended by other workers, seconds (at most
        :data:`MAX_POLL_S`).
    clock
        The time now, aware (tests pass their own).
    """

    def __init__(
        self,
        log: EventLog,
        *,
        reports: ReportSource | None = None,
        poll_s: float = 0.1,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.log = log
        self.reports = reports
        self.clock = clock
        self.poll_s = min(max(poll_s, 0.02), MAX_POLL_S)
        self._lock = threading.Lock()
        self._states: dict[str, DoorState] = {}
        self._seq = 0
        self._own: set[int] = set()  # seqs of events stored here that the poller has not passed
        self._version = 0
        self._changed: deque[tuple[int, str]] = deque(maxlen=50_000)
        self._keys: dict[str, list[tuple[str, bytes]]] = {}
        self._keys_at = 0.0
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self._failing = False
        self._locked: tuple[tuple[int, dt.date], frozenset[str]] | None = None
        self._signals: dict[str, tuple[ReportSignal, ...]] = {}
        self._signals_at = 0.0
        self._window_reports: list[Report] = []
        self._report_counter: int | None = None
        self._signals_until: dt.datetime | None = None
        self._reading_signals = threading.Lock()
        try:
            for event in log.latest():
                self._fold(event.facility_id, event.type, event.at)
                self._seq = max(self._seq, event.seq)
            self._read_keys()
            self._read_signals()
        except Exception:  # the facilities are served all the same; the poller tries again
            logger.error("reading door events failed", exc_info=True)
            self._failing = True

    # -- state -----------------------------------------------------------------------------------
    def state(self, facility_id: str) -> DoorState | None:
        """The live state of a facility's devices (``None`` when it has sent no event)."""
        return self._states.get(facility_id)

    def signals(self, facility_id: str) -> tuple[ReportSignal, ...]:
        """The active report signals of a facility (empty without any)."""
        return self._signals.get(facility_id, ())

    def known(self) -> list[str]:
        """The facilities that have a live state or an active report signal."""
        return list(dict.fromkeys([*self._states, *self._signals]))

    def signing_keys(self, facility_id: str) -> list[tuple[str, bytes]]:
        """``(device_id, HMAC key)`` of each device of the facility that is not revoked."""
        return self._keys.get(facility_id, [])

    def not_open(self, now: dt.datetime) -> frozenset[str]:
        """Facilities that ``open_now`` leaves out whatever their hours say: the door was locked
        today and has not opened since (:meth:`finder.truth.DoorState.locked_today`), or they
        are reported locked (:func:`finder.truth.reported_locked`)."""
        key = (self._version, now.astimezone(_ZONE).date())
        memo = self._locked
        if memo is None or memo[0] != key:
            states, signals = dict(self._states), dict(self._signals)
            locked = {fid for fid, s in states.items() if s.locked_today(now)}
            locked.update(
                fid for fid, found in signals.items() if reported_locked(found, states.get(fid))
            )
            memo = (key, frozenset(locked))
            self._locked = memo
        return memo[1]

    @property
    def version(self) -> int:
        """Grows with every change of a facility's live state in this worker."""
        return self._version

    def changed_since(self, version: int) -> list[str] | None:
        """Facilities whose state changed after ``version`` (``None``: too long ago to tell)."""
        with self._lock:
            if self._changed and self._changed[0][0] > version + 1 and version < self._version:
                return None
            return list(dict.fromkeys(fid for v, fid in self._changed if v > version))

    def _fold(self, facility_id: str, type_: str, at: dt.datetime) -> bool:
        before = self._states.get(facility_id, DoorState())
        after = before.with_event(type_, at)
        if after == before:
            return False
        self._states[facility_id] = after
        self._changed_one(facility_id)
        return True

    def _changed_one(self, facility_id: str) -> None:
        self._version += 1
        self._changed.append((self._version, facility_id))

    def applied(self, events: list[StoredEvent]) -> None:
        """Fold in events (accepted by this worker, or read from the store) and wake the
        streams when a state changed."""
        with self._lock:
            changed = [self._fold(e.facility_id, e.type, e.at) for e in events]
        if any(changed):
            self._wake()

    def stored_here(self, events: list[StoredEvent]) -> None:
        """Fold in events this worker just stored (:class:`EventWriter`'s ``on_stored``); the
        poller then reads past them instead of reading and folding them again: a worker under
        a device flood would otherwise read back every event it wrote."""
        self.applied(events)
        with self._lock:
            self._own.update(e.seq for e in events)

    def _past_own(self) -> None:
        """Move the poller's place past the events stored here that directly follow it (only
        those: an event of another worker between them is still read)."""
        with self._lock:
            own = self._own
            while self._seq + 1 in own:
                self._seq += 1
                own.discard(self._seq)

    # -- following the store ---------------------------------------------------------------------
    def _read_keys(self) -> None:
        self._keys = {
            fid: [(device_id, bytes.fromhex(key)) for device_id, key in devices]
            for fid, devices in self.log.signing_keys().items()
        }
        self._keys_at = time.monotonic()

    def _read_signals(self) -> None:
        """Read the window's reports again if the reports change counter moved since the last
        read; work the signals out of the reports held after a read, or once one of them started
        or stopped counting (:func:`finder.reports.counted_until`)."""
        self._signals_at = time.monotonic()
        if self.reports is None:
            return
        # one read at a time: a poller's read that began before a report must not replace the
        # signals read after it
        with self._reading_signals:
            counter = self.reports.report_counter()  # before the reports: a change between
            now = self.clock()  # the two reads is read again next time
            if counter != self._report_counter:
                self._window_reports = self.reports.reports(since=now - REPORT_WINDOW, limit=None)
                self._report_counter = counter
            elif self._signals_until is None or now < self._signals_until:
                return  # nothing changed, and no report left the window
            self._install_signals(active_signals(self._window_reports, now))
            self._signals_until = counted_until(self._window_reports, now)

    def _install_signals(self, signals: dict[str, tuple[ReportSignal, ...]]) -> None:
        with self._lock:
            changed = [
                fid
                for fid in dict.fromkeys([*self._signals, *signals])
                if self._signals.get(fid) != signals.get(fid)
            ]
            self._signals = signals
            for fid in changed:
                self._changed_one(fid)
        if changed:
            self._wake()

    def refresh_signals(self) -> None:
        """Read the active report signals now (after a report or a staff decision through this
        worker); when the store fails, the poller reads them again later."""
        try:
            self._read_signals()
        except Exception:
            logger.warning("reading report signals failed", exc_info=True)

    def poll(self) -> None:
        """Read the events appended since the last look (and the keys and report signals, once
        a second)."""
        try:
            while True:
                self._past_own()
                events = self.log.since(self._seq)
                if not events:
                    break
                self._seq = events[-1].seq
                self.applied(events)
            with self._lock:  # read past (with another worker's events): folded twice, no harm
                self._own = {seq for seq in self._own if seq > self._seq}
            if time.monotonic() - self._keys_at >= KEYS_EVERY_S:
                self._read_keys()
            if time.monotonic() - self._signals_at >= SIGNALS_EVERY_S:
                self._read_signals()
        except Exception:
            if not self._failing:
                logger.error("reading door events failed", exc_info=True)
            self._failing = True
            return
        if self._failing:
            logger.warning("reading door events works again")
        self._failing = False

    @contextmanager
    def polling(self) -> Iterator[None]:
        """Run the poller thread while the block runs (the service's lifetime)."""
        stop = threading.Event()

        def poll_until_stopped() -> None:
            while not stop.wait(self.poll_s):
                self.poll()

        thread = threading.Thread(target=poll_until_stopped, daemon=True, name="door-poller")
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5.0)

    # -- waking the streams ----------------------------------------------------------------------
    def _wake(self) -> None:
        with self._lock:
            waiters, self._waiters = self._waiters, []
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # the loop closed
                loop.call_soon_threadsafe(event.set)

    async def changes(self, version: int, timeout_s: float) -> bool:
        """Wait until the state version passes ``version`` (True) or ``timeout_s`` (False)."""
        event = asyncio.Event()
        with self._lock:
            if self._version > version:
                return True
            self._waiters.append((asyncio.get_running_loop(), event))
        try:
            await asyncio.wait_for(event.wait(), timeout_s)
        except TimeoutError:
            with self._lock:
                if (asyncio.get_running_loop(), event) in self._waiters:
                    self._waiters.remove((asyncio.get_running_loop(), event))
            return self._version > version
        return True


class EventWriter:
    """Appends events to the store in batches; see the module docstring.

    Parameters
    ----------
    log
        The store's event log.
    replay_window_s
        Events older than this are refused anyway, so their replay keys are pruned.
    per_device_per_s, per_device_burst
        Each device's allowance (:meth:`admit`).
    throttle
        The devices' bucket file shared by the workers (:func:`api.ratelimit.throttle_file`);
        ``None``: this worker's memory.
    on_stored
        Called with the events of each committed batch (not the replays) before their writers
        are answered: :meth:`LiveDoors.applied` folds them into this worker's live state.
    """

    def __init__(
        self,
        log: EventLog,
        *,
        replay_window_s: float,
        per_device_per_s: float,
        per_device_burst: int,
        throttle: Path | None = None,
        on_stored: Callable[[list[StoredEvent]], None] | None = None,
    ) -> None:
        self.log = log
        self.on_stored = on_stored
        self.replay_window_s = replay_window_s
        self.limiter = SourceLimiter(
            per_device_per_s * 3600,
            burst=per_device_burst,
            max_sources=MAX_DEVICES_THROTTLED,
            path=throttle,
        )
        self._pending: list[tuple[NewEvent, asyncio.Future[int | None]]] = []
        self._ready = threading.Condition()  # guards _pending and _stopping
        self._stopping = False

    def admit(self, device_id: str) -> int | None:
        """Take one event from the device's allowance (a token bucket: ``per_device_burst``
        events, refilled at ``per_device_per_s``, shared by the workers that map the same
        ``throttle`` file); ``None`` when admitted, else the seconds to wait. Each device has
        its own bucket, so one device's flood costs others nothing."""
        wait_s = self.limiter.take(device_id)
        return None if wait_s == 0.0 else max(1, math.ceil(wait_s))

    async def write(self, event: NewEvent) -> int | None:
        """Append one event; its ``seq`` once committed, or ``None`` for a replay. Only while
        :meth:`writing`."""
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        with self._ready:
            if self._stopping:
                raise StoreUnavailable("the service is stopping: no event is stored now")
            self._pending.append((event, future))
            self._ready.notify()  # nothing to do unless the writer thread waits
        return await future

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Run the writer thread while the block runs (the service's lifetime); at its end,
        the events already given are written and the thread stops.

        The thread takes the events pending as soon as it finished the last batch, and hands
        each batch's outcome to the event loop in one call: a batch does not wait for the
        loop to take the outcome of the one before (half of the time, when the loop did that).
        """
        thread = threading.Thread(target=self._write_batches, daemon=True, name="event-writer")
        thread.start()
        try:
            yield
        finally:
            with self._ready:
                self._stopping = True
                self._ready.notify()
            thread.join()  # every store call is bounded by the store's own timeouts

    def _write_batches(self) -> None:
        while True:
            with self._ready:
                while not self._pending and not self._stopping:
                    self._ready.wait()
                if not self._pending:
                    return
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            prune = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2 * self.replay_window_s)
            try:
                outcome: list[int | None] | Exception = self.log.append(
                    [e for e, _ in batch], prune_before=prune
                )
            except Exception as exc:  # each writer gets it (a store error: 503)
                outcome = exc
            loop = batch[0][1].get_loop()
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits
                loop.call_soon_threadsafe(self._answer, batch, outcome)

    def _answer(
        self,
        batch: list[tuple[NewEvent, asyncio.Future[int | None]]],
        outcome: list[int | None] | Exception,
    ) -> None:
        """On the event loop: fold the stored events in (``on_stored``), then answer."""
        if isinstance(outcome, Exception):
            for _, future in batch:
                if not future.done():
                    future.set_exception(outcome)
            return
        if self.on_stored is not None:
            stored = [
                StoredEvent(seq, e.facility_id, e.type, e.at)
                for (e, _), seq in zip(batch, outcome, strict=True)
                if seq is not None
            ]
            try:
                if stored:
                    self.on_stored(stored)
            except Exception:  # stored all the same: the writers get their answer
                logger.exception("folding %d stored events in failed", len(stored))
        for (_, future), seq in zip(batch, outcome, strict=True):
            if not future.done():
                future.set_result(seq)


def answer_of(
    snapshot: Snapshot,
    position: int,
    doors: LiveDoors,
    timetable: OpenState,
    now: dt.datetime,
) -> LiveAnswer:
    """The honest answer of the facility at a snapshot position: its timetable state, door
    state and active report signals."""
    record_id = snapshot.facility_id(position)
    return _answer(
        snapshot, position, timetable, now, doors.state(record_id), doors.signals(record_id)
    )


def _answer(
    snapshot: Snapshot,
    position: int,
    timetable: OpenState,
    now: dt.datetime,
    door: DoorState | None,
    reports: tuple[ReportSignal, ...],
) -> LiveAnswer:
    columns = snapshot.index.columns
    verified = columns.extra_value("verified_at", position)
    staff_visit = dt.date.fromisoformat(str(verified)[:10]) if verified else None
    return live_answer(
        timetable,
        now=now,
        kind=columns.kind(position),
        door=door,
        reports=reports,
        staff_visit=staff_visit,
    )


#: Key in a snapshot's ``memo`` of the rendered answers of quiet facilities.
_QUIET = "live-quiet-members"
#: Most (facility, timetable state) answers of quiet facilities a snapshot keeps rendered.
QUIET_CACHE_SIZE = 100_000


def live_members_of(
    snapshot: Snapshot,
    position: int,
    doors: LiveDoors,
    timetable: OpenState,
    now: dt.datetime,
) -> str:
    """``live_members(answer_of(snapshot, position, doors, timetable, now))``, rendered once
    per snapshot for a quiet facility.

    A facility without a devices' state and without active report signals (most of them) has
    the same answer at every moment for the same timetable state, but for its confidence,
    which decays with the time since the staff visit (:func:`finder.truth.confidence_at`).
    Its members are rendered on first use and kept in the snapshot's ``memo`` (at most
    :data:`QUIET_CACHE_SIZE`); the confidence and its label are spliced in, again when the
    whole minutes since the visit (what the confidence rests on) are not those last spliced.
    """
    record_id = snapshot.facility_id(position)
    door, reports = doors.state(record_id), doors.signals(record_id)
    if door is not None or reports:
        return live_members(_answer(snapshot, position, timetable, now, door, reports))
    cache: dict[tuple[int, OpenState], _Quiet] = snapshot.memo.setdefault(_QUIET, {})
    key = (position, timetable)
    rendered = cache.get(key)
    if rendered is None:
        answer = _answer(snapshot, position, timetable, now, None, ())
        fields = live_fields(answer)
        names = list(fields)
        before, after = names.index("confidence"), names.index("confidence_label") + 1
        rendered = _Quiet(
            answer.verified_at and answer.verified_at.astimezone(dt.UTC),  # cheaper to subtract
            _members({n: fields[n] for n in names[:before]}),
            _members({n: fields[n] for n in names[after:]}),
        )
        if len(cache) >= QUIET_CACHE_SIZE:
            cache.clear()
        cache[key] = rendered
    return rendered.at(now)


class _Quiet:
    """The rendered members of a quiet facility around its confidence (:func:`live_members_of`),
    and the last members spliced, by the whole minutes since its verification."""

    __slots__ = ("head", "last", "tail", "verified_at")

    def __init__(self, verified_at: dt.datetime | None, head: str, tail: str) -> None:
        self.verified_at, self.head, self.tail = verified_at, head, tail
        self.last: tuple[int, str] = (-1, "")

    def at(self, now: dt.datetime) -> str:
        """The members at ``now``."""
        minutes = 0 if self.verified_at is None else age_minutes(self.verified_at, now)
        last = self.last  # one read: another thread may replace it
        if last[0] == minutes:
            return last[1]
        confidence = 0.0 if self.verified_at is None else confidence_after(minutes)
        # float.__repr__ is how json writes a float
        members = (
            f'{self.head},"confidence":{confidence!r},'
            f'"confidence_label":"{confidence_label(confidence)}",{self.tail}'
        )
        self.last = (minutes, members)
        return members


def live_fields(answer: LiveAnswer) -> dict[str, Any]:
    """The answer's fields as ``/nearest`` and ``/live`` show them."""
    return {
        "live_state": answer.state.value,
        "live_source": answer.source,
        "live_since": answer.since.isoformat(timespec="seconds") if answer.since else None,
        "live_detail": answer.detail,
        "occupied": answer.occupied,
        "last_verified_at": (
            answer.verified_at.isoformat(timespec="seconds") if answer.verified_at else None
        ),
        "last_verified_by": answer.verified_by.value if answer.verified_by else None,
        "confidence": answer.confidence,
        "confidence_label": answer.confidence_label,
        "reported_by": answer.report.count if answer.report else None,
        "report_confirmed_by_staff": bool(answer.report and answer.report.confirmed_at),
    }


def live_members(answer: LiveAnswer) -> str:
    """:func:`live_fields` as JSON object members (no braces), to splice into an answer."""
    return _members(live_fields(answer))


def _members(fields: dict[str, Any]) -> str:
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))[1:-1]
