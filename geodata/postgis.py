"""The facility store in PostgreSQL + PostGIS, for several API workers sharing one database.

:class:`PostGISStore` behaves like :class:`geodata.store.GeoPackageStore` (same methods, frames,
errors and audit entries; see :class:`geodata.store.FacilityStore`) and keeps

* ``facilities``: the columns of :data:`geodata.schema.COLUMNS` plus ``geog``, a WGS-84
  ``geography(Point, 4326)`` generated from ``lon``/``lat`` with a GiST index, and the same CHECK
  constraints as the GeoPackage;
* ``facility_audit`` (``changes`` as ``jsonb``), ``imports``, ``store_state`` (the change
  counter and the report salt), ``holiday_calendar`` (loaded official holiday arrangements),
  ``facility_reports`` (users' reports), ``report_state`` (the reports' change counter) and
  ``facility_photos`` (JPEG ``bytea``; a report's photo carries its ``report_id``), all created
  by the Alembic migrations in :mod:`geodata.migrations`.

Writes: every write is one transaction that first increments the change counter. That row lock
makes writers take turns (as the GeoPackage's single writer does), so an edit based on an old
``version`` always sees the newer one and raises :class:`~geodata.errors.VersionConflict` instead
of losing an update; readers are never blocked. At commit the transaction sends
``NOTIFY facilities_changed, '<counter>'`` for listeners; :meth:`PostGISStore.change_counter`
reads the counter with one indexed lookup, cheap enough to call on every request.

Faults: every connection carries the limits of :class:`DatabaseTimeouts` (connect, statement,
lock wait, idle in transaction, TCP keepalives), set in :meth:`DatabaseTimeouts.connect_options`
only. A database that fails, times out or cannot be reached raises
:class:`~geodata.errors.StoreUnavailable` (a lock wait beyond the limit
:class:`~geodata.errors.StoreBusy`). Reads run once more on a new connection when the borrowed one
was cut (a database restart closes them all); so do writes, but only when the cut showed on the
``BEGIN`` that opens the transaction, before any statement of the write reached the server: a
write that may have been applied is never repeated.

Bulk imports (:meth:`PostGISStore.upsert_frame`) ``COPY`` the frame into a temporary staging
table, compute the per-row field differences for the audit trail in SQL, and update, insert and
audit with a few set-based statements, all in the same transaction: a killed importer leaves the
database as it was.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import pandas as pd
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from geodata.errors import (
    FacilityNotFound,
    StoreBusy,
    StoreError,
    StoreUnavailable,
    VersionConflict,
)
from geodata.schema import COLUMNS, EDITABLE_COLUMNS, Facility
from geodata.store import (
    AuditEntry,
    CalendarDay,
    ImportCounts,
    StoreBase,
    _check_version,
    _to_db,
    _typed,
    check_versions,
    facility_from_row,
    merged_edit,
    now_utc,
)

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

#: The channel of the ``NOTIFY`` sent by every committed write; the payload is the new counter.
CHANNEL = "facilities_changed"

_ISO_UTC = 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'
_TIMESTAMPS = ("created_at", "updated_at")
_NUMERIC = ("lon", "lat", "star_rating", "area_m2", "version")
_CSV_DTYPES: dict[str, Any] = {c: str for c in COLUMNS} | {
    "lon": "float64",
    "lat": "float64",
    "star_rating": "Int64",
    "area_m2": "float64",
    "version": "int64",
}
_NULL = "\\N"
_dumps = functools.partial(json.dumps, ensure_ascii=False, default=str)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _utc_text(ref: str) -> str:
    """A ``timestamptz`` as ISO 8601 UTC text with seconds, the form of :func:`now_utc`."""
    return f"to_char({ref} AT TIME ZONE 'UTC', '{_ISO_UTC}')"


def _as_text(column: str, table: str = "") -> str:
    """A facility column as the text the GeoPackage store returns (timestamps, dates)."""
    ref = f"{table}.{_ident(column)}" if table else _ident(column)
    if column in _TIMESTAMPS:
        return _utc_text(ref)
    if column == "verified_at":
        return f"to_char({ref}, 'YYYY-MM-DD')"
    return ref


_SELECT = ", ".join(_as_text(c) for c in COLUMNS)


def libpq_url(database_url: str) -> str:
    """A ``postgresql://`` URL as libpq / psycopg take it (drops a SQLAlchemy ``+driver``)."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql://" + database_url[len(prefix) :]
    raise StoreError(f"not a PostgreSQL URL (postgresql://...): {database_url.split('@')[-1]}")


@dataclass(frozen=True)
class DatabaseTimeouts:
    """The limits of every database call, in seconds: the one place where they are set.

    Parameters
    ----------
    connect_s
        Longest wait for a new connection (libpq ``connect_timeout``, whole seconds, at least 2).
    statement_s
        Longest run of one statement (server ``statement_timeout``); a bulk import is a few
        statements, each bounded by this.
    lock_s
        Longest wait of a write for the writers' turn held by another write (server
        ``lock_timeout``); then :class:`~geodata.errors.StoreBusy`.
    idle_s
        A transaction left idle this long is ended by the server
        (``idle_in_transaction_session_timeout``), and pooled connections unused this long are
        closed instead of reused.
    keepalive_s
        TCP keepalive probes start after this much silence and repeat at this interval, three
        times; unacknowledged data is given up after ``keepalive_s * 4`` (``tcp_user_timeout``).
        A dead host or broken network is noticed by then; a stopped but reachable server is
        not (its kernel still answers), which is why the service never waits for the database
        on a request path (see :class:`api.state.LiveFacilities`).
    """

    connect_s: float = 5.0
    statement_s: float = 30.0
    lock_s: float = 5.0
    idle_s: float = 60.0
    keepalive_s: float = 10.0

    def connect_options(self) -> dict[str, Any]:
        """The libpq connection parameters that apply these limits."""
        keepalive = max(1, round(self.keepalive_s))
        server = {
            "statement_timeout": self.statement_s,
            "lock_timeout": self.lock_s,
            "idle_in_transaction_session_timeout": self.idle_s,
        }
        return {
            "connect_timeout": max(2, round(self.connect_s)),
            "keepalives": 1,
            "keepalives_idle": keepalive,
            "keepalives_interval": keepalive,
            "keepalives_count": 3,
            "tcp_user_timeout": keepalive * 4000,
            "options": " ".join(f"-c {k}={round(v * 1000)}" for k, v in server.items()),
        }


@contextmanager
def _refusals(timeouts: DatabaseTimeouts) -> Iterator[None]:
    """Turn the database refusing a row (constraint, bad value) into :class:`StoreError`, and
    the database failing, timing out or waiting too long for a lock into
    :class:`StoreUnavailable` / :class:`StoreBusy`."""
    try:
        yield
    except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
        detail = exc.diag.message_primary or str(exc)
        raise StoreError(f"the store refused a row: {detail}") from exc
    except psycopg.errors.LockNotAvailable as exc:
        raise StoreBusy(
            f"another write held the store for {timeouts.lock_s:g} s: {exc}",
            retry_after_s=max(1, round(timeouts.lock_s)),
        ) from exc
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(
            f"the database failed during a write (check whether it was saved "
            f"before repeating it): {exc}"
        ) from exc


def _compared(column: str, table: str) -> str:
    """A column as :func:`geodata.store.field_diff` compares it: empty text equals NULL."""
    ref = f"{table}.{_ident(column)}"
    return ref if column in _NUMERIC or column == "verified_at" else f"NULLIF({ref}, '')"


def _differs_sql(columns: Sequence[str]) -> str:
    """Whether stored row ``f`` and staged row ``s`` differ in any of ``columns``."""
    if not columns:
        return "false"
    old = ", ".join(_compared(c, "f") for c in columns)
    new = ", ".join(_compared(c, "s") for c in columns)
    return f"ROW({old}) IS DISTINCT FROM ROW({new})"


def _diff_sql(columns: Sequence[str]) -> str:
    """A ``jsonb`` ``{field: [old, new]}`` of staged row ``s`` against stored row ``f``.

    The same rules as :func:`geodata.store.field_diff`: empty text equals NULL, numbers compare as
    numbers, dates as ISO text.
    """
    parts = []
    for column in columns:
        differs = f"{_compared(column, 'f')} IS DISTINCT FROM {_compared(column, 's')}"
        pair = f"jsonb_build_array({_as_text(column, 'f')}, {_as_text(column, 's')})"
        parts.append(f"'{column}', CASE WHEN {differs} THEN {pair} END")
    return f"jsonb_strip_nulls(jsonb_build_object({', '.join(parts)}))"


def _copy_values(frame: pd.DataFrame, column: str) -> Any:
    """The values of one frame column for ``COPY``: NaN / NA / NaT as ``None``."""
    if column not in frame:
        return [None] * len(frame)
    series = frame[column]
    return series.astype(object).where(series.notna(), None).to_numpy()


class PostGISStore(StoreBase):
    """Facilities in PostgreSQL + PostGIS; thread-safe, shared by any number of processes.

    Parameters
    ----------
    database_url
        ``postgresql://user:password@host:port/dbname`` (libpq URL; ``postgres://`` and
        ``postgresql+psycopg://`` are accepted too).
    migrate
        Bring the schema up to date first (:func:`geodata.migrations.migrate`); with ``False``
        the schema must exist already (e.g. migrated by ``finder db upgrade`` at deploy time).
    application_name
        Shown in ``pg_stat_activity`` for this store's connections; default ``finder-<pid>``,
        which tells the API workers apart.
    max_idle_connections
        Connections kept open between calls. Each call borrows one connection (a new one when
        none is idle) and gives it back, so a process holds about as many connections as it
        makes concurrent store calls, plus this many idle ones.
    timeouts
        The limits of every database call (:class:`DatabaseTimeouts`).

    Raises
    ------
    StoreUnavailable
        When the database cannot be reached.
    StoreError
        When the database has no store schema.
    """

    _MARK = "%s"
    # a row of its own, so that reports never wait for the facility writers' turn
    _REPORT_COUNTER_BUMP = "UPDATE report_state SET report_counter = report_counter + 1"
    _REPORT_COUNTER_READ = "SELECT report_counter FROM report_state"

    def __init__(
        self,
        database_url: str,
        *,
        migrate: bool = True,
        application_name: str | None = None,
        max_idle_connections: int = 4,
        timeouts: DatabaseTimeouts | None = None,
    ) -> None:
        self.database_url = libpq_url(database_url)
        self.application_name = application_name or f"finder-{os.getpid()}"
        self.max_idle_connections = max_idle_connections
        self.timeouts = timeouts if timeouts is not None else DatabaseTimeouts()
        self._idle: list[tuple[psycopg.Connection[Any], float]] = []
        self._pool_lock = threading.Lock()
        self._generation = 0
        if migrate:
            from geodata.migrations import migrate as run_migrations

            run_migrations(self.database_url)
        try:
            self.change_counter()
        except psycopg.errors.UndefinedTable as exc:
            self.close()
            raise StoreError(
                "the database has no facility store: run the migrations "
                "(geodata.migrations.migrate)"
            ) from exc

    # -- connections ---------------------------------------------------------------------------
    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(
                self.database_url,
                autocommit=True,
                application_name=self.application_name,
                **self.timeouts.connect_options(),
            )
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"cannot reach the database: {exc}") from exc

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """Borrow an idle connection (or open one) and give it back afterwards."""
        con: psycopg.Connection[Any] | None = None
        stale: list[psycopg.Connection[Any]] = []
        oldest = time.monotonic() - self.timeouts.idle_s
        with self._pool_lock:
            generation = self._generation
            while self._idle and con is None:
                candidate, idle_since = self._idle.pop()
                if candidate.broken or candidate.closed or idle_since < oldest:
                    stale.append(candidate)
                else:
                    con = candidate
        for old in stale:
            old.close()
        if con is None:
            con = self._connect()
        try:
            yield con
        finally:
            reusable = (
                not con.closed
                and not con.broken
                and con.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            )
            with self._pool_lock:
                keep = (
                    reusable
                    and generation == self._generation
                    and len(self._idle) < self.max_idle_connections
                )
                if keep:
                    self._idle.append((con, time.monotonic()))
            if not keep:
                con.close()

    @contextmanager
    def _begun(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection inside a new transaction (``BEGIN`` sent and acknowledged).

        A pooled connection cut by a database restart fails on this ``BEGIN``, before any
        statement of the write reached the server: then, and only then, the ``BEGIN`` is sent
        once more on a new connection.
        """
        for attempt in range(2):
            with self._connection() as con:
                try:
                    con.execute("BEGIN")
                except psycopg.OperationalError:
                    if attempt:
                        raise
                    logger.info("a database connection was cut; writing on a new one")
                    self.close()
                    continue
                try:
                    yield con
                except BaseException:
                    if not con.broken:
                        con.execute("ROLLBACK")
                    raise
                con.execute("COMMIT")
                return

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Cursor[Any]]:
        """One write transaction: take the writers' turn (counter row), notify at commit."""
        with _refusals(self.timeouts), self._begun() as con, con.cursor() as cur:
            cur.execute(
                "UPDATE store_state SET change_counter = change_counter + 1 "
                "RETURNING change_counter"
            )
            row = cur.fetchone()
            if row is None:
                raise StoreError("the store_state row is missing: the schema is damaged")
            yield cur
            cur.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(row[0])))

    @contextmanager
    def _side_write(self) -> Iterator[psycopg.Cursor[Any]]:
        """One write transaction outside the writers' turn, leaving the change counter alone
        (reports, photos: they are not facility data)."""
        with _refusals(self.timeouts), self._begun() as con, con.cursor() as cur:
            yield cur

    def _rows(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._reading(lambda con: con.execute(query, params or None).fetchall())

    def _time_text(self, column: str) -> str:
        return f"{_utc_text(column)} AS {column}"

    def report_salt(self) -> str:
        """The store's secret for keyed hashes of report sources (made by the migration)."""
        return str(self._rows("SELECT report_salt FROM store_state")[0][0])

    def close(self) -> None:
        """Close the idle connections; those in use close when their call returns."""
        with self._pool_lock:
            idle, self._idle = self._idle, []
            self._generation += 1
        for con, _ in idle:
            con.close()

    def _reading(self, read: Callable[[psycopg.Connection[Any]], _T]) -> _T:
        """Run a read; once more on a new connection if the borrowed one was cut (a database
        restart or fail-over closes every open connection)."""
        try:
            with self._connection() as con:
                return read(con)
        except psycopg.errors.QueryCanceled as exc:  # statement_timeout: not worth repeating
            raise StoreUnavailable(f"cannot read from the database: {exc}") from exc
        except psycopg.OperationalError:
            logger.info("a database connection was cut; reading again on a new one")
            self.close()
        try:
            with self._connection() as con:
                return read(con)
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"cannot read from the database: {exc}") from exc

    # -- reads ---------------------------------------------------------------------------------
    def _read(self, where: str = "", params: Sequence[Any] = ()) -> pd.DataFrame:
        """Facility rows as a typed frame, streamed with ``COPY ... TO STDOUT`` (CSV)."""
        query = (
            f"COPY (SELECT {_SELECT} FROM facilities {where} ORDER BY id) "
            f"TO STDOUT (FORMAT csv, NULL '{_NULL}')"
        )

        def fetch(con: psycopg.Connection[Any]) -> io.BytesIO:
            buf = io.BytesIO()
            with con.cursor() as cur, cur.copy(query, params or None) as copy:
                for block in copy:
                    buf.write(block)
            return buf

        buf = self._reading(fetch)
        if buf.tell() == 0:
            empty = pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
            return _typed(empty)
        buf.seek(0)
        frame = pd.read_csv(
            buf,
            header=None,
            names=list(COLUMNS),
            dtype=_CSV_DTYPES,
            na_values=[_NULL],
            keep_default_na=False,
            encoding="utf-8",
        )
        return _typed(frame)

    def change_counter(self) -> int:
        """A number that grows with every committed write (by any process)."""
        row = self._reading(
            lambda con: con.execute("SELECT change_counter FROM store_state").fetchone()
        )
        if row is None:
            raise StoreError("the store_state row is missing: the schema is damaged")
        return int(row[0])

    def identity(self) -> str:
        """The server (host, port), the database and the object id of its facilities table."""

        def read(con: psycopg.Connection[Any]) -> str:
            row = con.execute("SELECT 'facilities'::regclass::oid::bigint").fetchone()
            oid = None if row is None else row[0]
            return f"postgis:{con.info.host}:{con.info.port}:{con.info.dbname}:{oid}"

        return self._reading(read)

    def calendar_days(self) -> list[CalendarDay]:
        """The stored holiday calendar, ordered by day."""
        query = (
            "SELECT to_char(day, 'YYYY-MM-DD'), type, name, source, "
            f"{_utc_text('loaded_at')}, actor FROM holiday_calendar ORDER BY day"
        )
        rows = self._reading(lambda con: con.execute(query).fetchall())
        return [CalendarDay(*row) for row in rows]

    def audit(self, facility_id: str | None = None, *, limit: int = 100) -> list[AuditEntry]:
        """The newest audit entries, newest first, optionally for one facility."""
        query = (
            f"SELECT seq, {_utc_text('at')}, actor, "
            "action, facility_id, import_id, changes FROM facility_audit"
        )
        params: list[Any] = []
        if facility_id is not None:
            query += " WHERE facility_id = %s"
            params.append(facility_id)
        query += " ORDER BY seq DESC LIMIT %s"
        params.append(int(limit))
        rows = self._reading(lambda con: con.execute(query, params).fetchall())
        keys = ("seq", "at", "actor", "action", "facility_id", "import_id", "changes")
        return [AuditEntry(zip(keys, row, strict=True)) for row in rows]

    # -- writes --------------------------------------------------------------------------------
    def upsert_frame(
        self,
        frame: pd.DataFrame,
        *,
        actor: str,
        source_name: str = "",
        if_versions: Mapping[str, int] | None = None,
    ) -> ImportCounts:
        """Insert new ids and update existing ones, all in one transaction (``COPY``-based).

        ``frame`` must be validated already (see :mod:`geodata.imports`) and have unique ids.
        Updated rows get ``version + 1`` and an ``update`` audit entry with the changed fields;
        new rows a ``create`` entry. Raises :class:`StoreError` if the database refuses a row,
        and :class:`VersionConflict` if a facility of ``if_versions`` is not at its version
        there (see :func:`~geodata.store.check_versions`); then nothing is written.
        """
        if frame["id"].duplicated().any():
            raise StoreError("upsert_frame needs unique ids")
        at = now_utc()
        editable = ", ".join(_ident(c) for c in EDITABLE_COLUMNS)
        staged = ", ".join(f"s.{_ident(c)}" for c in EDITABLE_COLUMNS)
        present = [c for c in EDITABLE_COLUMNS if c in frame and c != "id"]
        with self._transaction() as cur:
            if if_versions:
                cur.execute(
                    "SELECT id, version FROM facilities WHERE id = ANY(%s)", (list(if_versions),)
                )
                check_versions(dict(cur.fetchall()), if_versions)
            cur.execute(
                "INSERT INTO imports (at, actor, source_name) VALUES (%s, %s, %s) "
                "RETURNING import_id",
                (at, actor, source_name),
            )
            import_row = cur.fetchone()
            import_id = import_row[0] if import_row else None
            cur.execute(
                f"CREATE TEMP TABLE _staging ON COMMIT DROP AS SELECT 0::bigint AS ord, "
                f"{editable} FROM facilities WITH NO DATA"
            )
            values = [_copy_values(frame, c) for c in EDITABLE_COLUMNS]
            with cur.copy(f"COPY _staging (ord, {editable}) FROM STDIN") as copy:
                for row in zip(range(len(frame)), *values, strict=True):
                    copy.write_row(row)
            cur.execute(
                f"CREATE TEMP TABLE _changes ON COMMIT DROP AS SELECT s.ord, s.id, "
                f"{_diff_sql(present)} AS changes "
                f"FROM _staging s JOIN facilities f ON f.id = s.id WHERE {_differs_sql(present)}"
            )
            cur.execute(
                f"UPDATE facilities f SET ({editable}) = ({staged}), updated_at = %s, "
                "version = f.version + 1 FROM _staging s JOIN _changes c ON c.id = s.id "
                "WHERE f.id = s.id",
                (at,),
            )
            updated = cur.rowcount
            new_rows = "NOT EXISTS (SELECT 1 FROM facilities f WHERE f.id = s.id)"
            cur.execute(
                "INSERT INTO facility_audit (at, actor, action, facility_id, import_id) "
                f"SELECT %s, %s, 'create', s.id, %s FROM _staging s WHERE {new_rows} "
                "ORDER BY s.ord",
                (at, actor, import_id),
            )
            cur.execute(
                f"INSERT INTO facilities ({editable}, created_at, updated_at, version) "
                f"SELECT {staged}, %s, %s, 1 FROM _staging s WHERE {new_rows} ORDER BY s.id",
                (at, at),
            )
            inserted = cur.rowcount
            cur.execute(
                "INSERT INTO facility_audit (at, actor, action, facility_id, import_id, changes) "
                "SELECT %s, %s, 'update', c.id, %s, c.changes FROM _changes c ORDER BY c.ord",
                (at, actor, import_id),
            )
            cur.execute(
                "UPDATE imports SET inserted = %s, updated = %s WHERE import_id = %s",
                (inserted, updated, import_id),
            )
        return ImportCounts(
            inserted=inserted, updated=updated, unchanged=len(frame) - inserted - updated
        )

    def _current(self, cur: psycopg.Cursor[Any], facility_id: str) -> dict[str, Any]:
        """The stored row of one facility, locked until the transaction ends."""
        query = f"SELECT {_SELECT} FROM facilities WHERE id = %s FOR UPDATE"
        cur.execute(query, (facility_id,))
        row = cur.fetchone()
        if row is None:
            raise FacilityNotFound(f"no facility with id {facility_id!r}")
        return dict(_typed(pd.DataFrame([row], columns=list(COLUMNS))).iloc[0].to_dict())

    def _write_row(
        self, cur: psycopg.Cursor[Any], row: dict[str, Any], *, at: str, version: int
    ) -> None:
        """Insert a facility row, or overwrite the stored one keeping its ``created_at``."""
        columns = [*EDITABLE_COLUMNS, "updated_at", "version"]
        values = [_to_db(row.get(c)) for c in EDITABLE_COLUMNS] + [at, version]
        names = sql.SQL(", ").join(map(sql.Identifier, columns))
        cur.execute(
            sql.SQL(
                "INSERT INTO facilities ({names}, created_at) VALUES ({marks}, %s) "
                "ON CONFLICT (id) DO UPDATE SET ({names}) = ({excluded})"
            ).format(
                names=names,
                marks=sql.SQL(", ").join(sql.Placeholder() * len(columns)),
                excluded=sql.SQL(", ").join(
                    sql.SQL("EXCLUDED.") + sql.Identifier(c) for c in columns
                ),
            ),
            [*values, at],
        )

    def create(self, facility: Facility, *, actor: str) -> Facility:
        """Add a new facility; raises :class:`VersionConflict` if the id exists."""
        at = now_utc()
        with self._transaction() as cur:
            cur.execute("SELECT 1 FROM facilities WHERE id = %s", (facility.id,))
            if cur.fetchone():
                raise VersionConflict(f"a facility with id {facility.id!r} exists already")
            self._write_row(cur, facility.to_row(), at=at, version=1)
            self._audit(cur, at, actor, "create", facility.id, None)
        return self.get(facility.id)

    def _write_one(
        self,
        facility_id: str,
        changes: dict[str, Any],
        *,
        actor: str,
        if_version: int | None,
        action: str,
    ) -> Facility:
        at = now_utc()
        with self._transaction() as cur:
            before = self._current(cur, facility_id)
            _check_version(facility_id, before["version"], if_version)
            after, diff = merged_edit(before, changes)
            if not diff:
                return facility_from_row(before)
            self._write_row(cur, after, at=at, version=int(before["version"]) + 1)
            self._audit(cur, at, actor, action, facility_id, diff)
        return self.get(facility_id)

    def delete(self, facility_id: str, *, actor: str, if_version: int | None) -> None:
        """Remove a facility; its last state stays in the audit trail."""
        at = now_utc()
        with self._transaction() as cur:
            before = self._current(cur, facility_id)
            _check_version(facility_id, before["version"], if_version)
            cur.execute("DELETE FROM facilities WHERE id = %s", (facility_id,))
            snapshot = {k: [_to_db(before[k]), None] for k in EDITABLE_COLUMNS}
            self._audit(cur, at, actor, "delete", facility_id, snapshot)

    def _audit(
        self,
        cur: psycopg.Cursor[Any],
        at: str,
        actor: str,
        action: str,
        facility_id: str,
        changes: dict[str, Any] | None,
    ) -> None:
        cur.execute(
            "INSERT INTO facility_audit (at, actor, action, facility_id, changes)"
            " VALUES (%s, %s, %s, %s, %s)",
            (at, actor, action, facility_id, Jsonb(changes, dumps=_dumps) if changes else None),
        )
