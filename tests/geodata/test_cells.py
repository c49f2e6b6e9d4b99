"""Spreadsheet formula injection: the one escape of every CSV writer, and its exact inverse."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from geodata.cells import escape_cell, escape_frame, frame_to_csv, unescape_cell
from geodata.imports import import_file
from geodata.readers import read_table
from geodata.store import FacilityStore

#: Cells a spreadsheet would run (OWASP), and texts that look escaped already.
HOSTILE = [
    '=HYPERLINK("http://x","click")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "-2+3",
    "\t=1+1",
    "\r=1+1",
    "＝1+1",
    "'=already quoted",
    "''=twice",
]
HARMLESS = ["静安区工会驿站", "'s-Hertogenbosch", "'0123", "a=b", "1+1", ""]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_cells_are_quoted(text: str) -> None:
    assert escape_cell(text) == "'" + text
    assert unescape_cell(escape_cell(text)) == text


@pytest.mark.parametrize("text", HARMLESS)
def test_harmless_cells_are_left_alone(text: str) -> None:
    assert escape_cell(text) == text
    assert unescape_cell(text) == text


@pytest.mark.parametrize("value", [-33.5, -2, 0, None, 121.4737])
def test_numbers_are_numbers(value: float | None) -> None:
    assert escape_cell(value) == value


@given(st.text())
def test_unescape_inverts_escape(text: str) -> None:
    assert unescape_cell(escape_cell(text)) == text


def test_escape_frame_quotes_text_not_numbers() -> None:
    frame = pd.DataFrame({"name": ["=1+1", "ok", None], "lon": [-33.5, 121.0, 2.0]})
    out = escape_frame(frame)
    assert out["name"].iloc[:2].tolist() == ["'=1+1", "ok"] and out["name"].isna().iloc[2]
    assert out["lon"].tolist() == [-33.5, 121.0, 2.0]
    assert frame["name"].iloc[0] == "=1+1"  # the input is not changed


def _hostile_list(path: Path) -> Path:
    """A union's list whose names and addresses a spreadsheet would run."""
    rows = [
        {
            "id": f"H{i}",
            "name": f"{text}",
            "kind": "rest_stop",
            "lon": 121.40 + i * 0.01,
            "lat": 31.20,
            "access": "public",
            "address": text,
            # all-empty amenities / star_rating / verified_at columns trip a pandas warning
            "amenities": "fridge",
            "star_rating": 3,
            "verified_at": "2026-01-05",
        }
        for i, text in enumerate(HOSTILE)
    ]
    pd.DataFrame(rows).to_csv(path, index=False, lineterminator="\r\n")  # "\r" cells quoted
    return path


def test_reject_report_is_escaped(store: FacilityStore, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    pd.DataFrame(
        {"name": ["甲"], "kind": ['=HYPERLINK("http://x","click")'], "lon": [121.4], "lat": [31.2]}
    ).to_csv(path, index=False)
    report = import_file(store, path)
    out = tmp_path / "rejects.csv"
    report.write_csv(out)
    with out.open(encoding="utf-8-sig", newline="") as handle:
        cells = [cell for row in csv.reader(handle) for cell in row]
    assert '\'=HYPERLINK("http://x","click")' in cells
    assert not any(cell[:1] in ("=", "+", "-", "@") for cell in cells)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_escaped_cells_read_back_as_written(tmp_path: Path, fmt: str) -> None:
    """What the writers quote, the readers unquote: CSV and XLSX give back the original text."""
    original = pd.DataFrame({"name": [t.strip() for t in HOSTILE] + HARMLESS[:-1]})
    escaped = escape_frame(original)
    path = tmp_path / f"list.{fmt}"
    if fmt == "csv":
        escaped.to_csv(path, index=False)
    else:
        escaped.to_excel(path, index=False)
    assert read_table(path)["name"].tolist() == original["name"].tolist()


def test_hostile_store_round_trips_through_the_csv_writer(
    store: FacilityStore, tmp_path: Path
) -> None:
    first = import_file(store, _hostile_list(tmp_path / "list.csv"))
    assert first.accepted == len(HOSTILE), first.issues
    before = store.frame().sort_values("id").reset_index(drop=True)
    out = tmp_path / "export.csv"
    frame_to_csv(before, out)
    again = import_file(store, out)
    assert (again.unchanged, again.updated) == (len(HOSTILE), 0), again.issues
    after = store.frame().sort_values("id").reset_index(drop=True)
    assert after["name"].tolist() == before["name"].tolist()
