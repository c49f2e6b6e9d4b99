"""The printed national sheet: a province choropleth and a ranking table, read back with poppler."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from national_support import three_provinces
from PIL import Image

from finder.coverage import build_sample_grid
from finder.national import NationalCoverage, national_coverage
from geodata.errors import InvalidInput
from maps.coveragemap import share_colour
from maps.national import print_national_sheet

needs_poppler = pytest.mark.skipif(
    not (shutil.which("pdftotext") and shutil.which("pdftoppm")), reason="poppler-utils missing"
)


@pytest.fixture(scope="module")
def districts(tmp_path_factory: pytest.TempPathFactory) -> gpd.GeoDataFrame:
    return three_provinces(tmp_path_factory.mktemp("provinces"))


@pytest.fixture(scope="module")
def national(districts: gpd.GeoDataFrame) -> NationalCoverage:
    grid = build_sample_grid(districts, max_cells_per_district=800)
    rng = np.random.default_rng(7)
    # dense in Shanghai, sparse round Hangzhou, two in Zhengzhou
    lon = np.concatenate(
        [rng.uniform(121.2, 121.8, 3000), rng.normal(120.16, 0.2, 300), [113.65, 113.66]]
    )
    lat = np.concatenate(
        [rng.uniform(30.9, 31.5, 3000), rng.normal(30.27, 0.15, 300), [34.76, 34.75]]
    )
    return national_coverage(grid, lon, lat)


def _text(pdf: Path) -> str:
    done = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True
    )
    return "".join(done.stdout.split())


@needs_poppler
def test_sheet_has_the_choropleth_and_the_ranking_table(
    tmp_path: Path, districts: gpd.GeoDataFrame, national: NationalCoverage
) -> None:
    out = tmp_path / "national.pdf"
    printed = print_national_sheet(
        out, national, districts, paper="A3", map_date=dt.date(2026, 12, 6)
    )
    text = _text(out)
    # the table: title, header, one row per province in ranked order, with its figures
    assert "各省级单位排名" in text
    for word in (
        "名次",
        "省级",
        "设施",
        "每万人",
        "1公里人口覆盖",
        "15分钟",
        "双重覆盖",
        "最大空白",
    ):
        assert word in text
    assert printed.provinces == ["上海市", "浙江省", "河南省"]
    shanghai = national.provinces.set_index("name").loc["上海市"]
    assert f"1上海市{shanghai['facilities']:,}" in text
    assert f"{shanghai['pop_covered_share']:.1%}" in text
    # the choropleth: province labels, the legend, the population basis and the disclaimer
    assert "1公里内人口占比（地图颜色）" in text
    assert "第七次人口普查各县常住人口，县内按面积均匀分布（未提供人口栅格）" in text
    assert "不得公开出版" in text and "2026-12-06" in text
    # each province filled in its class colour (two classes here), and they are on the page
    assert len(set(printed.colours.values())) == 2
    stem = tmp_path / "national"
    subprocess.run(["pdftoppm", "-r", "40", "-png", "-singlefile", str(out), str(stem)], check=True)
    with Image.open(stem.with_suffix(".png")) as image:
        colours = image.convert("RGB").getcolors(1 << 20) or []
    seen = {"#{:02x}{:02x}{:02x}".format(*rgb) for _, rgb in colours}
    for adcode, colour in printed.colours.items():
        share = national.provinces.set_index("adcode").at[adcode, "pop_covered_share"]
        assert colour == share_colour(float(share))
        assert colour in seen, adcode


def test_png_and_bad_suffix(
    tmp_path: Path, districts: gpd.GeoDataFrame, national: NationalCoverage
) -> None:
    out = tmp_path / "national.png"
    printed = print_national_sheet(out, national, districts, paper="A4", dpi=60)
    with Image.open(out) as image:
        width, height = image.size
    assert width == pytest.approx(297 / 25.4 * 60, abs=1)
    assert height == pytest.approx(210 / 25.4 * 60, abs=1)
    assert printed.page_mm == (297.0, 210.0)
    with pytest.raises(InvalidInput):
        print_national_sheet(tmp_path / "national.svg", national, districts)


@needs_poppler
def test_sheet_heading_is_the_printed_sheets_and_names_the_pdf(
    tmp_path: Path, districts: gpd.GeoDataFrame, national: NationalCoverage
) -> None:
    # one heading helper (maps.printmap.draw_heading) for every printed sheet: its title is
    # the PDF's document title, as on the district sheets
    out = tmp_path / "national.pdf"
    print_national_sheet(out, national, districts, paper="A4", title="全国覆盖测试")
    info = subprocess.run(["pdfinfo", str(out)], check=True, capture_output=True, text=True)
    assert "Title:           全国覆盖测试" in info.stdout
