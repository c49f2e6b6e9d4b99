"""A worker's poller reads past the events the worker stored itself (they were folded in when
stored), and still reads every event another worker stored, also between its own."""

from __future__ import annotations

import datetime as dt
from typing import Any

from api_support import facility_rows

from api.live import LiveDoors
from geodata.events import EventLog, NewEvent, StoredEvent, event_log
from geodata.store import FacilityStore

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
PRUNE = NOW - dt.timedelta(hours=1)


class _CountingLog:
    """The store's event log, counting the events its ``since`` hands out."""

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self.read = 0

    def since(self, seq: int, *, limit: int = 10_000) -> list[StoredEvent]:
        events = self.log.since(seq, limit=limit)
        self.read += len(events)
        return events

    def __getattr__(self, name: str) -> Any:
        return getattr(self.log, name)


def _store(log: EventLog, facility_id: str, type_: str, n: int) -> list[StoredEvent]:
    """Append one event (as a worker's writer does) and return it as stored."""
    event = NewEvent(facility_id, "dev-a", type_, NOW + dt.timedelta(seconds=n), f"dev-a:n:{n}")
    (seq,) = log.append([event], prune_before=PRUNE)
    assert seq is not None
    return [StoredEvent(seq, facility_id, type_, event.at)]


def test_the_poller_skips_its_own_events_and_reads_the_others(store: FacilityStore) -> None:
    store.upsert_frame(facility_rows(), actor="test")
    ids = list(facility_rows()["id"][:2])
    log = event_log(store)
    log.add_device("dev-a", ids[0], "00" * 32)
    counting = _CountingLog(log)
    here = LiveDoors(counting, reports=store)  # type: ignore[arg-type]
    there = LiveDoors(event_log(store), reports=store)  # another worker, same store

    for n in range(3):  # stored by this worker: folded at once, never read back
        here.stored_here(_store(log, ids[0], "entry", n))
    here.poll()
    assert counting.read == 0
    assert here.state(ids[0]) is not None and here.state(ids[0]).door == "opened"

    # another worker's event between two of this worker's: read, and the later own one too
    here.stored_here(_store(log, ids[0], "opened", 3))
    other = _store(log, ids[1], "locked", 4)
    there.applied(other)
    here.stored_here(_store(log, ids[0], "occupied", 5))
    here.poll()
    assert counting.read == 2  # the other worker's event, then the own one after it
    assert here.state(ids[1]) is not None and here.state(ids[1]).door == "locked"
    here.poll()
    assert counting.read == 2  # nothing new
    assert here.state(ids[0]) is not None and here.state(ids[0]).occupancy == "occupied"
