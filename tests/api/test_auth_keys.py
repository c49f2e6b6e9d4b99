"""Managing API keys: ``finder keys add / list / revoke``, expiry, and the key file.

A revoked or expired key must be refused by a running server (every worker) from the next
request, with the same answer as a key it never knew; the key file is only ever replaced whole.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
from api_support import CENTRE, Live, ServerProcess, facility_rows

from api.auth import KeyRing, create_api_key, list_api_keys, revoke_api_key
from api.cli import main
from geodata.store import GeoPackageStore


@dataclass(frozen=True)
class Ran:
    """What a command did."""

    returncode: int
    stdout: str
    stderr: str


NEAREST = {"lon": CENTRE[0], "lat": CENTRE[1], "k": 1}


def finder_keys(*args: str) -> Ran:
    """``finder keys ARGS`` as an operator runs it (in this process: the command starts in
    seconds, and the servers under test are other processes anyway)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["keys", *args])
        except SystemExit as exc:  # argparse
            code = int(exc.code or 0)
    return Ran(code, out.getvalue(), err.getvalue())


def _add(keys_file: Path, name: str, *options: str) -> str:
    done = finder_keys("add", name, *options, "--keys-file", str(keys_file))
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_list_shows_every_key_but_never_its_secret(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.json"
    last_day = dt.date.today() + dt.timedelta(days=400)
    staff = _add(keys_file, "staff-1", "--scope", "edit", "--org", "某科技有限公司", "--days", "90")
    app = _add(
        keys_file, "app-1", "--scope", "read-private", "--member", "--expires", f"{last_day}"
    )
    revoked = finder_keys("revoke", "staff-1", "--keys-file", str(keys_file))
    assert revoked.returncode == 0, revoked.stderr

    listed = finder_keys("list", "--json", "--keys-file", str(keys_file))
    table = finder_keys("list", "--keys-file", str(keys_file))
    assert listed.returncode == table.returncode == 0, listed.stderr + table.stderr
    hashes = [e["sha256"] for e in json.loads(keys_file.read_text(encoding="utf-8"))["keys"]]
    for secret in (staff, app, *hashes):
        assert secret not in listed.stdout and secret not in table.stdout
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    now = dt.datetime.now(dt.UTC)
    staff_row, app_row = rows["staff-1"], rows["app-1"]
    assert staff_row["scopes"] == ["edit"] and staff_row["organizations"] == ["某科技有限公司"]
    assert staff_row["status"] == "revoked"
    assert abs(dt.datetime.fromisoformat(staff_row["revoked"]) - now) < dt.timedelta(minutes=1)
    expires = dt.datetime.fromisoformat(staff_row["expires"]) - now
    assert dt.timedelta(days=89) < expires <= dt.timedelta(days=90)
    assert app_row["member"] is True and app_row["status"] == "active"
    assert app_row["revoked"] is None
    next_day = last_day + dt.timedelta(days=1)
    assert app_row["expires"] == f"{next_day.isoformat()}T00:00:00+08:00"
    assert abs(dt.datetime.fromisoformat(app_row["created"]) - now) < dt.timedelta(minutes=1)
    header, *lines = table.stdout.splitlines()
    assert header.split("\t") == list(staff_row)
    assert [line.split("\t")[0] for line in lines] == ["staff-1", "app-1"]
    assert "某科技有限公司" in lines[0] and "revoked" in lines[0]


def test_the_command_refuses_keys_that_cannot_work(tmp_path: Path) -> None:
    keys_file = str(tmp_path / "keys.json")
    _add(tmp_path / "keys.json", "gone", "--scope", "edit")
    assert finder_keys("revoke", "gone", "--keys-file", keys_file).returncode == 0
    for args, reason in (
        (("add", "x", "--scope", "read-private"), "--org"),
        (("add", "x", "--scope", "edit", "--days", "0"), "future"),
        (("add", "x", "--scope", "edit", "--expires", "2020-01-01"), "future"),
        (("add", "x", "--scope", "edit", "--expires", "30/06/2027"), "YYYY-MM-DD"),
        (("add", "x", "--scope", "edit", "--expires", "2099-01-01", "--days", "3"), "not allowed"),
        (("add", "gone", "--scope", "edit"), "exists already"),
        (("revoke", "nobody"), "no key named"),
    ):
        done = finder_keys(*args, "--keys-file", keys_file)
        assert done.returncode == 2 and reason in done.stderr, (args, done.stderr)
    assert [k.name for k in list_api_keys(keys_file)] == ["gone"]


def test_revoked_and_expired_keys_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    ring = KeyRing(path)
    lasting = create_api_key(path, "lasting", ["edit"])
    doomed = create_api_key(path, "doomed", ["edit"])
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1.5)
    brief = create_api_key(path, "brief", ["edit"], expires=expires)
    assert ring.authenticate(brief) is not None and ring.authenticate(doomed) is not None
    revoke_api_key(path, "doomed")
    assert ring.authenticate(doomed) is None
    time.sleep(max(0.0, (expires - dt.datetime.now(dt.UTC)).total_seconds()) + 0.1)
    assert ring.authenticate(brief) is None  # the file did not change: expiry is checked
    assert ring.authenticate(lasting) is not None
    assert {k.name: k.status(dt.datetime.now(dt.UTC)) for k in list_api_keys(path)} == {
        "lasting": "active",
        "doomed": "revoked",
        "brief": "expired",
    }


def test_concurrent_changes_lose_nothing_and_readers_never_see_half_a_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "keys.json"
    create_api_key(path, "first", ["edit"])
    done = threading.Event()
    unreadable: list[str] = []

    def read_until_done() -> None:
        while not done.is_set():
            text = path.read_text(encoding="utf-8")
            try:
                json.loads(text)
            except ValueError:
                unreadable.append(text)

    def add_five(writer: int) -> list[str]:
        return [create_api_key(path, f"w{writer}-{i}", ["edit"]) for i in range(5)]

    reader = threading.Thread(target=read_until_done)
    reader.start()
    try:
        with ThreadPoolExecutor(6) as pool:
            added = [key for keys in pool.map(add_five, range(6)) for key in keys]
    finally:
        done.set()
        reader.join(timeout=30)
    assert not unreadable
    assert len(list_api_keys(path)) == 31
    ring = KeyRing(path)
    assert all(ring.authenticate(key) is not None for key in added)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def _answer(url: str, key: str) -> tuple[int, dict[str, object]]:
    """``/nearest`` with ``key`` on a new connection (so any worker may answer)."""
    r = httpx.get(url + "/nearest", params=NEAREST, headers={"X-API-Key": key}, timeout=30)
    return r.status_code, r.json()


def test_a_key_revoked_by_the_command_is_refused_at_the_next_request(edit_live: Live) -> None:
    key = _add(edit_live.keys_file, "revoke-me", "--scope", "read-private", "--org", "OrgA")
    assert _answer(edit_live.url, key)[0] == 200
    revoked = finder_keys("revoke", "revoke-me", "--keys-file", str(edit_live.keys_file))
    assert revoked.returncode == 0, revoked.stderr
    status, body = _answer(edit_live.url, key)
    assert (status, body) == _answer(edit_live.url, "fk_never-issued")
    assert status == 401


def test_every_worker_refuses_revoked_and_expired_keys(tmp_path: Path) -> None:
    store = GeoPackageStore(tmp_path / "store.gpkg")
    store.upsert_frame(facility_rows(), actor="fixture")
    store.close()
    keys_file = tmp_path / "keys.json"
    key = _add(keys_file, "two-workers", "--scope", "edit")
    env = {
        "FINDER_STORE": str(tmp_path / "store.gpkg"),
        "FINDER_API_KEYS_FILE": str(keys_file),
        "FINDER_LOG_LEVEL": "WARNING",
        "FINDER_INDEX_POLL_S": "0.5",
    }
    with ServerProcess(env, workers=2) as url, ThreadPoolExecutor(4) as pool:

        def statuses(key: str) -> set[int]:
            return {status for status, _ in pool.map(lambda _: _answer(url, key), range(16))}

        unknown = _answer(url, "fk_never-issued")
        assert statuses(key) == {200}
        assert finder_keys("revoke", "two-workers", "--keys-file", str(keys_file)).returncode == 0
        assert statuses(key) == {401}
        assert _answer(url, key) == unknown

        expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)
        brief = create_api_key(keys_file, "brief", ["edit"], expires=expires)
        assert statuses(brief) == {200}
        time.sleep(max(0.0, (expires - dt.datetime.now(dt.UTC)).total_seconds()) + 0.1)
        assert statuses(brief) == {401}
        assert _answer(url, brief) == unknown
