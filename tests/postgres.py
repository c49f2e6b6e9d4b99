"""A throw-away PostgreSQL + PostGIS server for the tests and benchmarks.

:class:`TempPostgres` runs ``initdb`` into a temporary directory owned by the ``postgres`` user,
starts the server on 127.0.0.1 on a free port (its unix socket in the same directory), creates a
database with ``CREATE EXTENSION postgis`` and removes everything on :meth:`TempPostgres.stop`.
It needs the Debian packages ``postgresql-15`` and ``postgresql-15-postgis-3``::

    with TempPostgres.start() as pg:
        url = pg.create_database("finder")   # postgresql://postgres@127.0.0.1:PORT/finder

:func:`unavailable_reason` says why a server cannot be started here (``None`` when it can).
:func:`synthetic_frame` makes a large valid facility frame quickly (benchmarks, import tests).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import pandas as pd
from live_server import free_port

from geodata.kinds import KINDS

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
POSTGIS_CONTROL = Path("/usr/share/postgresql/15/extension/postgis.control")
SERVER_USER = "postgres"

# Settings for a disposable server: no durability, small and quick to start.
_SERVER_OPTIONS = (
    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
    "-c max_connections=200 -c shared_buffers=256MB -c max_wal_size=4GB "
    "-c maintenance_work_mem=512MB -c work_mem=64MB -c log_min_messages=warning"
)


def unavailable_reason() -> str | None:
    """Why a temporary PostGIS server cannot run here, or ``None`` when it can."""
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not (PG_BIN / tool).exists():
            return f"PostgreSQL 15 is not installed ({PG_BIN / tool} missing)"
    if not POSTGIS_CONTROL.exists():
        return f"PostGIS is not installed ({POSTGIS_CONTROL} missing: postgresql-15-postgis-3)"
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        return f"there is no {SERVER_USER!r} system user"
    if os.geteuid() != 0 and pwd.getpwuid(os.geteuid()).pw_name != SERVER_USER:
        return f"starting PostgreSQL needs root (to switch to {SERVER_USER!r}) or that user"
    return None


_DISTRICTS = (
    ("310101", "黄浦区"),
    ("310104", "徐汇区"),
    ("310105", "长宁区"),
    ("310106", "静安区"),
    ("310107", "普陀区"),
    ("310109", "虹口区"),
    ("310110", "杨浦区"),
    ("310112", "闵行区"),
    ("310113", "宝山区"),
    ("310115", "浦东新区"),
)
_KINDS = np.array(KINDS, dtype=object)
_HOURS = np.array(["24/7", "Mo-Fr 08:30-17:30; PH off", "Mo-Su 07:00-21:00"], dtype=object)
_AMENITY_SETS = np.array(
    [
        "fridge;sofa;nursing_chair",
        "hot_water;charging;toilet;wifi",
        "seating;drinking_water;microwave",
        "",
    ],
    dtype=object,
)


def synthetic_frame(n: int, *, seed: int = 0, id_prefix: str = "syn") -> pd.DataFrame:
    """``n`` valid, synthetic facilities around Shanghai (WGS-84), vectorised and reproducible.

    Ids are ``{id_prefix}-0000000`` upwards; ``source`` says the rows are synthetic.
    """
    rng = np.random.default_rng(seed)
    kind = _KINDS[rng.integers(0, len(_KINDS), n)]
    access = np.where(
        kind == "mother_room", "employees", np.where(rng.random(n) < 0.7, "public", "members")
    ).astype(object)
    district = rng.integers(0, len(_DISTRICTS), n)
    adcodes = np.array([d[0] for d in _DISTRICTS], dtype=object)[district]
    names = np.array([d[1] for d in _DISTRICTS], dtype=object)[district]
    number = np.arange(n)
    ids = [f"{id_prefix}-{i:07d}" for i in number]
    star = pd.Series(rng.integers(1, 6, n), dtype="Int64").where(kind == "mother_room")
    return pd.DataFrame(
        {
            "id": ids,
            "name": [f"合成设施{i}" for i in number],
            "kind": kind,
            "format": "room",
            "address": "上海市"
            + names
            + "合成路"
            + (number % 2000 + 1).astype(str).astype(object)
            + "号",
            "province": "上海市",
            "city": "上海市",
            "district": names,
            "adcode": adcodes,
            "lon": np.round(rng.uniform(121.10, 121.90, n), 6),
            "lat": np.round(rng.uniform(30.85, 31.45, n), 6),
            "source_crs": "wgs84",
            "access": access,
            "organization": np.where(access == "employees", "合成单位", None).astype(object),
            "opening_hours": _HOURS[rng.integers(0, len(_HOURS), n)],
            "amenities": _AMENITY_SETS[rng.integers(0, len(_AMENITY_SETS), n)],
            "star_rating": star,
            "area_m2": np.round(rng.uniform(6, 60, n), 1),
            "phone": None,
            "operator": "总工会",
            "status": "open",
            "verified_at": "2026-06-30",
            "source": f"SYNTHETIC test data (seed {seed}); not real facilities",
        }
    )


def _as_server_user(args: list[str]) -> list[str]:
    if pwd.getpwuid(os.geteuid()).pw_name == SERVER_USER:
        return args
    return ["runuser", "-u", SERVER_USER, "--", *args]


@dataclass
class TempPostgres:
    """A running temporary server; build it with :meth:`start`."""

    root: Path
    port: int

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @classmethod
    def start(cls, *, timeout_s: float = 60.0) -> TempPostgres:
        """``initdb`` + ``pg_ctl start`` in a new temporary directory; raises ``RuntimeError``."""
        reason = unavailable_reason()
        if reason is not None:
            raise RuntimeError(reason)
        root = Path(tempfile.mkdtemp(prefix="finder-pg-"))
        user = pwd.getpwnam(SERVER_USER)
        os.chown(root, user.pw_uid, user.pw_gid)
        os.chmod(root, 0o700)
        server = cls(root=root, port=free_port())
        try:
            server._run(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(server.data_dir),
                    "-U",
                    SERVER_USER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                    "--no-sync",
                ]
            )
            options = (
                f"-c listen_addresses=127.0.0.1 -p {server.port} "
                f"-c unix_socket_directories={root} {_SERVER_OPTIONS}"
            )
            server._run(
                [
                    str(PG_BIN / "pg_ctl"),
                    "-D",
                    str(server.data_dir),
                    "-w",
                    "-t",
                    str(int(timeout_s)),
                    "-l",
                    str(root / "server.log"),
                    "-o",
                    options,
                    "start",
                ]
            )
        except BaseException:
            server._remove()
            raise
        return server

    def _run(self, args: list[str]) -> None:
        done = subprocess.run(
            _as_server_user(args), capture_output=True, text=True, cwd=self.root, check=False
        )
        if done.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr}\n{tail}")

    def url(self, database: str = "postgres") -> str:
        """The ``postgresql://`` URL of a database on this server (trust authentication)."""
        return f"postgresql://{SERVER_USER}@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str, database: str = "postgres") -> None:
        """Run one statement outside a transaction (CREATE / DROP DATABASE)."""
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as con:
            con.execute(sql)  # type: ignore[arg-type]

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """Create a database with PostGIS (or copy ``template``); returns its URL."""
        if template is None:
            self.execute(f'CREATE DATABASE "{name}"')
            self.execute("CREATE EXTENSION IF NOT EXISTS postgis", name)
        else:
            self.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
        return self.url(name)

    def empty_store_database(self, name: str) -> None:
        """Delete every facility, audit entry, import, calendar day, device and event of a store
        database, reset counters."""
        self.execute(
            "TRUNCATE facilities, facility_audit, imports, holiday_calendar, facility_reports, "
            "facility_photos RESTART IDENTITY; "
            "TRUNCATE devices, facility_events, event_replays RESTART IDENTITY; "
            "UPDATE store_state SET change_counter = 0",
            name,
        )

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting whoever is still connected."""
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its directory."""
        try:
            if (self.data_dir / "postmaster.pid").exists():
                self._run(
                    [str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"]
                )
        finally:
            self._remove()

    def _remove(self) -> None:
        for _ in range(5):
            shutil.rmtree(self.root, ignore_errors=True)
            if not self.root.exists():
                return
            time.sleep(0.2)

    def __enter__(self) -> TempPostgres:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
