"""The event log of both stores: devices, appends with replay refusal, following by ``seq``."""

from __future__ import annotations

import datetime as dt

import pytest

from geodata.errors import FacilityNotFound, NotFound
from geodata.events import NewEvent, event_log
from geodata.sample import sample_frame
from geodata.store import FacilityStore

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
    log.append([third], prune_before=prune)
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
    assert [(e.seq, e.type) for e in log.since(seqs[1] + 1)] == [
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
    # once pruned, only the replay window (checked by the API) refuses it
    assert log.append([old], prune_before=NOW - dt.timedelta(hours=1))[0] is not None
