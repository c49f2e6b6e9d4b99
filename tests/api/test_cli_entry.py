"""How to get in survives ``finder export`` and a re-import of the export (CSV, GeoJSON)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from geodata.sample import sample_frame
from geodata.store import GeoPackageStore

ENTRY = {
    "entry_method": ["call_keeper", "walk_in", None],
    "entry_phone": ["13800000000", None, None],
    "entry_note": ["按一楼门铃", None, None],
}


def finder(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
        check=False,
    )


@pytest.mark.parametrize("fmt", ["csv", "geojson"])
def test_entry_fields_round_trip_through_export(tmp_path: Path, fmt: str) -> None:
    source = GeoPackageStore(tmp_path / "store.gpkg")
    source.upsert_frame(sample_frame(3).assign(**ENTRY), actor="test")
    source.close()
    out = tmp_path / f"out.{fmt}"
    done = finder("export", "--format", fmt, "--out", str(out), "--store", str(source.path))
    assert done.returncode == 0, done.stderr
    again = tmp_path / "again.gpkg"
    imported = finder("import", str(out), "--store", str(again))
    assert imported.returncode == 0, imported.stderr
    back = GeoPackageStore(again)
    try:
        frame = back.frame()
    finally:
        back.close()
    got = frame[list(ENTRY)].astype(object).where(frame[list(ENTRY)].notna(), None)
    assert got.to_dict("list") == ENTRY
