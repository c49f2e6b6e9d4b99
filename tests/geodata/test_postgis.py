"""The PostGIS store beyond the shared store tests: same answers as the GeoPackage store, one
transaction per import even when the importer is killed, no lost updates between concurrent
editors, Alembic migrations up and down, NOTIFY on commit, the geography column, and pooled
connections that survive a database restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from postgres import TempPostgres, synthetic_frame
from pyproj import Geod

from geodata.errors import StoreError, VersionConflict
from geodata.migrations import current_revision, downgrade, head_revision, migrate
from geodata.postgis import CHANNEL, PostGISStore
from geodata.schema import AMENITIES
from geodata.store import GeoPackageStore

pytestmark = pytest.mark.postgis

ROOT = Path(__file__).resolve().parents[2]
TESTS = Path(__file__).resolve().parents[1]
BOOKKEEPING = ["created_at", "updated_at"]


@pytest.fixture
def open_store(postgis_url: str) -> Iterator[Callable[..., PostGISStore]]:
    """Open stores (default: on the test's fresh database); all are closed after the test."""
    opened: list[PostGISStore] = []

    def make(url: str = postgis_url, *, migrate: bool = False, **kwargs: Any) -> PostGISStore:
        store = PostGISStore(url, migrate=migrate, **kwargs)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def _count(url: str, table: str) -> int:
    with psycopg.connect(url) as con:
        row = con.execute(f"SELECT count(*) FROM {table}").fetchone()  # type: ignore[arg-type]
    assert row is not None
    return int(row[0])


# -- same answers as the GeoPackage store ---------------------------------------------------------
_TEXT = st.one_of(
    st.none(),
    st.just(""),
    st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=8),
)
_EDIT = st.fixed_dictionaries(
    {},
    optional={
        "name": st.text(
            st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]),
            min_size=1,
            max_size=8,
        ),
        "address": _TEXT,
        "phone": _TEXT,
        "operator": _TEXT,
        "lon": st.floats(121.0, 122.0),
        "lat": st.floats(30.7, 31.9),
        "star_rating": st.one_of(st.none(), st.integers(1, 5)),
        "area_m2": st.one_of(st.none(), st.floats(0.5, 1000.0)),
        "verified_at": st.one_of(st.none(), st.dates().map(lambda d: d.isoformat())),
        "status": st.sampled_from(["open", "temporarily_closed", "closed"]),
        "amenities": st.lists(st.sampled_from(AMENITIES), max_size=4, unique=True).map(
            lambda a: ";".join(sorted(a, key=AMENITIES.index))
        ),
    },
)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    edits=st.lists(st.tuples(st.integers(0, 39), _EDIT), max_size=12), new_rows=st.integers(0, 5)
)
def test_imports_give_the_same_frames_and_audit_as_geopackage(
    postgres_server: TempPostgres,
    tmp_path_factory: pytest.TempPathFactory,
    edits: list[tuple[int, dict[str, Any]]],
    new_rows: int,
) -> None:
    """The set-based SQL diff of a re-import equals the GeoPackage store's Python diff."""
    base = synthetic_frame(40, seed=7)
    changed = pd.concat(
        [base, synthetic_frame(new_rows, seed=8, id_prefix="new")], ignore_index=True
    ).astype(object)
    for row, edit in edits:
        for column, value in edit.items():
            changed.loc[row, column] = value
    name = f"parity_{os.getpid()}_{time.monotonic_ns()}"
    url = postgres_server.create_database(name, template="finder_template")
    pg = PostGISStore(url, migrate=False)
    gpkg = GeoPackageStore(tmp_path_factory.mktemp("parity") / "s.gpkg")
    try:
        for frame in (base, changed):
            assert pg.upsert_frame(frame, actor="a") == gpkg.upsert_frame(frame, actor="a")
        pd.testing.assert_frame_equal(
            pg.frame().drop(columns=BOOKKEEPING), gpkg.frame().drop(columns=BOOKKEEPING)
        )
        strip = [{k: v for k, v in e.items() if k != "at"} for e in pg.audit(limit=500)]
        assert strip == [{k: v for k, v in e.items() if k != "at"} for e in gpkg.audit(limit=500)]
    finally:
        pg.close()
        gpkg.close()
        postgres_server.drop_database(name)


# -- one transaction per import -------------------------------------------------------------------
_IMPORTER = """
import sys
sys.path.insert(0, {tests!r})
from postgres import synthetic_frame
from geodata.postgis import PostGISStore
store = PostGISStore({url!r}, migrate=False, application_name="importer-to-kill")
frame = synthetic_frame({n}, seed=3)
frame.loc[::2, "name"] = "renamed by the killed import"
store.upsert_frame(frame, actor="killed")
print("import finished", flush=True)
"""


def test_killing_the_importer_mid_import_leaves_the_database_unchanged(
    postgis_url: str, open_store: Callable[..., PostGISStore]
) -> None:
    store = open_store()
    store.upsert_frame(synthetic_frame(2000, seed=3), actor="before")
    before = store.frame()
    counter = store.change_counter()
    audit_rows = _count(postgis_url, "facility_audit")
    code = _IMPORTER.format(tests=str(TESTS), url=postgis_url, n=150_000)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        in_import = False
        with psycopg.connect(postgis_url, autocommit=True) as watch:
            while time.monotonic() < deadline and proc.poll() is None and not in_import:
                row = watch.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                    "'importer-to-kill' AND state = 'active' AND query LIKE 'COPY _staging%'"
                ).fetchone()
                in_import = bool(row and row[0])
                time.sleep(0.02)
            assert in_import, "the importer never reached its COPY"
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            while watch.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'importer-to-kill'"
            ).fetchone() != (0,):
                time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        assert proc.stdout is not None
        finished = proc.stdout.read()
        proc.stdout.close()
    assert b"import finished" not in finished
    assert proc.returncode == -signal.SIGKILL
    pd.testing.assert_frame_equal(store.frame(), before)
    assert store.change_counter() == counter
    assert _count(postgis_url, "facility_audit") == audit_rows
    assert _count(postgis_url, "imports") == 1
    store.patch("syn-0000001", {"name": "still writable"}, actor="after", if_version=1)


def test_a_refused_row_writes_nothing(open_store: Callable[..., PostGISStore]) -> None:
    store = open_store()
    frame = synthetic_frame(500, seed=4)
    frame.loc[321, "star_rating"] = 9
    counter = store.change_counter()
    with pytest.raises(StoreError, match="facilities_star_rating"):
        store.upsert_frame(frame, actor="a")
    assert len(store.frame()) == 0 and store.change_counter() == counter
    assert store.audit() == []


# -- concurrent editors ---------------------------------------------------------------------------
def test_two_concurrent_editors_one_wins_the_other_gets_a_conflict(
    open_store: Callable[..., PostGISStore],
) -> None:
    """Two workers (own stores, own connections) patch one facility from the same version."""
    setup = open_store()
    setup.upsert_frame(synthetic_frame(3, seed=5), actor="setup")
    editors = [open_store() for _ in range(2)]
    rounds = 8
    for version in range(1, rounds + 1):
        barrier = threading.Barrier(2)
        outcome: dict[int, Any] = {}

        def edit(
            i: int,
            v: int = version,
            barrier: threading.Barrier = barrier,
            outcome: dict[int, Any] = outcome,
        ) -> None:
            barrier.wait()
            try:
                outcome[i] = editors[i].patch(
                    "syn-0000000",
                    {"phone": f"editor {i} round {v}"},
                    actor=f"editor{i}",
                    if_version=v,
                )
            except VersionConflict as exc:
                outcome[i] = exc

        threads = [threading.Thread(target=edit, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        winners = [i for i in range(2) if not isinstance(outcome[i], VersionConflict)]
        assert len(winners) == 1, outcome
        loser = 1 - winners[0]
        assert f"not {version}" in str(outcome[loser])
        stored = setup.get("syn-0000000")
        assert stored.version == version + 1
        assert stored.phone == f"editor {winners[0]} round {version}"
    audit = setup.audit("syn-0000000", limit=100)
    assert [e["action"] for e in audit].count("patch") == rounds


# -- migrations -----------------------------------------------------------------------------------
def test_migrations_up_down_and_concurrent(
    postgres_server: TempPostgres, open_store: Callable[..., PostGISStore]
) -> None:
    name = f"migrations_{os.getpid()}"
    url = postgres_server.create_database(name)
    try:
        assert current_revision(url) is None
        code = f"from geodata.migrations import migrate; migrate({url!r})"
        runs = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT) for _ in range(3)]
        assert [p.wait(120) for p in runs] == [0, 0, 0]
        assert current_revision(url) == head_revision()
        with psycopg.connect(url) as con:
            indexes = dict(
                con.execute(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'facilities'"
                ).fetchall()
            )
            kind = con.execute(
                "SELECT type FROM geography_columns WHERE f_table_name = 'facilities'"
            ).fetchone()
        assert "USING gist (geog)" in indexes["facilities_geog"]
        assert kind == ("Point",)
        store = open_store(url, migrate=True)
        store.upsert_frame(synthetic_frame(10), actor="a")
        store.close()
        downgrade(url)
        assert current_revision(url) is None
        with psycopg.connect(url) as con:
            left = con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name "
                "IN ('facilities', 'facility_audit', 'imports', 'store_state')"
            ).fetchone()
        assert left == (0,)
        migrate(url)
        again = open_store(url, migrate=True)
        assert len(again.frame()) == 0
        again.close()
    finally:
        postgres_server.drop_database(name)


def test_a_database_migrated_by_a_newer_program_is_refused(postgis_url: str) -> None:
    with psycopg.connect(postgis_url) as con:
        con.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    with pytest.raises(StoreError, match="older than the database schema"):
        PostGISStore(postgis_url)


def test_a_database_without_the_schema_is_refused(postgres_server: TempPostgres) -> None:
    url = postgres_server.url("postgres")
    with pytest.raises(StoreError, match="no facility store"):
        PostGISStore(url, migrate=False)
    with pytest.raises(StoreError, match="cannot reach"):
        PostGISStore(url.replace(str(postgres_server.port), "1"), migrate=False)


# -- change notification --------------------------------------------------------------------------
def _drain(con: psycopg.Connection[Any], wait_s: float = 0.5) -> list[str]:
    """The payloads of the notifications that arrive within ``wait_s`` seconds."""
    return [n.payload for n in con.notifies(timeout=wait_s)]


def test_every_committed_write_notifies_listeners_with_the_counter(
    postgis_url: str, open_store: Callable[..., PostGISStore]
) -> None:
    store = open_store()
    with psycopg.connect(postgis_url, autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        store.upsert_frame(synthetic_frame(5), actor="a")
        assert _drain(listener) == [str(store.change_counter())]
        store.patch("syn-0000002", {"name": "x"}, actor="a", if_version=1)
        with pytest.raises(VersionConflict):
            store.patch("syn-0000002", {"name": "y"}, actor="a", if_version=1)
        assert _drain(listener) == [str(store.change_counter())]


# -- the geography column -------------------------------------------------------------------------
def test_geography_column_and_gist_index_agree_with_pyproj(
    postgis_url: str, open_store: Callable[..., PostGISStore]
) -> None:
    store = open_store()
    frame = synthetic_frame(3000, seed=11)
    store.upsert_frame(frame, actor="a")
    lon0, lat0, radius_m = 121.47, 31.23, 4000.0
    _, _, dist = Geod(ellps="WGS84").inv(
        np.full(len(frame), lon0),
        np.full(len(frame), lat0),
        frame["lon"].to_numpy(),
        frame["lat"].to_numpy(),
    )
    clear = np.abs(dist - radius_m) > 0.01
    expected = set(frame.loc[(dist < radius_m) & clear, "id"])
    query = (
        "SELECT id FROM facilities WHERE ST_DWithin(geog, "
        "ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography, %s)"
    )
    with psycopg.connect(postgis_url) as con:
        con.execute("SET enable_seqscan = off")
        plan = "\n".join(
            r[0] for r in con.execute("EXPLAIN " + query, (lon0, lat0, radius_m)).fetchall()
        )
        got = {r[0] for r in con.execute(query, (lon0, lat0, radius_m)).fetchall()}
    assert "facilities_geog" in plan
    assert len(expected) > 20
    assert got & set(frame.loc[clear, "id"]) == expected


# -- connections ----------------------------------------------------------------------------------
def _connections(url: str, application_name: str) -> int:
    with psycopg.connect(url) as con:
        row = con.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_connections_are_pooled_and_survive_being_cut(
    postgis_url: str, open_store: Callable[..., PostGISStore]
) -> None:
    store = open_store(application_name="pooled", max_idle_connections=3)
    store.upsert_frame(synthetic_frame(50), actor="a")

    def read() -> None:
        for _ in range(10):
            assert len(store.frame()) == 50 and store.change_counter() == 1

    threads = [threading.Thread(target=read) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert 1 <= _connections(postgis_url, "pooled") <= 3
    with psycopg.connect(postgis_url, autocommit=True) as con:
        con.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'pooled'"
        )
    while _connections(postgis_url, "pooled"):
        time.sleep(0.05)
    assert store.change_counter() == 1 and len(store.frame()) == 50
    store.patch("syn-0000003", {"name": "after the cut"}, actor="a", if_version=1)
    assert store.get("syn-0000003").name == "after the cut"
    store.close()
    assert _connections(postgis_url, "pooled") == 0
