"""Fixtures shared by the whole suite.

``store`` is a fresh, empty facility store, parametrized over the backends: every test that uses it
runs once per backend (GeoPackage; PostGIS where the test set-up started a server).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_support import launch_chromium
from postgres import TempPostgres, unavailable_reason

from geodata.store import FacilityStore, GeoPackageStore

DATA = Path(__file__).resolve().parent / "data"
BACKENDS = ["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)]
_TEMPLATE_DB = "finder_template"
_SHARED_DB = "finder_shared"
_database_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[TempPostgres]:
    """A PostgreSQL + PostGIS server in a temporary directory for the whole session.

    Holds a migrated, empty template database that :func:`postgis_url` copies, and a copy that
    the ``store`` fixture empties before each test (quicker than a new database). Skipped (with
    the reason) where PostgreSQL/PostGIS is not installed, but failed under ``CI=true``.
    """
    reason = unavailable_reason()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostGIS tests cannot run in CI: {reason}")
        pytest.skip(f"PostGIS backend not tested: {reason}")
    from geodata.migrations import migrate

    server = TempPostgres.start()
    try:
        migrate(server.create_database(_TEMPLATE_DB))
        server.create_database(_SHARED_DB, template=_TEMPLATE_DB)
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgis_url(postgres_server: TempPostgres) -> Iterator[str]:
    """The URL of a fresh database with the store schema (dropped after the test)."""
    name = f"finder_test_{os.getpid()}_{next(_database_numbers)}"
    url = postgres_server.create_database(name, template=_TEMPLATE_DB)
    try:
        yield url
    finally:
        postgres_server.drop_database(name)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FacilityStore]:
    """An empty store of each backend."""
    if request.param == "gpkg":
        s: FacilityStore = GeoPackageStore(tmp_path / "store.gpkg")
    elif request.param == "postgis":
        from geodata.postgis import PostGISStore

        server: TempPostgres = request.getfixturevalue("postgres_server")
        server.empty_store_database(_SHARED_DB)
        s = PostGISStore(server.url(_SHARED_DB))
    else:
        raise AssertionError(f"unknown backend {request.param}")
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(scope="session")
def districts():  # type: ignore[no-untyped-def]
    """The bundled Shanghai districts (WGS-84)."""
    from geodata.boundaries import load_districts

    return load_districts()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, through Playwright: one for the session (Playwright's sync
    API allows one instance at a time), skipped without ``/usr/bin/chromium``."""
    with launch_chromium() as browser:
        yield browser
