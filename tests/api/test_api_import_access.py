"""Bulk import and create under access control: a hidden facility looks exactly like a missing one.

A key that cannot see every facility may only touch, by id, a facility it may see (and so edit);
an id it may not see is refused exactly like an id nobody uses, and rows without an id (or
``POST /facilities`` bodies without one) are new facilities whose ids the server assigns. A
per-row ``version`` (the ETag, as ``finder export`` writes it) guards against overwriting a newer
change, in the API and in the ``finder import`` command.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from api_support import CENTRE, SECRET_ID, SECRET_ORG, Live

from geodata.schema import ID_RE
from geodata.store import GeoPackageStore
from geodata.validate import stable_id

NEVER_USED = "never-used-1"
REFUSAL = "is not a facility you may edit; leave id empty to add a new facility"


def _csv(**columns: Any) -> bytes:
    return pd.DataFrame({k: [v] for k, v in columns.items()}).to_csv(index=False).encode()


def _import(client: httpx.Client, data: bytes, **form: str) -> dict[str, Any]:
    r = client.post(
        "/facilities/import", data=form, files={"file": ("list.csv", io.BytesIO(data), "text/csv")}
    )
    assert r.status_code == 200, r.text
    report: dict[str, Any] = r.json()
    return report


def _attack(fid: str) -> bytes:
    """The row of issue 11: rename, move and publish the facility ``fid``."""
    return _csv(
        id=fid,
        name="已被改名",
        kind="mother_room",
        lon=CENTRE[0] + 0.05,
        lat=CENTRE[1] + 0.05,
        access="public",
    )


def test_import_by_another_organisation_leaves_the_hidden_room_alone(edit_live: Live) -> None:
    before = edit_live.store.get(SECRET_ID)
    with edit_live.client(edit_live.keys.org_x_editor) as attacker:
        for dry_run in ("true", "false"):
            report = _import(attacker, _attack(SECRET_ID), dry_run=dry_run)
            assert (report["accepted"], report["rejected"], report["updated"]) == (0, 1, 0)
            assert report["issues"][0]["reason"] == f"id {SECRET_ID!r} {REFUSAL}"
    assert edit_live.store.get(SECRET_ID) == before


def test_hidden_and_unused_ids_get_the_same_answers(edit_live: Live) -> None:
    with edit_live.client(edit_live.keys.org_x_editor) as attacker:
        hidden = _import(attacker, _attack(SECRET_ID))
        unused = _import(attacker, _attack(NEVER_USED))
        body = {"name": "x", "kind": "rest_stop", "lon": CENTRE[0], "lat": CENTRE[1]}
        created_hidden = attacker.post("/facilities", json=body | {"id": SECRET_ID})
        created_unused = attacker.post("/facilities", json=body | {"id": NEVER_USED})
    assert json.dumps(hidden).replace(SECRET_ID, "X") == json.dumps(unused).replace(NEVER_USED, "X")
    assert created_hidden.status_code == created_unused.status_code == 422
    assert created_hidden.headers["content-type"] == "application/problem+json"
    assert created_hidden.content.replace(SECRET_ID.encode(), b"X") == (
        created_unused.content.replace(NEVER_USED.encode(), b"X")
    )
    with pytest.raises(Exception, match="no facility"):
        edit_live.store.get(NEVER_USED)


@pytest.fixture(scope="module")
def own_room(edit_live: Live) -> str:
    """An ``employees`` room of OrgA, made by the administrator (who may choose ids)."""
    body = {
        "id": "orga-room-1",
        "name": "OrgA 二号小屋",
        "kind": "mother_room",
        "lon": CENTRE[0] + 0.002,
        "lat": CENTRE[1],
        "access": "employees",
        "organization": SECRET_ORG,
    }
    with edit_live.client(edit_live.keys.editor) as admin:
        r = admin.post("/facilities", json=body)
        assert r.status_code == 201, r.text
        assert admin.post("/facilities", json=body).status_code == 409  # an admin sees clashes
    return "orga-room-1"


def _own_row(fid: str, name: str, **extra: Any) -> bytes:
    return _csv(
        id=fid,
        name=name,
        kind="mother_room",
        lon=CENTRE[0] + 0.002,
        lat=CENTRE[1],
        access="employees",
        organization=SECRET_ORG,
        **extra,
    )


def test_an_organisation_updates_its_own_room_with_a_version(
    edit_live: Live, own_room: str
) -> None:
    with edit_live.client(edit_live.keys.org_a_editor) as owner:
        version = owner.get(f"/facilities/{own_room}").headers["etag"].strip('"')
        report = _import(owner, _own_row(own_room, "改名一次", version=version))
        assert (report["accepted"], report["updated"]) == (1, 1), report
        assert edit_live.store.get(own_room).name == "改名一次"

        stale = _import(owner, _own_row(own_room, "过期的改名", version=version))
        assert (stale["accepted"], stale["rejected"]) == (0, 1)
        issue = stale["issues"][0]
        assert issue["field"] == "version"
        assert issue["reason"] == f"changed since version {version} was read"
        assert edit_live.store.get(own_room).name == "改名一次"

        unversioned = _import(owner, _own_row(own_room, "不带版本的改名"))
        assert unversioned["updated"] == 1
    saved = edit_live.store.get(own_room)
    assert saved.name == "不带版本的改名" and saved.version == int(version) + 2


def test_rows_without_an_id_are_new_facilities_with_server_ids(edit_live: Live) -> None:
    row = {"name": "无编号的新驿站", "kind": "rest_stop", "lon": 121.44, "lat": 31.21}
    with edit_live.client(edit_live.keys.org_x_editor) as editor:
        first = _import(editor, _csv(**row, access="public"))
        again = _import(editor, _csv(**row, access="public"))
        created = editor.post("/facilities", json=row)
    assert first["inserted"] == again["inserted"] == 1
    frame = edit_live.store.frame()
    ids = frame.loc[frame["name"] == row["name"], "id"].tolist()
    assert len(ids) == 3 and all(ID_RE.match(i) for i in ids)
    assert stable_id("rest_stop", row["name"], None, row["lon"], row["lat"]) not in ids
    assert created.status_code == 201, created.text
    assert created.json()["id"] in ids
    assert created.headers["location"] == f"/collections/facilities/items/{created.json()['id']}"


def _finder(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
        check=False,
    )


@pytest.mark.parametrize("fmt", ["csv", "gpkg"])
def test_cli_import_checks_the_exported_versions(tmp_path: Path, fmt: str) -> None:
    from geodata.sample import write_sample

    store_path = tmp_path / "store.gpkg"
    write_sample(store_path, 20)
    store = GeoPackageStore(store_path)
    first, second = store.frame()["id"].iloc[:2]
    try:
        store.patch(second, {"name": "导出前改过"}, actor="someone", if_version=1)
    finally:
        store.close()
    exported = tmp_path / f"export.{fmt}"
    done = _finder("export", "--format", fmt, "--out", str(exported), "--store", str(store_path))
    assert done.returncode == 0, done.stderr
    if fmt == "csv":
        frame = pd.read_csv(exported, encoding="utf-8-sig", dtype=str).set_index("id")
        assert frame.loc[[first, second], "version"].tolist() == ["1", "2"]
    else:
        copy = GeoPackageStore(exported)
        try:
            assert copy.frame_of([first, second])["version"].tolist() == [1, 2]
        finally:
            copy.close()
    store = GeoPackageStore(store_path)
    try:
        store.patch(first, {"name": "别人先改了"}, actor="someone", if_version=1)
    finally:
        store.close()

    done = _finder("import", str(exported), "--store", str(store_path))
    assert done.returncode == 0, done.stderr
    assert "19 accepted (0 new, 0 updated, 19 unchanged), 1 rejected" in done.stdout
    assert "version: changed since version 1 was read" in done.stdout
    store = GeoPackageStore(store_path)
    try:
        assert store.get(first).name == "别人先改了"
        assert store.get(second).version == 2
    finally:
        store.close()
