"""The atlas: an overview page, then one numbered page per district, read back with poppler."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from finder.coverage import build_sample_grid, coverage_table
from geodata.boundaries import load_districts
from geodata.errors import InvalidInput
from maps.atlas import print_atlas

ADCODES = ["310101", "310106", "310109"]
needs_poppler = pytest.mark.skipif(
    not (shutil.which("pdftotext") and shutil.which("pdfinfo")), reason="poppler-utils missing"
)


def _text(pdf: Path, page: int) -> str:
    """A page's text without white space (pdftotext drops spaces between CJK characters)."""
    done = subprocess.run(
        ["pdftotext", "-layout", "-f", str(page), "-l", str(page), str(pdf), "-"],
        check=True,
        capture_output=True,
        text=True,
    )
    return "".join(done.stdout.split())


@needs_poppler
def test_overview_then_one_numbered_page_per_district(tmp_path: Path) -> None:
    districts = load_districts()
    grid = build_sample_grid(districts[districts["adcode"].isin(ADCODES)])
    rng = np.random.default_rng(4)
    lon, lat = rng.uniform(121.42, 121.52, 80), rng.uniform(31.19, 31.29, 80)
    kind = rng.choice(["mother_room", "worker_station", "rest_stop"], 80)
    out = tmp_path / "atlas.pdf"
    atlas = print_atlas(
        out, grid, lon, lat, kind, paper="A4", orientation="portrait", map_date=dt.date(2026, 12, 1)
    )
    info = subprocess.run(["pdfinfo", str(out)], check=True, capture_output=True, text=True)
    assert f"Pages:           {len(ADCODES) + 1}" in info.stdout
    assert atlas.pages == len(ADCODES) + 1
    table = coverage_table(grid, lon, lat, kind=kind).table
    overview = _text(out, 1)
    assert "各区覆盖率排名与目录" in overview and "第1页/共4页" in overview
    for (name, page), share in zip(atlas.contents, table["covered_share"], strict=True):
        assert name in overview and f"{share:.1%}" in overview
        sheet = _text(out, page)
        assert f"第{page}页/共4页" in sheet
        assert f"{name}·服务半径1,000米·2026-12-01" in sheet
    assert [page for _, page in atlas.contents] == [2, 3, 4]
    fonts = subprocess.run(["pdffonts", str(out)], check=True, capture_output=True, text=True)
    assert "Type 3" not in fonts.stdout


def test_an_atlas_is_a_pdf(tmp_path: Path) -> None:
    districts = load_districts()
    grid = build_sample_grid(districts[districts["adcode"] == "310101"])
    with pytest.raises(InvalidInput):
        print_atlas(tmp_path / "atlas.png", grid, [121.48], [31.23])
