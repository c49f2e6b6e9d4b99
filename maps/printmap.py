"""Printed coverage maps: PDF or PNG, A4 or A3, portrait or landscape.

A page carries a title and subtitle (district, radius, date), the map (districts, reached areas,
gaps, facilities by kind, proposed sites, district names in Chinese), a legend, a scale bar, a
north arrow, a table of the per-district figures, the data sources and date, and a configurable
审图号 (map approval number) line.

The map is drawn in an azimuthal equidistant projection (WGS-84 ellipsoid) centred on the mapped
area, with equal x/y scales, so the scale bar is exact at the centre and within 0.01 % across a
district; grid north is true north at the centre (meridian convergence < 0.2° at the edge of a
Shanghai district map). Text uses Noto Sans CJK SC with TrueType outlines (see :mod:`maps.fonts`),
embedded in PDFs as a CID subset (no Type 3).

Example
-------
>>> print_coverage_map("jingan.pdf", grid, lon, lat, kind, adcode="310106",
...                    paper="A3")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import matplotlib
import numpy as np
import pandas as pd
import shapely
import shapely.geometry.polygon
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, PathPatch, Polygon, Rectangle
from matplotlib.path import Path as MplPath
from matplotlib.table import Table
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
from geodata.kinds import KIND_BY_NAME, KIND_SPECS
from geodata.osmcontext import MapContext, nearest_road_names
from maps.fonts import register_print_font
from maps.paper import ORIENTATIONS, PAPER_MM, Orientation, Paper
from maps.webmap import ACCESS_LABELS

MM_PER_INCH = 25.4
AEQD = "+proj=aeqd +lat_0={lat:.6f} +lon_0={lon:.6f} +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs"

REACH_COLOUR = "#b2dfc0"
GAP_COLOUR = "#f5c2bd"
SITE_COLOUR = "#e03131"
SCALE_BAR_COLOUR = "#000000"
GAP_LABEL_COLOUR = "#a61e4d"
CONTEXT_ROAD = "#6c757d"
CONTEXT_WATER = "#a5d8ff"
#: Main roads named on a map, longest first.
MAX_ROAD_LABELS = 25
#: Facility markers are this wide on paper, millimetres (readable when printed).
MARKER_MM = 2.8
#: Page margin, millimetres (printers leave 3-5 mm unprinted).
PAGE_MARGIN_MM = 12.0
FOOTER_LINE_MM = 3.6
TABLE_ROW_MM = 6.0
#: Gaps numbered on a district map: the largest few, each at least this large (m2).
MAX_NUMBERED_GAPS = 5
MIN_NUMBERED_GAP_M2 = 50_000.0

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
    legend_counts
        Facilities per kind in the legend: those located in the mapped districts, as in the table.
    gaps
        The numbered gaps (gap features of :func:`finder.coverage.coverage_layers`);
        number = position + 1.
    map_frame_mm, furniture_mm
        The map frame and every other drawn element (legend, scale bar, north arrow, table,
        texts) as ``(x0, y0, x1, y1)`` page millimetres from the lower left.
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
    legend_counts: dict[str, int]
    gaps: list[dict[str, Any]]
    map_frame_mm: tuple[float, float, float, float]
    furniture_mm: dict[str, tuple[float, float, float, float]]


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
    if orientation not in ORIENTATIONS:
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


def draw_polygons(ax: Axes, geometries: gpd.GeoSeries, **style: Any) -> None:
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
    ax: Axes, denominator: float, centre: tuple[float, float], fontsize: float
) -> tuple[float, float, float, float]:
    """A bar of four alternating segments in its own axes, at the map's scale.

    The axes' data coordinates are the map projection's metres around ``centre`` with the map's
    metres per paper millimetre, so the bar's ends are real points at the map's centre row.
    Returns ``(x0, x1, y, length_m)`` in those coordinates.
    """
    bbox = ax.get_position()
    fig = ax.get_figure()
    assert fig is not None
    width_mm = bbox.width * fig.get_figwidth() * MM_PER_INCH
    height_mm = bbox.height * fig.get_figheight() * MM_PER_INCH
    span_x = width_mm / 1000.0 * denominator
    span_y = height_mm / 1000.0 * denominator
    cx, cy = centre
    ax.set_xlim(cx - span_x / 2, cx + span_x / 2)
    ax.set_ylim(cy - span_y / 2, cy + span_y / 2)
    ax.set_aspect("equal", adjustable="box")
    ax.axis("off")
    length = nice_scale_length(span_x * 0.9)
    x0 = cx - span_x / 2 + 0.04 * span_x
    bar_h = 0.12 * span_y
    segment = length / 4
    for i in range(4):
        ax.add_patch(
            Rectangle(
                (x0 + i * segment, cy - bar_h / 2),
                segment,
                bar_h,
                facecolor=SCALE_BAR_COLOUR if i % 2 == 0 else "white",
                edgecolor=SCALE_BAR_COLOUR,
                linewidth=0.6,
                gid="scale-bar",
            )
        )
    for value in (0.0, length / 2, length):
        ax.text(
            x0 + value,
            cy + bar_h,
            "0" if value == 0 else _format_m(value),
            ha="center",
            va="bottom",
            fontsize=fontsize,
        )
    ax.text(
        x0,
        cy - bar_h,
        f"比例尺 1:{_round_scale(denominator):,}",
        fontsize=fontsize,
        va="top",
    )
    return x0, x0 + length, cy, length


def _draw_north_arrow(ax: Axes, fontsize: float) -> None:
    """Arrow pointing to grid north (+y), which is true north at the projection centre."""
    ax.set_xlim(-1, 1)
    ax.set_ylim(0, 2)
    ax.set_aspect("equal", adjustable="box")
    ax.axis("off")
    left = [(0, 1.5), (-0.35, 0.5), (0, 0.8)]
    right = [(0, 1.5), (0.35, 0.5), (0, 0.8)]
    for points, colour in ((left, "black"), (right, "white")):
        ax.add_patch(
            Polygon(points, closed=True, facecolor=colour, edgecolor="black", lw=0.6, gid="north")
        )
    ax.text(0, 1.55, "北 N", ha="center", va="bottom", fontsize=fontsize)


def counted_zh(summary: dict[str, Any], *, mapped: str) -> str:
    """What a map counts, in words: access classes, statuses, kinds (from
    :attr:`finder.coverage.CountedFacilities.summary`)."""
    access = "、".join(ACCESS_LABELS["zh"][a] for a in summary["access"])
    kinds = "、".join(KIND_BY_NAME[k].label_zh for k in summary["kinds"])
    only = "仅计" if summary["access"] == ["public"] else "计入"
    return (
        f"统计口径：{only}{access}的设施，状态为“开放”（不含暂停开放、已关闭）；{kinds}；"
        f"图例数字为位于{mapped}内的设施数，与右表一致。"
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
    unknown = set(kinds.tolist()) - set(KIND_BY_NAME)
    if unknown:
        raise InvalidInput(f"unknown facility kind(s): {sorted(unknown)}", field="kind")
    adcodes = None if adcode is None else [grid.district(adcode).adcode]
    if coverage is None:
        coverage = coverage_table(grid, lon_arr, lat_arr, radius_m=radius_m, kind=kinds)
    return lon_arr, lat_arr, kinds, adcodes, coverage


@contextlib.contextmanager
def print_style() -> Iterator[None]:
    """Matplotlib settings of printed maps: the TrueType CJK font (:func:`register_print_font`)
    embedded as CID subsets (``pdf.fonttype: 42``; no Type 3, which print preflight rejects).
    Figures must be built and saved inside it."""
    family = register_print_font()
    with matplotlib.rc_context(
        {"font.family": [family], "axes.unicode_minus": False, "pdf.fonttype": 42}
    ):
        yield


def print_coverage_map(
    out: str | Path,
    grid: SampleGrid,
    lon: ArrayLike,
    lat: ArrayLike,
    kind: ArrayLike | None = None,
    **options: Any,
) -> PrintedMap:
    """Print a coverage map of one district (or all districts of ``grid``) to PDF or PNG.

    ``out`` ends in ``.pdf`` or ``.png``; the other arguments are those of
    :func:`coverage_sheet`.

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
    with print_style():
        fig, printed = coverage_sheet(path, grid, lon, lat, kind, **options)
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".pdf":
            fig.savefig(path, format="pdf", metadata=pdf_metadata(fig))
        else:
            fig.savefig(path, format="png", dpi=printed.dpi)
    return printed


def pdf_metadata(fig: Figure) -> dict[str, str]:
    """PDF document information of a printed sheet: its title and the creator."""
    titles = [t.get_text() for t in fig.texts if t.get_gid() == "title"]
    return {"Title": titles[0] if titles else "", "Creator": "zhigong-finder"}


def coverage_sheet(
    path: Path,
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
    counted: dict[str, Any] | None = None,
    context: MapContext | None = None,
    page_label: str | None = None,
    dpi: int = 300,
) -> tuple[Figure, PrintedMap]:
    """The figure of a coverage map of one district (or all districts of ``grid``).

    Build and save it inside :func:`print_style`.

    Parameters
    ----------
    path
        The file the sheet goes to (recorded in the result).
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
    page_label
        Page number text printed at the lower right (atlases).
    context
        Roads, water, railways and 街道/镇 from an OpenStreetMap extract
        (:func:`geodata.osmcontext.context_from_osm`), drawn lightly; gaps are then named by their
        nearest roads.
    counted
        What was counted (:attr:`finder.coverage.CountedFacilities.summary`), printed as a line.
    dpi
        PNG resolution (dots per inch).

    Returns
    -------
    tuple
        The figure and what it shows (:class:`PrintedMap`).

    Raises
    ------
    InvalidInput
        On an unknown paper, orientation or kind.
    UnknownDistrict
        If ``adcode`` is not in the grid.
    """
    page_w, page_h = page_size_mm(paper, orientation)
    lon_arr, lat_arr, kinds, adcodes, coverage = map_inputs(
        grid, lon, lat, kind, adcode=adcode, radius_m=radius_m, coverage=coverage
    )
    when = map_date or dt.datetime.now(dt.UTC).date()

    districts = grid.districts
    mapped = districts if adcodes is None else districts[districts["adcode"].isin(adcodes)]
    centre = shapely.union_all(np.asarray(mapped.geometry.values)).centroid
    projection = AEQD.format(lon=centre.x, lat=centre.y)
    districts_xy = districts.geometry.to_crs(projection)
    mapped_xy = mapped.geometry.to_crs(projection)
    layers = coverage_layers(grid, lon_arr, lat_arr, radius_m=radius_m, adcodes=adcodes)
    facilities_xy = gpd.GeoSeries(gpd.points_from_xy(lon_arr, lat_arr), crs="EPSG:4326").to_crs(
        projection
    )
    numbered = _numbered_gaps(layers["gaps"]["features"], adcodes, context)
    rows_shown = coverage.table[
        coverage.table["adcode"].isin(adcodes if adcodes is not None else coverage.table["adcode"])
    ]
    legend_counts = {k: int(rows_shown[f"n_{k}"].fillna(0).sum()) for k in KIND_BY_NAME}

    scale = max(page_w, page_h) / 297.0  # text sizes grow with the paper (A4 = 1)
    names = (
        "、".join(mapped["name"].astype(str))
        if adcodes is not None
        else (f"全部 {len(districts)} 个区")
    )
    footer = _footer_lines(
        sources,
        context=context,
        facility_source=facility_source,
        counted=None
        if counted is None
        else counted_zh(counted, mapped=names if adcodes is not None else "各区"),
        coverage=coverage,
        radius_m=radius_m,
        centre=(centre.x, centre.y),
        when=when,
        approval_number=approval_number,
        sites=sites,
    )
    boxes = _layout(page_w, page_h, orientation, footer_lines=len(footer), scale=scale)

    fig = Figure(figsize=(page_w / MM_PER_INCH, page_h / MM_PER_INCH), dpi=dpi)
    FigureCanvasAgg(fig)

    def axes_at(name: str) -> Axes:
        x, y, w, h = boxes[name]
        return fig.add_axes((x / page_w, y / page_h, w / page_w, h / page_h))

    map_box = boxes["map"]
    ax = axes_at("map")
    xlim, ylim = _map_extent(ax, mapped_xy, map_box)
    cx, cy = (xlim[0] + xlim[1]) / 2, (ylim[0] + ylim[1]) / 2
    # the axes fill their box exactly (same aspect), so this is the scale on paper
    denominator = (xlim[1] - xlim[0]) / (map_box[2] / 1000.0)

    draw_polygons(ax, districts_xy, facecolor="#fafaf7", edgecolor="#9e9e9e", lw=0.5, zorder=1)
    draw_polygons(
        ax,
        _geometries(layers["gaps"], projection),
        facecolor=GAP_COLOUR,
        edgecolor="none",
        zorder=2,
    )
    draw_polygons(
        ax,
        _geometries(layers["reach"], projection),
        facecolor=REACH_COLOUR,
        edgecolor="none",
        zorder=3,
    )
    draw_polygons(ax, mapped_xy, facecolor="none", edgecolor="#343a40", lw=1.1, zorder=4)
    view = shapely.box(xlim[0], ylim[0], xlim[1], ylim[1])
    if context is not None:
        _draw_context(ax, context, projection, view, fontsize=5.5 * scale)
    _draw_district_names(ax, districts, districts_xy, adcodes, view, scale=scale)

    marker_pt = MARKER_MM / MM_PER_INCH * 72
    handles = _draw_facilities(
        ax,
        facilities_xy,
        kinds,
        xlim,
        ylim,
        legend_counts,
        where="区内" if adcodes is not None else "全市",
        marker_pt=marker_pt,
    )
    _draw_gap_numbers(ax, numbered, projection, scale=scale)
    handles += _draw_largest_gap(ax, rows_shown, projection, marker_pt=marker_pt)
    if sites is not None and sites.lon.size:
        handles += _draw_sites(ax, sites, projection, marker_pt=marker_pt, scale=scale)
    handles += [
        Patch(facecolor=REACH_COLOUR, label=f"{radius_m:,.0f} 米服务范围内"),
        Patch(facecolor=GAP_COLOUR, label="服务空白（编号见右表）" if numbered else "服务空白"),
        Line2D([], [], color="#343a40", lw=1.1, label="制图区界"),
        Line2D([], [], color="#9e9e9e", lw=0.5, label="其他区界"),
    ]
    _draw_legend(axes_at("legend"), handles, scale=scale)

    scale_ax = axes_at("scale")
    bar_x0, bar_x1, bar_y, bar_m = _draw_scale_bar(scale_ax, denominator, (cx, cy), 7 * scale)
    _draw_north_arrow(axes_at("north"), 8 * scale)

    draw_heading(
        fig,
        (page_w, page_h),
        title,
        subtitle or f"{names} · 服务半径 {radius_m:,.0f} 米 · {when.isoformat()}",
        scale=scale,
    )
    _draw_table(
        axes_at("table"),
        coverage,
        None if adcodes is None else adcodes[0],
        # rows of about 6 mm (6.5 pt text, 1.25 x) that fit the box, below the header row
        max_rows=max(1, int(boxes["table"][3] / (TABLE_ROW_MM * scale)) - 1),
        scale=scale,
    )
    _draw_gap_list(axes_at("gaps"), numbered, scale=scale)
    draw_footer(fig, (page_w, page_h), footer, scale=scale)
    if page_label:
        draw_page_label(fig, (page_w, page_h), page_label, scale=scale)
    fig.canvas.draw()
    furniture = _furniture_boxes(fig, ax)
    bar_px = scale_ax.transData.transform([(bar_x0, bar_y), (bar_x1, bar_y)])
    height_px = fig.bbox.height

    ends_lon, ends_lat = _inverse(projection, np.array([bar_x0, bar_x1]), np.array([bar_y, bar_y]))
    return fig, PrintedMap(
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
        legend_counts=legend_counts,
        gaps=numbered,
        map_frame_mm=_to_mm(fig, ax.get_window_extent()),
        furniture_mm=furniture,
    )


def _footer_lines(
    sources: tuple[str, ...],
    *,
    context: MapContext | None,
    facility_source: str | None,
    counted: str | None,
    coverage: CoverageResult,
    radius_m: float,
    centre: tuple[float, float],
    when: dt.date,
    approval_number: str | None,
    sites: SitingResult | None = None,
) -> list[str]:
    """The footer of a coverage sheet: sources, what was counted, the coverage basis, how the
    proposed sites (if any) were chosen, the projection and date, the 审图号."""
    footer = list(sources)
    if context is not None:
        footer.append(f"道路、水系、铁路：© OpenStreetMap 贡献者（ODbL），{context.source}")
    if facility_source:
        footer.append(f"设施：{facility_source}")
    if counted is not None:
        footer.append(counted)
    basis = area_basis_zh(coverage.area_basis)
    note = f"覆盖率：{radius_m:,.0f} 米（测地距离）内有设施的面积占比，面积基准为{basis}"
    if coverage.population_basis:
        note += f"；人口覆盖率基于 {coverage.population_basis}"
    footer.append(note + "。")
    if sites is not None and sites.lon.size:
        footer.append(siting_note_zh(sites))
    footer.append(
        f"投影：等距方位投影（WGS-84 椭球），中心 {centre[0]:.3f}°E {centre[1]:.3f}°N；"
        f"制图日期 {when.isoformat()}"
    )
    footer.append(f"审图号：{approval_number or NO_APPROVAL}")
    return footer


def siting_note_zh(sites: SitingResult) -> str:
    """How proposed sites were chosen, in a line: the objective and the weighting by observed
    use (its window, the facilities with and without door counts), as
    :attr:`finder.siting.SitingResult.weighting` says."""
    goal = "人口" if sites.objective == "population" else "面积"
    line = f"建议新址：使未覆盖{goal}覆盖最多"
    w = sites.weighting
    if w["weighting"] != "use":
        return line + "（未按使用量加权）。"
    return (
        f"{line}，按使用量加权：{w['from']} 至 {w['to']}（{w['days']} 天）门禁计数，有计数设备"
        f" {w['measured_facilities']} 个（平均每日 {w['reference_visits_per_day']:g} 次），"
        f"无设备 {w['unmeasured_facilities']} 个按平均计；范围 {w['catchment_m']:,.0f} 米。"
    )


def _map_extent(
    ax: Axes, mapped_xy: gpd.GeoSeries, map_box: tuple[float, float, float, float]
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Set the map axes' limits: the mapped districts + 6 %, widened to the box's aspect (equal
    x/y scale). Returns ``(xlim, ylim)`` in projected metres."""
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
    return xlim, ylim


def _draw_district_names(
    ax: Axes,
    districts: gpd.GeoDataFrame,
    districts_xy: gpd.GeoSeries,
    adcodes: list[str] | None,
    view: shapely.Polygon,
    *,
    scale: float,
) -> None:
    """District names at a point inside each district in view (mapped ones larger)."""
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
            alpha=0.8,
            zorder=7,
        )


def _draw_facilities(
    ax: Axes,
    facilities_xy: gpd.GeoSeries,
    kinds: NDArray[Any],
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    legend_counts: dict[str, int],
    *,
    where: str,
    marker_pt: float,
) -> list[Any]:
    """The facilities in view, one symbol per kind; returns a legend handle per kind."""
    handles: list[Any] = []
    fx = facilities_xy.x.to_numpy()
    fy = facilities_xy.y.to_numpy()
    in_view = (fx >= xlim[0]) & (fx <= xlim[1]) & (fy >= ylim[0]) & (fy <= ylim[1])
    for spec in KIND_SPECS:
        key, marker, colour = spec.name, spec.print_marker, spec.colour
        mine = in_view & (kinds == key)
        if mine.any():
            ax.scatter(
                fx[mine],
                fy[mine],
                s=marker_pt**2,
                marker=marker,
                c=colour,
                edgecolors="white",
                linewidths=0.4,
                zorder=6,
                gid=f"facilities-{key}",
            )
        handles.append(
            Line2D(
                [],
                [],
                linestyle="none",
                marker=marker,
                color=colour,
                markeredgecolor="white",
                markersize=marker_pt,
                label=f"{spec.label_zh}（{where} {legend_counts[key]:,}）",
            )
        )
    return handles


def _draw_gap_numbers(
    ax: Axes, numbered: list[dict[str, Any]], projection: str, *, scale: float
) -> None:
    """A circled number at each numbered gap's farthest point."""
    for number, gap in enumerate(numbered, start=1):
        gx, gy = _project(projection, gap["properties"]["lon"], gap["properties"]["lat"])
        ax.scatter([gx], [gy], s=4, c=GAP_LABEL_COLOUR, zorder=9, gid=f"gap-{number}")
        ax.annotate(
            _circled(number),
            (gx, gy),
            xytext=(7, 7),
            textcoords="offset points",
            ha="center",
            va="center",
            fontsize=9 * scale,
            color=GAP_LABEL_COLOUR,
            zorder=10,
            arrowprops={"arrowstyle": "-", "color": GAP_LABEL_COLOUR, "lw": 0.6},
            bbox={"boxstyle": "circle,pad=0.1", "fc": "white", "ec": GAP_LABEL_COLOUR},
        )


def _draw_largest_gap(
    ax: Axes, rows_shown: pd.DataFrame, projection: str, *, marker_pt: float
) -> list[Any]:
    """A cross at the point farthest from any facility; returns its legend handle (if any)."""
    largest = rows_shown.sort_values("largest_gap_m", ascending=False).head(1)
    if not len(largest) or pd.isna(largest["gap_lon"].iloc[0]):
        return []
    lx, ly = _project(
        projection, float(largest["gap_lon"].iloc[0]), float(largest["gap_lat"].iloc[0])
    )
    ax.scatter(
        [lx],
        [ly],
        s=marker_pt**2,
        marker="X",
        c=GAP_LABEL_COLOUR,
        edgecolors="white",
        linewidths=0.4,
        zorder=8,
        gid="largest-gap",
    )
    return [
        Line2D(
            [],
            [],
            linestyle="none",
            marker="X",
            color=GAP_LABEL_COLOUR,
            markeredgecolor="white",
            markersize=marker_pt,
            label="离设施最远处（最大空白）",
        )
    ]


def _draw_sites(
    ax: Axes, sites: SitingResult, projection: str, *, marker_pt: float, scale: float
) -> list[Any]:
    """Proposed sites as numbered stars; returns their legend handle."""
    sx, sy = _project(projection, sites.lon, sites.lat)
    ax.scatter(
        sx,
        sy,
        s=(marker_pt * 1.6) ** 2,
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
    return [
        Line2D(
            [],
            [],
            linestyle="none",
            marker="*",
            color=SITE_COLOUR,
            markeredgecolor="black",
            markersize=marker_pt * 1.6,
            label=f"建议新址（{sites.lon.size}）",
        )
    ]


def _draw_legend(legend_ax: Axes, handles: list[Any], *, scale: float) -> None:
    """The legend in its own axes."""
    legend_ax.axis("off")
    legend = legend_ax.legend(
        handles=handles,
        title="图例",
        loc="upper left",
        fontsize=7 * scale,
        title_fontsize=8 * scale,
        frameon=False,
        borderaxespad=0.0,
        alignment="left",
    )
    legend.set_gid("legend")


def _draw_table(
    table_ax: Axes,
    coverage: CoverageResult,
    highlight: str | None,
    *,
    max_rows: int,
    scale: float,
) -> None:
    """The per-district figures as a table (the highlighted district's row shaded)."""
    header, rows, bold = _table_rows(
        coverage.table, highlight, coverage.population_basis is not None, max_rows=max_rows
    )
    cells = draw_sheet_table(
        table_ax, "各区覆盖指标", header, rows, scale=scale, title_pt=10, text_pt=6.5, shaded=bold
    )
    if cells is not None:
        cells.scale(1.0, 1.25)


def draw_sheet_table(
    ax: Axes,
    title: str,
    header: list[str],
    rows: list[list[str]],
    *,
    scale: float,
    title_pt: float,
    text_pt: float,
    shaded: list[bool] | None = None,
) -> Table | None:
    """A table of a printed sheet filling its own axes: the title at the upper left, a shaded
    header row, thin rules, and the rows where ``shaded`` is true highlighted.

    Sizes are points at ``scale`` 1. Returns the table (for the caller's row heights and
    column widths), or None when there are no rows (the title alone is drawn).
    """
    ax.axis("off")
    ax.set_title(title, fontsize=title_pt * scale, loc="left")
    if not rows:
        return None
    cells = ax.table(cellText=rows, colLabels=header, loc="upper center", cellLoc="center")
    cells.auto_set_font_size(False)
    cells.set_fontsize(text_pt * scale)
    for (row_i, _), cell in cells.get_celld().items():
        cell.set_linewidth(0.3)
        if row_i == 0:
            cell.set_facecolor("#e9ecef")
        elif shaded is not None and shaded[row_i - 1]:
            cell.set_facecolor("#fff3bf")
    return cells


def _draw_gap_list(gap_ax: Axes, numbered: list[dict[str, Any]], *, scale: float) -> None:
    """The numbered gaps in words: place, area, farthest distance."""
    gap_ax.axis("off")
    if not numbered:
        return
    lines = [
        f"{_circled(i)} {gap_place(gap)}，{gap['properties']['area_m2'] / 1e6:.2f} km²，"
        f"最远处距最近设施 {gap['properties']['farthest_m'] / 1000:.1f} km"
        for i, gap in enumerate(numbered, start=1)
    ]
    gap_ax.text(
        0,
        1,
        "主要服务空白（按面积）\n" + "\n".join(lines),
        va="top",
        ha="left",
        fontsize=7 * scale,
        linespacing=1.5,
        transform=gap_ax.transAxes,
    )


def draw_heading(
    fig: Figure,
    page_mm: tuple[float, float],
    title: str,
    subtitle: str,
    *,
    scale: float,
    title_pt: float = 18.0,
    title_mm: float = 6.0,
    subtitle_mm: float = 15.0,
) -> None:
    """The title and subtitle of a printed sheet, at the upper left inside the page margin.

    ``title_mm`` and ``subtitle_mm`` are the distances of their centre lines below the margin,
    and ``title_pt`` the title's size, each at ``scale`` 1 (they grow with ``scale``; the
    subtitle is 11 pt at scale 1).
    """
    page_w, page_h = page_mm
    m = PAGE_MARGIN_MM
    fig.text(
        m / page_w,
        (page_h - m - title_mm * scale) / page_h,
        title,
        fontsize=title_pt * scale,
        va="center",
        gid="title",
    )
    fig.text(
        m / page_w,
        (page_h - m - subtitle_mm * scale) / page_h,
        subtitle,
        fontsize=11 * scale,
        va="center",
        color="#343a40",
        gid="subtitle",
    )


def draw_footer(
    fig: Figure,
    page_mm: tuple[float, float],
    lines: list[str],
    *,
    scale: float,
    line_mm: float = FOOTER_LINE_MM,
    text_pt: float = 6.5,
) -> None:
    """Footer lines at the lower left inside the page margin, the last on the margin."""
    page_w, page_h = page_mm
    m = PAGE_MARGIN_MM
    for i, line in enumerate(lines):
        fig.text(
            m / page_w,
            (m + line_mm * scale * (len(lines) - 1 - i)) / page_h,
            line,
            fontsize=text_pt * scale,
            va="bottom",
            color="#343a40",
            gid="footer",
        )


def draw_page_label(
    fig: Figure, page_mm: tuple[float, float], page_label: str, *, scale: float
) -> None:
    """The page number text at the lower right inside the page margin."""
    page_w, page_h = page_mm
    fig.text(
        1 - PAGE_MARGIN_MM / page_w,
        PAGE_MARGIN_MM / page_h,
        page_label,
        ha="right",
        va="bottom",
        fontsize=7 * scale,
        gid="page",
    )


def _project(projection: str, lon: Any, lat: Any) -> tuple[Any, Any]:
    """WGS-84 degrees to the map projection's metres (scalars or arrays)."""
    points = gpd.GeoSeries(
        gpd.points_from_xy(np.atleast_1d(lon), np.atleast_1d(lat)), crs="EPSG:4326"
    ).to_crs(projection)
    x, y = points.x.to_numpy(), points.y.to_numpy()
    return (float(x[0]), float(y[0])) if np.ndim(lon) == 0 else (x, y)


def _circled(number: int) -> str:
    """①-⑳ for 1-20 (numbered gaps)."""
    return chr(0x2460 + number - 1)


def gap_place(gap: dict[str, Any]) -> str:
    """Where a gap is, in words: its nearest named roads when known, else its district."""
    roads = gap["properties"].get("near_roads") or []
    if roads:
        return " / ".join(roads) + "附近"
    return str(gap["properties"]["district"])


def _numbered_gaps(
    features: list[dict[str, Any]], adcodes: list[str] | None, context: MapContext | None
) -> list[dict[str, Any]]:
    """The largest gaps of a one-district map (at most :data:`MAX_NUMBERED_GAPS`, each at
    least :data:`MIN_NUMBERED_GAP_M2`), largest first, with their nearest named roads when a
    context is given; none on a map of every district."""
    if adcodes is None:
        return []
    features = sorted(
        (f for f in features if f["properties"]["area_m2"] >= MIN_NUMBERED_GAP_M2),
        key=lambda f: -f["properties"]["area_m2"],
    )
    chosen = list(features[:MAX_NUMBERED_GAPS])
    if context is not None:
        for feature in chosen:
            properties = feature["properties"]
            properties["near_roads"] = nearest_road_names(
                context.roads, properties["lon"], properties["lat"]
            )
    return chosen


def _draw_context(
    ax: Axes, context: MapContext, projection: str, view: shapely.Polygon, *, fontsize: float
) -> None:
    """Water, railways, roads and 街道/镇 lines drawn thin and light over the coverage fills
    (so both show), main road and sub-district names in grey."""

    def clipped(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        if frame.empty:
            return frame
        projected = frame.to_crs(projection)
        return projected[projected.geometry.intersects(view)]

    water = clipped(context.water)
    if not water.empty:
        areas = water[water["kind"] == "area"]
        draw_polygons(
            ax, areas.geometry, facecolor=CONTEXT_WATER, edgecolor="none", alpha=0.7, zorder=3.2
        )
        _draw_lines(ax, water[water["kind"] == "line"].geometry, CONTEXT_WATER, 1.0, zorder=3.2)
    _draw_lines(ax, clipped(context.railways).geometry, "#868e96", 0.5, zorder=3.3, ls="--")
    roads = clipped(context.roads)
    if not roads.empty:
        _draw_lines(ax, roads[roads["road_class"] == "minor"].geometry, CONTEXT_ROAD, 0.25, 3.4)
        major = roads[roads["road_class"] == "major"]
        _draw_lines(ax, major.geometry, CONTEXT_ROAD, 0.6, zorder=3.4)
        named = major[major["name"].astype(str) != ""]
        lengths = named.geometry.intersection(view).length.groupby(named["name"]).sum()
        for name in lengths.sort_values(ascending=False).index[:MAX_ROAD_LABELS]:
            merged = shapely.union_all(named[named["name"] == name].geometry.intersection(view))
            longest = max(shapely.get_parts(merged), key=lambda part: part.length)
            point = longest.interpolate(0.5, normalized=True)
            ax.text(
                point.x,
                point.y,
                str(name),
                fontsize=fontsize,
                color="#495057",
                ha="center",
                va="center",
                zorder=5,
                clip_on=True,
            )
    subdistricts = clipped(context.subdistricts)
    for name, geometry in zip(subdistricts["name"], subdistricts.geometry, strict=True):
        _draw_lines(ax, [geometry.boundary], "#adb5bd", 0.5, zorder=3.5, ls=":")
        point = geometry.intersection(view).representative_point()
        ax.text(point.x, point.y, str(name), fontsize=fontsize, color="#868e96", zorder=5)


def _draw_lines(
    ax: Axes, geometries: Any, colour: str, lw: float, zorder: float, ls: str = "-"
) -> None:
    """(Multi)line strings as one collection."""
    segments = [
        np.asarray(part.coords)
        for geometry in geometries
        for part in shapely.get_parts(geometry)
        if not part.is_empty
    ]
    if segments:
        ax.add_collection(
            LineCollection(segments, colors=colour, linewidths=lw, linestyles=ls, zorder=zorder)
        )


def _to_mm(fig: Figure, bbox: Any) -> tuple[float, float, float, float]:
    """A display-space bounding box as ``(x0, y0, x1, y1)`` page millimetres from the lower left."""
    k = MM_PER_INCH / fig.dpi
    return (bbox.x0 * k, bbox.y0 * k, bbox.x1 * k, bbox.y1 * k)


def _furniture_boxes(fig: Figure, map_ax: Axes) -> dict[str, tuple[float, float, float, float]]:
    """Page-millimetre boxes of everything drawn around the map (legend, scale bar, north
    arrow, table, gap list, title, footer), from the rendered figure."""
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    boxes: dict[str, tuple[float, float, float, float]] = {}
    for i, other in enumerate(fig.axes):
        if other is map_ax:
            continue
        extent = other.get_tightbbox(renderer)
        if extent is not None and extent.width > 0:
            boxes[f"axes-{i}"] = _to_mm(fig, extent)
    for i, text in enumerate(fig.texts):
        boxes[f"{text.get_gid()}-{i}"] = _to_mm(fig, text.get_window_extent(renderer))
    return boxes


def _layout(
    page_w: float, page_h: float, orientation: Orientation, *, footer_lines: int, scale: float
) -> dict[str, tuple[float, float, float, float]]:
    """Boxes ``(x, y, width, height)`` in page millimetres from the lower left: header, map,
    table, gap list, legend, scale bar, north arrow and footer, none overlapping, all inside
    :data:`PAGE_MARGIN_MM`."""
    m = PAGE_MARGIN_MM
    gutter = 5.0 * scale
    header_h = 22.0 * scale
    footer_h = FOOTER_LINE_MM * footer_lines * scale
    top = page_h - m - header_h
    bottom = m + footer_h + gutter
    content_h = top - bottom
    boxes = {
        "header": (m, top, page_w - 2 * m, header_h),
        "footer": (m, m, page_w - 2 * m, footer_h),
    }
    if orientation == "landscape":
        side_w = 0.36 * page_w
        side_x = page_w - m - side_w
        boxes["map"] = (m, bottom, side_x - gutter - m, content_h)
        furniture_h = 0.42 * content_h
        table_h = 0.36 * content_h
        boxes["table"] = (side_x, top - table_h, side_w, table_h - 6 * scale)
        boxes["gaps"] = (side_x, bottom + furniture_h, side_w, content_h - table_h - furniture_h)
        scale_h = 0.3 * furniture_h
        boxes["scale"] = (side_x, bottom, side_w, scale_h)
        boxes["legend"] = (side_x, bottom + scale_h, side_w * 0.7, furniture_h - scale_h)
        boxes["north"] = (side_x + side_w * 0.8, bottom + scale_h, 12 * scale, 0.5 * furniture_h)
    else:
        band_h = 0.36 * content_h
        boxes["map"] = (m, bottom + band_h + gutter, page_w - 2 * m, content_h - band_h - gutter)
        left_w = 0.36 * (page_w - 2 * m)
        right_x = m + left_w + gutter
        right_w = page_w - m - right_x
        boxes["legend"] = (m, bottom + 0.4 * band_h, left_w * 0.75, 0.6 * band_h)
        boxes["north"] = (m + left_w * 0.8, bottom + 0.6 * band_h, left_w * 0.2, 0.4 * band_h)
        boxes["scale"] = (m, bottom, left_w, 0.3 * band_h)
        boxes["table"] = (right_x, bottom + 0.35 * band_h, right_w, 0.65 * band_h - 6 * scale)
        boxes["gaps"] = (right_x, bottom, right_w, 0.33 * band_h)
    return boxes


def _round_scale(denominator: float) -> int:
    """Round a scale denominator to 3 significant digits for the label."""
    digits = max(0, math.floor(math.log10(denominator)) - 2)
    return int(round(denominator / 10**digits) * 10**digits)


def _inverse(
    projection: str, x: NDArray[np.float64], y: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    points = gpd.GeoSeries(gpd.points_from_xy(x, y), crs=projection).to_crs("EPSG:4326")
    return points.x.to_numpy(), points.y.to_numpy()
