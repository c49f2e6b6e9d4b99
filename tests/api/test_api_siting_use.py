"""``/coverage/suggest?weight=use`` and ``finder suggest --weight use`` on a store of each
backend: the answer says the weighting and its window, the two surfaces agree, and a district
without door counts is refused. (The ranking itself: ``tests/finder/test_siting_use.py``.)"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3

import psycopg
from api_support import Live
from test_cli import finder

from finder.usage import use_window
from geodata.events import NewEvent, event_log
from geodata.schema import Facility
from geodata.store import FacilityStore, GeoPackageStore

PUDONG, HUANGPU = "310115", "310101"
STATION = (121.60, 31.20)  # 张江, 浦东新区


def _store_env(store: FacilityStore) -> dict[str, str]:
    """The environment that names the server's store to the command line."""
    if isinstance(store, GeoPackageStore):
        return {"FINDER_STORE": str(store.path)}
    return {"FINDER_DATABASE_URL": store.database_url}  # type: ignore[attr-defined]


def _backdate_devices(store: FacilityStore, days: int) -> None:
    """Make every device registered ``days`` ago, as if it had been counting since."""
    at = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    if isinstance(store, GeoPackageStore):
        with sqlite3.connect(store.path) as con:
            con.execute("UPDATE devices SET created_at = ?", (at.isoformat(),))
        return
    with psycopg.connect(store.database_url) as con:  # type: ignore[attr-defined]
        con.execute("UPDATE devices SET created_at = %s", (at,))


def test_suggest_by_use_says_its_window_and_agrees_with_the_command(edit_live: Live) -> None:
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
    first, last = use_window(28)
    noon = dt.datetime.combine(last, dt.time(4), dt.UTC)  # 12:00 China time
    log.append(
        [
            NewEvent("use-busy-1", "use-dev-1", "entry", noon + dt.timedelta(minutes=i), f"u{i}")
            for i in range(56)
        ],
        prune_before=noon - dt.timedelta(days=1),
    )
    params = {"adcode": PUDONG, "radius_m": 3000, "n": 2}
    with edit_live.client() as client:
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
        env=_store_env(store),
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["weighting"] == weighting
    assert [(s["lon"], s["lat"]) for s in answer["sites"]] == [
        tuple(f["geometry"]["coordinates"]) for f in weighted.json()["features"]
    ]
    assert f"demand weighted by use from {first} to {last} (28 days)" in done.stderr
