"""The dry run the staff console shows: every row new / updated / unchanged (with its diff) or
rejected with its cells, and the clerk's corrected cells applied before validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from geodata.errors import InvalidInput
from geodata.imports import import_file
from geodata.store import FacilityStore

HEADER = "编号,名称,类型,经度,纬度,开放对象,开放时间\n"
ROWS = [
    "P-1,预览驿站一,工会驿站,121.47,31.23,public,24/7",
    "P-2,预览驿站二,工会驿站,121.48,31.23,public,24/7",
    "P-3,预览驿站三,工会驿站,121.49,31.23,public,24/7",
]


def _csv(tmp_path: Path, rows: list[str], folder: str = "a") -> Path:
    (tmp_path / folder).mkdir(exist_ok=True)
    path = tmp_path / folder / "list.csv"  # one name: the source of every row
    path.write_bytes((HEADER + "\n".join(rows) + "\n").encode("gbk"))
    return path


def test_dry_run_describes_each_row_and_writes_nothing(
    store: FacilityStore, tmp_path: Path
) -> None:
    import_file(store, _csv(tmp_path, ROWS[:2]), actor="first")
    before = store.frame()
    counter = store.change_counter()
    changed = [
        ROWS[0],
        ROWS[1].replace("预览驿站二", "预览驿站二号"),
        ROWS[2],
        "P-4,坏行,工会驿站,abc",
    ]
    changed[3] += ",31.23,public,24/7"
    report = import_file(store, _csv(tmp_path, changed, "b"), dry_run=True)

    assert store.change_counter() == counter
    assert store.frame().equals(before)
    status = {r["id"]: (r["status"], r["diff"]) for r in report.rows}
    assert status == {
        "P-1": ("unchanged", {}),
        "P-2": ("updated", {"name": ["预览驿站二", "预览驿站二号"]}),
        "P-3": ("new", {}),
    }
    out = report.to_dict()
    assert out["rejected_rows"] == [
        {
            "row": 5,
            "cells": {
                "编号": "P-4",
                "名称": "坏行",
                "类型": "工会驿站",
                "经度": "abc",
                "纬度": "31.23",
                "开放对象": "public",
                "开放时间": "24/7",
            },
        }
    ]
    assert out["headers"]["经度"] == "lon"
    assert not out["rows_truncated"]


def test_fixed_cells_are_validated_as_if_the_file_had_them(
    store: FacilityStore, tmp_path: Path
) -> None:
    path = _csv(tmp_path, [ROWS[0], "P-9,修正驿站,工会驿站,abc,31.23,public,24/7"])
    rejected = import_file(store, path, dry_run=True)
    assert [(i.row, i.field) for i in rejected.issues] == [(3, "lon")]

    fixed = import_file(store, path, fixes={3: {"经度": "121.5"}})
    assert fixed.rejected == 0 and fixed.inserted == 2
    assert store.get("P-9").lon == pytest.approx(121.5)
    assert path.read_bytes().count(b"abc") == 1  # the file itself is not changed


@pytest.mark.parametrize(
    ("fixes", "message"),
    [({7: {"经度": "1"}}, "no readable row 7"), ({2: {"经度X": "1"}}, "no column '经度X'")],
)
def test_fixes_name_rows_and_columns_of_the_file(
    store: FacilityStore, tmp_path: Path, fixes: dict[int, dict[str, str]], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        import_file(store, _csv(tmp_path, ROWS[:1]), fixes=fixes, dry_run=True)
