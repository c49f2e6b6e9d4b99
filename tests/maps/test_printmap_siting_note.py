"""The coverage sheet says how its proposed sites were chosen: weighted by observed use (with
the window and the facilities without door counts) or not."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_printmap import COUNTED, JINGAN, setup  # noqa: F401 (the module's fixture)

from finder.coverage import SampleGrid
from finder.siting import suggest_sites
from finder.usage import UsageReport
from maps.printmap import print_coverage_map

pytestmark = pytest.mark.skipif(not shutil.which("pdftotext"), reason="poppler-utils missing")


def _report(lon: np.ndarray, lat: np.ndarray) -> UsageReport:
    """Door counts of the first ten facilities (the rest have no device), 28 days."""
    n = lon.size
    measured = np.arange(n) < 10
    visits = np.where(measured, np.arange(n) * 28, 0)
    frame = pd.DataFrame(
        {
            "id": [f"f{i}" for i in range(n)],
            "name": "驿站",
            "kind": "worker_station",
            "access": "public",
            "district": "静安区",
            "adcode": JINGAN,
            "lon": lon,
            "lat": lat,
            "measured_days": np.where(measured, 28, 0),
            "visits": pd.Series(visits, dtype="Int64").mask(~measured),
            "visits_per_day": np.where(measured, visits / 28, np.nan),
            "peak_hour": pd.Series([pd.NA] * n, dtype="Int64"),
        }
    )
    hours = pd.Series(0, index=range(24), dtype="int64")
    return UsageReport(dt.date(2026, 11, 8), dt.date(2026, 12, 5), frame, hours)


@pytest.mark.parametrize("weighted", [False, True])
def test_the_sheet_says_how_its_sites_were_chosen(
    setup: tuple[SampleGrid, np.ndarray, np.ndarray, np.ndarray],  # noqa: F811
    tmp_path: Path,
    weighted: bool,
) -> None:
    grid, lon, lat, kind = setup
    use = _report(lon, lat) if weighted else None
    sites = suggest_sites(grid, JINGAN, lon, lat, n_sites=2, use=use)
    out = tmp_path / "sheet.pdf"
    printed = print_coverage_map(
        out,
        grid,
        lon,
        lat,
        kind,
        adcode=JINGAN,
        sites=sites,
        counted=COUNTED,
        orientation="portrait",
    )
    width_mm = printed.page_mm[0]
    for name, (x0, _, x1, _) in printed.furniture_mm.items():
        assert x0 >= 10 and x1 <= width_mm - 10, name  # the note fits a portrait A4
    text = subprocess.run(
        ["pdftotext", str(out), "-"], check=True, capture_output=True, text=True
    ).stdout
    text = "".join(text.split())  # pdftotext breaks long lines
    if not weighted:
        assert "建议新址：使未覆盖面积覆盖最多（未按使用量加权）。" in text
        return
    assert (
        "按使用量加权：2026-11-08至2026-12-05（28天）门禁计数，有计数设备10个（平均每日4.5次），"
        "无设备50个按平均计；范围3,000米。"
    ) in text
