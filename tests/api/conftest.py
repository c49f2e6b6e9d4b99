"""Fixtures of the API tests: a live uvicorn server per store backend, and clients.

See :mod:`api_support` for what the server holds.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from api_support import Live, ServerProcess, facility_rows, make_keys

from geodata.store import FacilityStore, GeoPackageStore

_database_numbers = itertools.count(1)


def _serve(
    request: pytest.FixtureRequest,
    tmp: Path,
    extra_env: dict[str, str] | None = None,
    rows: pd.DataFrame | None = None,
) -> Iterator[Live]:
    if request.param == "gpkg":
        store: FacilityStore = GeoPackageStore(tmp / "store.gpkg")
        settings_env = {"FINDER_STORE": str(tmp / "store.gpkg")}
        drop = None
    else:
        from geodata.postgis import PostGISStore

        server = request.getfixturevalue("postgres_server")
        name = f"finder_api_{os.getpid()}_{next(_database_numbers)}"
        db_url = server.create_database(name, template="finder_template")
        store = PostGISStore(db_url)
        settings_env = {"FINDER_DATABASE_URL": db_url}
        drop = (server, name)
    store.upsert_frame(facility_rows() if rows is None else rows, actor="fixture")
    keys = make_keys(tmp / "keys.json")
    env = {
        "FINDER_API_KEYS_FILE": str(tmp / "keys.json"),
        "FINDER_LOG_LEVEL": "WARNING",
        "FINDER_CORS_ORIGINS": "http://app.example",
        "FINDER_INDEX_POLL_S": "0",
        **settings_env,
        **(extra_env or {}),
    }
    try:
        with ServerProcess(env) as url:
            yield Live(url, keys, store, tmp / "keys.json")
    finally:
        store.close()
        if drop is not None:
            drop[0].drop_database(drop[1])


_BACKENDS = ["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)]


@pytest.fixture(scope="session", params=_BACKENDS)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    """A read-only live server over a filled store of each backend (nobody edits it)."""
    yield from _serve(request, tmp_path_factory.mktemp("api"))


@pytest.fixture(scope="module", params=_BACKENDS)
def edit_live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    """A live server of each backend for the tests of one module that edit its store.

    A module may define ``server_env(tmp: Path) -> dict[str, str]``: more ``FINDER_*`` settings
    (or ``TMPDIR``) for its server, and ``server_rows() -> pandas.DataFrame``: the facilities
    its store starts with (default :func:`api_support.facility_rows`).
    """
    tmp = tmp_path_factory.mktemp("api-edit")
    server_env = getattr(request.module, "server_env", None)
    server_rows = getattr(request.module, "server_rows", None)
    yield from _serve(
        request,
        tmp,
        server_env(tmp) if server_env is not None else None,
        server_rows() if server_rows is not None else None,
    )


@pytest.fixture(scope="module", params=_BACKENDS)
def calendar_live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    """A live server of each backend whose base holiday calendar (``FINDER_CALENDAR``) is the
    bundled one without the current year, so that today is a provisional day."""
    from finder.hours import local_today

    tmp = tmp_path_factory.mktemp("api-calendar")
    bundled = Path(__file__).resolve().parents[2] / "finder" / "data" / "cn_calendar.csv"
    year = str(local_today().year)
    lines = bundled.read_text(encoding="utf-8").splitlines()
    base = tmp / "calendar.csv"
    base.write_text("\n".join(x for x in lines if not x.startswith(year)) + "\n", "utf-8")
    yield from _serve(request, tmp, {"FINDER_CALENDAR": str(base)})


@pytest.fixture(scope="session")
def anon(live: Live) -> Iterator[httpx.Client]:
    """An anonymous client."""
    with live.client() as client:
        yield client
