"""The service maps the facility table file of its store's change counter, and a write by another
process leads it to the file of the new counter (real uvicorn, both store backends)."""

from __future__ import annotations

import time
from pathlib import Path

from api_support import CENTRE, Live

from finder.table_file import table_path
from geodata.schema import Facility

WAIT_S = 30.0


def server_env(tmp: Path) -> dict[str, str]:
    """This module's server keeps its table files in the test's directory."""
    return {"FINDER_TABLE_DIR": str(tmp / "tables")}


def _tables(live: Live) -> Path:
    return live.keys_file.parent / "tables"


def test_the_worker_writes_the_table_of_the_current_counter(edit_live: Live) -> None:
    store = edit_live.store
    expected = table_path(_tables(edit_live), store.identity(), store.change_counter())
    assert sorted(_tables(edit_live).glob("*.arrow")) == [expected]


def test_a_write_by_another_process_gives_a_new_table(edit_live: Live) -> None:
    store = edit_live.store
    before = store.change_counter()
    lon, lat = CENTRE[0] - 0.2, CENTRE[1] - 0.2
    store.create(
        Facility(id="table-new-1", name="新驿站", kind="rest_stop", lon=lon, lat=lat),
        actor="another-process",
    )
    after = store.change_counter()
    assert after > before
    expected = table_path(_tables(edit_live), store.identity(), after)
    deadline = time.monotonic() + WAIT_S
    with edit_live.client() as anon:
        while True:
            answer = anon.get("/nearest", params={"lon": lon, "lat": lat, "k": 1}).json()
            if answer["features"][0]["id"] == "table-new-1" and expected.exists():
                break
            assert time.monotonic() < deadline, "the write did not reach the service"
            time.sleep(0.1)
    assert sorted(_tables(edit_live).glob("*.arrow")) == [expected]
