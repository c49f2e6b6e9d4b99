"""Printed maps: the checks a person would make on the PDF and PNG."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import shapely
import shapely.geometry
from hypothesis import given
from hypothesis import strategies as st
from pyproj import Geod

from finder.coverage import SampleGrid, build_sample_grid, coverage_table
from finder.siting import suggest_sites
from geodata.boundaries import district_by_adcode, load_districts
from geodata.errors import InvalidInput
from geodata.osmcontext import context_from_osm
from maps.fonts import CJK_FAMILY, cjk_font_path, register_print_font
from maps.printmap import PAPER_MM, nice_scale_length, page_size_mm, print_coverage_map

JINGAN = "310106"
HUANGPU = "310101"
EXTRACT = Path(__file__).resolve().parents[1] / "data" / "shanghai_jingan.osm"
GEOD = Geod(ellps="WGS84")
POPPLER = shutil.which("pdffonts") and shutil.which("pdftotext") and shutil.which("pdftoppm")
needs_poppler = pytest.mark.skipif(not POPPLER, reason="poppler-utils not installed")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "maps"
COUNTED = {
    "kinds": ["mother_room", "worker_station", "rest_stop"],
    "access": ["public"],
    "status": ["open"],
    "facilities": 60,
}


@pytest.fixture(scope="module")
def setup() -> tuple[SampleGrid, np.ndarray, np.ndarray, np.ndarray]:
    districts = load_districts()
    grid = build_sample_grid(districts[districts["adcode"].isin(["310101", JINGAN, "310109"])])
    geometry = district_by_adcode(districts, JINGAN).geometry
    rng = np.random.default_rng(8)
    west, south, east, north = geometry.bounds
    lon = rng.uniform(west - 0.01, east + 0.01, 60)
    lat = rng.uniform(south - 0.01, north + 0.01, 60)
    kind = rng.choice(["mother_room", "worker_station", "rest_stop"], 60)
    return grid, lon, lat, kind


def _run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def test_font_comes_from_the_package() -> None:
    path = cjk_font_path()
    assert path.name == "NotoSansCJK-Regular.ttc"
    assert register_print_font() == CJK_FAMILY


@needs_poppler
@pytest.mark.parametrize(("paper", "orientation"), [("A4", "landscape"), ("A3", "portrait")])
def test_pdf_has_embedded_fonts_and_every_element(
    setup: tuple[SampleGrid, np.ndarray, np.ndarray, np.ndarray],
    tmp_path: Path,
    paper: str,
    orientation: str,
) -> None:
    grid, lon, lat, kind = setup
    out = tmp_path / "jingan.pdf"
    sites = suggest_sites(grid, JINGAN, lon, lat, n_sites=2)
    printed = print_coverage_map(
        out,
        grid,
        lon,
        lat,
        kind,
        adcode=JINGAN,
        paper=paper,  # type: ignore[arg-type]
        orientation=orientation,  # type: ignore[arg-type]
        map_date=dt.date(2026, 11, 26),
        approval_number="沪S（2026）001号",
        facility_source="示例数据",
        sites=sites,
        counted=COUNTED,
    )
    assert printed.path == out
    width_mm, height_mm = page_size_mm(paper, orientation)  # type: ignore[arg-type]
    fonts = _run("pdffonts", str(out)).splitlines()[2:]
    assert fonts, "no fonts in the PDF"
    for line in fonts:
        columns = line.split()
        assert "NotoSansCJK" in columns[0]
        assert "Type 3" not in line and "CID TrueType" in line, line  # print preflight
        assert columns[-5] == "yes", f"font not embedded: {line}"  # emb column
    # everything around the map lies outside its frame and inside the page margins
    fx0, fy0, fx1, fy1 = printed.map_frame_mm
    assert len(printed.furniture_mm) >= 10
    for name, (x0, y0, x1, y1) in printed.furniture_mm.items():
        assert x1 <= fx0 or x0 >= fx1 or y1 <= fy0 or y0 >= fy1, f"{name} covers the map"
        assert x0 >= 10 and y0 >= 10, name
        assert x1 <= width_mm - 10 and y1 <= height_mm - 10, name
    info = _run("pdfinfo", str(out))
    size_line = next(x for x in info.splitlines() if x.startswith("Page size"))
    w_pt, h_pt = (float(v) for v in size_line.split()[2:5:2])
    assert w_pt == pytest.approx(width_mm / 25.4 * 72, abs=0.5)
    assert h_pt == pytest.approx(height_mm / 25.4 * 72, abs=0.5)
    text = _run("pdftotext", "-layout", str(out), "-")
    table = coverage_table(grid, lon, lat).table.set_index("adcode")
    for expected in (
        "职工服务设施覆盖图",
        "静安区",
        "服务半径 1,000 米",
        "2026-11-26",
        "图例",
        "爱心妈咪小屋",
        "工会驿站",
        "户外劳动者爱心驿站",
        "建议新址",
        "北",
        "比例尺 1:",
        "各区覆盖指标",
        f"{table.loc[JINGAN, 'covered_share']:.1%}",
        "高德地图",
        "第七次全国人口普查",
        "设施：示例数据",
        "审图号：沪S（2026）001号",
        "统计口径：仅计对公众开放的设施，状态为“开放”",
        "主要服务空白",
        "①",
    ):
        assert expected in text, expected
    # render the page the way a reader sees it (and keep it for a look)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    stem = ARTIFACTS / f"jingan_{paper}_{orientation}"
    subprocess.run(["pdftoppm", "-r", "60", "-png", "-singlefile", str(out), str(stem)], check=True)
    image = matplotlib.image.imread(f"{stem}.png")
    assert image.shape[1] == pytest.approx(width_mm / 25.4 * 60, abs=2)


def test_png_scale_bar_is_right_to_one_percent(
    setup: tuple[SampleGrid, np.ndarray, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    grid, lon, lat, kind = setup
    out = tmp_path / "jingan.png"
    printed = print_coverage_map(out, grid, lon, lat, kind, adcode=JINGAN, dpi=150)
    # the bar in projected coordinates is its label, and on the ground (geodesic) too
    assert printed.scale_bar_projected_m == printed.scale_bar_m
    (lon0, lat0), (lon1, lat1) = printed.scale_bar_lonlat
    ground_m = GEOD.inv(lon0, lat0, lon1, lat1)[2]
    assert ground_m == pytest.approx(printed.scale_bar_m, rel=0.01)
    # the image: page size, and the bar's printed length times the scale is its label
    image = matplotlib.image.imread(out)
    width_mm, height_mm = PAPER_MM["A4"][1], PAPER_MM["A4"][0]
    assert image.shape[1] == pytest.approx(width_mm / 25.4 * 150, abs=1)
    assert image.shape[0] == pytest.approx(height_mm / 25.4 * 150, abs=1)
    x0, x1, y = printed.scale_bar_px
    row = image[round(y), :, :3].mean(axis=1)
    dark = np.flatnonzero(row[int(x0) - 5 : int(x1) + 6] < 0.25) + int(x0) - 5
    drawn_px = dark.max() - dark.min() + 1
    drawn_m = drawn_px / 150 * 25.4 / 1000 * printed.scale_denominator
    assert drawn_m == pytest.approx(printed.scale_bar_m, rel=0.01)
    # two of four segments are filled black
    assert dark.size == pytest.approx((x1 - x0) / 2, rel=0.06)


@needs_poppler
def test_legend_counts_are_the_tables_and_gaps_are_numbered_in_place(
    setup: tuple[SampleGrid, np.ndarray, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    grid, lon, lat, kind = setup
    out = tmp_path / "jingan.pdf"
    printed = print_coverage_map(out, grid, lon, lat, kind, adcode=JINGAN)
    row = coverage_table(grid, lon, lat, kind=kind, adcodes=[JINGAN]).table.iloc[0]
    # the legend counts what the table counts: facilities in the district, not the whole input
    assert printed.legend_counts == {k: int(row[f"n_{k}"]) for k in printed.legend_counts}
    assert sum(printed.legend_counts.values()) == row["facilities"] < len(lon)
    text = _run("pdftotext", "-layout", str(out), "-")
    for count in printed.legend_counts.values():
        assert f"（区内 {count}）" in text
    # numbered gaps: largest first, each marker inside its own gap polygon
    assert 1 <= len(printed.gaps) <= 5
    areas = [g["properties"]["area_m2"] for g in printed.gaps]
    assert areas == sorted(areas, reverse=True)
    for number, gap in enumerate(printed.gaps, start=1):
        marker = shapely.Point(gap["properties"]["lon"], gap["properties"]["lat"])
        assert shapely.geometry.shape(gap["geometry"]).contains(marker)
        assert chr(0x2460 + number - 1) in text
        assert gap["properties"]["farthest_m"] > 0


@needs_poppler
def test_huangpu_sheet_names_roads_of_the_extract(
    setup: tuple[SampleGrid, np.ndarray, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    grid, lon, lat, kind = setup
    context = context_from_osm(EXTRACT)
    out = tmp_path / "huangpu.pdf"
    printed = print_coverage_map(
        out, grid, lon, lat, kind, adcode=HUANGPU, paper="A3", context=context
    )
    text = _run("pdftotext", "-layout", str(out), "-")
    roads = context.roads
    major = set(roads.loc[roads["road_class"] == "major", "name"]) - {""}
    assert sum(name in text for name in major) >= 5
    assert "OpenStreetMap" in text and "shanghai_jingan.osm" in text
    # a gap is named by its nearest roads when it has some within a kilometre
    for number, gap in enumerate(printed.gaps, start=1):
        near = gap["properties"]["near_roads"]
        place = " / ".join(near) + "附近" if near else "黄浦区"
        assert f"{chr(0x2460 + number - 1)} {place}" in text
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    stem = ARTIFACTS / "huangpu_A3_context"
    subprocess.run(["pdftoppm", "-r", "60", "-png", "-singlefile", str(out), str(stem)], check=True)


def test_png_is_300_dpi_by_default(
    setup: tuple[SampleGrid, np.ndarray, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    grid, lon, lat, kind = setup
    printed = print_coverage_map(tmp_path / "jingan.png", grid, lon, lat, kind, adcode=JINGAN)
    image = matplotlib.image.imread(printed.path)
    assert printed.dpi == 300
    assert image.shape[1] == pytest.approx(297 / 25.4 * 300, abs=1)


def test_whole_city_map(tmp_path: Path) -> None:
    districts = load_districts()
    grid = build_sample_grid(districts, max_cells_per_district=2_000)
    rng = np.random.default_rng(2)
    lon, lat = rng.uniform(121.1, 121.9, 300), rng.uniform(30.8, 31.5, 300)
    printed = print_coverage_map(tmp_path / "city.png", grid, lon, lat, dpi=60)
    assert printed.scale_denominator > 500_000
    assert printed.path.stat().st_size > 10_000


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"paper": "A5"}, "map.pdf"),
        ({"orientation": "sideways"}, "map.pdf"),
        ({}, "map.svg"),
        ({"kind": ["castle"] * 60}, "map.pdf"),
    ],
)
def test_bad_requests(
    setup: tuple[SampleGrid, np.ndarray, np.ndarray, np.ndarray],
    tmp_path: Path,
    kwargs: dict[str, object],
    name: str,
) -> None:
    grid, lon, lat, kind = setup
    arguments: dict[str, object] = {"kind": kind, **kwargs}
    with pytest.raises(InvalidInput):
        print_coverage_map(tmp_path / name, grid, lon, lat, **arguments)  # type: ignore[arg-type]


@given(st.floats(min_value=0.01, max_value=1e7))
def test_nice_scale_length(max_m: float) -> None:
    length = nice_scale_length(max_m)
    assert length <= max_m
    assert length > max_m / 2.5
    mantissa = length / 10 ** np.floor(np.log10(length))
    assert round(mantissa, 9) in (1.0, 2.0, 5.0)
