"""Two uvicorn workers sharing one PostGIS database: an edit made through one worker shows in the
``/nearest`` answers of every worker within one second, and after a restart."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest
from api_support import make_keys
from live_server import ServerProcess
from postgres import synthetic_frame

from geodata.postgis import PostGISStore

pytestmark = pytest.mark.postgis

#: Query point south-west of every synthetic facility (they lie in 121.10-121.90, 30.85-31.45).
QUERY = {"lon": 121.0, "lat": 30.75, "k": 1}
VISIBLE_WITHIN_S = 1.0
CONCURRENT = 6


def _nearest_id(base: str) -> str:
    """The nearest facility's id, on a new connection (so either worker may answer)."""
    host, port = base.removeprefix("http://").split(":")
    con = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        con.request("GET", "/nearest?" + urllib.parse.urlencode(QUERY))
        response = con.getresponse()
        body = response.read()
    finally:
        con.close()
    assert response.status == 200, body
    return str(json.loads(body)["features"][0]["id"])


def _db_now(url: str) -> dt.datetime:
    with psycopg.connect(url) as con:
        row = con.execute("SELECT now()").fetchone()
    assert row is not None
    return row[0]


def _workers_active_since(url: str, since: dt.datetime) -> set[str]:
    """The application names (``finder-<pid>``) whose connections ran a query after ``since``."""
    with psycopg.connect(url) as con:
        rows = con.execute(
            "SELECT DISTINCT application_name FROM pg_stat_activity WHERE datname = "
            "current_database() AND application_name LIKE 'finder-%%' AND state_change > %s",
            (since,),
        ).fetchall()
    return {r[0] for r in rows}


def _check_everyone_sees(base: str, url: str, edited_at: float, expected: str) -> float:
    """Ask ``/nearest`` for two seconds after an edit; every answer after one second, from both
    workers, must be ``expected``. Returns when the last stale answer came (seconds)."""
    answers: list[tuple[float, str]] = []
    db_deadline: list[dt.datetime] = []

    def ask_until_done(first: bool) -> None:
        # Several concurrent askers, so that the kernel hands connections to both workers.
        while (elapsed := time.monotonic() - edited_at) < 2 * VISIBLE_WITHIN_S:
            if first and not db_deadline and elapsed >= VISIBLE_WITHIN_S:
                db_deadline.append(_db_now(url))
            answers.append((elapsed, _nearest_id(base)))

    with ThreadPoolExecutor(CONCURRENT) as pool:
        for done in [pool.submit(ask_until_done, i == 0) for i in range(CONCURRENT)]:
            done.result()
    late = [fid for t, fid in answers if t >= VISIBLE_WITHIN_S]
    assert late and set(late) == {expected}, sorted(answers)
    workers = _workers_active_since(url, db_deadline[0])
    assert len(workers) == 2, f"not every worker answered after the deadline: {workers}"
    return max((t for t, fid in answers if fid != expected), default=0.0)


def test_an_edit_through_one_worker_reaches_every_worker_within_a_second(
    postgis_url: str, tmp_path: Path
) -> None:
    frame = synthetic_frame(400, seed=21)
    store = PostGISStore(postgis_url, migrate=False, application_name="test-setup")
    store.upsert_frame(frame, actor="setup")
    keys = make_keys(tmp_path / "keys.json")
    env = {
        "FINDER_DATABASE_URL": postgis_url,
        "FINDER_API_KEYS_FILE": str(tmp_path / "keys.json"),
        "FINDER_LOG_LEVEL": "WARNING",
        "FINDER_INDEX_POLL_S": "0.5",
    }
    public = frame.loc[(frame["access"] == "public") & (frame.index > 100), "id"]
    moved, moved_by_other = str(public.iloc[0]), str(public.iloc[1])

    try:
        with ServerProcess(env, workers=2) as base:
            before = {_nearest_id(base) for _ in range(10)}
            assert moved not in before and len(before) == 1
            # An edit through the API (served by one of the two workers).
            with httpx.Client(
                base_url=base, timeout=10, headers={"Authorization": f"Bearer {keys.editor}"}
            ) as editor:
                etag = editor.get(f"/facilities/{moved}").headers["ETag"]
                response = editor.patch(
                    f"/facilities/{moved}",
                    json={"lon": 121.0001, "lat": 30.7501},
                    headers={"If-Match": etag, "Content-Type": "application/merge-patch+json"},
                )
            edited_at = time.monotonic()
            assert response.status_code == 200, response.text
            _check_everyone_sees(base, postgis_url, edited_at, moved)
            # An edit by another process (neither worker made it): both must poll and rebuild.
            store.patch(
                moved_by_other, {"lon": 121.00005, "lat": 30.75005}, actor="elsewhere", if_version=1
            )
            stale_s = _check_everyone_sees(base, postgis_url, time.monotonic(), moved_by_other)
            print(f"edit by another process: last stale answer {stale_s:.3f} s after it")
    finally:
        store.close()

    with ServerProcess(env, workers=2) as base:
        assert _nearest_id(base) == moved_by_other
