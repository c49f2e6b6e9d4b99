"""The ``finder`` command with hostile files: ``finder import`` refuses a zip bomb at once and
without growing; ``finder export --format csv`` and ``finder coverage --format csv`` quote what a
spreadsheet would run, and an export imported again changes nothing (both store backends)."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from test_cli import finder
from zipbombs import xlsx_with_sheet

from geodata.cells import unescape_cell

HOSTILE = [
    '=HYPERLINK("http://x","click")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "-2+3",
    "＝1+1",
    "'=already quoted",
]


@pytest.fixture(params=["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)])
def store_args(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    """CLI arguments and environment naming a fresh store of each backend."""
    if request.param == "gpkg":
        return ["--store", str(tmp_path / "store.gpkg")], {}
    url = request.getfixturevalue("postgis_url")
    return [], {"FINDER_DATABASE_URL": url}


def _cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


def test_export_quotes_formulas_and_round_trips(
    store_args: tuple[list[str], dict[str, str]], tmp_path: Path
) -> None:
    args, env = store_args
    source = tmp_path / "list.csv"
    pd.DataFrame(
        {
            "id": [f"H{i}" for i in range(len(HOSTILE))],
            "name": HOSTILE,
            "kind": "rest_stop",
            "lon": [121.40 + i * 0.01 for i in range(len(HOSTILE))],
            "lat": 31.20,
            "access": "public",
            "address": HOSTILE,
            # all-empty amenities / star_rating / verified_at columns trip a pandas warning
            "amenities": "fridge",
            "star_rating": 3,
            "verified_at": "2026-01-05",
            "area_m2": 12.5,
        }
    ).to_csv(source, index=False)
    seeded = finder("import", str(source), *args, env=env)
    assert seeded.returncode == 0, seeded.stderr
    assert f"{len(HOSTILE)} accepted" in seeded.stdout

    out = tmp_path / "export.csv"
    done = finder("export", "--format", "csv", "--out", str(out), *args, env=env)
    assert done.returncode == 0, done.stderr
    rows = _cells(out.read_text(encoding="utf-8-sig"))
    header, body = rows[0], rows[1:]
    names = [r[header.index("name")] for r in body]
    stored = [unescape_cell(h) for h in HOSTILE]  # a quoted cell in a list is text
    assert sorted(names) == sorted("'" + h for h in stored)
    for row in body:
        for cell in row:
            assert cell[:1] not in ("=", "+", "@", "\t", "\r", "＝"), row
        assert float(row[header.index("lon")]) > 121  # numbers are written as numbers
        assert row[header.index("area_m2")] == "12.5"

    again = finder("import", str(out), *args, env=env)
    assert again.returncode == 0, again.stderr
    assert re.search(rf"0 new, 0 updated, {len(HOSTILE)} unchanged", again.stdout), again.stdout


def test_coverage_csv_quotes_district_names(tmp_path: Path) -> None:
    from geodata.sample import write_sample

    store = tmp_path / "store.gpkg"
    write_sample(store, 50)
    boundaries = _hostile_boundaries(tmp_path / "districts.geojson")
    table = tmp_path / "coverage.csv"
    done = finder(
        "coverage",
        "--format",
        "csv",
        "--out",
        str(table),
        "--store",
        str(store),
        env={"FINDER_BOUNDARIES": str(boundaries)},
    )
    assert done.returncode == 0, done.stderr
    rows = _cells(table.read_text(encoding="utf-8-sig"))
    assert "'" + HOSTILE[0] in {cell for row in rows for cell in row}
    assert not any(cell[:1] == "=" for row in rows for cell in row)


def _hostile_boundaries(path: Path) -> Path:
    """The bundled districts with the first district renamed to a formula."""
    from geodata.boundaries import SHANGHAI_DISTRICTS

    document = json.loads(SHANGHAI_DISTRICTS.read_text(encoding="utf-8"))
    document["features"][0]["properties"]["name"] = HOSTILE[0]
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


def _measured_import(path: Path, tmp: Path) -> tuple[int, str, float, float]:
    """``finder import path``: exit status, stderr, seconds and peak resident MiB (wait4)."""
    err = tmp / f"{path.stem}.err"
    start = time.perf_counter()
    with err.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "import", str(path), "--store", str(tmp / "s.gpkg")],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return (
        process.returncode,
        err.read_text(),
        time.perf_counter() - start,
        usage.ru_maxrss / 1024,
    )


def test_import_refuses_a_zip_bomb_at_once(tmp_path: Path) -> None:
    row = '<row r="{r}"><c r="A{r}" t="inlineStr"><is><t>{t}</t></is></c></row>'
    small = xlsx_with_sheet(
        tmp_path / "small.xlsx", row.format(r=1, t="name") + row.format(r=2, t="甲")
    )
    bomb = xlsx_with_sheet(tmp_path / "bomb.xlsx", spaces_mib=2048)
    status, _, small_s, small_mib = _measured_import(small, tmp_path)
    assert status == 0
    status, stderr, bomb_s, bomb_mib = _measured_import(bomb, tmp_path)
    assert status == 2
    assert "bomb.xlsx" in stderr and "max_expanded_mb" in stderr
    assert bomb_s < small_s + 2.0  # the refusal itself takes milliseconds
    assert bomb_mib - small_mib < 100
