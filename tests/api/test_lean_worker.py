"""A worker that answers only the app routes (``/nearest``, ``/health``, OGC items) never loads
the map, print, tile or OSM code: those modules are imported when a route that draws is first
called (real store of each backend, a fresh interpreter as uvicorn spawns for each worker)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from postgres import synthetic_frame

from geodata.store import FacilityStore, GeoPackageStore

ROOT = Path(__file__).resolve().parents[2]
#: What a worker answering /nearest must not have imported (each costs start-up and memory).
HEAVY = ("matplotlib", "folium", "branca", "osmium", "rasterio", "maps.atlas", "maps.printmap")

_WORKER = """
import json, sys
from fastapi.testclient import TestClient
from api.app import create_app

with TestClient(create_app()) as client:
    answers = [
        client.get("/nearest", params={"lon": 121.47, "lat": 31.23, "k": 3}),
        client.get("/health"),
        client.get("/collections/facilities/items", params={"limit": 5}),
    ]
    assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
    loaded = [name for name in json.loads(sys.argv[1]) if name in sys.modules]
    if len(sys.argv) > 2:  # then draw a map and print a sheet
        for path in sys.argv[2:]:
            answer = client.get(path)
            assert answer.status_code == 200, answer.text
        loaded = [loaded, [name for name in json.loads(sys.argv[1]) if name in sys.modules]]
print(json.dumps(loaded))
"""


def _run_worker(store: FacilityStore, tmp_path: Path, *draw: str) -> object:
    if isinstance(store, GeoPackageStore):
        env = {"FINDER_STORE": str(store.path)}
    else:
        env = {"FINDER_DATABASE_URL": store.database_url}  # type: ignore[attr-defined]
    env |= {
        "FINDER_API_KEYS_FILE": str(tmp_path / "keys.json"),
        "FINDER_TABLE_DIR": str(tmp_path / "tables"),
        "FINDER_LOG_LEVEL": "WARNING",
    }
    done = subprocess.run(
        [sys.executable, "-c", _WORKER, json.dumps(HEAVY), *draw],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def filled(store: FacilityStore) -> FacilityStore:
    store.upsert_frame(synthetic_frame(60, seed=11), actor="test")
    return store


def test_answering_nearest_imports_no_map_code(filled: FacilityStore, tmp_path: Path) -> None:
    assert _run_worker(filled, tmp_path) == []


def test_drawing_routes_import_their_code_when_called(
    filled: FacilityStore, tmp_path: Path
) -> None:
    """The lazy imports still work: the map page and the coverage map load what they draw with."""
    before, after = _run_worker(filled, tmp_path, "/map", "/coverage/map")  # type: ignore[misc]
    assert before == []
    assert {"folium", "branca"} <= set(after)
