"""The printed usage table of a district: visits per facility over a period, PDF.

One row per facility of the district (busiest first): days with a counting device, visits
(door ``entry`` events), visits per day and the busiest hour; a total row, then the visits of
every hour of the day. The figures are those of :func:`finder.usage.usage_report`, built from
the table ``GET /usage`` answers as CSV, so the total equals the sum of that CSV's ``visits``.
A facility without a counting device is printed as such (无计数设备), never as zero visits.

Same print stack as the coverage sheets (:mod:`maps.printmap`): A4 or A3
(:mod:`maps.paper`), Noto Sans CJK SC embedded as TrueType (CID) subsets, so the PDF's text
can be searched and extracted.

Example
-------
>>> print_usage_table("usage-310115.pdf", report, adcode="310115")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from finder.usage import UsageReport
from geodata.errors import InvalidInput
from geodata.kinds import KIND_BY_NAME
from geodata.schema import ACCESS_CLASSES
from maps.paper import Orientation, Paper
from maps.printmap import (
    FOOTER_LINE_MM,
    MM_PER_INCH,
    PAGE_MARGIN_MM,
    TABLE_ROW_MM,
    draw_footer,
    draw_heading,
    draw_page_label,
    page_size_mm,
    print_style,
)
from maps.webmap import ACCESS_LABELS

HEADER = ("序号", "设施", "类型", "计数天数", "到访合计", "日均到访", "高峰时段")
COLUMN_WIDTHS = (0.06, 0.31, 0.18, 0.10, 0.12, 0.11, 0.12)
NO_DEVICE = "无计数设备"
NOTES = (
    "到访：门禁或登记终端的进入计数（每次进入计一次，不识别个人）；日期与时段为北京时间。",
    f"{NO_DEVICE}的设施没有计数，其使用情况不详（并非零到访），不计入合计。",
    "日均到访 = 到访合计 ÷ 计数天数（该设施有计数设备的天数）。",
)


@dataclass(frozen=True)
class PrintedUsage:
    """What was printed.

    Attributes
    ----------
    path
        The written PDF.
    pages
        Number of pages.
    rows
        The facility rows as printed (columns of :data:`HEADER`), in page order.
    total_visits
        The total row's visits.
    """

    path: Path
    pages: int
    rows: list[list[str]]
    total_visits: int


def _hour_range(hour: object) -> str:
    if pd.isna(hour):  # type: ignore[call-overload]
        return "—"
    start = int(hour)  # type: ignore[call-overload]
    return f"{start:02d}–{start + 1:02d}时"


def scope_zh(report: UsageReport) -> str:
    """Which facilities the table counts, in words: the access classes among them (public
    always named), whatever their status (as ``GET /usage``)."""
    present = {"public"} | set(report.facilities["access"].dropna().astype(str))
    labels = "、".join(ACCESS_LABELS["zh"][a] for a in ACCESS_CLASSES if a in present)
    only = "仅计" if present == {"public"} else "计入"
    return f"统计口径：{only}{labels}的设施，不论开放状态。"


def fit_text(text: str, width_em: float) -> str:
    """``text`` cut to about ``width_em`` ems (CJK characters one em, others 0.55), with "…"."""
    used = 0.0
    for i, char in enumerate(text):
        used += 1.0 if ord(char) > 0x2E7F else 0.55
        if used > width_em:
            return text[: max(0, i - 1)] + "…"
    return text


def usage_rows(report: UsageReport, *, name_em: float = 40.0) -> list[list[str]]:
    """The facility rows of the table, busiest first, then the unmeasured ones by name;
    names cut to ``name_em`` ems."""
    frame = report.facilities.assign(_measured=report.measured)
    frame = frame.sort_values(
        ["_measured", "visits", "name"], ascending=[False, False, True], na_position="last"
    )
    rows = []
    for i, record in enumerate(frame.to_dict(orient="records"), start=1):
        kind = KIND_BY_NAME[record["kind"]].label_zh if record["kind"] in KIND_BY_NAME else "—"
        if not record["_measured"]:
            rows.append(
                [str(i), fit_text(str(record["name"]), name_em), kind, NO_DEVICE, "—", "—", "—"]
            )
            continue
        rows.append(
            [
                str(i),
                fit_text(str(record["name"]), name_em),
                kind,
                f"{record['measured_days']}",
                f"{int(record['visits']):,}",
                f"{record['visits_per_day']:,.1f}",
                _hour_range(record["peak_hour"]),
            ]
        )
    return rows


def total_row(report: UsageReport) -> list[str]:
    """The total row: measured facilities, visits, visits per day of the period, peak hour."""
    measured = int(report.measured.sum())
    total = report.total_visits
    peak = int(report.hours.to_numpy().argmax()) if total else None
    return [
        "",
        f"合计（{measured} 个有计数设备）",
        "",
        f"{report.days}",
        f"{total:,}",
        f"{total / report.days:,.1f}",
        _hour_range(peak),
    ]


def _table(ax: Axes, rows: list[list[str]], row_h: float, fontsize: float) -> None:
    """Rows under the header at the top of ``ax``, each ``row_h`` of the axes' height."""
    height = min(1.0, row_h * (len(rows) + 1))
    table = ax.table(
        cellText=rows,
        colLabels=list(HEADER),
        colWidths=list(COLUMN_WIDTHS),
        cellLoc="center",
        bbox=Bbox.from_bounds(0.0, 1.0 - height, 1.0, height),
    )
    table.auto_set_font_size(False)
    table.set_fontsize(fontsize)
    for (row_i, col_i), cell in table.get_celld().items():
        cell.set_linewidth(0.3)
        if row_i == 0:
            cell.set_facecolor("#e9ecef")
        elif rows[row_i - 1][0] == "":
            cell.set_facecolor("#fff3bf")
        if col_i == 1 and row_i > 0:
            cell.set_text_props(ha="left")
            cell.PAD = 0.03


def _hours_table(ax: Axes, report: UsageReport, fontsize: float) -> None:
    """Visits per hour of the day, two bands of twelve hours."""
    cells = []
    for start in (0, 12):
        cells.append([f"{h}时" for h in range(start, start + 12)])
        cells.append([f"{int(report.hours[h]):,}" for h in range(start, start + 12)])
    table = ax.table(cellText=cells, cellLoc="center", bbox=Bbox.unit())
    table.auto_set_font_size(False)
    table.set_fontsize(fontsize)
    for (row_i, _), cell in table.get_celld().items():
        cell.set_linewidth(0.3)
        if row_i % 2 == 0:
            cell.set_facecolor("#e9ecef")


def print_usage_table(
    out: str | Path,
    report: UsageReport,
    *,
    adcode: str,
    district: str | None = None,
    paper: Paper = "A4",
    orientation: Orientation = "portrait",
    title: str = "职工服务设施使用情况表",
    printed_on: dt.date | None = None,
) -> PrintedUsage:
    """Print the usage table of one district to a PDF (as many pages as the rows need).

    Parameters
    ----------
    out
        The PDF to write (``.pdf``).
    report
        The district's facilities and their use (:func:`finder.usage.usage_report`).
    adcode
        The district's code.
    district
        Its name (default: the facilities' ``district``, else the code).
    paper, orientation
        ``"A4"``/``"A3"``, ``"portrait"``/``"landscape"``.
    title
        Page title.
    printed_on
        Date printed in the footer (default today, UTC).

    Raises
    ------
    InvalidInput
        On another suffix, an unknown paper or orientation.
    """
    path = Path(out)
    if path.suffix.lower() != ".pdf":
        raise InvalidInput("a usage table is a PDF: the output must end in .pdf", field="out")
    page_w, page_h = page_size_mm(paper, orientation)
    scale = max(page_w, page_h) / 297.0
    names = report.facilities["district"].dropna().astype(str)
    name = district or (names.mode().iloc[0] if len(names) else adcode)
    when = printed_on or dt.datetime.now(dt.UTC).date()
    subtitle = (
        f"{name}（{adcode}）· {report.first.isoformat()} 至 {report.last.isoformat()}"
        f"（{report.days} 天）· {len(report.facilities)} 个设施"
    )
    footer = [*NOTES, scope_zh(report), f"数据：本系统门禁事件；制表日期 {when}"]

    m = PAGE_MARGIN_MM
    header_h = 22.0 * scale
    footer_h = FOOTER_LINE_MM * len(footer) * scale
    row_mm = TABLE_ROW_MM * scale
    hours_h = 4 * row_mm + 8 * scale
    body_h = page_h - 2 * m - header_h - footer_h - 5 * scale
    per_page = max(1, int(body_h / row_mm) - 1)
    font_pt = 7.5 * scale
    name_mm = COLUMN_WIDTHS[1] * (page_w - 2 * m)
    rows = usage_rows(report, name_em=name_mm / (font_pt * MM_PER_INCH / 72) - 1.5)
    table_rows = [*rows, total_row(report)]
    # the last page also holds the hours: it takes fewer rows
    last_fits = max(1, int((body_h - hours_h) / row_mm) - 1)
    chunks: list[list[list[str]]] = []
    remaining = table_rows
    while len(remaining) > last_fits:
        take = min(per_page, len(remaining) - 1) if len(remaining) <= per_page else per_page
        chunks.append(remaining[:take])
        remaining = remaining[take:]
    chunks.append(remaining)
    pages = len(chunks)

    path.parent.mkdir(parents=True, exist_ok=True)
    with (
        print_style(),
        PdfPages(path, metadata={"Title": f"{title} {name}", "Creator": "zhigong-finder"}) as pdf,
    ):
        for page, chunk in enumerate(chunks, start=1):
            fig = Figure(figsize=(page_w / MM_PER_INCH, page_h / MM_PER_INCH))
            top = page_h - m - header_h
            draw_heading(fig, (page_w, page_h), title, subtitle, scale=scale)
            body_bottom = m + footer_h + 5 * scale
            ax = fig.add_axes(
                (
                    m / page_w,
                    body_bottom / page_h,
                    (page_w - 2 * m) / page_w,
                    (top - body_bottom) / page_h,
                )
            )
            ax.axis("off")
            _table(ax, chunk, row_mm / (top - body_bottom), font_pt)
            if page == pages:
                used = row_mm * (len(chunk) + 1)
                hours_top = top - used - 6 * scale
                label_y = hours_top - 1 * scale
                fig.text(
                    m / page_w,
                    label_y / page_h,
                    "各时段到访（全部设施合计）",
                    fontsize=9 * scale,
                    va="top",
                    gid="hours-title",
                )
                hours_ax = fig.add_axes(
                    (
                        m / page_w,
                        (label_y - 5 * scale - 4 * row_mm) / page_h,
                        (page_w - 2 * m) / page_w,
                        4 * row_mm / page_h,
                    )
                )
                hours_ax.axis("off")
                _hours_table(hours_ax, report, 7 * scale)
            draw_footer(fig, (page_w, page_h), footer, scale=scale)
            draw_page_label(fig, (page_w, page_h), f"第 {page} 页 / 共 {pages} 页", scale=scale)
            pdf.savefig(fig)
    return PrintedUsage(path, pages, rows, report.total_visits)
