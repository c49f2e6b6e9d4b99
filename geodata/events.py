"""Door and sensor events of facilities, and the devices that send them, kept in the store.

A *device* (a smart door, an occupancy sensor) is registered for one facility; it signs what it
sends with a key only it and the store know (see :mod:`api.events`). An *event* is a count or a
state and nothing else: ``entry`` (one person came in), ``occupied`` / ``vacant`` (an occupancy
sensor), ``opened`` / ``locked`` (the door). No field can carry personal data.

Both stores keep three tables next to the facilities (GeoPackage attributes tables, or PostGIS
tables created by the migration ``0003_door_events``):

* ``devices``: ``device_id``, ``facility_id``, ``key_sha256`` (the signing key's hash form, see
  :func:`api.auth.hash_key`), ``created_at``, ``revoked_at``;
* ``facility_events``: ``seq`` (grows with every event, in commit order), ``facility_id``,
  ``device_id``, ``type``, ``at`` (when it happened, UTC), ``received_at`` (UTC);
* ``event_replays``: one row per accepted event (``replay_key``, ``at``) so that the same event
  sent twice is refused; rows older than the replay window are pruned.

Events never raise the facilities' change counter: a burst of door events must not make every
API worker rebuild its facility index. Workers follow the events by their ``seq`` instead
(:meth:`EventLog.since`). Appending is one transaction per batch, durable when it returns.
"""

from __future__ import annotations

import datetime as dt
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
        (its ``replay_key`` was accepted before). Replay keys of events older than
        ``prune_before`` are dropped (the replay window refuses those events anyway), at the
        latest once ``prune_before`` moved on by :data:`PRUNE_STEP` (not in every batch)."""
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


def _utc(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds")


#: Replay keys are pruned again once the limit given to ``append`` moved on by this much (a
#: key kept a little longer refuses nothing the replay window would accept), not per batch.
PRUNE_STEP = dt.timedelta(seconds=1)
#: Rows of one multi-row INSERT (5 values each, well below SQLite's 32,766 variables).
_ROWS_PER_STATEMENT = 500


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


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
        try:
            with store._connection() as con:
                ensure_event_tables(con)
        except StoreReadOnly:
            logger.warning("%s is read-only and has no event tables: no door events", store.path)

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
        """See :meth:`EventLog.append`: a few statements per batch, however large (each
        statement run from Python holds the interpreter, which the serving thread waits for,
        and so does each row a statement returns: none is returned in the usual case).

        The rows one ``INSERT`` adds get consecutive rowids (each the largest so far plus one,
        under the write lock), the last of them ``lastrowid``: the ``seq`` of the events, and
        the replay keys accepted now, which are read back only when some key was refused.
        """
        if not events:
            return []
        received = _iso(dt.datetime.now(dt.UTC))
        at = [_iso(e.at) for e in events]
        out: list[int | None] = [None] * len(events)
        with self._writing() as con:
            last = self._pruned_before
            if last is None or prune_before - last >= PRUNE_STEP:
                con.execute("DELETE FROM event_replays WHERE at < ?", (_iso(prune_before),))
                self._pruned_before = prune_before
            fresh: set[str] = set()
            keyed = [(e.replay_key, e_at) for e, e_at in zip(events, at, strict=True)]
            for chunk in _chunks(keyed, _ROWS_PER_STATEMENT):
                cursor = con.execute(
                    "INSERT OR IGNORE INTO event_replays (replay_key, at) VALUES "
                    + ", ".join(["(?, ?)"] * len(chunk)),
                    [v for pair in chunk for v in pair],
                )
                added, last = cursor.rowcount, cursor.lastrowid
                if added == len(chunk):  # the usual case: every key new
                    fresh.update(key for key, _ in chunk)
                elif added > 0 and last is not None:
                    fresh.update(
                        row[0]
                        for row in con.execute(
                            "SELECT replay_key FROM event_replays WHERE rowid BETWEEN ? AND ?",
                            (last - added + 1, last),
                        )
                    )
            kept = _first_of_each(events, fresh)
            for chunk in _chunks(kept, _ROWS_PER_STATEMENT):
                cursor = con.execute(
                    "INSERT INTO facility_events (facility_id, device_id, type, at, received_at) "
                    "VALUES " + ", ".join(["(?, ?, ?, ?, ?)"] * len(chunk)),
                    [
                        v
                        for i in chunk
                        for v in (
                            events[i].facility_id,
                            events[i].device_id,
                            events[i].type,
                            at[i],
                            received,
                        )
                    ],
                )
                last = cursor.lastrowid
                if cursor.rowcount != len(chunk) or last is None:
                    raise StoreError(f"{self.store.path}: an event was not appended")
                for offset, i in enumerate(chunk):
                    out[i] = last - len(chunk) + 1 + offset
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
                "SELECT e.seq, e.facility_id, e.type, e.at FROM facility_events e "
                "JOIN (SELECT max(seq) AS seq FROM facility_events GROUP BY facility_id, type) m "
                "ON m.seq = e.seq ORDER BY e.seq"
            ).fetchall()
        return [StoredEvent(s, f, t, _utc(a)) for s, f, t, a in rows]

    def entries(
        self, facility_ids: Sequence[str], start: dt.datetime, end: dt.datetime
    ) -> pd.DataFrame:
        """See :meth:`EventLog.entries`."""
        rows: list[tuple[str, str]] = []
        ids = sorted(set(facility_ids))
        with self.store._connection() as con:
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                rows += con.execute(
                    "SELECT facility_id, at FROM facility_events WHERE type = 'entry' "
                    f"AND facility_id IN ({', '.join('?' * len(chunk))}) AND at >= ? AND at < ?",
                    (*chunk, _iso(start), _iso(end)),
                ).fetchall()
        frame = pd.DataFrame(rows, columns=["facility_id", "at"])
        frame["at"] = pd.to_datetime(frame["at"], utc=True, format="ISO8601")
        return frame


def ensure_event_tables(con: sqlite3.Connection) -> None:
    """Add the device and event tables (GeoPackage attributes tables) to a store without them."""
    if con.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='facility_events'"
    ).fetchone():
        return
    types = ", ".join(f"'{t}'" for t in EVENT_TYPES)
    con.executescript(
        f"""
        BEGIN;
        CREATE TABLE IF NOT EXISTS devices (
          device_id TEXT PRIMARY KEY, facility_id TEXT NOT NULL, key_sha256 TEXT NOT NULL,
          created_at TEXT NOT NULL, revoked_at TEXT);
        CREATE INDEX IF NOT EXISTS devices_facility ON devices(facility_id);
        CREATE TABLE IF NOT EXISTS facility_events (
          seq INTEGER PRIMARY KEY AUTOINCREMENT, facility_id TEXT NOT NULL,
          device_id TEXT NOT NULL, type TEXT NOT NULL CHECK (type IN ({types})),
          at TEXT NOT NULL, received_at TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS facility_events_facility
          ON facility_events(facility_id, type, at);
        CREATE TABLE IF NOT EXISTS event_replays (
          replay_key TEXT PRIMARY KEY, at TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS event_replays_at ON event_replays(at);
        INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description)
          VALUES ('devices', 'attributes', 'devices', 'Door and sensor devices'),
                 ('facility_events', 'attributes', 'facility_events',
                  'Door and sensor events (counts and states, no personal data)'),
                 ('event_replays', 'attributes', 'event_replays',
                  'Recently accepted events, to refuse replays');
        COMMIT;
        """
    )


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
