"""``/coverage/suggest?weight=use`` and ``finder suggest --weight use`` on a store of each
backend: the answer says the weighting and its window, the two surfaces agree, and a district
without door counts is refused. (The ranking itself: ``tests/finder/test_siting_use.py``.)"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import psycopg
import pytest
from api_support import Live
from events_support import store_env
from test_cli import finder

from finder.usage import use_window
from geodata.events import NewEvent, event_log
from geodata.schema import Facility
from geodata.store import FacilityStore, GeoPackageStore

PUDONG, HUANGPU = "310115", "310101"
STATION = (121.60, 31.20)  # 张江, 浦东新区


def _backdate_devices(store: FacilityStore, days: int) -> None:
    """Make every device registered ``days`` ago, as if it had been counting since."""
    at = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    if isinstance(store, GeoPackageStore):
        with sqlite3.connect(store.path) as con:
            con.execute("UPDATE devices SET created_at = ?", (at.isoformat(),))
        return
    with psycopg.connect(store.database_url) as con:  # type: ignore[attr-defined]
        con.execute("UPDATE devices SET created_at = %s", (at,))


@pytest.fixture(scope="module")
def busy_station(edit_live: Live) -> Live:
    """A station in Pudong whose device counted 56 entries yesterday (2 a day over 28 days)."""
    store = edit_live.store
    store.create(
        Facility(
            id="use-busy-1",
            name="张江驿站",
            kind="worker_station",
            lon=STATION[0],
            lat=STATION[1],
            adcode=PUDONG,
            district="浦东新区",
            opening_hours="24/7",
        ),
        actor="test",
    )
    log = event_log(store)
    log.add_device("use-dev-1", "use-busy-1", "ab" * 32)
    _backdate_devices(store, 30)
    last = use_window(28)[1]
    noon = dt.datetime.combine(last, dt.time(4), dt.UTC)  # 12:00 China time
    log.append(
        [
            NewEvent("use-busy-1", "use-dev-1", "entry", noon + dt.timedelta(minutes=i), f"u{i}")
            for i in range(56)
        ],
        prune_before=noon - dt.timedelta(days=1),
    )
    return edit_live


def test_suggest_by_use_says_its_window_and_agrees_with_the_command(busy_station: Live) -> None:
    store = busy_station.store
    first, last = use_window(28)
    params = {"adcode": PUDONG, "radius_m": 3000, "n": 2}
    with busy_station.client() as client:
        plain = client.get("/coverage/suggest", params=params)
        weighted = client.get("/coverage/suggest", params={**params, "weight": "use"})
        refused = client.get(
            "/coverage/suggest", params={"adcode": HUANGPU, "n": 1, "weight": "use"}
        )
    assert plain.status_code == 200, plain.text
    assert plain.json()["metadata"]["weighting"] == {"weighting": "none"}
    assert weighted.status_code == 200, weighted.text
    weighting = weighted.json()["metadata"]["weighting"]
    assert {k: weighting[k] for k in ("weighting", "from", "to", "days", "catchment_m")} == {
        "weighting": "use",
        "from": first.isoformat(),
        "to": last.isoformat(),
        "days": 28,
        "catchment_m": 9000.0,
    }
    assert weighting["measured_facilities"] == 1
    assert weighting["reference_visits_per_day"] == 2.0  # 56 entries over 28 days
    assert weighting["unmeasured_facilities"] >= 1  # the sample's stations near Pudong
    assert refused.status_code == 400
    assert "counting device" in refused.json()["detail"]

    done = finder(
        "suggest",
        "--district",
        PUDONG,
        "--radius",
        "3000",
        "--n",
        "2",
        "--weight",
        "use",
        env=store_env(store),
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["weighting"] == weighting
    assert [(s["lon"], s["lat"]) for s in answer["sites"]] == [
        tuple(f["geometry"]["coordinates"]) for f in weighted.json()["features"]
    ]
    assert f"demand weighted by use from {first} to {last} (28 days)" in done.stderr


def _pdf_text(pdf: bytes, tmp_path: Path) -> str:
    """The PDF's text without white space (pdftotext breaks long lines)."""
    path = tmp_path / "sheet.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True)
    return "".join(done.stdout.split())


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="poppler-utils missing")
def test_the_printed_sheet_marks_sites_by_use_and_says_so(
    busy_station: Live, tmp_path: Path
) -> None:
    first, last = use_window(28)
    note = f"按使用量加权：{first}至{last}（28天）门禁计数，有计数设备1个（平均每日2次）"
    params = {"adcode": PUDONG, "radius_m": 3000, "suggest": 2}
    with busy_station.client() as client:
        weighted = client.get("/coverage/sheet.pdf", params={**params, "weight": "use"})
        plain = client.get("/coverage/sheet.pdf", params=params)
    assert weighted.status_code == 200 and plain.status_code == 200, weighted.text
    assert note in _pdf_text(weighted.content, tmp_path)
    assert "建议新址：使未覆盖面积覆盖最多（未按使用量加权）" in _pdf_text(plain.content, tmp_path)
    out = tmp_path / "cli.pdf"
    done = finder(
        "print",
        "--district",
        PUDONG,
        "--radius",
        "3000",
        "--suggest",
        "2",
        "--weight",
        "use",
        "--out",
        str(out),
        env=store_env(busy_station.store),
    )
    assert done.returncode == 0, done.stderr
    assert note in _pdf_text(out.read_bytes(), tmp_path)
