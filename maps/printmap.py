"""Printed coverage maps: PDF or PNG, A4 or A3, portrait or landscape.

A page carries a title and subtitle (district, radius, date), the map (districts, reached areas,
gaps, facilities by kind, proposed sites, district names in Chinese), a legend, a scale bar, a
north arrow, a table of the per-district figures, the data sources and date, and a configurable
审图号 (map approval number) line.

The map is drawn in an azimuthal equidistant projection (WGS-84 ellipsoid) centred on the mapped
area, with equal x/y scales, so the scale bar is exact at the centre and within 0.01 % across a
district; grid north is true north at the centre (meridian convergence < 0.2° at the edge of a
Shanghai district map). Text uses Noto Sans CJK SC (see :mod:`maps.fonts`), embedded in PDFs as a
glyph subset.

Example
-------
>>> print_coverage_map("jingan.pdf", grid, lon, lat, kind, adcode="310106",
...                    paper="A3")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import matplotlib
import numpy as np
import pandas as pd
import shapely
import shapely.geometry.polygon
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, PathPatch, Polygon, Rectangle
from matplotlib.path import Path as MplPath
from numpy.typing import ArrayLike, NDArray

from finder.coverage import (
    AREA_BASIS_POLYGON,
    CoverageResult,
    SampleGrid,
    coverage_layers,
    coverage_table,
)
from finder.siting import SitingResult
from geodata.errors import InvalidInput
from maps.fonts import register_cjk_font

Paper = Literal["A4", "A3"]
Orientation = Literal["portrait", "landscape"]

#: Paper sizes, portrait width x height, millimetres (ISO 216).
PAPER_MM: dict[str, tuple[float, float]] = {"A4": (210.0, 297.0), "A3": (297.0, 420.0)}
_MM_PER_INCH = 25.4
_AEQD = "+proj=aeqd +lat_0={lat:.6f} +lon_0={lon:.6f} +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs"

#: Facility kinds: (label, marker, colour).
KIND_STYLE: dict[str, tuple[str, str, str]] = {
    "mother_room": ("爱心妈咪小屋", "o", "#c2255c"),
    "worker_station": ("工会驿站", "s", "#1864ab"),
    "rest_stop": ("户外劳动者爱心驿站", "^", "#e67700"),
}
REACH_COLOUR = "#b2dfc0"
GAP_COLOUR = "#f5c2bd"
SITE_COLOUR = "#e03131"
SCALE_BAR_COLOUR = "#000000"

DEFAULT_SOURCES: tuple[str, ...] = (
    "行政区划边界：高德地图 / cnmaps-adm-data（MIT），GCJ-02 已转换为 WGS-84",
    "人口：第七次全国人口普查（2020）分县资料 / tudigong（MIT）",
)
NO_APPROVAL = "未送审（仅供内部使用，不得公开出版）"


@dataclass(frozen=True)
class PrintedMap:
    """What was printed, with the figures needed to check the scale.

    Attributes
    ----------
    path
        The written file.
    paper, orientation
        Page format.
    page_mm
        Page width and height, millimetres.
    projection
        PROJ string of the map projection (metres).
    scale_denominator
        The map scale is 1 : ``scale_denominator`` (on paper).
    scale_bar_m
        Labelled length of the scale bar, metres.
    scale_bar_projected_m
        Length of the drawn bar in projected coordinates, metres.
    scale_bar_lonlat
        WGS-84 lon/lat of the bar's two ends, ``((lon0, lat0), (lon1, lat1))``.
    scale_bar_px
        For PNG output: the bar's ends and vertical centre in image pixels (from the top-left),
        ``(x0, x1, y)``.
    dpi
        Resolution of PNG output (and of the figure).
    """

    path: Path
    paper: Paper
    orientation: Orientation
    page_mm: tuple[float, float]
    projection: str
    scale_denominator: float
    scale_bar_m: float
    scale_bar_projected_m: float
    scale_bar_lonlat: tuple[tuple[float, float], tuple[float, float]]
    scale_bar_px: tuple[float, float, float]
    dpi: int


def area_basis_zh(area_basis: str) -> str:
    """The area basis of a coverage result in Chinese, for map notes."""
    if area_basis == AREA_BASIS_POLYGON:
        return "区界多边形（沿海区含河口与海域水面）"
    return area_basis.replace("land mask:", "陆地范围：")


def page_size_mm(paper: Paper, orientation: Orientation) -> tuple[float, float]:
    """Page width and height in millimetres.

    Raises
    ------
    InvalidInput
        On an unknown paper or orientation.
    """
    if paper not in PAPER_MM:
        raise InvalidInput(f"paper must be one of {sorted(PAPER_MM)}", field="paper")
    if orientation not in ("portrait", "landscape"):
        raise InvalidInput("orientation must be 'portrait' or 'landscape'", field="orientation")
    width, height = PAPER_MM[paper]
    return (width, height) if orientation == "portrait" else (height, width)


def nice_scale_length(max_m: float) -> float:
    """The longest 1, 2 or 5 x 10^k metres not above ``max_m``."""
    if not max_m > 0:
        raise InvalidInput("scale bar room must be positive", field="max_m")
    power = 10.0 ** math.floor(math.log10(max_m))
    if power > max_m:  # log10 rounded up just below a power of ten
        power /= 10.0
    return max(step * power for step in (1.0, 2.0, 5.0) if step * power <= max_m)


def _format_m(value: float) -> str:
    if value >= 1000:
        km = value / 1000
        return f"{km:g} km"
    return f"{value:g} m"


def _geometries(features: dict[str, Any], projection: str) -> gpd.GeoSeries:
    if not features["features"]:
        return gpd.GeoSeries([], crs=projection)
    frame = gpd.GeoDataFrame.from_features(features["features"], crs="EPSG:4326")
    return frame.geometry.to_crs(projection)


def _draw_polygons(ax: Axes, geometries: gpd.GeoSeries, **style: Any) -> None:
    """Draw (multi)polygons with holes as one path; limits are set by the caller."""
    vertices: list[NDArray[np.float64]] = []
    codes: list[NDArray[np.uint8]] = []
    for geometry in geometries:
        for part in shapely.get_parts(geometry):
            if not isinstance(part, shapely.Polygon) or part.is_empty:
                continue
            # exterior counter-clockwise, holes clockwise: the nonzero rule leaves holes empty
            oriented = shapely.geometry.polygon.orient(part, sign=1.0)
            for ring in (oriented.exterior, *oriented.interiors):
                xy = np.asarray(ring.coords)
                ring_codes = np.full(len(xy), MplPath.LINETO, dtype=np.uint8)
                ring_codes[0] = MplPath.MOVETO
                ring_codes[-1] = MplPath.CLOSEPOLY
                vertices.append(xy)
                codes.append(ring_codes)
    if vertices:
        path = MplPath(np.concatenate(vertices), np.concatenate(codes))
        ax.add_artist(PathPatch(path, **style))


def _draw_scale_bar(
    ax: Axes, xlim: tuple[float, float], ylim: tuple[float, float], fontsize: float
) -> tuple[float, float, float, float]:
    """Four alternating segments in data (projected metre) coordinates at the lower left."""
    width = xlim[1] - xlim[0]
    height = ylim[1] - ylim[0]
    length = nice_scale_length(width * 0.25)
    x0 = xlim[0] + 0.04 * width
    y0 = ylim[0] + 0.05 * height
    bar_h = 0.012 * height
    segment = length / 4
    ax.add_patch(
        Rectangle(
            (x0 - 0.01 * width, y0 - 0.035 * height),
            length + 0.05 * width,
            0.085 * height,
            facecolor="white",
            edgecolor="none",
            alpha=0.85,
            zorder=8,
        )
    )
    for i in range(4):
        ax.add_patch(
            Rectangle(
                (x0 + i * segment, y0),
                segment,
                bar_h,
                facecolor=SCALE_BAR_COLOUR if i % 2 == 0 else "white",
                edgecolor=SCALE_BAR_COLOUR,
                linewidth=0.6,
                zorder=9,
                gid="scale-bar",
            )
        )
    for value in (0.0, length / 2, length):
        ax.text(
            x0 + value,
            y0 + bar_h * 1.6,
            "0" if value == 0 else _format_m(value),
            ha="center",
            va="bottom",
            fontsize=fontsize,
            zorder=9,
        )
    return x0, x0 + length, y0 + bar_h / 2, length


def _draw_north_arrow(
    ax: Axes, xlim: tuple[float, float], ylim: tuple[float, float], fontsize: float
) -> None:
    """Arrow pointing to grid north (+y), which is true north at the projection centre."""
    width = xlim[1] - xlim[0]
    height = ylim[1] - ylim[0]
    size = 0.06 * min(width, height)
    cx = xlim[1] - 0.06 * width
    base = ylim[1] - 0.06 * height - 1.6 * size
    left = [(cx, base + size), (cx - size * 0.35, base), (cx, base + size * 0.3)]
    right = [(cx, base + size), (cx + size * 0.35, base), (cx, base + size * 0.3)]
    ax.add_patch(
        Polygon(
            left,
            closed=True,
            facecolor="black",
            edgecolor="black",
            lw=0.6,
            zorder=9,
            gid="north-arrow",
        )
    )
    ax.add_patch(
        Polygon(
            right,
            closed=True,
            facecolor="white",
            edgecolor="black",
            lw=0.6,
            zorder=9,
            gid="north-arrow",
        )
    )
    ax.text(
        cx,
        base + size * 1.08,
        "北\nN",
        ha="center",
        va="bottom",
        fontsize=fontsize,
        zorder=9,
        linespacing=1.0,
    )


def _table_rows(
    table: pd.DataFrame, highlight: str | None, with_population: bool, max_rows: int
) -> tuple[list[str], list[list[str]], list[bool]]:
    header = ["区", "常住人口（万）", "设施", "每万人", "覆盖率", "双重覆盖", "最大空白"]
    if with_population:
        header.append("人口覆盖率")
    ordered = table
    if highlight is not None:
        first = table["adcode"] == highlight
        ordered = pd.concat([table[first], table[~first]])
    rows: list[list[str]] = []
    bold: list[bool] = []
    for record in ordered.head(max_rows).to_dict(orient="records"):
        population = record["population"]
        per_10k = record["facilities_per_10k"]
        gap = record["largest_gap_m"]
        row = [
            str(record["name"]),
            "—" if pd.isna(population) else f"{population / 1e4:,.1f}",
            f"{record['facilities']:,}",
            "—" if pd.isna(per_10k) else f"{per_10k:.2f}",
            "—" if pd.isna(record["covered_share"]) else f"{record['covered_share']:.1%}",
            "—"
            if pd.isna(record["covered_twice_share"])
            else f"{record['covered_twice_share']:.1%}",
            "—" if pd.isna(gap) else (f"{gap / 1000:.2f} km" if gap >= 1000 else f"{gap:.0f} m"),
        ]
        if with_population:
            share = record["pop_covered_share"]
            row.append("—" if pd.isna(share) else f"{share:.1%}")
        rows.append(row)
        bold.append(record["adcode"] == highlight)
    return header, rows, bold


def map_inputs(
    grid: SampleGrid,
    lon: ArrayLike,
    lat: ArrayLike,
    kind: ArrayLike | None,
    *,
    adcode: str | None,
    radius_m: float,
    coverage: CoverageResult | None,
) -> tuple[
    NDArray[np.float64], NDArray[np.float64], NDArray[Any], list[str] | None, CoverageResult
]:
    """Checked facility arrays, the districts shown and the coverage table of a coverage map.

    A missing ``kind`` means worker stations. Raises :class:`InvalidInput` for an unknown kind and
    :class:`UnknownDistrict` for an ``adcode`` not in ``grid``; computes the coverage table when
    none is given.
    """
    lon_arr = np.asarray(lon, dtype=np.float64).ravel()
    lat_arr = np.asarray(lat, dtype=np.float64).ravel()
    kinds = (
        np.full(lon_arr.size, "worker_station", dtype=object)
        if kind is None
        else np.asarray(kind, dtype=object).ravel()
    )
    unknown = set(kinds.tolist()) - set(KIND_STYLE)
    if unknown:
        raise InvalidInput(f"unknown facility kind(s): {sorted(unknown)}", field="kind")
    adcodes = None if adcode is None else [grid.district(adcode).adcode]
    if coverage is None:
        coverage = coverage_table(grid, lon_arr, lat_arr, radius_m=radius_m, kind=kinds)
    return lon_arr, lat_arr, kinds, adcodes, coverage


def print_coverage_map(
    out: str | Path,
    grid: SampleGrid,
    lon: ArrayLike,
    lat: ArrayLike,
    kind: ArrayLike | None = None,
    *,
    adcode: str | None = None,
    radius_m: float = 1000.0,
    paper: Paper = "A4",
    orientation: Orientation = "landscape",
    title: str = "职工服务设施覆盖图",
    subtitle: str | None = None,
    map_date: dt.date | None = None,
    approval_number: str | None = None,
    sources: tuple[str, ...] = DEFAULT_SOURCES,
    facility_source: str | None = None,
    coverage: CoverageResult | None = None,
    sites: SitingResult | None = None,
    dpi: int = 200,
) -> PrintedMap:
    """Print a coverage map of one district (or all districts of ``grid``) to PDF or PNG.

    Parameters
    ----------
    out
        Output path; ``.pdf`` or ``.png`` decides the format.
    grid
        Sample grid (districts, their local projections, the area basis).
    lon, lat
        Facilities, WGS-84 degrees (already filtered by kind/access as wanted).
    kind
        Facility kind per facility (``geodata.schema.KINDS``), for symbols; default all drawn as
        ``worker_station``.
    adcode
        District to map; ``None`` maps every district of the grid.
    radius_m
        Reach, metres.
    paper, orientation
        ``"A4"``/``"A3"``, ``"portrait"``/``"landscape"``.
    title, subtitle
        Page title; the subtitle defaults to "district · 服务半径 N 米 · date".
    map_date
        Date printed on the map (default today, UTC).
    approval_number
        The 审图号 to print (e.g. "沪S（2026）001号"); default a "not submitted, internal use
        only" notice.
    sources
        Data source lines; ``facility_source`` adds a line for the facility data.
    coverage
        Per-district figures for the table; computed when not given.
    sites
        Proposed new sites to mark.
    dpi
        PNG resolution (dots per inch).

    Returns
    -------
    PrintedMap

    Raises
    ------
    InvalidInput
        On an unknown format, paper, orientation or kind.
    UnknownDistrict
        If ``adcode`` is not in the grid.
    """
    path = Path(out)
    suffix = path.suffix.lower()
    if suffix not in (".pdf", ".png"):
        raise InvalidInput("output must end in .pdf or .png", field="out")
    page_w, page_h = page_size_mm(paper, orientation)
    lon_arr, lat_arr, kinds, adcodes, coverage = map_inputs(
        grid, lon, lat, kind, adcode=adcode, radius_m=radius_m, coverage=coverage
    )
    when = map_date or dt.datetime.now(dt.UTC).date()

    districts = grid.districts
    mapped = districts if adcodes is None else districts[districts["adcode"].isin(adcodes)]
    centre = shapely.union_all(np.asarray(mapped.geometry.values)).centroid
    projection = _AEQD.format(lon=centre.x, lat=centre.y)
    districts_xy = districts.geometry.to_crs(projection)
    mapped_xy = mapped.geometry.to_crs(projection)
    layers = coverage_layers(grid, lon_arr, lat_arr, radius_m=radius_m, adcodes=adcodes)
    reach_xy = _geometries(layers["reach"], projection)
    gaps_xy = _geometries(layers["gaps"], projection)
    facilities_xy = gpd.GeoSeries(gpd.points_from_xy(lon_arr, lat_arr), crs="EPSG:4326").to_crs(
        projection
    )

    family = register_cjk_font()
    scale = page_w / 297.0  # text sizes grow with the paper
    # Type 3: the CFF glyphs are embedded as a subset (Type 42 would mislabel CFF outlines)
    with matplotlib.rc_context(
        {"font.family": [family], "axes.unicode_minus": False, "pdf.fonttype": 3}
    ):
        fig = Figure(figsize=(page_w / _MM_PER_INCH, page_h / _MM_PER_INCH), dpi=dpi)
        FigureCanvasAgg(fig)
        margin = 10.0
        header_h, footer_h = 20.0, 17.0
        if orientation == "landscape":
            table_w = page_w * 0.34
            map_box = (
                margin,
                footer_h + margin,
                page_w - 3 * margin - table_w,
                page_h - header_h - footer_h - 2 * margin,
            )
            table_box = (
                page_w - margin - table_w,
                footer_h + margin + 0.3 * map_box[3],
                table_w,
                0.7 * map_box[3],
            )
        else:
            table_h = page_h * 0.24
            map_box = (
                margin,
                footer_h + 2 * margin + table_h,
                page_w - 2 * margin,
                page_h - header_h - footer_h - 3 * margin - table_h,
            )
            table_box = (margin, footer_h + margin, page_w - 2 * margin, table_h)

        def axes_at(box: tuple[float, float, float, float]) -> Axes:
            x, y, w, h = box
            return fig.add_axes((x / page_w, y / page_h, w / page_w, h / page_h))

        ax = axes_at(map_box)
        # extent: mapped districts + 6 %, widened to the axes' aspect (equal x/y scale)
        minx, miny, maxx, maxy = mapped_xy.total_bounds
        pad = 0.06 * max(maxx - minx, maxy - miny)
        minx, miny, maxx, maxy = minx - pad, miny - pad, maxx + pad, maxy + pad
        box_aspect = map_box[3] / map_box[2]
        cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
        half_w = max((maxx - minx) / 2, (maxy - miny) / 2 / box_aspect)
        half_h = half_w * box_aspect
        xlim, ylim = (cx - half_w, cx + half_w), (cy - half_h, cy + half_h)
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.set_aspect("equal", adjustable="box")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_facecolor("#eef4f8")

        _draw_polygons(ax, districts_xy, facecolor="#fafaf7", edgecolor="#9e9e9e", lw=0.5, zorder=1)
        _draw_polygons(ax, gaps_xy, facecolor=GAP_COLOUR, edgecolor="none", zorder=2)
        _draw_polygons(ax, reach_xy, facecolor=REACH_COLOUR, edgecolor="none", zorder=3)
        _draw_polygons(ax, mapped_xy, facecolor="none", edgecolor="#343a40", lw=1.1, zorder=4)

        view = shapely.box(xlim[0], ylim[0], xlim[1], ylim[1])
        name_size = 9 * scale if adcodes is not None else 6.5 * scale
        for name, geometry, code in zip(
            districts["name"], districts_xy, districts["adcode"], strict=True
        ):
            visible = geometry.intersection(view)
            is_mapped = adcodes is None or code in adcodes
            if visible.is_empty or (visible.area < 0.01 * view.area and not is_mapped):
                continue
            point = visible.representative_point()
            ax.text(
                point.x,
                point.y,
                str(name),
                ha="center",
                va="center",
                fontsize=name_size * (1.3 if adcodes and is_mapped else 1.0),
                color="#212529",
                zorder=7,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.6},
            )

        handles: list[Any] = []
        fx = facilities_xy.x.to_numpy()
        fy = facilities_xy.y.to_numpy()
        in_view = (fx >= xlim[0]) & (fx <= xlim[1]) & (fy >= ylim[0]) & (fy <= ylim[1])
        marker_size = 14 * scale if adcodes is not None else 5 * scale
        for key, (label, marker, colour) in KIND_STYLE.items():
            mine = in_view & (kinds == key)
            if mine.any():
                ax.scatter(
                    fx[mine],
                    fy[mine],
                    s=marker_size,
                    marker=marker,
                    c=colour,
                    edgecolors="white",
                    linewidths=0.3,
                    zorder=6,
                )
            handles.append(
                Line2D(
                    [],
                    [],
                    linestyle="none",
                    marker=marker,
                    color=colour,
                    markeredgecolor="white",
                    markersize=6,
                    label=f"{label}（{int((kinds == key).sum()):,}）",
                )
            )
        if sites is not None and sites.lon.size:
            sx, sy = (
                gpd.GeoSeries(gpd.points_from_xy(sites.lon, sites.lat), crs="EPSG:4326")
                .to_crs(projection)
                .pipe(lambda s: (s.x.to_numpy(), s.y.to_numpy()))
            )
            ax.scatter(
                sx,
                sy,
                s=marker_size * 5,
                marker="*",
                c=SITE_COLOUR,
                edgecolors="black",
                linewidths=0.4,
                zorder=8,
            )
            for rank, (x, y) in enumerate(zip(sx, sy, strict=True), start=1):
                ax.annotate(
                    str(rank),
                    (x, y),
                    xytext=(4, 4),
                    textcoords="offset points",
                    fontsize=7 * scale,
                    color=SITE_COLOUR,
                    zorder=8,
                )
            handles.append(
                Line2D(
                    [],
                    [],
                    linestyle="none",
                    marker="*",
                    color=SITE_COLOUR,
                    markeredgecolor="black",
                    markersize=9,
                    label=f"建议新址（{sites.lon.size}）",
                )
            )
        handles += [
            Patch(facecolor=REACH_COLOUR, label=f"{radius_m:,.0f} 米服务范围内"),
            Patch(facecolor=GAP_COLOUR, label="服务空白"),
            Line2D([], [], color="#343a40", lw=1.1, label="制图区界"),
            Line2D([], [], color="#9e9e9e", lw=0.5, label="其他区界"),
        ]
        legend = ax.legend(
            handles=handles,
            title="图例",
            loc="upper left",
            fontsize=7 * scale,
            title_fontsize=8 * scale,
            framealpha=0.9,
            borderpad=0.6,
        )
        legend.set_gid("legend")
        legend.set_zorder(10)

        bar_x0, bar_x1, bar_y, bar_m = _draw_scale_bar(ax, xlim, ylim, 7 * scale)
        _draw_north_arrow(ax, xlim, ylim, 8 * scale)

        # the actual scale, from the axes' size on paper after the aspect is applied
        fig.canvas.draw()
        extent = ax.get_window_extent()
        paper_m = extent.width / dpi * _MM_PER_INCH / 1000.0
        denominator = (xlim[1] - xlim[0]) / paper_m
        ax.text(
            bar_x0,
            bar_y - 0.03 * (ylim[1] - ylim[0]),
            f"比例尺 1:{_round_scale(denominator):,}",
            fontsize=7 * scale,
            va="center",
            zorder=9,
        )

        names = (
            "、".join(mapped["name"].astype(str))
            if adcodes is not None
            else (f"全部 {len(districts)} 个区")
        )
        fig.text(
            margin / page_w,
            1 - (margin + 6) / page_h,
            title,
            fontsize=18 * scale,
            va="center",
        )
        fig.text(
            margin / page_w,
            1 - (margin + 14) / page_h,
            subtitle or f"{names} · 服务半径 {radius_m:,.0f} 米 · {when.isoformat()}",
            fontsize=11 * scale,
            va="center",
            color="#343a40",
        )

        header, rows, bold = _table_rows(
            coverage.table,
            None if adcodes is None else adcodes[0],
            coverage.population_basis is not None,
            max_rows=18 if orientation == "landscape" else 12,
        )
        table_ax = axes_at(table_box)
        table_ax.axis("off")
        table_ax.set_title("各区覆盖指标", fontsize=10 * scale, loc="left")
        if rows:
            cell_table = table_ax.table(
                cellText=rows, colLabels=header, loc="upper center", cellLoc="center"
            )
            cell_table.auto_set_font_size(False)
            cell_table.set_fontsize(6.5 * scale)
            cell_table.scale(1.0, 1.25)
            for (row_i, _), cell in cell_table.get_celld().items():
                cell.set_linewidth(0.3)
                if row_i == 0:
                    cell.set_facecolor("#e9ecef")
                elif bold[row_i - 1]:
                    cell.set_facecolor("#fff3bf")

        footer = list(sources)
        if facility_source:
            footer.append(f"设施：{facility_source}")
        basis = area_basis_zh(coverage.area_basis)
        note = f"覆盖率：{radius_m:,.0f} 米（测地距离）内有设施的面积占比，面积基准为{basis}"
        if coverage.population_basis:
            note += f"；人口覆盖率基于 {coverage.population_basis}"
        footer.append(note + "。")
        footer.append(
            f"投影：等距方位投影（WGS-84 椭球），中心 {centre.x:.3f}°E {centre.y:.3f}°N；"
            f"制图日期 {when.isoformat()}"
        )
        footer.append(f"审图号：{approval_number or NO_APPROVAL}")
        for i, line in enumerate(footer):
            fig.text(
                margin / page_w,
                (margin + 3.6 * (len(footer) - 1 - i)) / page_h,
                line,
                fontsize=6.5 * scale,
                va="bottom",
                color="#343a40",
            )

        bar_px = ax.transData.transform([(bar_x0, bar_y), (bar_x1, bar_y)])
        height_px = fig.bbox.height
        path.parent.mkdir(parents=True, exist_ok=True)
        metadata = {"Title": title, "Subject": f"coverage {radius_m:g} m"}
        if suffix == ".pdf":
            fig.savefig(path, format="pdf", metadata={**metadata, "Creator": "zhigong-finder"})
        else:
            fig.savefig(path, format="png", dpi=dpi)

    ends_lon, ends_lat = _inverse(projection, np.array([bar_x0, bar_x1]), np.array([bar_y, bar_y]))
    return PrintedMap(
        path=path,
        paper=paper,
        orientation=orientation,
        page_mm=(page_w, page_h),
        projection=projection,
        scale_denominator=float(denominator),
        scale_bar_m=float(bar_m),
        scale_bar_projected_m=float(bar_x1 - bar_x0),
        scale_bar_lonlat=(
            (float(ends_lon[0]), float(ends_lat[0])),
            (float(ends_lon[1]), float(ends_lat[1])),
        ),
        scale_bar_px=(float(bar_px[0, 0]), float(bar_px[1, 0]), float(height_px - bar_px[0, 1])),
        dpi=dpi,
    )


def _round_scale(denominator: float) -> int:
    """Round a scale denominator to 3 significant digits for the label."""
    digits = max(0, math.floor(math.log10(denominator)) - 2)
    return int(round(denominator / 10**digits) * 10**digits)


def _inverse(
    projection: str, x: NDArray[np.float64], y: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    points = gpd.GeoSeries(gpd.points_from_xy(x, y), crs=projection).to_crs("EPSG:4326")
    return points.x.to_numpy(), points.y.to_numpy()
