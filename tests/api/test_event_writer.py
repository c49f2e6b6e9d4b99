"""The event writer's own thread: concurrent writers each get their event's seq once it is
stored, replays get ``None``, the stored events are folded in before the answer,
what was given before the service stops is still written, and afterwards writes are refused."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from api_support import facility_rows

from api.live import EventWriter
from geodata.errors import StoreUnavailable
from geodata.events import NewEvent, StoredEvent, event_log
from geodata.store import FacilityStore

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
BOUND_S = 30  # a write left unanswered fails the test instead of hanging it


def _writer(store: FacilityStore) -> tuple[EventWriter, list[str], list[list[StoredEvent]]]:
    store.upsert_frame(facility_rows(), actor="test")
    ids = list(facility_rows()["id"][:3])
    log = event_log(store)
    for facility_id in ids:
        log.add_device(f"dev-{facility_id}", facility_id, "00" * 32)
    folded: list[list[StoredEvent]] = []
    writer = EventWriter(
        log, replay_window_s=300, per_device_per_s=1, per_device_burst=1, on_stored=folded.append
    )
    return writer, ids, folded


def _event(facility_id: str, n: int) -> NewEvent:
    at = NOW + dt.timedelta(milliseconds=n)
    return NewEvent(facility_id, f"dev-{facility_id}", "entry", at, f"k{n}")


def test_concurrent_writes_get_their_seqs_and_replays_none(store: FacilityStore) -> None:
    writer, ids, folded = _writer(store)
    events = [_event(ids[n % len(ids)], n) for n in range(300)]

    async def write_all() -> list[int | None]:
        # every event twice, at once: one of each pair is stored, the other is a replay
        writes = asyncio.gather(*(writer.write(e) for e in events + events))
        return await asyncio.wait_for(writes, BOUND_S)

    with writer.writing():
        seqs = asyncio.run(write_all())
    first, again = seqs[: len(events)], seqs[len(events) :]
    stored = {e.seq: e for e in writer.log.since(0)}
    assert len(stored) == len(events)
    for event, a, b in zip(events, first, again, strict=True):
        (seq,) = {a, b} - {None}  # exactly one of the two has a seq
        assert (stored[seq].facility_id, stored[seq].at) == (event.facility_id, event.at)
    assert sorted(e.seq for batch in folded for e in batch) == sorted(stored)


def test_what_was_given_before_stopping_is_written_then_writes_are_refused(
    store: FacilityStore,
) -> None:
    writer, ids, _ = _writer(store)

    async def write_then_stop() -> list[int | None]:
        loop = asyncio.get_running_loop()
        with writer.writing():
            pending = [loop.create_task(writer.write(_event(ids[0], n))) for n in range(50)]
            await asyncio.sleep(0)  # every task has given its event
        return await asyncio.wait_for(asyncio.gather(*pending), BOUND_S)

    seqs = asyncio.run(write_then_stop())
    assert None not in seqs and len(writer.log.since(0)) == 50

    async def write_after() -> int | None:
        return await asyncio.wait_for(writer.write(_event(ids[0], 99)), BOUND_S)

    with pytest.raises(StoreUnavailable):
        asyncio.run(write_after())
