"""The served base map on a live server of each store backend: ``finder basemap build`` writes
it beside the store, ``/basemap/{z}/{x}/{y}.mvt`` serves its tiles with caching headers, and the
web maps draw it by default.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import mapbox_vector_tile
import pytest
from api_support import Live

from api.settings import Settings
from geodata.basemap import BasemapArchive, basemap_from_osm

OSM = Path(__file__).resolve().parents[1] / "data" / "shanghai_jingan.osm"
CENTRE = (121.4737, 31.2304)  # People's Square, inside the extract


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def server_env(tmp: Path) -> dict[str, str]:
    """The Jing'an base map for this module's server (``edit_live`` in conftest.py)."""
    out = tmp / "jingan.pmtiles"
    basemap_from_osm(OSM, out)
    return {"FINDER_BASEMAP": str(out)}


@pytest.fixture(scope="module")
def client(edit_live: Live) -> Iterator[httpx.Client]:
    with edit_live.client() as c:
        yield c


def _decode(data: bytes) -> dict[str, dict]:
    return mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})


def test_tile_is_served_gzipped_with_caching_headers(client: httpx.Client) -> None:
    x, y = tile_of(*CENTRE, 14)
    response = client.get(f"/basemap/14/{x}/{y}.mvt")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["cache-control"] == "public, max-age=86400"
    etag = response.headers["etag"]
    names = {f["properties"].get("name") for f in _decode(response.content)["roads"]["features"]}
    assert "南京西路" in names

    again = client.get(f"/basemap/14/{x}/{y}.mvt", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    other = client.get(f"/basemap/14/{x}/{y + 1}.mvt", headers={"If-None-Match": etag})
    assert other.status_code in (200, 204) and other.headers["etag"] != etag


def test_client_without_gzip_gets_a_plain_tile(edit_live: Live) -> None:
    x, y = tile_of(*CENTRE, 13)
    url = f"{edit_live.url}/basemap/13/{x}/{y}.mvt"
    response = httpx.get(url, headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert response.content[:2] != b"\x1f\x8b"
    assert _decode(response.content)["roads"]["features"]


def test_empty_tile_is_204_and_outside_the_range_404(client: httpx.Client) -> None:
    x, y = tile_of(*CENTRE, 14)
    empty = client.get(f"/basemap/14/{x + 40}/{y}.mvt")
    assert empty.status_code == 204 and empty.content == b""
    assert empty.headers["cache-control"] and empty.headers["etag"]
    for path in ("/basemap/15/0/0.mvt", "/basemap/3/8/0.mvt", "/basemap/3/0/9.mvt"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"


def test_maps_draw_the_base_map_by_default(client: httpx.Client) -> None:
    page = client.get("/map").text
    assert "FacilityBasemap.add(" in page and "/basemap/{z}/{x}/{y}.mvt" in page
    assert "FacilityBasemap.add(" not in client.get("/map", params={"base_map": "none"}).text
    assert "FacilityBasemap.add(" in client.get("/coverage/map").text
    script = client.get("/static/facilitymap/vendor/protomaps-leaflet.js")
    assert script.status_code == 200 and "protomapsL" in script.text


def test_without_a_base_map_nothing_changes(anon: httpx.Client) -> None:
    """The suite's plain server (no FINDER_BASEMAP, nothing beside the store) draws no base
    map, answers 404 for tiles and refuses base_map=vector."""
    assert "FacilityBasemap" not in anon.get("/map").text
    assert "FacilityBasemap" not in anon.get("/coverage/map").text
    response = anon.get("/basemap/14/13720/6694.mvt")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert anon.get("/map", params={"base_map": "vector"}).status_code == 400


def test_cli_builds_the_base_map_beside_the_store(tmp_path: Path) -> None:
    store = tmp_path / "store.gpkg"
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "basemap", "build", str(OSM), "--store", str(store)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    beside = tmp_path / "store.gpkg.basemap.pmtiles"
    assert "reading shanghai_jingan.osm" in done.stderr and "wrote" in done.stderr
    assert str(beside) in done.stdout
    assert BasemapArchive(beside).max_zoom == 14
    assert Settings(store=store).basemap_path() == beside
    assert Settings(store=tmp_path / "other.gpkg").basemap_path() is None
