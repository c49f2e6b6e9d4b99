"""Every point gets its place through the API and the CLI (the ``china`` extra installed)."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from api_support import Live

ZHENGZHOU_STATION = (113.6530, 34.7480)  # 郑州站, 二七区 410103
HANGZHOU_BROKEN_BRIDGE = (120.1480, 30.2620)  # 断桥, 西湖区 330106
HONG_KONG_CENTRAL = (114.1580, 22.2820)


@pytest.fixture(scope="module")
def editor(edit_live: Live) -> Iterator[httpx.Client]:
    with edit_live.client(edit_live.keys.editor) as client:
        yield client


def _body(fid: str, lon: float, lat: float) -> dict[str, object]:
    return {
        "id": fid,
        "name": f"驿站 {fid}",
        "kind": "worker_station",
        "lon": lon,
        "lat": lat,
        "access": "public",
    }


def test_a_new_and_a_moved_facility_get_their_place(editor: httpx.Client) -> None:
    created = editor.post("/facilities", json=_body("place-1", *ZHENGZHOU_STATION))
    assert created.status_code == 201, created.text
    place = {k: created.json()[k] for k in ("adcode", "district", "city", "province")}
    assert place == {
        "adcode": "410103",
        "district": "二七区",
        "city": "郑州市",
        "province": "河南省",
    }
    moved = editor.patch(
        "/facilities/place-1",
        json={"lon": HANGZHOU_BROKEN_BRIDGE[0], "lat": HANGZHOU_BROKEN_BRIDGE[1]},
        headers={"If-Match": f'"{created.json()["version"]}"'},
    ).json()
    assert (moved["adcode"], moved["district"]) == ("330106", "西湖区")
    hong_kong = editor.post("/facilities", json=_body("place-hk", *HONG_KONG_CENTRAL)).json()
    assert hong_kong["adcode"] is None


def test_the_bulk_import_reports_hong_kong_and_a_wrong_district(editor: httpx.Client) -> None:
    frame = pd.DataFrame(
        {
            "id": ["place-i1", "place-i2"],
            "name": ["郑州站驿站", "中环驿站"],
            "kind": "rest_stop",
            "lon": [ZHENGZHOU_STATION[0], HONG_KONG_CENTRAL[0]],
            "lat": [ZHENGZHOU_STATION[1], HONG_KONG_CENTRAL[1]],
            "district": ["金水区", "中西区"],
            "access": "public",
        }
    )
    data = frame.to_csv(index=False).encode("utf-8")
    r = editor.post(
        "/facilities/import", files={"file": ("list.csv", io.BytesIO(data), "text/csv")}
    )
    assert r.status_code == 200, r.text
    warnings = {i["row"]: i["reason"] for i in r.json()["issues"] if i["level"] == "warning"}
    assert "金水区" in warnings[2] and "二七区 (410103)" in warnings[2]
    assert "outside mainland China" in warnings[3]
    stored = editor.get("/collections/facilities/items/place-i1").json()["properties"]
    assert (stored["adcode"], stored["city"], stored["province"]) == ("410103", "郑州市", "河南省")


def test_finder_nearest_names_the_place_of_the_point(tmp_path: Path) -> None:
    from geodata.sample import write_sample

    store = tmp_path / "store.gpkg"
    write_sample(store, 50)

    def nearest(lon: float, lat: float) -> str:
        args = ["nearest", str(lon), str(lat), "--store", str(store), "--k", "1"]
        done = subprocess.run(
            [sys.executable, "-m", "api.cli", *args], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done.stderr

    assert "河南省 郑州市 二七区 (adcode 410103)" in nearest(*ZHENGZHOU_STATION)
    assert "warning: the point lies outside mainland China" in nearest(*HONG_KONG_CENTRAL)
