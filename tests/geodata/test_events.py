"""The event log of both stores: devices, appends with replay refusal, following by ``seq``."""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from disks import read_only, tmpfs

from geodata.errors import FacilityNotFound, NotFound
from geodata.events import EVENT_TYPES, NewEvent, StoredEvent, event_log
from geodata.sample import sample_frame
from geodata.store import FacilityStore, GeoPackageStore

KEY = "ab" * 32
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def _filled(store: FacilityStore) -> list[str]:
    frame = sample_frame(3)
    store.upsert_frame(frame, actor="test")
    return frame["id"].tolist()


def test_devices_are_added_listed_and_revoked(store: FacilityStore) -> None:
    ids = _filled(store)
    log = event_log(store)
    log.add_device("dev-a", ids[0], KEY)
    log.add_device("dev-b", ids[1], KEY)
    with pytest.raises(FacilityNotFound):
        log.add_device("dev-c", "no-such-facility", KEY)
    assert [d.device_id for d in log.devices()] == ["dev-a", "dev-b"]
    assert [d.device_id for d in log.devices(ids[1])] == ["dev-b"]
    assert log.signing_keys() == {ids[0]: [("dev-a", KEY)], ids[1]: [("dev-b", KEY)]}
    revoked = log.revoke_device("dev-a")
    assert revoked.revoked_at is not None
    assert log.signing_keys() == {ids[1]: [("dev-b", KEY)]}
    with pytest.raises(NotFound):
        log.revoke_device("dev-x")


def test_append_refuses_replays_and_keeps_the_facilities_counter(store: FacilityStore) -> None:
    ids = _filled(store)
    log = event_log(store)
    log.add_device("dev-a", ids[0], KEY)
    counter = store.change_counter()
    prune = NOW - dt.timedelta(minutes=10)
    first = NewEvent(ids[0], "dev-a", "entry", NOW, "dev-a:n:1")
    second = NewEvent(ids[0], "dev-a", "locked", NOW + dt.timedelta(seconds=1), "dev-a:n:2")
    seqs = log.append([first, second, first], prune_before=prune)
    assert seqs[0] is not None and seqs[1] is not None and seqs[0] < seqs[1]
    assert seqs[2] is None
    assert log.append([second], prune_before=prune) == [None]
    assert store.change_counter() == counter  # events do not rebuild facility indexes
    followed = log.since(0)
    assert [(e.seq, e.type, e.at) for e in followed] == [
        (seqs[0], "entry", NOW),
        (seqs[1], "locked", NOW + dt.timedelta(seconds=1)),
    ]
    assert log.since(seqs[1]) == []
    third = NewEvent(ids[0], "dev-a", "entry", NOW + dt.timedelta(seconds=2), "dev-a:n:3")
    (third_seq,) = log.append([third], prune_before=prune)
    assert third_seq is not None
    assert [(e.type, e.at) for e in log.latest()] == [
        ("locked", NOW + dt.timedelta(seconds=1)),
        ("entry", NOW + dt.timedelta(seconds=2)),
    ]
    entries = log.entries(ids, NOW - dt.timedelta(hours=1), NOW + dt.timedelta(hours=1))
    assert sorted(entries["at"]) == [NOW, NOW + dt.timedelta(seconds=2)]
    # a batch mixing new events and a replay between them: each new one gets its own seq
    fourth = NewEvent(ids[0], "dev-a", "opened", NOW + dt.timedelta(seconds=3), "dev-a:n:4")
    fifth = NewEvent(ids[0], "dev-a", "vacant", NOW + dt.timedelta(seconds=4), "dev-a:n:5")
    mixed = log.append([fourth, second, fifth], prune_before=prune)
    assert mixed[1] is None and mixed[0] is not None and mixed[2] is not None
    assert [(e.seq, e.type) for e in log.since(third_seq)] == [
        (mixed[0], "opened"),
        (mixed[2], "vacant"),
    ]


def test_replay_keys_older_than_the_window_are_pruned(store: FacilityStore) -> None:
    ids = _filled(store)
    log = event_log(store)
    log.add_device("dev-a", ids[0], KEY)
    old = NewEvent(ids[0], "dev-a", "entry", NOW - dt.timedelta(hours=2), "dev-a:n:old")
    log.append([old], prune_before=NOW - dt.timedelta(hours=3))
    assert log.append([old], prune_before=NOW - dt.timedelta(hours=3)) == [None]
    # once pruned (received and happened before the limit), only the replay window (checked
    # by the API) refuses it
    after_receipt = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    assert log.append([old], prune_before=after_receipt)[0] is not None


def _newest_of_each(events: list[StoredEvent]) -> list[StoredEvent]:
    """The reference for ``latest``: the event of largest ``seq`` of each facility and type."""
    newest: dict[tuple[str, str], StoredEvent] = {}
    for event in events:
        key = (event.facility_id, event.type)
        if key not in newest or newest[key].seq < event.seq:
            newest[key] = event
    return sorted(newest.values(), key=lambda e: e.seq)


def _random_batches(ids: list[str], seed: int) -> list[list[NewEvent]]:
    """Batches of events of a few facilities and every type, with replays between them and the
    same facility and type twice in one batch."""
    rng = random.Random(seed)
    sent: list[NewEvent] = []
    batches = []
    for b in range(40):
        batch = []
        for i in range(rng.randint(1, 12)):
            if sent and rng.random() < 0.1:
                batch.append(rng.choice(sent))  # a replay
                continue
            at = NOW - dt.timedelta(hours=rng.randint(0, 48), seconds=rng.randint(0, 3599))
            facility = rng.choice(ids)
            event = NewEvent(facility, f"dev-{facility}", rng.choice(EVENT_TYPES), at, f"{b}:{i}")
            sent.append(event)
            batch.append(event)
        batches.append(batch)
    return batches


def test_latest_and_entries_agree_with_every_event_appended(store: FacilityStore) -> None:
    frame = sample_frame(12)
    store.upsert_frame(frame, actor="test")
    ids = frame["id"].tolist()
    log = event_log(store)
    for facility in ids:
        log.add_device(f"dev-{facility}", facility, KEY)
    for batch in _random_batches(ids, seed=7):
        log.append(batch, prune_before=NOW - dt.timedelta(days=3))
        appended = log.since(0)
        assert log.latest() == _newest_of_each(appended)
    asked, start, end = [*ids[::3], "no-such-facility"], NOW - dt.timedelta(hours=30), NOW
    expected = sorted(
        (e.facility_id, e.at)
        for e in appended
        if e.type == "entry" and e.facility_id in asked and start <= e.at < end
    )
    entries = log.entries(asked, start, end)
    assert expected  # the window holds entries of the facilities asked, and others it does not
    assert sorted(zip(entries["facility_id"], entries["at"], strict=True)) == expected


#: The GeoPackage event tables before 2026-12 (an index by facility, no table of the newest).
_OLDER_LAYOUT = """
CREATE TABLE devices (device_id TEXT PRIMARY KEY, facility_id TEXT NOT NULL,
  key_sha256 TEXT NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT);
CREATE INDEX devices_facility ON devices(facility_id);
CREATE TABLE facility_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, facility_id TEXT NOT NULL,
  device_id TEXT NOT NULL, type TEXT NOT NULL CHECK (type IN
  ('entry', 'occupied', 'vacant', 'opened', 'locked')), at TEXT NOT NULL,
  received_at TEXT NOT NULL);
CREATE INDEX facility_events_facility ON facility_events(facility_id, type, at);
CREATE TABLE event_replays (replay_key TEXT PRIMARY KEY, at TEXT NOT NULL);
CREATE INDEX event_replays_at ON event_replays(at);
"""


def _older_store(path: Path) -> tuple[list[str], list[StoredEvent]]:
    """A GeoPackage whose event tables have the older layout, with events; its facilities and
    events (read from the table itself)."""
    store = GeoPackageStore(path)
    frame = sample_frame(6)
    store.upsert_frame(frame, actor="test")
    ids = frame["id"].tolist()
    store.close()
    with closing(sqlite3.connect(path)) as con, con:
        con.executescript(_OLDER_LAYOUT)
        for n, event in enumerate(e for batch in _random_batches(ids, seed=3) for e in batch):
            at = event.at.isoformat(timespec="milliseconds")
            con.execute(
                "INSERT INTO facility_events (facility_id, device_id, type, at, received_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (event.facility_id, event.device_id, event.type, at, at),
            )
            con.execute("INSERT INTO event_replays VALUES (?, ?)", (f"old-{n}", at))
        rows = con.execute("SELECT seq, facility_id, type, at FROM facility_events").fetchall()
    return ids, [StoredEvent(s, f, t, dt.datetime.fromisoformat(a)) for s, f, t, a in rows]


def _indexes(path: Path) -> set[str]:
    with closing(sqlite3.connect(path)) as con:
        rows = con.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
    return {name for (name,) in rows if name.startswith(("facility_event", "event_"))}


def test_a_store_of_the_older_layout_is_brought_to_the_new_one(tmp_path: Path) -> None:
    path = tmp_path / "older.gpkg"
    ids, events = _older_store(path)
    assert "facility_events_facility" in _indexes(path)
    store = GeoPackageStore(path)
    log = event_log(store)
    assert _indexes(path) == {"facility_events_type_at"}
    assert log.latest() == _newest_of_each(events)
    log.add_device("dev-new", ids[0], KEY)
    prune = NOW - dt.timedelta(1)
    new = NewEvent(ids[0], "dev-new", "locked", NOW, "new:1")
    assert log.append([new._replace(replay_key="old-3")], prune_before=prune) == [None]
    seq = log.append([new], prune_before=prune)[0]
    assert seq is not None and seq > max(e.seq for e in events)
    assert log.latest() == _newest_of_each([*events, StoredEvent(seq, ids[0], "locked", NOW)])
    store.close()


def test_a_read_only_store_of_the_older_layout_gives_its_newest_events(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "8m") as disk:
        path = disk / "older.gpkg"
        _, events = _older_store(path)
        with read_only(disk):
            store = GeoPackageStore(path)
            assert event_log(store).latest() == _newest_of_each(events)
            store.close()
        assert "facility_events_facility" in _indexes(path)  # left as it was
