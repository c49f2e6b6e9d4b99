"""The facility store: a small interface and its embedded GeoPackage implementation.

:class:`FacilityStore` is the interface every caller uses; :class:`GeoPackageStore` keeps the
facilities in one GeoPackage file (an SQLite database any GIS opens: QGIS, GDAL, pyogrio), with

* ``facilities``: a point feature table (WGS-84, EPSG:4326) with the columns of
  :data:`geodata.schema.COLUMNS`;
* ``facility_audit``: one row per change (who, when, what: the changed fields with old and new
  values; also each staff photo added or taken down), registered as a GeoPackage attributes
  table;
* ``imports``: one row per bulk import with its counts;
* ``holiday_calendar``: the official holiday arrangements loaded with ``finder calendar load``
  (:meth:`StoreBase.load_calendar`), one row per special day, kept with the data so that every
  API worker and the command line read the same calendar.

Concurrency: the database runs in WAL mode, so readers keep reading a consistent snapshot while one
writer imports; every write is one transaction (``BEGIN IMMEDIATE``), so a failure half way leaves
the store as it was. A writer that finds the store locked (by another process or thread) waits at
most ``lock_timeout_s`` seconds in all, then raises :class:`~geodata.errors.StoreBusy`; a full
disk raises :class:`~geodata.errors.StoreFull` and a read-only file
:class:`~geodata.errors.StoreReadOnly` (all :class:`~geodata.errors.StoreUnavailable`), never a
bare ``sqlite3`` error.

Each facility has a ``version`` (its ETag): ``replace``/``patch``/``delete``
take ``if_version`` and raise :class:`~geodata.errors.VersionConflict` when someone else changed it
first. ``change_counter()`` grows with every committed write so that indexes know when to rebuild.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sqlite3
import struct
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
import pandas as pd

from geodata.entry_methods import entry_check_sql
from geodata.errors import (
    FacilityNotFound,
    PhotoNotFound,
    ReportNotFound,
    StoreBusy,
    StoreError,
    StoreFull,
    StoreReadOnly,
    StoreUnavailable,
    VersionConflict,
)
from geodata.geodesy import degrees_check_sql
from geodata.kinds import kind_check_sql
from geodata.schema import (
    COLUMNS,
    EDITABLE_COLUMNS,
    REPORT_STATUSES,
    REPORT_TYPES,
    Facility,
    Report,
)

logger = logging.getLogger(__name__)

#: Bump when the table layout changes; ``GeoPackageStore`` refuses newer files.
SCHEMA_VERSION = 1

_GPKG_APPLICATION_ID = 0x47504B47  # "GPKG"
_GPKG_USER_VERSION = 10300  # GeoPackage 1.3.0
_SRS_ID = 4326

_IDS_PER_QUERY = 5000  # below the bound-parameter limits of SQLite (32766) and PostgreSQL (65535)

_TEXT_COLUMNS = tuple(
    c for c in COLUMNS if c not in ("lon", "lat", "star_rating", "area_m2", "version")
)
_NUMERIC = {
    "lon": "REAL NOT NULL",
    "lat": "REAL NOT NULL",
    "star_rating": "INTEGER",
    "area_m2": "REAL",
    "version": "INTEGER NOT NULL",
}


class FacilityStore(Protocol):
    """What every store offers. Frames have the columns of :data:`geodata.schema.COLUMNS`."""

    def frame(self) -> pd.DataFrame:
        """Every facility, one row each, ordered by id."""
        ...

    def get(self, facility_id: str) -> Facility:
        """One facility; raises :class:`FacilityNotFound`."""
        ...

    def query(
        self,
        *,
        bbox: tuple[float, float, float, float] | None = None,
        adcode: str | None = None,
        kinds: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Facilities inside a WGS-84 bbox (minlon, minlat, maxlon, maxlat), a district, kinds."""
        ...

    def frame_of(self, ids: Sequence[str]) -> pd.DataFrame:
        """The stored facilities among ``ids`` (unknown ids are left out)."""
        ...

    def upsert_frame(
        self,
        frame: pd.DataFrame,
        *,
        actor: str,
        source_name: str = "",
        if_versions: Mapping[str, int] | None = None,
    ) -> ImportCounts:
        """Insert or update many validated rows in one transaction (see :func:`check_versions`)."""
        ...

    def create(self, facility: Facility, *, actor: str) -> Facility: ...

    def replace(self, facility: Facility, *, actor: str, if_version: int | None) -> Facility: ...

    def patch(
        self, facility_id: str, changes: dict[str, Any], *, actor: str, if_version: int | None
    ) -> Facility: ...

    def delete(self, facility_id: str, *, actor: str, if_version: int | None) -> None: ...

    def audit(self, facility_id: str | None = None, *, limit: int = 100) -> list[AuditEntry]: ...

    def change_counter(self) -> int: ...

    def identity(self) -> str:
        """Text telling this store apart from every other store on the machine (and from a
        store re-created in its place), for files derived from its contents."""
        ...

    def load_calendar(
        self, days: Iterable[tuple[dt.date, str, str]], *, source: str, actor: str
    ) -> None:
        """Replace the stored holiday calendar of every year that ``days`` has a day in."""
        ...

    def calendar_days(self) -> list[CalendarDay]:
        """The stored holiday calendar, ordered by day."""
        ...

    def report_salt(self) -> str:
        """The store's secret for keyed hashes of report sources (made with the store)."""
        ...

    def add_report(
        self, facility_id: str, type_: str, *, note: str | None, source: str, token_hash: str
    ) -> Report:
        """Keep a user's report (pending); see :class:`geodata.schema.Report`."""
        ...

    def report(self, report_id: int) -> Report:
        """One report; raises :class:`ReportNotFound`."""
        ...

    def reports(
        self,
        *,
        facility_id: str | None = None,
        status: str | None = None,
        since: dt.datetime | None = None,
        limit: int | None = 1000,
    ) -> list[Report]:
        """Reports, newest first, optionally of one facility, in one status, made (or resolved)
        since; ``limit=None`` for all of them."""
        ...

    def resolve_report(self, report_id: int, status: str, *, actor: str) -> Report:
        """Set a report's status (``confirmed`` / ``dismissed``) with who and when."""
        ...

    def add_photo(self, facility_id: str, photo: StoredPhoto, *, actor: str) -> int:
        """Keep a (re-encoded) photo of a facility; returns its number (0 is the first)."""
        ...

    def photo(self, facility_id: str, n: int, *, thumb: bool) -> bytes:
        """The JPEG bytes of photo ``n`` (or its thumbnail); raises :class:`PhotoNotFound`."""
        ...

    def delete_photo(self, facility_id: str, n: int, *, actor: str) -> None:
        """Take photo ``n`` down (its bytes go, its number stays taken); raises
        :class:`PhotoNotFound`."""
        ...

    def photos(self, facility_id: str) -> list[PhotoEntry]:
        """Every staff photo number of a facility with who added it (and removed it), in order."""
        ...

    def first_photos(self) -> dict[str, int]:
        """``{facility_id: number of its first photo}`` of the facilities with photos."""
        ...

    def add_report_photo(self, report_id: int, photo: StoredPhoto) -> bool:
        """Keep the one photo of a report (not shown with the facility); ``False`` when the
        report has its photo already; raises :class:`ReportNotFound`."""
        ...

    def report_photo(self, report_id: int, *, thumb: bool) -> bytes:
        """The JPEG bytes of a report's photo (or its thumbnail); raises :class:`PhotoNotFound`."""
        ...

    def publish_report_photo(self, report_id: int, *, actor: str) -> int:
        """Copy a report's photo as the facility's next photo; returns its number."""
        ...

    def report_counter(self) -> int:
        """A number that grows with every new report and every change of a report's status."""
        ...

    def close(self) -> None: ...


class CalendarDay(NamedTuple):
    """One stored special day: ``day`` (ISO date), ``type`` (``holiday``/``workday``), holiday
    ``name``, and the ``source`` file, ``loaded_at`` (UTC ISO) and ``actor`` of its load."""

    day: str
    type: str
    name: str
    source: str
    loaded_at: str
    actor: str


class StoredPhoto(NamedTuple):
    """A photo as stored: JPEG ``image`` and ``thumb`` (re-encoded, no metadata) and the
    image's size in pixels."""

    image: bytes
    thumb: bytes
    width: int
    height: int


class PhotoEntry(NamedTuple):
    """One staff photo number of a facility: its size, who added it and when (UTC ISO), and
    who took it down and when (``None`` while it is shown)."""

    n: int
    width: int
    height: int
    created_at: str
    actor: str
    deleted_at: str | None
    deleted_by: str | None


class ImportCounts(dict[str, int]):
    """``{"inserted": n, "updated": m}`` for one bulk write."""


class AuditEntry(dict[str, Any]):
    """One audit row: seq, at (UTC ISO), actor, action, facility_id, import_id, changes."""


def now_utc() -> str:
    """The current UTC time as an ISO 8601 string with seconds."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def point_blobs(lon: np.ndarray, lat: np.ndarray, srs_id: int = _SRS_ID) -> list[bytes]:
    """GeoPackage binary geometries (header + little-endian WKB point) for many points."""
    n = len(lon)
    rec = np.zeros(
        n,
        dtype=[
            ("magic", "S2"),
            ("ver", "u1"),
            ("flags", "u1"),
            ("srs", "<i4"),
            ("bo", "u1"),
            ("type", "<u4"),
            ("x", "<f8"),
            ("y", "<f8"),
        ],
    )
    rec["magic"] = b"GP"
    rec["flags"] = 0b00000001  # little endian, no envelope, not empty
    rec["srs"] = srs_id
    rec["bo"] = 1
    rec["type"] = 1
    rec["x"] = lon
    rec["y"] = lat
    raw = rec.tobytes()
    size = rec.dtype.itemsize
    return [raw[i * size : (i + 1) * size] for i in range(n)]


def point_from_blob(blob: bytes) -> tuple[float, float]:
    """(lon, lat) of a GeoPackage point blob written by :func:`point_blobs` or GDAL."""
    flags = blob[3]
    envelope = (0, 32, 48, 48, 64)[(flags >> 1) & 0b111]
    start = 8 + envelope
    order = "<" if blob[start] == 1 else ">"
    x, y = struct.unpack_from(order + "dd", blob, start + 5)
    return x, y


def _to_db(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, tuple | list):
        return ";".join(value)
    if value is pd.NA or value is pd.NaT:
        return None
    return value


class StoreBase(ABC):
    """What both stores share, written once in terms of each store's ``_read`` and
    ``_write_one``: reads by id / bbox / district / kind, ``replace`` and ``patch``.

    ``_MARK`` is the driver's parameter placeholder (``?`` for sqlite3, ``%s`` for psycopg).
    """

    _MARK = "?"

    @abstractmethod
    def _read(self, where: str = "", params: Sequence[Any] = ()) -> pd.DataFrame:
        """Facility rows (typed frame, ordered by id) matching a ``WHERE`` clause."""

    def frame(self) -> pd.DataFrame:
        """Every facility, ordered by id."""
        return self._read()

    def get(self, facility_id: str) -> Facility:
        """One facility by id; raises :class:`FacilityNotFound`."""
        frame = self._read(f"WHERE id = {self._MARK}", (facility_id,))
        if frame.empty:
            raise FacilityNotFound(f"no facility with id {facility_id!r}")
        return facility_from_row(frame.iloc[0].to_dict())

    def frame_of(self, ids: Sequence[str]) -> pd.DataFrame:
        """The stored facilities among ``ids`` (unknown ids are left out)."""
        unique = sorted(set(ids))
        parts = [
            self._read(f"WHERE id IN ({', '.join([self._MARK] * len(chunk))})", chunk)
            for chunk in (
                unique[i : i + _IDS_PER_QUERY] for i in range(0, len(unique), _IDS_PER_QUERY)
            )
        ]
        return pd.concat(parts, ignore_index=True) if parts else self._read("WHERE 1 = 0")

    def query(
        self,
        *,
        bbox: tuple[float, float, float, float] | None = None,
        adcode: str | None = None,
        kinds: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Facilities inside a WGS-84 bbox ``(minlon, minlat, maxlon, maxlat)``, district, kinds."""
        m = self._MARK
        clauses: list[str] = []
        params: list[Any] = []
        if bbox is not None:
            clauses.append(f"lon BETWEEN {m} AND {m} AND lat BETWEEN {m} AND {m}")
            params += [float(bbox[0]), float(bbox[2]), float(bbox[1]), float(bbox[3])]
        if adcode is not None:
            clauses.append(f"adcode = {m}")
            params.append(adcode)
        if kinds:
            clauses.append(f"kind IN ({', '.join([m] * len(kinds))})")
            params += list(kinds)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return self._read(where, params)

    @abstractmethod
    def _write_one(
        self,
        facility_id: str,
        changes: dict[str, Any],
        *,
        actor: str,
        if_version: int | None,
        action: str,
    ) -> Facility:
        """Apply ``changes`` to one facility in one transaction, checking ``if_version``."""

    def replace(self, facility: Facility, *, actor: str, if_version: int | None) -> Facility:
        """Replace every editable field of an existing facility."""
        return self._write_one(
            facility.id, facility.to_row(), actor=actor, if_version=if_version, action="replace"
        )

    def patch(
        self, facility_id: str, changes: dict[str, Any], *, actor: str, if_version: int | None
    ) -> Facility:
        """Change some fields of a facility; the result is validated as a whole."""
        refused = (set(changes) - set(EDITABLE_COLUMNS)) | ({"id"} & set(changes))
        if refused:
            raise StoreError(f"fields that cannot be patched: {sorted(refused)}")
        return self._write_one(
            facility_id, changes, actor=actor, if_version=if_version, action="patch"
        )

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Any]:
        """One write transaction that raises the change counter; yields an object with
        ``execute`` and ``executemany``."""

    def load_calendar(
        self, days: Iterable[tuple[dt.date, str, str]], *, source: str, actor: str
    ) -> None:
        """Replace the stored holiday calendar of every year that ``days`` has a day in.

        ``days`` are ``(date, type, name)`` of a validated calendar (see
        :meth:`finder.hours.HolidayCalendar.from_csv`); the other years stay as they are. One
        transaction, which raises the change counter, so API workers pick the calendar up as
        they pick up facility changes.
        """
        rows = sorted(days)
        if not rows:
            raise StoreError("a holiday calendar needs at least one day")
        m = self._MARK
        at = now_utc()
        with self._transaction() as con:
            for year in sorted({day.year for day, _, _ in rows}):
                con.execute(
                    f"DELETE FROM holiday_calendar WHERE day BETWEEN {m} AND {m}",
                    (f"{year:04d}-01-01", f"{year:04d}-12-31"),
                )
            con.executemany(
                "INSERT INTO holiday_calendar (day, type, name, source, loaded_at, actor) "
                f"VALUES ({m}, {m}, {m}, {m}, {m}, {m})",
                [(day.isoformat(), kind, name, source, at, actor) for day, kind, name in rows],
            )

    # -- user reports and photos: kept with the facilities, but not facility data (their
    # writes leave the change counter alone, so they never rebuild the facility index) ----------
    _REPORT_FIELDS = (
        "report_id",
        "facility_id",
        "type",
        "note",
        "source",
        "token_hash",
        "created_at",
        "status",
        "resolved_at",
        "resolved_by",
        "has_photo",
    )
    #: The statements that raise and read the reports' change counter (:meth:`report_counter`).
    _REPORT_COUNTER_BUMP = (
        "UPDATE store_meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'report_counter'"
    )
    _REPORT_COUNTER_READ = "SELECT value FROM store_meta WHERE key = 'report_counter'"

    @abstractmethod
    def _side_write(self) -> AbstractContextManager[Any]:
        """One write transaction that leaves the change counter alone; yields an object with
        ``execute`` (whose result has ``fetchone``)."""

    @abstractmethod
    def _audit(
        self,
        con: Any,
        at: str,
        actor: str,
        action: str,
        facility_id: str,
        changes: dict[str, Any] | None,
    ) -> None:
        """Add an audit entry inside a write (``con`` as the write yields it)."""

    @abstractmethod
    def _rows(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of one read query."""

    def _time_text(self, column: str) -> str:
        """A stored time column selected as ISO 8601 UTC text (:func:`now_utc`'s form)."""
        return column

    def _report_select(self) -> str:
        times = ("created_at", "resolved_at")
        has_photo = (
            "EXISTS (SELECT 1 FROM facility_photos p "
            "WHERE p.report_id = facility_reports.report_id) AS has_photo"
        )
        return ", ".join(
            has_photo if c == "has_photo" else self._time_text(c) if c in times else c
            for c in self._REPORT_FIELDS
        )

    def report_counter(self) -> int:
        """A number that grows with every new report and every change of a report's status (by
        any process), so that workers re-read the reports only when it moved."""
        return int(self._rows(self._REPORT_COUNTER_READ)[0][0])

    def add_report(
        self, facility_id: str, type_: str, *, note: str | None, source: str, token_hash: str
    ) -> Report:
        """Keep a user's report, pending; the store does not check that the facility exists."""
        m = self._MARK
        with self._side_write() as con:
            row = con.execute(
                "INSERT INTO facility_reports (facility_id, type, note, source, token_hash, "
                f"created_at) VALUES ({m}, {m}, {m}, {m}, {m}, {m}) RETURNING report_id",
                (facility_id, type_, note, source, token_hash, now_utc()),
            ).fetchone()
            con.execute(self._REPORT_COUNTER_BUMP)
        return self.report(int(row[0]))

    def report(self, report_id: int) -> Report:
        """One report; raises :class:`ReportNotFound`."""
        rows = self._rows(
            f"SELECT {self._report_select()} FROM facility_reports WHERE report_id = {self._MARK}",
            (int(report_id),),
        )
        if not rows:
            raise ReportNotFound(f"no report {report_id}")
        return self._report(rows[0])

    def reports(
        self,
        *,
        facility_id: str | None = None,
        status: str | None = None,
        since: dt.datetime | None = None,
        limit: int | None = 1000,
    ) -> list[Report]:
        """Reports, newest first, optionally of one facility, in one status, made (or resolved)
        since ``since`` (timezone-aware); ``limit=None`` for all of them."""
        m = self._MARK
        clauses: list[str] = []
        params: list[Any] = []
        if facility_id is not None:
            clauses.append(f"facility_id = {m}")
            params.append(facility_id)
        if status is not None:
            clauses.append(f"status = {m}")
            params.append(status)
        if since is not None:
            clauses.append(f"(created_at >= {m} OR resolved_at >= {m})")
            params += [since.astimezone(dt.UTC).isoformat(timespec="seconds")] * 2
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        if limit is not None:
            where += f" ORDER BY report_id DESC LIMIT {m}"
            params.append(int(limit))
        else:
            where += " ORDER BY report_id DESC"
        rows = self._rows(f"SELECT {self._report_select()} FROM facility_reports {where}", params)
        return [self._report(row) for row in rows]

    def resolve_report(self, report_id: int, status: str, *, actor: str) -> Report:
        """Set a report's status (``confirmed`` / ``dismissed``, or back to ``pending``) with
        who and when; raises :class:`ReportNotFound`."""
        if status not in REPORT_STATUSES:
            raise StoreError(f"unknown report status {status!r}")
        m = self._MARK
        pending = status == "pending"
        with self._side_write() as con:
            row = con.execute(
                f"UPDATE facility_reports SET status = {m}, resolved_at = {m}, resolved_by = {m} "
                f"WHERE report_id = {m} RETURNING report_id",
                (status, None if pending else now_utc(), None if pending else actor, report_id),
            ).fetchone()
            con.execute(self._REPORT_COUNTER_BUMP)
        if row is None:
            raise ReportNotFound(f"no report {report_id}")
        return self.report(report_id)

    def _report(self, row: Sequence[Any]) -> Report:
        values = dict(zip(self._REPORT_FIELDS, row, strict=True))
        for key in ("created_at", "resolved_at"):
            if values[key] is not None:
                values[key] = dt.datetime.fromisoformat(str(values[key]))
        return Report.model_validate(values)

    # A report's photo is a row of ``facility_photos`` with its ``report_id``: the same table,
    # encoding and reads as staff's photos, left out of the facility's photos until staff
    # publish a copy (:meth:`publish_report_photo`). A staff photo's number is its place among
    # the facility's staff photo rows (oldest first); a photo taken down keeps its row, without
    # its bytes and with who and when (:meth:`delete_photo`), so no number ever moves or names
    # another photo.
    _STAFF_PHOTO = "report_id IS NULL"
    #: Numbers a photo may have (a 64-bit OFFSET); any other names no photo.
    _PHOTO_NUMBERS = range(2**63)

    def add_photo(self, facility_id: str, photo: StoredPhoto, *, actor: str) -> int:
        """Keep a photo of a facility (already re-encoded); returns its number (0: the first)."""
        m = self._MARK
        at = now_utc()
        with self._side_write() as con:
            con.execute(
                "INSERT INTO facility_photos (facility_id, image, thumb, width, height, "
                f"created_at, actor) VALUES ({m}, {m}, {m}, {m}, {m}, {m}, {m})",
                (facility_id, photo.image, photo.thumb, photo.width, photo.height, at, actor),
            )
            return self._photo_added(con, at, actor, facility_id)

    def _photo_added(self, con: Any, at: str, actor: str, facility_id: str) -> int:
        """The number of the facility's newest staff photo (just added, inside its write), with
        its audit entry (``photo_add``, ``{"photo": [None, n]}``)."""
        row = con.execute(
            f"SELECT count(*) FROM facility_photos WHERE facility_id = {self._MARK} "
            f"AND {self._STAFF_PHOTO}",
            (facility_id,),
        ).fetchone()
        n = int(row[0]) - 1
        self._audit(con, at, actor, "photo_add", facility_id, {"photo": [None, n]})
        return n

    def photo(self, facility_id: str, n: int, *, thumb: bool) -> bytes:
        """The JPEG bytes of photo ``n`` (0: the first) or its thumbnail; raises
        :class:`PhotoNotFound` for a number never given or taken down."""
        column = "thumb" if thumb else "image"
        m = self._MARK
        rows = (
            self._rows(
                f"SELECT {column} FROM facility_photos WHERE facility_id = {m} "
                f"AND {self._STAFF_PHOTO} AND deleted_at IS NULL AND photo_id = (SELECT photo_id "
                f"FROM facility_photos WHERE facility_id = {m} AND {self._STAFF_PHOTO} "
                f"ORDER BY photo_id LIMIT 1 OFFSET {m})",
                (facility_id, facility_id, int(n)),
            )
            if n in self._PHOTO_NUMBERS
            else []
        )
        if not rows:
            raise PhotoNotFound(f"facility {facility_id!r} has no photo {n}")
        return bytes(rows[0][0])

    def delete_photo(self, facility_id: str, n: int, *, actor: str) -> None:
        """Take photo ``n`` of a facility down: its image and thumbnail are erased, its row
        keeps who added it and now who took it down and when, and its number stays taken (the
        later photos keep theirs). Raises :class:`PhotoNotFound` for a number never given or
        already taken down."""
        m = self._MARK
        row = None
        at = now_utc()
        if n in self._PHOTO_NUMBERS:
            with self._side_write() as con:
                row = con.execute(
                    f"UPDATE facility_photos SET image = {m}, thumb = {m}, deleted_at = {m}, "
                    f"deleted_by = {m} WHERE deleted_at IS NULL AND photo_id = (SELECT photo_id "
                    f"FROM facility_photos WHERE facility_id = {m} AND {self._STAFF_PHOTO} "
                    f"ORDER BY photo_id LIMIT 1 OFFSET {m}) RETURNING photo_id",
                    (b"", b"", at, actor, facility_id, int(n)),
                ).fetchone()
                if row is not None:
                    self._audit(con, at, actor, "photo_delete", facility_id, {"photo": [n, None]})
        if row is None:
            raise PhotoNotFound(f"facility {facility_id!r} has no photo {n}")

    def photos(self, facility_id: str) -> list[PhotoEntry]:
        """Every staff photo number of a facility, in order: its size, who added it and when,
        and who took it down and when (``None`` while it is shown)."""
        rows = self._rows(
            "SELECT row_number() OVER (ORDER BY photo_id) - 1, width, height, "
            f"{self._time_text('created_at')}, actor, {self._time_text('deleted_at')}, "
            f"deleted_by FROM facility_photos WHERE facility_id = {self._MARK} "
            f"AND {self._STAFF_PHOTO} ORDER BY photo_id",
            (facility_id,),
        )
        return [
            PhotoEntry(
                int(n),
                int(w),
                int(h),
                str(at),
                str(actor),
                None if gone is None else str(gone),
                None if by is None else str(by),
            )
            for n, w, h, at, actor, gone, by in rows
        ]

    def first_photos(self) -> dict[str, int]:
        """``{facility_id: number of its first photo still shown}`` of the facilities with
        photos (what popups show)."""
        rows = self._rows(
            "SELECT facility_id, min(n) FROM (SELECT facility_id, deleted_at, row_number() "
            "OVER (PARTITION BY facility_id ORDER BY photo_id) - 1 AS n FROM facility_photos "
            f"WHERE {self._STAFF_PHOTO}) numbered WHERE deleted_at IS NULL GROUP BY facility_id"
        )
        return {str(fid): int(n) for fid, n in rows}

    def add_report_photo(self, report_id: int, photo: StoredPhoto) -> bool:
        """Keep the one photo of a report (already re-encoded), apart from the facility's
        photos; ``False`` when the report has its photo already. Raises
        :class:`ReportNotFound`."""
        m = self._MARK
        with self._side_write() as con:
            row = con.execute(
                "INSERT INTO facility_photos (facility_id, image, thumb, width, height, "
                f"created_at, actor, report_id) SELECT facility_id, {m}, {m}, {m}, {m}, {m}, "
                f"'reporter', report_id FROM facility_reports r WHERE r.report_id = {m} "
                "AND NOT EXISTS (SELECT 1 FROM facility_photos p "
                "WHERE p.report_id = r.report_id) RETURNING photo_id",
                (photo.image, photo.thumb, photo.width, photo.height, now_utc(), int(report_id)),
            ).fetchone()
        if row is None:
            self.report(report_id)  # ReportNotFound when there is no such report
        return row is not None

    def report_photo(self, report_id: int, *, thumb: bool) -> bytes:
        """The JPEG bytes of a report's photo or its thumbnail."""
        column = "thumb" if thumb else "image"
        rows = self._rows(
            f"SELECT {column} FROM facility_photos WHERE report_id = {self._MARK}",
            (int(report_id),),
        )
        if not rows:
            raise PhotoNotFound(f"report {report_id} has no photo")
        return bytes(rows[0][0])

    def publish_report_photo(self, report_id: int, *, actor: str) -> int:
        """Copy a report's photo as its facility's next photo (shown to whoever may see the
        facility); returns the photo's number. Raises :class:`PhotoNotFound`."""
        m = self._MARK
        at = now_utc()
        with self._side_write() as con:
            row = con.execute(
                "INSERT INTO facility_photos (facility_id, image, thumb, width, height, "
                "created_at, actor) SELECT facility_id, image, thumb, width, height, "
                f"{m}, {m} FROM facility_photos WHERE report_id = {m} RETURNING facility_id",
                (at, actor, int(report_id)),
            ).fetchone()
            if row is None:
                raise PhotoNotFound(f"report {report_id} has no photo")
            return self._photo_added(con, at, actor, str(row[0]))


def merged_edit(
    before: dict[str, Any], changes: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """The validated row after applying ``changes`` to ``before``, and the field diff.

    Raises pydantic's ``ValidationError`` (a ``ValueError``) when the result is not a valid
    facility, e.g. access ``employees`` without an organisation.
    """
    merged = {k: before[k] for k in EDITABLE_COLUMNS} | {
        k: v for k, v in changes.items() if k in EDITABLE_COLUMNS
    }
    after = Facility.model_validate(_clean_row(merged)).to_row()
    return after, field_diff(before, after)


#: SQLite primary result codes (``sqlite_errorcode & 0xFF``) of a store that cannot answer now.
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY, _SQLITE_FULL = 5, 6, 8, 13


def sqlite_failure(exc: sqlite3.OperationalError, path: Path, lock_timeout_s: float) -> StoreError:
    """The store error of an SQLite failure: locked, full, read-only or otherwise unavailable."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return StoreBusy(
            f"{path} stayed locked by another writer for {lock_timeout_s:g} s: {exc}",
            retry_after_s=max(1, round(lock_timeout_s)),
        )
    if code == _SQLITE_FULL:
        return StoreFull(f"{path}: the disk is full: {exc}", retry_after_s=60)
    if code == _SQLITE_READONLY:
        return StoreReadOnly(f"{path} is read-only: {exc}", retry_after_s=60)
    return StoreUnavailable(f"{path} cannot be used: {exc}")


class GeoPackageStore(StoreBase):
    """Facilities in a GeoPackage file. Open with :meth:`open`; thread-safe; one writer at a time.

    Parameters
    ----------
    path
        The ``.gpkg`` file; created with the schema when it does not exist.
    lock_timeout_s
        Longest wait of a write for the store's write lock (held by another process's or
        thread's write), seconds; then :class:`~geodata.errors.StoreBusy` is raised.

    Raises
    ------
    StoreUnavailable
        When the file cannot be opened (or created).
    """

    def __init__(self, path: str | Path, *, lock_timeout_s: float = 5.0) -> None:
        self.path = Path(path)
        self.lock_timeout_s = lock_timeout_s
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connection() as con:
            self._ensure_schema(con)
            self._ensure_calendar_table(con)
            self._ensure_entry_columns(con)
            self._ensure_report_tables(con)
            self._ensure_report_photos(con)
            self._ensure_photo_removal(con)

    # -- connections ---------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self.path.exists() and not os.access(self.path.parent, os.W_OK):
            # A read-only directory or file system: SQLite cannot make the WAL files, so read
            # the file as it is (nobody can change it); writes raise StoreReadOnly.
            logger.warning("%s is read-only: serving it, refusing writes", self.path)
            uri = f"{self.path.resolve().as_uri()}?immutable=1"
            return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        con = sqlite3.connect(
            self.path, timeout=self.lock_timeout_s, isolation_level=None, check_same_thread=False
        )
        con.execute(f"PRAGMA busy_timeout = {round(self.lock_timeout_s * 1000)}")  # as _writing
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.execute("PRAGMA cache_size=-262144")
        con.execute("PRAGMA temp_store=MEMORY")
        con.execute("PRAGMA foreign_keys=ON")
        return con

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection; SQLite failures leave as :class:`StoreError` subclasses."""
        try:
            con: sqlite3.Connection | None = getattr(self._local, "con", None)
            if con is None:
                con = self._connect()
                self._local.con = con
                with self._all_lock:
                    self._all.append(con)
            yield con
        except sqlite3.OperationalError as exc:
            raise sqlite_failure(exc, self.path, self.lock_timeout_s) from exc

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """One write transaction that raises the change counter (see :meth:`_writing`)."""
        return self._writing(counted=True)

    def _side_write(self) -> AbstractContextManager[sqlite3.Connection]:
        """One write transaction that leaves the change counter alone (reports, photos)."""
        return self._writing(counted=False)

    def _rows(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._connection() as con:
            return con.execute(query, params).fetchall()

    def report_salt(self) -> str:
        """The store's secret for keyed hashes of report sources (made with the store)."""
        return str(self._rows("SELECT value FROM store_meta WHERE key = 'report_salt'")[0][0])

    @contextmanager
    def _writing(self, *, counted: bool) -> Iterator[sqlite3.Connection]:
        """One write transaction (in :meth:`_write_turn`); ``counted`` raises the change
        counter with it."""
        with self._write_turn() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
                if counted:
                    con.execute(
                        "UPDATE store_meta SET value = CAST(value AS INTEGER) + 1 "
                        "WHERE key = 'change_counter'"
                    )
                con.execute("COMMIT")
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise

    @contextmanager
    def _write_turn(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection for writing, after waiting at most ``lock_timeout_s`` for
        the writers' turn (this process's other writers, then SQLite's lock): each statement
        run on it outside a transaction is one (see :meth:`_writing`)."""
        started = time.monotonic()
        if not self._write_lock.acquire(timeout=self.lock_timeout_s):
            raise StoreBusy(
                f"{self.path} stayed locked by another write of this process for "
                f"{self.lock_timeout_s:g} s",
                retry_after_s=max(1, round(self.lock_timeout_s)),
            )
        try:
            with self._connection() as con:
                full_ms = round(self.lock_timeout_s * 1000)  # the connection's own
                left_ms = max(0, round((self.lock_timeout_s - time.monotonic() + started) * 1000))
                shortened = left_ms < full_ms  # waited for this process's other writers
                if shortened:
                    con.execute(f"PRAGMA busy_timeout = {left_ms}")
                try:
                    yield con
                finally:
                    if shortened:
                        con.execute(f"PRAGMA busy_timeout = {full_ms}")
        finally:
            self._write_lock.release()

    def close(self) -> None:
        """Close every connection this store opened."""
        with self._all_lock:
            for con in self._all:
                con.close()
            self._all.clear()
        self._local = threading.local()

    # -- schema --------------------------------------------------------------------------------
    def _ensure_schema(self, con: sqlite3.Connection) -> None:
        exists = con.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='store_meta'"
        ).fetchone()
        if exists:
            row = con.execute("SELECT value FROM store_meta WHERE key='schema_version'").fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has schema version {version}; this program knows "
                    f"{SCHEMA_VERSION}: upgrade the program"
                )
            return
        cols = ",\n  ".join(
            f'"{c}" {_NUMERIC[c]}' if c in _NUMERIC else f'"{c}" TEXT' for c in COLUMNS if c != "id"
        )
        con.executescript(
            f"""
            PRAGMA application_id = {_GPKG_APPLICATION_ID};
            PRAGMA user_version = {_GPKG_USER_VERSION};
            BEGIN;
            CREATE TABLE IF NOT EXISTS gpkg_spatial_ref_sys (
              srs_name TEXT NOT NULL, srs_id INTEGER PRIMARY KEY,
              organization TEXT NOT NULL, organization_coordsys_id INTEGER NOT NULL,
              definition TEXT NOT NULL, description TEXT);
            INSERT OR IGNORE INTO gpkg_spatial_ref_sys VALUES
              ('Undefined cartesian SRS', -1, 'NONE', -1, 'undefined', NULL),
              ('Undefined geographic SRS', 0, 'NONE', 0, 'undefined', NULL),
              ('WGS 84 geodetic', 4326, 'EPSG', 4326,
               'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563,'
               || 'AUTHORITY["EPSG","7030"]],AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0,'
               || 'AUTHORITY["EPSG","8901"]],UNIT["degree",0.0174532925199433,'
               || 'AUTHORITY["EPSG","9122"]],AXIS["Latitude",NORTH],AXIS["Longitude",EAST],'
               || 'AUTHORITY["EPSG","4326"]]', 'longitude/latitude on the WGS 84 ellipsoid');
            CREATE TABLE IF NOT EXISTS gpkg_contents (
              table_name TEXT NOT NULL PRIMARY KEY, data_type TEXT NOT NULL,
              identifier TEXT UNIQUE, description TEXT DEFAULT '',
              last_change DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
              min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, max_y DOUBLE, srs_id INTEGER,
              CONSTRAINT fk_gc_r_srs_id FOREIGN KEY (srs_id)
                REFERENCES gpkg_spatial_ref_sys(srs_id));
            CREATE TABLE IF NOT EXISTS gpkg_geometry_columns (
              table_name TEXT NOT NULL, column_name TEXT NOT NULL,
              geometry_type_name TEXT NOT NULL, srs_id INTEGER NOT NULL,
              z TINYINT NOT NULL, m TINYINT NOT NULL,
              CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name),
              CONSTRAINT fk_gc_tn FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name),
              CONSTRAINT fk_gc_srs FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys(srs_id));
            CREATE TABLE facilities (
              fid INTEGER PRIMARY KEY AUTOINCREMENT,
              geom BLOB NOT NULL,
              "id" TEXT NOT NULL UNIQUE,
              {cols},
              CHECK ({degrees_check_sql()}),
              CHECK ({kind_check_sql()}),
              CHECK (access IN ('public','members','employees')),
              CHECK (status IN ('open','temporarily_closed','closed')),
              CHECK (star_rating IS NULL OR star_rating BETWEEN 1 AND 5),
              CHECK (access <> 'employees' OR organization IS NOT NULL),
              CHECK ({entry_check_sql()}));
            CREATE INDEX facilities_adcode ON facilities(adcode);
            CREATE INDEX facilities_lonlat ON facilities(lon, lat);
            CREATE TABLE facility_audit (
              seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, actor TEXT NOT NULL,
              action TEXT NOT NULL, facility_id TEXT NOT NULL, import_id INTEGER,
              changes TEXT);
            CREATE INDEX facility_audit_id ON facility_audit(facility_id);
            CREATE TABLE imports (
              import_id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL,
              actor TEXT NOT NULL, source_name TEXT, inserted INTEGER, updated INTEGER);
            CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            INSERT INTO store_meta VALUES ('schema_version', '{SCHEMA_VERSION}'),
                                          ('change_counter', '0');
            INSERT INTO gpkg_contents (table_name, data_type, identifier, description, srs_id)
              VALUES ('facilities', 'features', 'facilities',
                      'Trade-union facilities (WGS-84)', {_SRS_ID}),
                     ('facility_audit', 'attributes', 'facility_audit',
                      'Audit trail of facility changes', NULL),
                     ('imports', 'attributes', 'imports', 'Bulk imports', NULL);
            INSERT INTO gpkg_geometry_columns VALUES
              ('facilities', 'geom', 'POINT', {_SRS_ID}, 0, 0);
            COMMIT;
            """
        )
        # The GeoPackage header fields live in the main file: write them out of the WAL now.
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _ensure_calendar_table(self, con: sqlite3.Connection) -> None:
        """Add the ``holiday_calendar`` table (an attributes table) to a store without it."""
        if con.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='holiday_calendar'"
        ).fetchone():
            return
        con.executescript(
            """
            BEGIN;
            CREATE TABLE IF NOT EXISTS holiday_calendar (
              day TEXT PRIMARY KEY, type TEXT NOT NULL CHECK (type IN ('holiday','workday')),
              name TEXT NOT NULL, source TEXT NOT NULL, loaded_at TEXT NOT NULL,
              actor TEXT NOT NULL);
            INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description)
              VALUES ('holiday_calendar', 'attributes', 'holiday_calendar',
                      'Official holiday arrangements loaded with finder calendar load');
            COMMIT;
            """
        )

    def _ensure_entry_columns(self, con: sqlite3.Connection) -> None:
        """Add the how-to-get-in columns (``entry_*``) to a store made before them."""
        have = {row[1] for row in con.execute("PRAGMA table_info(facilities)")}
        if "entry_method" in have:
            return
        con.executescript(
            f"""
            BEGIN;
            ALTER TABLE facilities ADD COLUMN entry_method TEXT CHECK ({entry_check_sql()});
            ALTER TABLE facilities ADD COLUMN entry_phone TEXT;
            ALTER TABLE facilities ADD COLUMN entry_note TEXT;
            COMMIT;
            """
        )

    def _ensure_report_tables(self, con: sqlite3.Connection) -> None:
        """Add the users' reports and the photos (attributes tables) to a store without them."""
        if con.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='facility_reports'"
        ).fetchone():
            return
        types = ", ".join(f"'{t}'" for t in REPORT_TYPES)
        statuses = ", ".join(f"'{t}'" for t in REPORT_STATUSES)
        con.executescript(
            f"""
            BEGIN;
            CREATE TABLE IF NOT EXISTS facility_reports (
              report_id INTEGER PRIMARY KEY AUTOINCREMENT, facility_id TEXT NOT NULL,
              type TEXT NOT NULL CHECK (type IN ({types})), note TEXT,
              source TEXT NOT NULL, token_hash TEXT NOT NULL, created_at TEXT NOT NULL,
              status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ({statuses})),
              resolved_at TEXT, resolved_by TEXT);
            CREATE INDEX IF NOT EXISTS facility_reports_facility
              ON facility_reports(facility_id, created_at);
            CREATE INDEX IF NOT EXISTS facility_reports_created ON facility_reports(created_at);
            CREATE TABLE IF NOT EXISTS facility_photos (
              photo_id INTEGER PRIMARY KEY AUTOINCREMENT, facility_id TEXT NOT NULL,
              image BLOB NOT NULL, thumb BLOB NOT NULL, width INTEGER NOT NULL,
              height INTEGER NOT NULL, created_at TEXT NOT NULL, actor TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS facility_photos_facility
              ON facility_photos(facility_id, photo_id);
            INSERT OR IGNORE INTO store_meta VALUES ('report_salt', lower(hex(randomblob(32))));
            INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description)
              VALUES ('facility_reports', 'attributes', 'facility_reports',
                      'Users reports about facilities'),
                     ('facility_photos', 'attributes', 'facility_photos',
                      'Photos of facilities (JPEG, metadata stripped)');
            COMMIT;
            """
        )

    def _ensure_report_photos(self, con: sqlite3.Connection) -> None:
        """Add the reports' photos (``facility_photos.report_id``) and the reports' change
        counter to a store without them."""
        have = {row[1] for row in con.execute("PRAGMA table_info(facility_photos)")}
        if "report_id" in have:
            return
        con.executescript(
            """
            BEGIN;
            ALTER TABLE facility_photos ADD COLUMN report_id INTEGER
              REFERENCES facility_reports(report_id) ON DELETE CASCADE;
            CREATE UNIQUE INDEX IF NOT EXISTS facility_photos_report
              ON facility_photos(report_id) WHERE report_id IS NOT NULL;
            INSERT OR IGNORE INTO store_meta VALUES ('report_counter', '0');
            COMMIT;
            """
        )

    def _ensure_photo_removal(self, con: sqlite3.Connection) -> None:
        """Add who took a photo down and when (``facility_photos.deleted_at`` / ``deleted_by``)
        to a store without them."""
        have = {row[1] for row in con.execute("PRAGMA table_info(facility_photos)")}
        if "deleted_at" in have:
            return
        con.executescript(
            """
            BEGIN;
            ALTER TABLE facility_photos ADD COLUMN deleted_at TEXT;
            ALTER TABLE facility_photos ADD COLUMN deleted_by TEXT;
            COMMIT;
            """
        )

    # -- reads ---------------------------------------------------------------------------------
    def calendar_days(self) -> list[CalendarDay]:
        """The stored holiday calendar, ordered by day."""
        with self._connection() as con:
            rows = con.execute(
                "SELECT day, type, name, source, loaded_at, actor FROM holiday_calendar "
                "ORDER BY day"
            ).fetchall()
        return [CalendarDay(*row) for row in rows]

    def _read(self, where: str = "", params: Sequence[Any] = ()) -> pd.DataFrame:
        cols = ", ".join(f'"{c}"' for c in COLUMNS)
        with self._connection() as con:
            cur = con.execute(f"SELECT {cols} FROM facilities {where} ORDER BY id", params)
            rows = cur.fetchall()
        frame = pd.DataFrame.from_records(rows, columns=list(COLUMNS))
        return _typed(frame)

    def change_counter(self) -> int:
        """A number that grows with every committed write (by any process)."""
        with self._connection() as con:
            row = con.execute("SELECT value FROM store_meta WHERE key='change_counter'").fetchone()
        return int(row[0])

    def identity(self) -> str:
        """The GeoPackage file: its resolved path, device and inode."""
        st = self.path.stat()
        return f"gpkg:{self.path.resolve()}:{st.st_dev}:{st.st_ino}"

    def audit(self, facility_id: str | None = None, *, limit: int = 100) -> list[AuditEntry]:
        """The newest audit entries, newest first, optionally for one facility."""
        sql = "SELECT seq, at, actor, action, facility_id, import_id, changes FROM facility_audit"
        params: tuple[Any, ...] = ()
        if facility_id is not None:
            sql += " WHERE facility_id = ?"
            params = (facility_id,)
        sql += " ORDER BY seq DESC LIMIT ?"
        with self._connection() as con:
            rows = con.execute(sql, (*params, limit)).fetchall()
        keys = ("seq", "at", "actor", "action", "facility_id", "import_id", "changes")
        out = []
        for row in rows:
            entry = AuditEntry(zip(keys, row, strict=True))
            entry["changes"] = json.loads(entry["changes"]) if entry["changes"] else None
            out.append(entry)
        return out

    # -- writes --------------------------------------------------------------------------------
    def upsert_frame(
        self,
        frame: pd.DataFrame,
        *,
        actor: str,
        source_name: str = "",
        if_versions: Mapping[str, int] | None = None,
    ) -> ImportCounts:
        """Insert new ids and update existing ones, all in one transaction.

        ``frame`` must be validated already (see :mod:`geodata.imports`) and have unique ids.
        Updated rows get ``version + 1`` and an audit entry with the changed fields; new rows an
        ``import`` audit entry. Raises :class:`StoreError` if the database refuses a row, and
        :class:`VersionConflict` if a facility of ``if_versions`` is not at its version there
        (see :func:`check_versions`); then nothing is written.
        """
        if frame["id"].duplicated().any():
            raise StoreError("upsert_frame needs unique ids")
        at = now_utc()
        with self._transaction() as con:
            cur = con.execute(
                "INSERT INTO imports (at, actor, source_name) VALUES (?, ?, ?)",
                (at, actor, source_name),
            )
            import_id = cur.lastrowid
            existing = self._existing(con, frame["id"].tolist())
            check_versions(dict(zip(existing["id"], existing["version"], strict=True)), if_versions)
            is_new = ~frame["id"].isin(existing.index)
            new = frame[is_new]
            old = frame[~is_new]
            self._insert_rows(con, new, at=at, version=np.ones(len(new), dtype=np.int64))
            audit: list[tuple[Any, ...]] = [
                (at, actor, "create", fid, import_id, None) for fid in new["id"].tolist()
            ]
            if len(old):
                before = existing.loc[old["id"].tolist()]
                changed_rows = []
                for after_row, (_, before_row) in zip(
                    old.to_dict("records"), before.iterrows(), strict=True
                ):
                    diff = field_diff(before_row.to_dict(), after_row)
                    if diff:
                        changed_rows.append(after_row)
                        audit.append(
                            (
                                at,
                                actor,
                                "update",
                                after_row["id"],
                                import_id,
                                json.dumps(diff, ensure_ascii=False, default=str),
                            )
                        )
                if changed_rows:
                    changed = pd.DataFrame(changed_rows, columns=old.columns)
                    ids = changed["id"].tolist()
                    con.executemany("DELETE FROM facilities WHERE id = ?", [(i,) for i in ids])
                    prev = existing.loc[ids]
                    changed = changed.assign(created_at=prev["created_at"].to_numpy())
                    self._insert_rows(
                        con,
                        changed,
                        at=at,
                        version=prev["version"].to_numpy(np.int64) + 1,
                        keep_created=True,
                    )
                    updated = len(changed_rows)
                else:
                    updated = 0
            else:
                updated = 0
            con.executemany(
                "INSERT INTO facility_audit (at, actor, action, facility_id, import_id, changes)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                audit,
            )
            con.execute(
                "UPDATE imports SET inserted = ?, updated = ? WHERE import_id = ?",
                (len(new), updated, import_id),
            )
            self._touch_contents(con)
        return ImportCounts(inserted=len(new), updated=updated, unchanged=len(old) - updated)

    def copy_frame(self, frame: pd.DataFrame, *, actor: str, source_name: str = "") -> None:
        """Add facilities as another store holds them, keeping each ``version`` and
        ``created_at`` (an export: re-importing it checks the versions; see
        :func:`geodata.imports.import_file`). Raises :class:`StoreError` for an id that exists.
        """
        at = now_utc()
        with self._transaction() as con:
            con.execute(
                "INSERT INTO imports (at, actor, source_name, inserted, updated) "
                "VALUES (?, ?, ?, ?, 0)",
                (at, actor, source_name, len(frame)),
            )
            versions = frame["version"].to_numpy(np.int64)
            self._insert_rows(con, frame, at=at, version=versions, keep_created=True)
            self._touch_contents(con)

    def _existing(self, con: sqlite3.Connection, ids: list[str]) -> pd.DataFrame:
        cols = ", ".join(f'"{c}"' for c in COLUMNS)
        if con.execute("SELECT 1 FROM facilities LIMIT 1").fetchone() is None:
            empty = pd.DataFrame(columns=list(COLUMNS))
            return _typed(empty).set_index("id", drop=False)
        con.execute("CREATE TEMP TABLE IF NOT EXISTS _ids (id TEXT PRIMARY KEY)")
        con.execute("DELETE FROM _ids")
        con.executemany("INSERT OR IGNORE INTO _ids VALUES (?)", [(i,) for i in ids])
        rows = con.execute(
            f"SELECT {cols} FROM facilities WHERE id IN (SELECT id FROM _ids)"
        ).fetchall()
        con.execute("DELETE FROM _ids")
        return _typed(pd.DataFrame.from_records(rows, columns=list(COLUMNS))).set_index(
            "id", drop=False
        )

    def _insert_rows(
        self,
        con: sqlite3.Connection,
        frame: pd.DataFrame,
        *,
        at: str,
        version: np.ndarray,
        keep_created: bool = False,
    ) -> None:
        if frame.empty:
            return
        n = len(frame)
        values: dict[str, list[Any]] = {}
        for col in EDITABLE_COLUMNS:
            if col not in frame:
                values[col] = [None] * n
            elif col == "star_rating":
                values[col] = [None if pd.isna(v) else int(v) for v in frame[col]]
            elif col in ("verified_at",):
                values[col] = [_to_db(v) for v in frame[col]]
            else:
                values[col] = frame[col].to_numpy(dtype=object, na_value=None).tolist()
        values["amenities"] = [v or "" for v in values["amenities"]]
        values["created_at"] = (
            [_to_db(v) for v in frame["created_at"]] if keep_created else [at] * n
        )
        values["updated_at"] = [at] * n
        values["version"] = np.asarray(version, dtype=np.int64).tolist()
        records = list(zip(*(values[c] for c in COLUMNS), strict=True))
        geoms = point_blobs(frame["lon"].to_numpy(float), frame["lat"].to_numpy(float))
        cols = ", ".join(f'"{c}"' for c in COLUMNS)
        marks = ", ".join("?" * (len(COLUMNS) + 1))
        try:
            con.executemany(
                f"INSERT INTO facilities (geom, {cols}) VALUES ({marks})",
                [(g, *r) for g, r in zip(geoms, records, strict=True)],
            )
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"the store refused a row: {exc}") from exc

    def _touch_contents(self, con: sqlite3.Connection) -> None:
        con.execute(
            "UPDATE gpkg_contents SET last_change = strftime('%Y-%m-%dT%H:%M:%fZ','now'), "
            "min_x = (SELECT min(lon) FROM facilities), min_y = (SELECT min(lat) FROM facilities),"
            " max_x = (SELECT max(lon) FROM facilities), max_y = (SELECT max(lat) FROM facilities)"
            " WHERE table_name = 'facilities'"
        )

    def _current(self, con: sqlite3.Connection, facility_id: str) -> dict[str, Any]:
        cols = ", ".join(f'"{c}"' for c in COLUMNS)
        row = con.execute(f"SELECT {cols} FROM facilities WHERE id = ?", (facility_id,)).fetchone()
        if row is None:
            raise FacilityNotFound(f"no facility with id {facility_id!r}")
        record: dict[str, Any] = (
            _typed(pd.DataFrame([row], columns=list(COLUMNS))).iloc[0].to_dict()
        )
        return record

    def create(self, facility: Facility, *, actor: str) -> Facility:
        """Add a new facility; raises :class:`VersionConflict` if the id exists."""
        at = now_utc()
        with self._transaction() as con:
            if con.execute("SELECT 1 FROM facilities WHERE id = ?", (facility.id,)).fetchone():
                raise VersionConflict(f"a facility with id {facility.id!r} exists already")
            frame = pd.DataFrame([facility.to_row()])
            self._insert_rows(con, frame, at=at, version=np.array([1]))
            self._audit(con, at, actor, "create", facility.id, None)
            self._touch_contents(con)
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
        with self._transaction() as con:
            before = self._current(con, facility_id)
            _check_version(facility_id, before["version"], if_version)
            after, diff = merged_edit(before, changes)
            if not diff:
                return facility_from_row(before)
            con.execute("DELETE FROM facilities WHERE id = ?", (facility_id,))
            frame = pd.DataFrame([after]).assign(created_at=before["created_at"])
            self._insert_rows(
                con, frame, at=at, version=np.array([before["version"] + 1]), keep_created=True
            )
            self._audit(con, at, actor, action, facility_id, diff)
            self._touch_contents(con)
        return self.get(facility_id)

    def delete(self, facility_id: str, *, actor: str, if_version: int | None) -> None:
        """Remove a facility; its last state stays in the audit trail."""
        at = now_utc()
        with self._transaction() as con:
            before = self._current(con, facility_id)
            _check_version(facility_id, before["version"], if_version)
            con.execute("DELETE FROM facilities WHERE id = ?", (facility_id,))
            snapshot = {k: [_to_db(before[k]), None] for k in EDITABLE_COLUMNS}
            self._audit(con, at, actor, "delete", facility_id, snapshot)
            self._touch_contents(con)

    def _audit(
        self,
        con: sqlite3.Connection,
        at: str,
        actor: str,
        action: str,
        facility_id: str,
        changes: dict[str, Any] | None,
    ) -> None:
        con.execute(
            "INSERT INTO facility_audit (at, actor, action, facility_id, changes)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                at,
                actor,
                action,
                facility_id,
                json.dumps(changes, ensure_ascii=False, default=str) if changes else None,
            ),
        )


def check_versions(stored: Mapping[str, int], if_versions: Mapping[str, int] | None) -> None:
    """Raise :class:`VersionConflict` unless every facility of ``if_versions`` is at its version.

    Bulk writes call it inside their transaction, so that what an import checked before writing
    (who may edit a facility, the version a row was based on) still holds when it writes.

    Parameters
    ----------
    stored
        ``{id: version}`` of the stored facilities among the written ids.
    if_versions
        ``{id: version}`` each facility must be at; version 0 means "must not exist yet".
    """
    for facility_id, expected in (if_versions or {}).items():
        if int(stored.get(facility_id, 0)) != int(expected):
            raise VersionConflict(
                f"facility {facility_id!r} changed while the import ran; nothing was written: "
                "import the file again"
            )


def _check_version(facility_id: str, current: int, if_version: int | None) -> None:
    if if_version is not None and int(if_version) != int(current):
        raise VersionConflict(
            f"facility {facility_id!r} is at version {current}, not {if_version}: "
            "someone else changed it; fetch it again and reapply your change"
        )


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Give a raw frame read from the database the dtypes of a facility frame."""
    frame["lon"] = frame["lon"].astype(float)
    frame["lat"] = frame["lat"].astype(float)
    frame["star_rating"] = frame["star_rating"].astype("Int64")
    frame["area_m2"] = frame["area_m2"].astype(float)
    frame["version"] = frame["version"].astype("int64")
    for c in _TEXT_COLUMNS:
        frame[c] = frame[c].astype(object).where(frame[c].notna(), None)
    frame["amenities"] = frame["amenities"].fillna("")
    return frame


def _clean_row(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
            out[key] = None
        elif isinstance(value, np.integer):
            out[key] = int(value)
        elif isinstance(value, np.floating):
            out[key] = float(value)
        else:
            out[key] = value
    if out.get("amenities") is None:
        out["amenities"] = ()
    return out


def facility_from_row(row: dict[str, Any]) -> Facility:
    """A :class:`Facility` from a facility-frame row."""
    return Facility.model_validate(_clean_row(row))


def field_diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """The editable fields whose value differs: ``{field: [old, new]}``."""
    out: dict[str, list[Any]] = {}
    for key in EDITABLE_COLUMNS:
        if key not in after:
            continue
        old, new = _to_db(before.get(key)), _to_db(after.get(key))
        if old in ("", None) and new in ("", None):
            continue
        if isinstance(old, int | float) and isinstance(new, int | float):
            if float(old) == float(new):
                continue
        elif old == new:
            continue
        out[key] = [old, new]
    return out
