"""Fixtures shared by the whole suite.

``store`` is a fresh, empty facility store, parametrized over the backends: every test that uses it
runs once per backend (GeoPackage; PostGIS where the test set-up started a server).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from geodata.store import FacilityStore, GeoPackageStore

DATA = Path(__file__).resolve().parent / "data"
BACKENDS = ["gpkg"]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FacilityStore]:
    """An empty store of each backend."""
    if request.param == "gpkg":
        s: FacilityStore = GeoPackageStore(tmp_path / "store.gpkg")
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
