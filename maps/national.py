"""The printed national sheet: a province choropleth and the province ranking, PDF or PNG.

The provinces are drawn from the county polygons of the grid, dissolved per province after a
topology-preserving simplification of the whole coverage (so neighbouring provinces still
meet), in an Albers equal-area projection for China (25°N / 47°N standard parallels). Their
colour is the share of people within the reach radius (:data:`maps.coveragemap.SHARE_CLASSES`,
the classes of the web coverage map and the atlas; provinces under :data:`MIN_LABELLED_KM2` are
left unlabelled, the table names them); the table ranks the provinces by it and
gives facilities, per 10,000 residents, the 15-minute and "covered twice" shares and the
largest gap. Paper sizes, margins, fonts and the footer (sources, population basis, what was
counted, date, 审图号) are those of :mod:`maps.printmap`.

This is a statistical sketch of the provinces present in the boundary data, not a map of
China's borders: it has no 南海诸岛 inset and must not be published without a 审图号.

Example
-------
>>> national = national_coverage(grid, lon, lat)  # doctest: +SKIP
>>> print_national_sheet("national.pdf", national, grid.districts, paper="A3")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from finder.national import CENSUS_BASIS, NationalCoverage
from geodata.errors import InvalidInput
from maps.coveragemap import SHARE_CLASSES, share_class, share_class_label, share_colour
from maps.paper import Orientation, Paper
from maps.printmap import (
    DEFAULT_SOURCES,
    MM_PER_INCH,
    NO_APPROVAL,
    PAGE_MARGIN_MM,
    area_basis_zh,
    counted_zh,
    draw_footer,
    draw_heading,
    draw_polygons,
    draw_sheet_table,
    page_size_mm,
    pdf_metadata,
    print_style,
)

#: Albers equal-area conic for China (metres).
CHINA_ALBERS = "+proj=aea +lat_1=25 +lat_2=47 +lat_0=0 +lon_0=105 +ellps=WGS84 +units=m +no_defs"
#: Province outlines are simplified to this before drawing, metres (0.1 mm at 1 : 20 million).
SIMPLIFY_M = 2000.0
#: Provinces smaller than this are not labelled on the map (the table names them), km2.
MIN_LABELLED_KM2 = 20_000.0
TABLE_HEADER = ["名次", "省级", "设施", "每万人", "1公里人口覆盖", "15分钟", "双重覆盖", "最大空白"]


@dataclass(frozen=True)
class PrintedNational:
    """What a national sheet shows.

    Attributes
    ----------
    path
        The written file.
    page_mm
        Page width and height, millimetres.
    provinces
        Province names in table order (best first).
    colours
        Fill colour of each province on the map, by province adcode.
    """

    path: Path
    page_mm: tuple[float, float]
    provinces: list[str]
    colours: dict[str, str]


def province_shapes(districts: gpd.GeoDataFrame) -> gpd.GeoSeries:
    """Province outlines in :data:`CHINA_ALBERS`, dissolved from county polygons (WGS-84) after
    simplifying the county coverage to :data:`SIMPLIFY_M`; indexed by province adcode."""
    projected = districts.geometry.to_crs(CHINA_ALBERS)
    simple = shapely.coverage_simplify(np.asarray(projected.values), SIMPLIFY_M)
    codes = districts["province_adcode"].to_numpy(dtype=object)
    shapes = {
        code: shapely.coverage_union_all(simple[codes == code]) for code in sorted(set(codes))
    }
    return gpd.GeoSeries(shapes, crs=CHINA_ALBERS)


def print_national_sheet(
    out: str | Path,
    national: NationalCoverage,
    districts: gpd.GeoDataFrame,
    *,
    paper: Paper = "A3",
    orientation: Orientation = "landscape",
    title: str = "全国职工服务设施覆盖概览",
    map_date: dt.date | None = None,
    approval_number: str | None = None,
    sources: tuple[str, ...] = DEFAULT_SOURCES,
    counted: dict[str, Any] | None = None,
    dpi: int = 200,
) -> PrintedNational:
    """Print the province choropleth and ranking of ``national`` to one PDF or PNG page.

    Parameters
    ----------
    out
        File to write, ``.pdf`` or ``.png``.
    national
        Figures from :func:`finder.national.national_coverage`.
    districts
        The county polygons the figures were computed on (WGS-84, ``adcode``).
    paper, orientation
        ``"A4"``/``"A3"``, ``"portrait"``/``"landscape"``.
    title
        Page title.
    map_date
        Date printed (default today, UTC).
    approval_number
        The 审图号; default a "not submitted, internal use only" notice.
    sources
        Data source lines.
    counted
        What was counted (:attr:`finder.coverage.CountedFacilities.summary`).
    dpi
        PNG resolution.

    Raises
    ------
    InvalidInput
        On another suffix, an unknown paper or orientation.
    """
    path = Path(out)
    suffix = path.suffix.lower()
    if suffix not in (".pdf", ".png"):
        raise InvalidInput("output must end in .pdf or .png", field="out")
    page_w, page_h = page_size_mm(paper, orientation)
    when = map_date or dt.datetime.now(dt.UTC).date()
    provinces = national.provinces
    ranked = provinces.sort_values(
        ["pop_covered_share", "adcode"], ascending=[False, True], na_position="last"
    )
    colours = {
        str(a): share_colour(None if pd.isna(s) else float(s))
        for a, s in zip(provinces["adcode"], provinces["pop_covered_share"], strict=True)
    }
    footer = [
        *sources,
        f"人口口径：{_population_basis_zh(national.population_basis)}；面积口径："
        f"{area_basis_zh(national.area_basis)}",
        *([counted_zh(counted, mapped="各省")] if counted is not None else []),
        "本图为各省统计示意，不表示行政区域界线，无南海诸岛附图，不得公开出版。",
        f"制图日期 {when.isoformat()}；审图号：{approval_number or NO_APPROVAL}",
    ]
    subtitle = (
        f"{len(provinces)} 个省级单位 · {len(national.cities)} 个地级单位 · "
        f"{len(national.counties):,} 个县级单位 · 设施 {national.facility_count:,} 个 · "
        f"服务半径 {national.radius_m:,.0f} 米 · 步行 {national.walk_minutes:g} 分钟"
        f"（直线 {national.walk_radius_m:,.0f} 米） · {when.isoformat()}"
    )
    with print_style():
        fig = _sheet(
            page_w,
            page_h,
            landscape=orientation == "landscape",
            title=title,
            subtitle=subtitle,
            footer=footer,
            shapes=province_shapes(districts),
            names=dict(zip(provinces["adcode"], provinces["name"], strict=True)),
            shares=dict(zip(provinces["adcode"], provinces["pop_covered_share"], strict=True)),
            colours=colours,
            rows=_table_rows(ranked),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".pdf":
            fig.savefig(path, format="pdf", metadata=pdf_metadata(fig))
        else:
            fig.savefig(path, format="png", dpi=dpi)
    return PrintedNational(
        path=path,
        page_mm=(page_w, page_h),
        provinces=[str(n) for n in ranked["name"]],
        colours=colours,
    )


def _population_basis_zh(basis: str) -> str:
    if basis == CENSUS_BASIS:
        return "第七次人口普查各县常住人口，县内按面积均匀分布（未提供人口栅格）"
    return f"人口栅格（{basis}），各县按栅格人口所在位置计"


def _share(value: Any) -> str:
    return "—" if pd.isna(value) else f"{value:.1%}"


def _table_rows(ranked: pd.DataFrame) -> list[list[str]]:
    rows = []
    for rank, record in enumerate(ranked.to_dict(orient="records"), start=1):
        gap = record["largest_gap_m"]
        per_10k = record["facilities_per_10k"]
        rows.append(
            [
                str(rank),
                str(record["name"]),
                f"{record['facilities']:,}",
                "—" if pd.isna(per_10k) else f"{per_10k:.2f}",
                _share(record["pop_covered_share"]),
                _share(record["pop_walk_share"]),
                _share(record["pop_covered_twice_share"]),
                "—" if pd.isna(gap) else f"{gap / 1000:,.1f} km",
            ]
        )
    return rows


def _sheet(
    page_w: float,
    page_h: float,
    *,
    landscape: bool,
    title: str,
    subtitle: str,
    footer: list[str],
    shapes: gpd.GeoSeries,
    names: dict[str, str],
    shares: dict[str, float],
    colours: dict[str, str],
    rows: list[list[str]],
) -> Figure:
    """The page: title, choropleth with legend, ranking table, footer."""
    scale = max(page_w, page_h) / 420.0
    m = PAGE_MARGIN_MM
    fig = Figure(figsize=(page_w / MM_PER_INCH, page_h / MM_PER_INCH))
    FigureCanvasAgg(fig)
    draw_heading(
        fig,
        (page_w, page_h),
        title,
        subtitle,
        scale=scale,
        title_pt=24.0,
        title_mm=7.0,
        subtitle_mm=18.0,
    )
    draw_footer(fig, (page_w, page_h), footer, scale=scale, line_mm=4.2, text_pt=8.0)
    line_mm = 4.2 * scale
    top = page_h - m - 26 * scale
    bottom = m + line_mm * len(footer) + 6 * scale
    map_w = (page_w - 2 * m) * (0.58 if landscape else 1.0)
    map_h = (top - bottom) * (1.0 if landscape else 0.5)
    ax = fig.add_axes((m / page_w, (top - map_h) / page_h, map_w / page_w, map_h / page_h))
    for code, geometry in shapes.items():
        draw_polygons(
            ax,
            gpd.GeoSeries([geometry]),
            facecolor=colours.get(str(code), share_colour(None)),
            edgecolor="#4d4d4d",
            lw=0.4,
            gid=f"province-{code}",
        )
        if geometry.area < MIN_LABELLED_KM2 * 1e6:
            continue
        point = geometry.representative_point()
        share = shares.get(str(code))
        label = f"{names.get(str(code), code)}\n{_share(share)}"
        dark = (share_class(None if pd.isna(share) else float(share)) or 0) >= 3
        ax.text(
            point.x,
            point.y,
            label,
            fontsize=6.5 * scale,
            ha="center",
            va="center",
            color="white" if dark else "black",
        )
    minx, miny, maxx, maxy = shapes.total_bounds
    pad = 0.02 * max(maxx - minx, maxy - miny)
    ax.set_xlim(minx - pad, maxx + pad)
    ax.set_ylim(miny - pad, maxy + pad)
    ax.set_aspect("equal", adjustable="box")
    ax.axis("off")
    handles = [
        Patch(facecolor=colour, edgecolor="#4d4d4d", lw=0.4, label=share_class_label(i))
        for i, (_, colour) in enumerate(SHARE_CLASSES)
    ]
    ax.legend(
        handles=handles,
        title="1 公里内人口占比（地图颜色）",
        loc="lower left",
        fontsize=8 * scale,
        title_fontsize=9 * scale,
        frameon=False,
    )
    if landscape:  # the table's title 6 mm below the top, clear of the subtitle
        box = (
            m + map_w + 6 * scale,
            bottom,
            page_w - 2 * m - map_w - 6 * scale,
            top - bottom - 6 * scale,
        )
    else:
        box = (m, bottom, page_w - 2 * m, top - bottom - map_h - 6 * scale)
    table_ax = fig.add_axes((box[0] / page_w, box[1] / page_h, box[2] / page_w, box[3] / page_h))
    cells = draw_sheet_table(
        table_ax,
        "各省级单位排名（按 1 公里内人口占比）",
        TABLE_HEADER,
        rows,
        scale=scale,
        title_pt=11,
        text_pt=7.5,
    )
    if cells is not None:
        cells.auto_set_column_width(list(range(len(TABLE_HEADER))))
        row_h = min(0.045, 0.98 / (len(rows) + 1))
        for cell in cells.get_celld().values():
            cell.set_height(row_h)
    return fig
