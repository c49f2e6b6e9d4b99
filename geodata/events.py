"""Door and sensor events of facilities, and the devices that send them, kept in the store.

A *device* (a smart door, an occupancy sensor) is registered for one facility; it signs what it
sends with a key only it and the store know (see :mod:`api.routes.doors`). An *event* is a count
or a state and nothing else: ``entry`` (one person came in), ``occupied`` / ``vacant`` (an
occupancy sensor), ``opened`` / ``locked`` (the door). No field can carry personal data.

Both stores keep three tables next to the facilities (GeoPackage attributes tables, or PostGIS
tables created by the migration ``0003_door_events``):

* ``devices``: ``device_id``, ``facility_id``, ``key_sha256`` (the signing key's hash form, see
  :func:`api.auth.hash_key`), ``created_at``, ``revoked_at``;
* ``facility_events``: ``seq`` (grows with every event, in commit order), ``facility_id``,
  ``device_id``, ``type``, ``at`` (when it happened, UTC), ``received_at`` (UTC);
* ``event_replays``: one row per accepted event (its ``replay_key``, see :func:`replay_key`)
  so that the same event sent twice is refused; rows older than the replay window are pruned.

A GeoPackage also keeps ``facility_event_latest``, the newest event of each facility and type,
and stores a batch by one ``INSERT`` into ``event_replays`` whose trigger copies the events into
``facility_events`` (see :meth:`GeoPackageEventLog.append` and ``docs/live.md``, *Tables*).

Events never raise the facilities' change counter: a burst of door events must not make every
API worker rebuild its facility index. Workers follow the events by their ``seq`` instead
(:meth:`EventLog.since`). Appending is one transaction per batch, durable when it returns.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import pandas as pd

from geodata.errors import NotFound, StoreError, StoreReadOnly
from geodata.store import GeoPackageStore, now_utc

if TYPE_CHECKING:
    from geodata.postgis import PostGISStore
    from geodata.store import FacilityStore

logger = logging.getLogger(__name__)

#: What a device may report: counts and states, never who.
EVENT_TYPES: tuple[str, ...] = ("entry", "occupied", "vacant", "opened", "locked")
#: Key of the PostgreSQL advisory lock that makes event appends commit in ``seq`` order.
_EVENTS_LOCK_KEY = 7_412_903_186


class Device(NamedTuple):
    """A registered device (never its key): ids, and UTC ISO times (``revoked_at`` or None)."""

    device_id: str
    facility_id: str
    created_at: str
    revoked_at: str | None


class NewEvent(NamedTuple):
    """An event to append: ``at`` timezone-aware; ``replay_key`` unique per accepted event."""

    facility_id: str
    device_id: str
    type: str
    at: dt.datetime
    replay_key: str


class StoredEvent(NamedTuple):
    """An appended event; ``at`` timezone-aware UTC."""

    seq: int
    facility_id: str
    type: str
    at: dt.datetime


class EventLog(Protocol):
    """Devices and events of one store (:func:`event_log` gives the one of a store)."""

    def add_device(self, device_id: str, facility_id: str, key_sha256: str) -> Device:
        """Register a device; raises :class:`~geodata.errors.FacilityNotFound` (no facility)
        and :class:`~geodata.errors.StoreError` (id taken)."""
        ...

    def devices(self, facility_id: str | None = None) -> list[Device]:
        """Every device (revoked ones included), optionally of one facility."""
        ...

    def revoke_device(self, device_id: str) -> Device:
        """Refuse a device's events from now on; raises :class:`~geodata.errors.NotFound`."""
        ...

    def signing_keys(self) -> dict[str, list[tuple[str, str]]]:
        """``{facility_id: [(device_id, key_sha256), ...]}`` of the devices not revoked."""
        ...

    def append(self, events: Sequence[NewEvent], *, prune_before: dt.datetime) -> list[int | None]:
        """Append events in one transaction: each one's ``seq``, or ``None`` for a replay
        (its ``replay_key`` was accepted before). ``prune_before`` is a time before which no
        event that could still be accepted happened or was received (twice the replay window
        before now): replay keys of events before it (received before it, in a GeoPackage)
        are dropped, at the latest once ``prune_before`` moved on by :data:`PRUNE_STEP` (not
        in every batch)."""
        ...

    def since(self, seq: int, *, limit: int = 10_000) -> list[StoredEvent]:
        """Events after ``seq``, in ``seq`` order, at most ``limit``."""
        ...

    def latest(self) -> list[StoredEvent]:
        """The newest event of each facility and type (what live state starts from)."""
        ...

    def entries(
        self, facility_ids: Sequence[str], start: dt.datetime, end: dt.datetime
    ) -> pd.DataFrame:
        """``entry`` events of some facilities with ``start <= at < end``: columns
        ``facility_id`` and ``at`` (timezone-aware UTC)."""
        ...


#: The seq up to which ``facility_event_latest`` holds the newest events (GeoPackage).
_FOLDED_SEQ = "SELECT CAST(value AS INTEGER) FROM store_meta WHERE key = 'events_folded_seq'"
#: The newest event of each facility and type (``seq, facility_id, type, at``) from all
#: events after ``{after}`` (a query giving a seq).
_NEWEST_AFTER = (
    "SELECT e.seq, e.facility_id, e.type, e.at FROM facility_events e "
    "JOIN (SELECT max(seq) AS newest FROM facility_events WHERE seq > ({after}) "
    "GROUP BY facility_id, type) m ON m.newest = e.seq"
)
#: The newest of each facility and type: those folded, unless a newer event came since.
_NEWEST = f"""
    WITH recent AS ({_NEWEST_AFTER.format(after=_FOLDED_SEQ)})
    SELECT seq, facility_id, type, at FROM facility_event_latest l WHERE NOT EXISTS (
      SELECT 1 FROM recent r WHERE r.facility_id = l.facility_id AND r.type = l.type)
    UNION ALL SELECT seq, facility_id, type, at FROM recent ORDER BY seq"""


def _utc(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds")


def replay_key(device_id: str, at: dt.datetime, nonce: str | None, body: bytes) -> str:
    """What makes an event a replay: the same device, ``at`` and nonce, or, without a nonce,
    the same body (which holds ``at``) from the same device. A captured request sent again is
    refused; so is a device's event sent twice. The key starts with ``at`` (UTC, fixed width):
    new keys go to the end of the replay index, where a random key would dirty a random page
    of it in every append."""
    sent = f"n:{nonce}" if nonce else f"b:{hashlib.sha256(body).hexdigest()}"
    return f"{at.astimezone(dt.UTC).isoformat(timespec='microseconds')}|{device_id}:{sent}"


#: Drops the replay keys received before a time: the oldest rows, up to the first received
#: at or after it (rows are in commit order; a few received before it may stay, which costs
#: only a little room).
_PRUNE = """DELETE FROM event_replays WHERE seq < coalesce(
      (SELECT seq FROM event_replays WHERE received_at >= ?1 ORDER BY seq LIMIT 1),
      (SELECT max(seq) + 1 FROM event_replays))"""
#: Replay keys are pruned again once the limit given to ``append`` moved on by this much (a
#: key kept a little longer refuses nothing the replay window would accept), not per batch.
PRUNE_STEP = dt.timedelta(seconds=1)
#: Rows of one multi-row INSERT (6 values each, below SQLite's 32,766 variables).
_ROWS_PER_STATEMENT = 5_000


def _first_of_each(events: Sequence[NewEvent], fresh: set[str]) -> list[int]:
    """Positions of the events to store: the first one of each replay key accepted now."""
    kept: list[int] = []
    left = set(fresh)
    for i, event in enumerate(events):
        if event.replay_key in left:
            left.discard(event.replay_key)
            kept.append(i)
    return kept


class GeoPackageEventLog:
    """The :class:`EventLog` of a :class:`~geodata.store.GeoPackageStore`."""

    def __init__(self, store: GeoPackageStore) -> None:
        self.store = store
        self._pruned_before: dt.datetime | None = None  # of the last prune of replay keys
        #: whether the store has this layout (a read-only store of an older one is read as it
        #: is: :meth:`latest` then reads the newest events from all events)
        self._current = True
        with store._connection() as con:
            if con.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'event_replays_store'"
            ).fetchone():
                return
        try:
            with store._side_write() as con:
                _make_event_tables(con)
        except StoreReadOnly:
            self._current = False
            logger.warning(
                "%s is read-only and its event tables are missing or of an older layout: door "
                "events are read as they are, none can be stored",
                store.path,
            )

    def _writing(self) -> AbstractContextManager[sqlite3.Connection]:
        """One write transaction that leaves the facilities' change counter alone."""
        return self.store._side_write()

    def add_device(self, device_id: str, facility_id: str, key_sha256: str) -> Device:
        """See :meth:`EventLog.add_device`."""
        self.store.get(facility_id)
        at = now_utc()
        with self._writing() as con:
            try:
                con.execute(
                    "INSERT INTO devices (device_id, facility_id, key_sha256, created_at) "
                    "VALUES (?, ?, ?, ?)",
                    (device_id, facility_id, key_sha256, at),
                )
            except sqlite3.IntegrityError as exc:
                raise StoreError(f"a device {device_id!r} exists already") from exc
        return Device(device_id, facility_id, at, None)

    def devices(self, facility_id: str | None = None) -> list[Device]:
        """See :meth:`EventLog.devices`."""
        sql = "SELECT device_id, facility_id, created_at, revoked_at FROM devices"
        params: tuple[Any, ...] = ()
        if facility_id is not None:
            sql += " WHERE facility_id = ?"
            params = (facility_id,)
        with self.store._connection() as con:
            rows = con.execute(sql + " ORDER BY created_at, device_id", params).fetchall()
        return [Device(*r) for r in rows]

    def revoke_device(self, device_id: str) -> Device:
        """See :meth:`EventLog.revoke_device`."""
        with self._writing() as con:
            con.execute(
                "UPDATE devices SET revoked_at = ? WHERE device_id = ? AND revoked_at IS NULL",
                (now_utc(), device_id),
            )
            row = con.execute(
                "SELECT device_id, facility_id, created_at, revoked_at FROM devices "
                "WHERE device_id = ?",
                (device_id,),
            ).fetchone()
        if row is None:
            raise NotFound(f"no device {device_id!r}")
        return Device(*row)

    def signing_keys(self) -> dict[str, list[tuple[str, str]]]:
        """See :meth:`EventLog.signing_keys`."""
        with self.store._connection() as con:
            rows = con.execute(
                "SELECT facility_id, device_id, key_sha256 FROM devices WHERE revoked_at IS NULL"
            ).fetchall()
        out: dict[str, list[tuple[str, str]]] = {}
        for facility_id, device_id, key in rows:
            out.setdefault(facility_id, []).append((device_id, key))
        return out

    def append(self, events: Sequence[NewEvent], *, prune_before: dt.datetime) -> list[int | None]:
        """See :meth:`EventLog.append`: one statement per batch of up to
        :data:`_ROWS_PER_STATEMENT` events, outside a transaction, so that it is one. Each
        statement run from Python lets go of the interpreter and must take it back from the
        serving thread, as does each row a statement returns: this one returns none.

        The statement inserts into ``event_replays`` (``ON CONFLICT DO NOTHING`` on the replay
        key); its trigger copies each new row into ``facility_events`` with the same ``seq``.
        Without a refused key, the rows have consecutive seqs ending in ``lastrowid``. With one,
        the keys' rows are read back: this statement's are the newest of them, every other one
        was inserted before it (and a key is never inserted twice).

        Once :data:`PRUNE_STEP` passed, one transaction first drops the replay keys received
        before ``prune_before`` and folds the events stored since into
        ``facility_event_latest``.
        """
        if not events:
            return []
        received = _iso(dt.datetime.now(dt.UTC))
        out: list[int | None] = [None] * len(events)
        last_pruned = self._pruned_before
        if last_pruned is None or prune_before - last_pruned >= PRUNE_STEP:
            with self._writing() as con:
                con.execute(_PRUNE, (_iso(prune_before),))
                for statement in _FOLD:
                    con.execute(statement)
            self._pruned_before = prune_before
        # one statement is a transaction of its own; several are put in one
        several = len(events) > _ROWS_PER_STATEMENT
        with self._writing() if several else self.store._write_turn() as con:
            for start in range(0, len(events), _ROWS_PER_STATEMENT):
                chunk = events[start : start + _ROWS_PER_STATEMENT]
                cursor = con.execute(
                    "INSERT INTO event_replays "
                    "(replay_key, received_at, facility_id, device_id, type, at) VALUES "
                    + ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(chunk))
                    + " ON CONFLICT (replay_key) DO NOTHING",
                    [
                        v
                        for e in chunk
                        for v in (
                            e.replay_key,
                            received,
                            e.facility_id,
                            e.device_id,
                            e.type,
                            _iso(e.at),
                        )
                    ],
                )
                added, last = cursor.rowcount, cursor.lastrowid
                if added == len(chunk) and last is not None:  # the usual case: every key new
                    for offset in range(len(chunk)):
                        out[start + offset] = last - len(chunk) + 1 + offset
                elif added > 0:
                    seq_of = dict(
                        con.execute(
                            "SELECT replay_key, seq FROM event_replays WHERE replay_key IN "
                            "(SELECT value FROM json_each(?)) ORDER BY seq DESC LIMIT ?",
                            (json.dumps([e.replay_key for e in chunk]), added),
                        ).fetchall()
                    )
                    for i in _first_of_each(chunk, set(seq_of)):
                        out[start + i] = seq_of[chunk[i].replay_key]
        return out

    def since(self, seq: int, *, limit: int = 10_000) -> list[StoredEvent]:
        """See :meth:`EventLog.since`."""
        with self.store._connection() as con:
            rows = con.execute(
                "SELECT seq, facility_id, type, at FROM facility_events WHERE seq > ? "
                "ORDER BY seq LIMIT ?",
                (seq, limit),
            ).fetchall()
        return [StoredEvent(s, f, t, _utc(a)) for s, f, t, a in rows]

    def latest(self) -> list[StoredEvent]:
        """See :meth:`EventLog.latest`."""
        with self.store._connection() as con:
            rows = con.execute(
                _NEWEST if self._current else _NEWEST_AFTER.format(after=0) + " ORDER BY seq"
            ).fetchall()
        return [StoredEvent(s, f, t, _utc(a)) for s, f, t, a in rows]

    def entries(
        self, facility_ids: Sequence[str], start: dt.datetime, end: dt.datetime
    ) -> pd.DataFrame:
        """See :meth:`EventLog.entries`."""
        # by time (index ``(type, at)``), the facilities given once as a JSON array
        with self.store._connection() as con:
            rows = con.execute(
                "SELECT facility_id, at FROM facility_events WHERE type = 'entry' "
                "AND at >= ? AND at < ? AND facility_id IN (SELECT value FROM json_each(?))",
                (_iso(start), _iso(end), json.dumps(sorted(set(facility_ids)))),
            ).fetchall()
        frame = pd.DataFrame(rows, columns=["facility_id", "at"])
        frame["at"] = pd.to_datetime(frame["at"], utc=True, format="ISO8601")
        return frame


#: The GeoPackage event tables (made, or an older store's brought to this layout, by
#: :func:`_make_event_tables`).
_DEVICES = (
    """CREATE TABLE IF NOT EXISTS devices (
      device_id TEXT PRIMARY KEY, facility_id TEXT NOT NULL, key_sha256 TEXT NOT NULL,
      created_at TEXT NOT NULL, revoked_at TEXT)""",
    "CREATE INDEX IF NOT EXISTS devices_facility ON devices(facility_id)",
)
_EVENTS = (
    f"""CREATE TABLE IF NOT EXISTS facility_events (
      seq INTEGER PRIMARY KEY AUTOINCREMENT, facility_id TEXT NOT NULL,
      device_id TEXT NOT NULL,
      type TEXT NOT NULL CHECK (type IN ({", ".join(f"'{t}'" for t in EVENT_TYPES)})),
      at TEXT NOT NULL, received_at TEXT NOT NULL)""",
    "DROP INDEX IF EXISTS facility_events_facility",
    "CREATE INDEX IF NOT EXISTS facility_events_type_at ON facility_events(type, at)",
    """CREATE TABLE IF NOT EXISTS facility_event_latest (
      facility_id TEXT NOT NULL, type TEXT NOT NULL, seq INTEGER NOT NULL, at TEXT NOT NULL,
      PRIMARY KEY (facility_id, type)) WITHOUT ROWID""",
    "INSERT OR IGNORE INTO store_meta (key, value) VALUES ('events_folded_seq', '0')",
)
_REPLAY_TABLE = """CREATE TABLE IF NOT EXISTS event_replays (
      seq INTEGER PRIMARY KEY AUTOINCREMENT, replay_key TEXT NOT NULL UNIQUE,
      received_at TEXT NOT NULL, facility_id TEXT, device_id TEXT, type TEXT, at TEXT)"""
_REPLAY_STORING = (
    # seqs go on from the events' (also after every key was pruned: AUTOINCREMENT)
    """INSERT INTO sqlite_sequence (name, seq) SELECT 'event_replays', 0
      WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'event_replays')""",
    """UPDATE sqlite_sequence SET seq = max(seq, (SELECT coalesce(max(seq), 0)
      FROM facility_events)) WHERE name = 'event_replays'""",
    """CREATE TRIGGER IF NOT EXISTS event_replays_store AFTER INSERT ON event_replays BEGIN
      INSERT INTO facility_events (seq, facility_id, device_id, type, at, received_at)
      VALUES (NEW.seq, NEW.facility_id, NEW.device_id, NEW.type, NEW.at, NEW.received_at);
      END""",
    """INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description)
      VALUES ('devices', 'attributes', 'devices', 'Door and sensor devices'),
             ('facility_events', 'attributes', 'facility_events',
              'Door and sensor events (counts and states, no personal data)'),
             ('facility_event_latest', 'attributes', 'facility_event_latest',
              'The newest door or sensor event of each facility and type, up to a seq'),
             ('event_replays', 'attributes', 'event_replays',
              'Recently accepted events, to refuse replays')""",
)
#: Folds the events after ``events_folded_seq`` into ``facility_event_latest`` (in seq order,
#: so the newer of two events of a facility and type stays), then moves ``events_folded_seq``.
_FOLD = (
    f"""INSERT INTO facility_event_latest (facility_id, type, seq, at)
      SELECT facility_id, type, seq, at FROM facility_events
      WHERE seq > ({_FOLDED_SEQ}) ORDER BY seq
      ON CONFLICT (facility_id, type) DO UPDATE SET seq = excluded.seq, at = excluded.at""",
    """UPDATE store_meta SET value = (SELECT coalesce(max(seq), 0) FROM facility_events)
      WHERE key = 'events_folded_seq'""",
)


def _make_event_tables(con: sqlite3.Connection) -> None:
    """Make the event tables in a write transaction, or bring those of an older store to this
    layout: its replay keys (kept until two replay windows from now, as if received now) move
    to the new ``event_replays``, its events' newest are folded."""
    for statement in _DEVICES + _EVENTS:
        con.execute(statement)
    columns = {row[1] for row in con.execute("PRAGMA table_info(event_replays)")}
    older = bool(columns) and "seq" not in columns
    if older:
        con.execute("ALTER TABLE event_replays RENAME TO event_replays_older")
        con.execute("DROP INDEX IF EXISTS event_replays_at")
    con.execute(_REPLAY_TABLE)
    if older:
        con.execute(
            "INSERT INTO event_replays (replay_key, received_at) "
            "SELECT replay_key, ? FROM event_replays_older",
            (_iso(dt.datetime.now(dt.UTC)),),
        )
        con.execute("DROP TABLE event_replays_older")
    for statement in _REPLAY_STORING + _FOLD:
        con.execute(statement)


class PostGISEventLog:
    """The :class:`EventLog` of a :class:`~geodata.postgis.PostGISStore` (tables of the
    migration ``0003_door_events``)."""

    def __init__(self, store: PostGISStore) -> None:
        self.store = store

    @contextmanager
    def _writing(self) -> Iterator[Any]:
        from geodata.postgis import _refusals

        with _refusals(self.store.timeouts), self.store._begun() as con, con.cursor() as cur:
            yield cur

    def _rows(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.store._reading(lambda con: con.execute(query, params).fetchall())

    def add_device(self, device_id: str, facility_id: str, key_sha256: str) -> Device:
        """See :meth:`EventLog.add_device`."""
        self.store.get(facility_id)
        at = now_utc()
        with self._writing() as cur:
            cur.execute(
                "INSERT INTO devices (device_id, facility_id, key_sha256, created_at) "
                "VALUES (%s, %s, %s, %s)",
                (device_id, facility_id, key_sha256, at),
            )
        return Device(device_id, facility_id, at, None)

    _DEVICE = (
        "SELECT device_id, facility_id, to_char(created_at AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS\"+00:00\"'), to_char(revoked_at AT TIME ZONE 'UTC', "
        '\'YYYY-MM-DD"T"HH24:MI:SS"+00:00"\') FROM devices'
    )

    def devices(self, facility_id: str | None = None) -> list[Device]:
        """See :meth:`EventLog.devices`."""
        if facility_id is None:
            rows = self._rows(self._DEVICE + " ORDER BY created_at, device_id")
        else:
            rows = self._rows(
                self._DEVICE + " WHERE facility_id = %s ORDER BY created_at, device_id",
                (facility_id,),
            )
        return [Device(*r) for r in rows]

    def revoke_device(self, device_id: str) -> Device:
        """See :meth:`EventLog.revoke_device`."""
        with self._writing() as cur:
            cur.execute(
                "UPDATE devices SET revoked_at = now() WHERE device_id = %s AND revoked_at IS NULL",
                (device_id,),
            )
        rows = self._rows(self._DEVICE + " WHERE device_id = %s", (device_id,))
        if not rows:
            raise NotFound(f"no device {device_id!r}")
        return Device(*rows[0])

    def signing_keys(self) -> dict[str, list[tuple[str, str]]]:
        """See :meth:`EventLog.signing_keys`."""
        out: dict[str, list[tuple[str, str]]] = {}
        for facility_id, device_id, key in self._rows(
            "SELECT facility_id, device_id, key_sha256 FROM devices WHERE revoked_at IS NULL"
        ):
            out.setdefault(facility_id, []).append((device_id, key))
        return out

    def append(self, events: Sequence[NewEvent], *, prune_before: dt.datetime) -> list[int | None]:
        """See :meth:`EventLog.append`. Appends take turns (an advisory lock), so events
        become visible in ``seq`` order and a follower reading ``seq > n`` misses none."""
        if not events:
            return []
        with self._writing() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_EVENTS_LOCK_KEY,))
            cur.execute("DELETE FROM event_replays WHERE at < %s", (prune_before,))
            cur.execute(
                "WITH given AS (SELECT * FROM unnest(%s::text[], %s::timestamptz[]) "
                "WITH ORDINALITY AS g(replay_key, at, ord)) "
                "INSERT INTO event_replays (replay_key, at) SELECT replay_key, at FROM given "
                "ORDER BY ord ON CONFLICT DO NOTHING RETURNING replay_key",
                ([e.replay_key for e in events], [e.at for e in events]),
            )
            kept = _first_of_each(events, {row[0] for row in cur.fetchall()})
            out: list[int | None] = [None] * len(events)
            if kept:
                cur.execute(
                    "INSERT INTO facility_events (facility_id, device_id, type, at) "
                    "SELECT f, d, t, a FROM unnest(%s::text[], %s::text[], %s::text[], "
                    "%s::timestamptz[]) WITH ORDINALITY AS u(f, d, t, a, ord) ORDER BY ord "
                    "RETURNING seq",
                    (
                        [events[i].facility_id for i in kept],
                        [events[i].device_id for i in kept],
                        [events[i].type for i in kept],
                        [events[i].at for i in kept],
                    ),
                )
                returned = sorted(row[0] for row in cur.fetchall())
                for i, seq in zip(kept, returned, strict=True):
                    out[i] = int(seq)
        return out

    def since(self, seq: int, *, limit: int = 10_000) -> list[StoredEvent]:
        """See :meth:`EventLog.since`."""
        rows = self._rows(
            "SELECT seq, facility_id, type, at FROM facility_events WHERE seq > %s "
            "ORDER BY seq LIMIT %s",
            (seq, limit),
        )
        return [StoredEvent(int(s), f, t, a.astimezone(dt.UTC)) for s, f, t, a in rows]

    def latest(self) -> list[StoredEvent]:
        """See :meth:`EventLog.latest`."""
        rows = self._rows(
            "SELECT DISTINCT ON (facility_id, type) seq, facility_id, type, at "
            "FROM facility_events ORDER BY facility_id, type, seq DESC"
        )
        return sorted(
            (StoredEvent(int(s), f, t, a.astimezone(dt.UTC)) for s, f, t, a in rows),
            key=lambda e: e.seq,
        )

    def entries(
        self, facility_ids: Sequence[str], start: dt.datetime, end: dt.datetime
    ) -> pd.DataFrame:
        """See :meth:`EventLog.entries`."""
        rows = self._rows(
            "SELECT facility_id, at FROM facility_events WHERE type = 'entry' "
            "AND facility_id = ANY(%s) AND at >= %s AND at < %s",
            (sorted(set(facility_ids)), start, end),
        )
        frame = pd.DataFrame(rows, columns=["facility_id", "at"])
        frame["at"] = pd.to_datetime(frame["at"], utc=True)
        return frame


def event_log(store: FacilityStore) -> EventLog:
    """The event log kept in ``store`` (created in a GeoPackage that has none yet)."""
    if isinstance(store, GeoPackageStore):
        return GeoPackageEventLog(store)
    from geodata.postgis import PostGISStore

    if isinstance(store, PostGISStore):
        return PostGISEventLog(store)
    raise StoreError(f"no event log for a {type(store).__name__}")
