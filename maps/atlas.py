"""An atlas of every district: an overview page of the city, then one coverage sheet per district.

The overview carries a choropleth of the covered shares (the web coverage map's classes,
:data:`maps.coveragemap.SHARE_CLASSES`), the districts ranked by covered share, the contents (page
of each district), the date, the sources and what was counted. Every page is numbered. Each
district page is :func:`maps.printmap.coverage_sheet` with the figures of one coverage table
computed once for the whole atlas, so the pages and the overview agree.

Example
-------
>>> print_atlas("atlas.pdf", grid, lon, lat, kind, paper="A3")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from numpy.typing import ArrayLike

from finder.coverage import SampleGrid, coverage_table
from geodata.errors import InvalidInput
from geodata.osmcontext import MapContext
from maps.coveragemap import SHARE_CLASSES, share_class_label, share_colour
from maps.printmap import (
    AEQD,
    DEFAULT_SOURCES,
    FOOTER_LINE_MM,
    MM_PER_INCH,
    NO_APPROVAL,
    PAGE_MARGIN_MM,
    Orientation,
    Paper,
    counted_zh,
    coverage_sheet,
    draw_footer,
    draw_heading,
    draw_page_label,
    draw_polygons,
    draw_sheet_table,
    map_inputs,
    page_size_mm,
    print_style,
)


@dataclass(frozen=True)
class PrintedAtlas:
    """What an atlas holds.

    Attributes
    ----------
    path
        The written PDF.
    contents
        ``(district name, page number)`` per district page, in page order (the overview is 1).
    pages
        Number of pages.
    """

    path: Path
    contents: list[tuple[str, int]]
    pages: int


def print_atlas(
    out: str | Path,
    grid: SampleGrid,
    lon: ArrayLike,
    lat: ArrayLike,
    kind: ArrayLike | None = None,
    *,
    radius_m: float = 1000.0,
    paper: Paper = "A4",
    orientation: Orientation = "landscape",
    title: str = "职工服务设施覆盖图集",
    map_date: dt.date | None = None,
    approval_number: str | None = None,
    sources: tuple[str, ...] = DEFAULT_SOURCES,
    counted: dict[str, Any] | None = None,
    context: MapContext | None = None,
) -> PrintedAtlas:
    """Print the overview and one coverage sheet per district of ``grid`` into one PDF.

    Parameters are those of :func:`maps.printmap.coverage_sheet`; ``out`` must end in ``.pdf``.

    Raises
    ------
    InvalidInput
        On another suffix, an unknown paper, orientation or kind.
    """
    path = Path(out)
    if path.suffix.lower() != ".pdf":
        raise InvalidInput("an atlas is a PDF: the output must end in .pdf", field="out")
    page_size_mm(paper, orientation)
    lon_arr, lat_arr, kinds, _, _ = map_inputs(
        grid, lon, lat, kind, adcode=None, radius_m=radius_m, coverage=None
    )
    coverage = coverage_table(grid, lon_arr, lat_arr, radius_m=radius_m, kind=kinds)
    when = map_date or dt.datetime.now(dt.UTC).date()
    table = coverage.table
    total = len(table) + 1
    contents = [(str(name), page) for page, name in enumerate(table["name"], start=2)]
    path.parent.mkdir(parents=True, exist_ok=True)
    with (
        print_style(),
        PdfPages(path, metadata={"Title": title, "Creator": "zhigong-finder"}) as pdf,
    ):
        overview = _overview(
            grid,
            table,
            contents,
            paper=paper,
            orientation=orientation,
            title=title,
            subtitle=f"全部 {len(table)} 个区 · 服务半径 {radius_m:,.0f} 米 · {when.isoformat()}",
            footer=[
                *sources,
                *([counted_zh(counted, mapped="各区")] if counted is not None else []),
                f"制图日期 {when.isoformat()}；审图号：{approval_number or NO_APPROVAL}",
            ],
            page_label=f"第 1 页 / 共 {total} 页",
        )
        pdf.savefig(overview)
        for (_, page), adcode in zip(contents, table["adcode"], strict=True):
            sheet, _ = coverage_sheet(
                path,
                grid,
                lon_arr,
                lat_arr,
                kinds,
                adcode=str(adcode),
                radius_m=radius_m,
                paper=paper,
                orientation=orientation,
                map_date=when,
                approval_number=approval_number,
                sources=sources,
                coverage=coverage,
                counted=counted,
                context=context,
                page_label=f"第 {page} 页 / 共 {total} 页",
            )
            pdf.savefig(sheet)
    return PrintedAtlas(path=path, contents=contents, pages=total)


def _overview(
    grid: SampleGrid,
    table: pd.DataFrame,
    contents: list[tuple[str, int]],
    *,
    paper: Paper,
    orientation: Orientation,
    title: str,
    subtitle: str,
    footer: list[str],
    page_label: str,
) -> Figure:
    """The city page: choropleth of covered shares, ranking with page numbers, sources."""
    page_w, page_h = page_size_mm(paper, orientation)
    scale = max(page_w, page_h) / 297.0
    m = PAGE_MARGIN_MM
    fig = Figure(figsize=(page_w / MM_PER_INCH, page_h / MM_PER_INCH))
    FigureCanvasAgg(fig)
    draw_heading(fig, (page_w, page_h), title, subtitle, scale=scale)
    draw_footer(fig, (page_w, page_h), footer, scale=scale)
    draw_page_label(fig, (page_w, page_h), page_label, scale=scale)
    footer_h = FOOTER_LINE_MM * scale * len(footer)
    top = page_h - m - 22 * scale
    bottom = m + footer_h + 5 * scale
    landscape = orientation == "landscape"
    map_w = (page_w - 2 * m) * (0.55 if landscape else 1.0)
    map_h = (top - bottom) * (1.0 if landscape else 0.55)
    ax = fig.add_axes((m / page_w, (top - map_h) / page_h, map_w / page_w, map_h / page_h))
    districts = grid.districts
    centre = shapely.union_all(np.asarray(districts.geometry.values)).centroid
    projected = districts.to_crs(AEQD.format(lon=centre.x, lat=centre.y))
    shares = dict(zip(table["adcode"], table["covered_share"], strict=True))
    for adcode, name, geometry in zip(
        projected["adcode"], projected["name"], projected.geometry, strict=True
    ):
        share = shares.get(adcode)
        draw_polygons(
            ax,
            [geometry],
            facecolor=share_colour(None if share is None or pd.isna(share) else float(share)),
            edgecolor="#4d4d4d",
            lw=0.5,
        )
        point = geometry.representative_point()
        ax.text(point.x, point.y, str(name), fontsize=6 * scale, ha="center", va="center")
    minx, miny, maxx, maxy = projected.total_bounds
    ax.set_xlim(minx, maxx)
    ax.set_ylim(miny, maxy)
    ax.set_aspect("equal", adjustable="box")
    ax.axis("off")
    handles = [
        Patch(facecolor=colour, edgecolor="#4d4d4d", lw=0.4, label=share_class_label(i))
        for i, (_, colour) in enumerate(SHARE_CLASSES)
    ]
    ranked = table.sort_values("covered_share", ascending=False, na_position="last")
    page_of = dict(contents)
    rows = [
        [
            str(rank),
            str(row["name"]),
            "—" if pd.isna(row["covered_share"]) else f"{row['covered_share']:.1%}",
            f"{row['facilities']:,}",
            str(page_of[str(row["name"])]),
        ]
        for rank, (_, row) in enumerate(ranked.iterrows(), start=1)
    ]
    if landscape:
        box = (m + map_w + 8 * scale, bottom, page_w - 2 * m - map_w - 8 * scale, top - bottom)
    else:
        box = (m, bottom, page_w - 2 * m, top - bottom - map_h - 8 * scale)
    table_ax = fig.add_axes((box[0] / page_w, box[1] / page_h, box[2] / page_w, box[3] / page_h))
    cells = draw_sheet_table(
        table_ax,
        "各区覆盖率排名与目录",
        ["名次", "区", "覆盖率", "设施", "页码"],
        rows,
        scale=scale,
        title_pt=10,
        text_pt=7,
    )
    if cells is not None:
        cells.scale(1.0, 1.2)
    table_ax.legend(
        handles=handles,
        title="覆盖率（地图颜色）",
        loc="lower left",
        fontsize=7 * scale,
        title_fontsize=8 * scale,
        frameon=False,
        ncols=len(handles),
        borderaxespad=0.0,
    )
    return fig
