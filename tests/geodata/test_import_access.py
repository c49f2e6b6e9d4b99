"""Import under access control and optimistic concurrency, on both store backends.

A viewer who cannot see every facility may update, by id, only what it may see; hidden and
unknown ids get the same rejection; a stale ``version`` is rejected; and what was checked still
holds when the import writes (the store re-checks inside its transaction).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from geodata.errors import VersionConflict
from geodata.imports import import_file
from geodata.schema import ID_RE, Viewer
from geodata.store import FacilityStore
from geodata.validate import stable_id

ORG_X = Viewer(organizations=frozenset({"OrgX"}))
BASE = {
    "kind": "mother_room",
    "lon": 121.47,
    "lat": 31.23,
    "amenities": "",
    "source_crs": "wgs84",
    "status": "open",
    "source": "test",
}


@pytest.fixture
def filled(store: FacilityStore) -> FacilityStore:
    rows = [
        BASE
        | {"id": "hidden-1", "name": "乙单位小屋", "access": "employees", "organization": "OrgY"},
        BASE | {"id": "own-1", "name": "甲单位小屋", "access": "employees", "organization": "OrgX"},
        BASE | {"id": "public-1", "name": "公开小屋", "access": "public", "lon": 121.48},
    ]
    store.upsert_frame(pd.DataFrame(rows), actor="fixture")
    return store


def _write(tmp_path: Path, rows: list[dict[str, Any]]) -> Path:
    path = tmp_path / "list.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _row(**values: Any) -> dict[str, Any]:
    return {"name": "改名", "kind": "mother_room", "lon": 121.47, "lat": 31.23} | values


def test_hidden_and_unknown_ids_are_refused_alike(filled: FacilityStore, tmp_path: Path) -> None:
    before = filled.frame()
    rows = [_row(id="hidden-1", access="public"), _row(id="unknown-1", access="public", lon=121.5)]
    report = import_file(filled, _write(tmp_path, rows), viewer=ORG_X)
    assert (report.accepted, report.rejected) == (0, 2)
    hidden, unknown = report.issues
    assert (hidden.field, hidden.value) == ("id", "hidden-1")
    assert hidden.reason.replace("hidden-1", "X") == unknown.reason.replace("unknown-1", "X")
    pd.testing.assert_frame_equal(filled.frame(), before)


def test_own_and_new_rows_are_written(filled: FacilityStore, tmp_path: Path) -> None:
    rows = [
        _row(id="own-1", access="employees", organization="OrgX"),
        _row(name="新小屋", access="public", lon=121.49),
    ]
    report = import_file(filled, _write(tmp_path, rows), viewer=ORG_X)
    assert (report.accepted, report.updated, report.inserted) == (2, 1, 1), report.issues
    assert filled.get("own-1").name == "改名"
    new = filled.frame().query("name == '新小屋'")["id"].item()
    assert ID_RE.match(new) and new != stable_id("mother_room", "新小屋", None, 121.49, 31.23)
    # The operator (no viewer) keeps explicit and derived ids.
    report = import_file(filled, _write(tmp_path, [_row(id="op-1", access="public")]))
    assert report.inserted == 1 and filled.get("op-1").name == "改名"


def test_a_stale_version_is_rejected(filled: FacilityStore, tmp_path: Path) -> None:
    filled.patch("public-1", {"name": "别人先改了"}, actor="someone", if_version=1)
    rows = [
        _row(id="public-1", access="public", version="1"),
        _row(id="own-1", access="employees", organization="OrgX", lon=121.46, version="1"),
        _row(id="brand-new", access="public", lon=121.5, version="1"),
        _row(id="hidden-1", access="public", lon=121.45, version="x"),
    ]
    report = import_file(filled, _write(tmp_path, rows))
    reasons = {(i.row, i.field): i.reason for i in report.issues if i.level == "rejected"}
    assert reasons == {
        (2, "version"): "changed since version 1 was read",
        (5, "version"): "version 'x' is not a version number (the facility's ETag, e.g. 3)",
    }
    assert (report.updated, report.inserted) == (1, 1)  # a new id: the version is not checked
    assert filled.get("public-1").name == "别人先改了"
    assert filled.get("own-1").version == 2


def test_a_change_while_the_import_runs_writes_nothing(
    filled: FacilityStore, tmp_path: Path
) -> None:
    def change_first(line: str) -> None:
        if line.startswith("writing"):  # after the checks, before the write
            filled.patch("own-1", {"organization": "OrgY"}, actor="someone", if_version=1)

    path = _write(tmp_path, [_row(id="own-1", access="public"), _row(name="新", access="public")])
    counter = filled.change_counter()
    with pytest.raises(VersionConflict, match="changed while the import ran"):
        import_file(filled, path, viewer=ORG_X, progress=change_first)
    after = filled.get("own-1")
    assert (after.organization, after.access, after.name) == ("OrgY", "employees", "甲单位小屋")
    assert len(filled.frame()) == 3
    assert filled.change_counter() == counter + 1  # the other writer's change only


def test_upsert_frame_checks_versions_inside_its_transaction(filled: FacilityStore) -> None:
    frame = filled.frame().drop(columns=["created_at", "updated_at", "version"])
    before = filled.frame()
    for wrong in ({"own-1": 2}, {"public-1": 0}, {"not-there": 1}):
        with pytest.raises(VersionConflict):
            filled.upsert_frame(frame.assign(name="x"), actor="t", if_versions=wrong)
    pd.testing.assert_frame_equal(filled.frame(), before)
    counts = filled.upsert_frame(frame.assign(name="x"), actor="t", if_versions={"own-1": 1})
    assert counts["updated"] == 3


def test_frame_of_reads_any_number_of_ids(
    store: FacilityStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from geodata.sample import sample_frame

    monkeypatch.setattr("geodata.store._IDS_PER_QUERY", 100)  # several queries
    frame = sample_frame(1200)
    store.upsert_frame(frame, actor="fixture")
    wanted = [*frame["id"].iloc[::2], "not-there"]
    got = store.frame_of(wanted)
    assert sorted(got["id"]) == sorted(frame["id"].iloc[::2])
    assert store.frame_of([]).empty and list(store.frame_of([]).columns) == list(got.columns)
