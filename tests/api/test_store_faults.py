"""A GeoPackage store that cannot be written: locked by another writer, on a full disk, on a
read-only file system. The API answers 503 problem+json with ``Retry-After``, ``finder import``
exits 2 with a one-line message, and the store is left as it was.

The full disk and the read-only file system are real: a small tmpfs mounted for the test (root
only; the test is skipped elsewhere, and fails under ``CI=true``).
"""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from api_support import Keys, ServerProcess, free_port, make_keys
from disks import read_only, tmpfs

from geodata.sample import write_sample
from geodata.store import GeoPackageStore

DATA = Path(__file__).resolve().parents[1] / "data"
LOCK_TIMEOUT_S = 1.0


def _finder_import(store: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "api.cli", "import", str(DATA / "union_list_gbk.csv")]
    return subprocess.run(
        [*command, "--store", str(store)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "FINDER_STORE_LOCK_TIMEOUT_S": str(LOCK_TIMEOUT_S)},
        check=False,
    )


@contextmanager
def _server(store: Path, tmp: Path) -> Iterator[tuple[str, Keys]]:
    keys = make_keys(tmp / "keys.json")
    env = {
        "FINDER_STORE": str(store),
        "FINDER_API_KEYS_FILE": str(tmp / "keys.json"),
        "FINDER_LOG_LEVEL": "WARNING",
        "FINDER_INDEX_POLL_S": "0.2",
        "FINDER_STORE_LOCK_TIMEOUT_S": str(LOCK_TIMEOUT_S),
    }
    with ServerProcess(env) as url:
        yield url, keys


def _patch_name(url: str, keys: Keys, facility_id: str) -> httpx.Response:
    with httpx.Client(base_url=url, timeout=30) as client:
        return client.patch(
            f"/facilities/{facility_id}",
            json={"name": "改过的名字"},
            headers={
                "Authorization": f"Bearer {keys.editor}",
                "Content-Type": "application/merge-patch+json",
                "If-Match": "*",
            },
        )


def _assert_unavailable(response: httpx.Response, slug: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["type"].endswith("/" + slug)


def _assert_one_line_exit_2(done: subprocess.CompletedProcess[str], words: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("finder import: ") and words in last, done.stderr


def _state(store: Path) -> tuple[int, list[tuple[object, ...]]]:
    s = GeoPackageStore(store)
    try:
        frame = s.frame()
        return s.change_counter(), list(frame.itertuples(index=False))
    finally:
        s.close()


def test_a_locked_store_gives_503_and_exit_2_after_the_lock_timeout(tmp_path: Path) -> None:
    store = tmp_path / "store.gpkg"
    write_sample(store, 50)
    before = _state(store)
    facility_id = str(before[1][0][0])
    with _server(store, tmp_path) as (url, keys):
        holder = sqlite3.connect(store, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # a long import by another process
        try:
            started = time.monotonic()
            response = _patch_name(url, keys, facility_id)
            waited = time.monotonic() - started
            _assert_unavailable(response, "store-busy")
            assert LOCK_TIMEOUT_S * 0.9 <= waited < LOCK_TIMEOUT_S + 10

            started = time.monotonic()
            done = _finder_import(store)
            assert time.monotonic() - started >= LOCK_TIMEOUT_S * 0.9
            _assert_one_line_exit_2(done, "locked")
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert _state(store) == before
        assert _patch_name(url, keys, facility_id).status_code == 200  # the lock is gone


def test_a_full_disk_gives_503_and_exit_2_and_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "4m") as disk:
        store = disk / "store.gpkg"
        write_sample(store, 50)
        before = _state(store)
        facility_id = str(before[1][0][0])
        with _server(store, tmp_path) as (url, keys):
            filler = disk / "filler"
            with filler.open("wb", buffering=0) as out:  # unbuffered: close has nothing to flush
                try:
                    while True:
                        out.write(b"\0" * 65536)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
            _assert_unavailable(_patch_name(url, keys, facility_id), "store-full")
            _assert_one_line_exit_2(_finder_import(store), "full")
            assert httpx.get(url + "/nearest?lon=121.47&lat=31.23").status_code == 200
            filler.unlink()
            assert _state(store) == before
            assert _patch_name(url, keys, facility_id).status_code == 200  # space again


def test_a_read_only_store_is_served_and_gives_503_and_exit_2_on_writes(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "4m") as disk:
        store = disk / "store.gpkg"
        write_sample(store, 50)
        before = _state(store)
        facility_id = str(before[1][0][0])
        with read_only(disk), _server(store, tmp_path) as (url, keys):
            assert httpx.get(url + "/nearest?lon=121.47&lat=31.23").status_code == 200
            _assert_unavailable(_patch_name(url, keys, facility_id), "store-read-only")
            _assert_one_line_exit_2(_finder_import(store), "read-only")
            assert httpx.get(url + "/health").status_code == 200
            assert _state(store) == before


def test_an_unreachable_database_gives_exit_2_with_one_line() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/finder"  # nothing listens there
    command = [sys.executable, "-m", "api.cli", "import", str(DATA / "union_list_gbk.csv")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINDER_")}
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=60,
        env=env | {"FINDER_DATABASE_URL": url},
        check=False,
    )
    _assert_one_line_exit_2(done, "cannot reach the database")
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
