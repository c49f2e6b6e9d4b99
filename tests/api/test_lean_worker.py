"""A worker that answers only the app routes (``/nearest``, ``/health``, OGC items) never loads
the map, print, tile or OSM code: those modules are imported when a route that draws is first
called (real store of each backend, a fresh interpreter as uvicorn spawns for each worker)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from postgres import synthetic_frame

from geodata.store import FacilityStore, GeoPackageStore

ROOT = Path(__file__).resolve().parents[2]
#: What a worker answering /nearest must not have imported (each costs start-up and memory).
HEAVY = (
    "matplotlib",
    "folium",
    "branca",
    "osmium",
    "rasterio",
    "maps.atlas",
    "maps.printmap",
    "PIL",  # photos of reports: when a photo is sent
    "scipy.sparse.csgraph",  # walking: when a walk is asked for
)

_WORKER = """
import json, sys
from fastapi.testclient import TestClient
from api.app import create_app

heavy = json.loads(sys.argv[1])


def seen():
    state = client.app.state.finder
    return {
        "loaded": [name for name in heavy if name in sys.modules],
        "coverage_grid": "grid" in vars(state),
        "openapi_document": client.app.openapi_schema is not None,
    }


with TestClient(create_app()) as client:
    answers = [client.get("/nearest", params={"lon": 121.47, "lat": 31.23, "k": 3})]
    # Included routers whose routes FastAPI has built (private, but nothing public tells).
    built = [r for r in client.app.router.routes if hasattr(r, "_effective_candidates_version")]
    routers_built = sum(r._effective_candidates_version is not None for r in built)
    answers += [
        client.get("/health"),
        client.get("/collections/facilities/items", params={"limit": 5}),
    ]
    assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
    out = [{**seen(), "routers_built_by_nearest": routers_built}]
    for path in sys.argv[2:]:  # then draw maps, ask for coverage
        answer = client.get(path)
        assert answer.status_code == 200, answer.text
        out.append(seen())
print(json.dumps(out))
"""


def _run_worker(store: FacilityStore, tmp_path: Path, *then: str) -> list[dict[str, Any]]:
    """What a fresh worker over ``store`` has loaded after answering the app routes, and after
    each of the ``then`` paths."""
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
        [sys.executable, "-c", _WORKER, json.dumps(HEAVY), *then],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out: list[dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


@pytest.fixture
def filled(store: FacilityStore) -> FacilityStore:
    store.upsert_frame(synthetic_frame(60, seed=11), actor="test")
    return store


def test_answering_nearest_imports_no_map_code(filled: FacilityStore, tmp_path: Path) -> None:
    """Nor does it build the coverage grid (seconds and tens of MB at start), nor the whole
    OpenAPI document for the unknown-parameter check (0.2-0.4 s on its first request), and its
    first /nearest builds the routes of the nearest router only (all: 0.1-0.3 s)."""
    assert _run_worker(filled, tmp_path) == [
        {
            "loaded": [],
            "coverage_grid": False,
            "openapi_document": False,
            "routers_built_by_nearest": 1,
        }
    ]


def test_drawing_routes_load_their_code_when_called(filled: FacilityStore, tmp_path: Path) -> None:
    """The lazy imports and the lazy grid still work: coverage builds the grid, the web map
    loads Folium."""
    _, covered, drawn = _run_worker(filled, tmp_path, "/coverage", "/map")
    assert covered == {"loaded": [], "coverage_grid": True, "openapi_document": False}
    assert {"folium", "branca"} <= set(drawn["loaded"])
