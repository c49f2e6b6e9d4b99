"""The import pipeline: file -> raw rows -> validated facilities -> store, with a full report.

Every input row is accounted for: it is accepted (inserted, updated or unchanged) or rejected with
its row number, the field and the reason. The rejects can be written as CSV for the union staff who
keep the list: each rejected row's own cells, then why, so they can fix the file in Excel and import
it again as it is. The store write is one transaction: a failure half way leaves the store as it
was.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import geopandas as gpd
import numpy as np
import pandas as pd

from geodata.boundaries import place_points, same_district
from geodata.cells import escape_cell
from geodata.errors import InvalidInput
from geodata.readers import DEFAULT_LIMITS, ReadLimits, read_table
from geodata.schema import Viewer
from geodata.store import FacilityStore, field_diff
from geodata.validate import (
    REPORT_COLUMNS,
    ROW,
    Issue,
    map_headers,
    new_facility_id,
    stable_id,
    validate_frame,
)

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]

#: The most accepted rows a dry run describes one by one (:attr:`ImportReport.rows`), and the
#: most rejected rows whose cells the JSON report repeats.
MAX_ROW_PREVIEW = 10_000


@dataclass
class ImportReport:
    """What became of every input row."""

    source_name: str
    total_rows: int
    accepted: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    issues: list[Issue] = field(default_factory=list)
    dry_run: bool = False
    #: The input's own cells of the rejected rows (its headers, in its order) and ``_row``.
    rejected_cells: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: ``{input header: facility field}`` of the columns understood (to mark rejected cells).
    headers: dict[str, str] = field(default_factory=dict)
    #: What a dry run would do with each accepted row (the first :data:`MAX_ROW_PREVIEW`):
    #: ``row``, ``id``, ``name``, ``status`` (``new`` / ``updated`` / ``unchanged``) and
    #: ``diff`` (``{field: [stored, imported]}`` of an update).
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        """Number of distinct rows rejected."""
        return len({i.row for i in self.issues if i.level == "rejected"})

    @property
    def warnings(self) -> int:
        """Number of warnings (on accepted rows or about the file)."""
        return sum(1 for i in self.issues if i.level == "warning")

    def to_dict(self, *, max_issues: int = 1000) -> dict[str, Any]:
        """A JSON-ready summary with the first ``max_issues`` issues."""
        return {
            "source": self.source_name,
            "total_rows": self.total_rows,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "warnings": self.warnings,
            "dry_run": self.dry_run,
            "issues": [
                {
                    "row": i.row,
                    "field": i.field,
                    "value": i.value,
                    "reason": i.reason,
                    "level": i.level,
                }
                for i in self.issues[:max_issues]
            ],
            "issues_truncated": len(self.issues) > max_issues,
            "headers": self.headers,
            "rows": self.rows,
            "rows_truncated": self.dry_run and len(self.rows) < self.accepted,
            "rejected_rows": [
                {"row": int(row), "cells": cells}
                for row, cells in self._rejected_row_cells()[:MAX_ROW_PREVIEW]
            ],
        }

    def _rejected_row_cells(self) -> list[tuple[int, dict[str, str]]]:
        """``(row, {header: text})`` of each rejected row the reader could split, by row."""
        own = [c for c in self.rejected_cells.columns if c != ROW]
        found = [
            (int(row), {h: "" if pd.isna(v) else str(v) for h, v in zip(own, values, strict=True)})
            for row, values in zip(
                self.rejected_cells.get(ROW, ()),
                self.rejected_cells[own].itertuples(index=False, name=None),
                strict=True,
            )
        ]
        return sorted(found, key=lambda item: item[0])

    def write_csv(self, out: BinaryIO) -> None:
        """Write the rejects report: CSV in UTF-8 with BOM, which Excel on Chinese Windows opens.

        One line per rejected row: the row's own cells under the input's own headers, in the
        input's order, then :data:`~geodata.validate.REPORT_COLUMNS`: the fields and the reasons
        (each joined with ``；``) and the input row number. Importing the fixed file as it is
        ignores those three columns. A row the reader could not split into cells (wrong number
        of cells) has empty cells. Cells a spreadsheet would run are quoted
        (:mod:`geodata.cells`; the readers undo it). Warnings are not in it: they are in
        :meth:`to_dict` and the CLI's output.
        """
        rejected: dict[int, list[Issue]] = {}
        for issue in self.issues:
            if issue.level == "rejected":
                rejected.setdefault(issue.row, []).append(issue)
        own = [c for c in self.rejected_cells.columns if c != ROW]
        cells = {row: list(found.values()) for row, found in self._rejected_row_cells()}
        text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="")
        writer = csv.writer(text)
        writer.writerow([escape_cell(c) for c in (*own, *REPORT_COLUMNS)])
        for row, found in sorted(rejected.items()):
            fields = "；".join(dict.fromkeys(i.field for i in found))
            reasons = "；".join(i.reason for i in found)
            line = [*cells.get(row, [""] * len(own)), fields, reasons, row]
            writer.writerow([escape_cell(c) for c in line])
        text.detach()


def apply_fixes(raw: pd.DataFrame, fixes: Mapping[int, Mapping[str, str]]) -> pd.DataFrame:
    """The raw frame with the cells a clerk corrected: ``{row number: {header: text}}``.

    Row numbers are those of the report (spreadsheet rows, header = 1) and headers the file's
    own; an empty text empties the cell. Raises :class:`~geodata.errors.InvalidInput` for a row
    or header the file does not have (a row that could not be split into cells has none).
    """
    out = raw.copy()
    rows = out[ROW].to_numpy()
    for row, cells in fixes.items():
        hits = np.flatnonzero(rows == int(row))
        if len(hits) == 0:
            raise InvalidInput(f"fixes: the file has no readable row {row}", field="fixes")
        for header, text in cells.items():
            if header.startswith("_") or header not in out.columns:
                raise InvalidInput(f"fixes: the file has no column {header!r}", field="fixes")
            value = str(text).strip()
            out.loc[out.index[hits[0]], header] = value or None
    return out


def _preview(store: FacilityStore, accepted: pd.DataFrame) -> list[dict[str, Any]]:
    """What writing ``accepted`` would do to each row (the first :data:`MAX_ROW_PREVIEW`),
    compared as :meth:`~geodata.store.FacilityStore.upsert_frame` compares."""
    head = accepted.head(MAX_ROW_PREVIEW)
    frame = head.drop(columns=[ROW, "version"])
    stored = store.frame_of(frame["id"].tolist()).set_index("id", drop=False)
    out = []
    for row, values in zip(head[ROW], frame.to_dict("records"), strict=True):
        record = {str(k): v for k, v in values.items()}
        diff: dict[str, list[Any]] = {}
        if record["id"] in stored.index:
            before = {str(k): v for k, v in stored.loc[record["id"]].to_dict().items()}
            diff = field_diff(before, record)
            status = "updated" if diff else "unchanged"
        else:
            status = "new"
        out.append(
            {"row": int(row), "id": record["id"], "name": record["name"], "status": status}
            | {"diff": diff}
        )
    return out


def _fill_districts(frame: pd.DataFrame, districts: gpd.GeoDataFrame, issues: list[Issue]) -> None:
    """Set adcode (and empty district / city / province names) by point-in-polygon; warn about
    points in no district and about a list's district text that names another district."""
    if frame.empty:
        return
    places = place_points(frame["lon"].to_numpy(float), frame["lat"].to_numpy(float), districts)
    found = places["adcode"].to_numpy(object)
    given = frame["adcode"].to_numpy(object)
    hit = np.array([a is not None for a in found], dtype=bool)
    differs = hit & np.array([g is not None and g != f for g, f in zip(given, found, strict=True)])
    rows = frame[ROW].to_numpy()
    for i in np.flatnonzero(differs):
        issues.append(
            Issue(
                int(rows[i]),
                "adcode",
                str(given[i]),
                f"the point lies in district {found[i]}, not {given[i]}; {found[i]} is used",
                "warning",
            )
        )
    for i in np.flatnonzero(~hit):
        where = f"{frame['lon'].iloc[i]}, {frame['lat'].iloc[i]}"
        issues.append(Issue(int(rows[i]), "lon", where, str(places["unplaced"].iloc[i]), "warning"))
    text = frame["district"].to_numpy(object)
    polygon = places["district"].to_numpy(object)
    wrong = np.array(
        [
            h and t is not None and not pd.isna(t) and p is not None and not same_district(t, p)
            for h, t, p in zip(hit, text, polygon, strict=True)
        ],
        dtype=bool,
    )
    for i in np.flatnonzero(wrong):
        issues.append(
            Issue(
                int(rows[i]),
                "district",
                str(text[i]),
                f"the list says district {text[i]} but the point lies in {polygon[i]} "
                f"({found[i]}); {polygon[i]} is used",
                "warning",
            )
        )
    frame["district"] = np.where(wrong, polygon, text)
    frame["adcode"] = np.where(hit, found, given)
    for col in ("district", "city", "province"):
        names = places[col].set_axis(frame.index)
        empty = frame[col].isna()
        frame.loc[empty, col] = names[empty]
        frame[col] = frame[col].where(frame[col].notna(), None)


def _admitted(
    store: FacilityStore,
    accepted: pd.DataFrame,
    rules: Viewer | None,
    assigned: set[str],
    issues: list[Issue],
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The rows this import may write, and ``{id: version}`` that must still hold at the write.

    Refuses (appending to ``issues``) a row naming a facility the viewer ``rules`` may not see
    (``None``: no limit), exactly as one naming an unknown id, a row the viewer could not see as
    written (another organisation's), and a row whose ``version`` is not the stored one.
    ``assigned`` holds the server-assigned ids of new rows.
    """
    versioned = accepted["version"].notna().to_numpy(bool)
    if accepted.empty or not (rules is not None or versioned.any()):
        return accepted, {}
    ids = accepted["id"]
    named = ~ids.isin(assigned).to_numpy(bool)
    stored = store.frame_of(ids[named | versioned].tolist()).set_index("id")
    exists = ids.isin(stored.index).to_numpy(bool)
    now = ids.map(stored["version"]).fillna(0).astype("int64").to_numpy()
    refused = np.zeros(len(accepted), dtype=bool)
    outside = np.zeros(len(accepted), dtype=bool)
    if rules is not None:
        access = ids.map(stored["access"]).to_numpy(object)
        org = ids.map(stored["organization"]).to_numpy(object)
        editable = np.fromiter(
            (e and rules.may_see(a, o) for e, a, o in zip(exists, access, org, strict=True)),
            dtype=bool,
            count=len(ids),
        )
        refused = named & ~editable
        # As single edits: a row may not hand a facility to access the viewer cannot see.
        outside = ~refused & ~np.fromiter(
            (
                rules.may_see(a, o)
                for a, o in zip(accepted["access"], accepted["organization"], strict=True)
            ),
            dtype=bool,
            count=len(ids),
        )
    given = accepted["version"].fillna(0).astype("int64").to_numpy()
    stale = versioned & exists & ~refused & ~outside & (given != now)
    for i in np.flatnonzero(refused | outside | stale):
        row, fid = int(accepted[ROW].iloc[i]), str(ids.iloc[i])
        if refused[i]:
            reason = (
                f"id {fid!r} is not a facility you may edit; leave id empty to add a new facility"
            )
            issues.append(Issue(row, "id", fid, reason))
        elif outside[i]:
            row_access, row_org = accepted["access"].iloc[i], accepted["organization"].iloc[i]
            reason = f"access {row_access!r} of organization {row_org!r} is not one you may write"
            issues.append(Issue(row, "access", str(row_access), reason))
        else:
            reason = f"changed since version {given[i]} was read"
            issues.append(Issue(row, "version", str(given[i]), reason))
    keep = ~(refused | outside | stale)
    guarded = keep if rules is not None else keep & versioned & exists
    if_versions = dict(zip(ids[guarded], now[guarded].tolist(), strict=True))
    return accepted[keep].reset_index(drop=True), if_versions


def import_file(
    store: FacilityStore,
    path: str | Path,
    *,
    crs: str | None = None,
    columns: Mapping[str, str] | None = None,
    kind: str | None = None,
    access: str | None = None,
    actor: str = "import",
    districts: gpd.GeoDataFrame | None = None,
    source_name: str | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    viewer: Viewer | None = None,
    limits: ReadLimits = DEFAULT_LIMITS,
    fixes: Mapping[int, Mapping[str, str]] | None = None,
) -> ImportReport:
    """Import a CSV / XLSX / GeoJSON / GeoPackage / Shapefile list of facilities into ``store``.

    Parameters
    ----------
    store
        Where accepted rows go (insert new ids, update existing ones), in one transaction.
    path
        The file. Raises :class:`~geodata.errors.UnreadableFile` if it cannot be read at all.
    crs
        System of the coordinates in the file (``wgs84``, ``cgcs2000``, ``gcj02``, ``bd09``);
        ``None``: what the coordinate headers name (``lng_gcj02``), else ``wgs84``. A
        contradiction raises :class:`~geodata.errors.InvalidInput`.
    columns
        ``{field: header}`` for headers not understood by name
        (:func:`geodata.validate.parse_column_map`).
    kind, access
        Defaults for rows without a kind / access class.
    districts
        Boundaries for point-in-polygon district assignment (``geodata.boundaries``).
    dry_run
        Validate and report only; write nothing.
    progress
        Called with a line of text at each stage (the CLI prints them).
    viewer
        Whose rights the import has; ``None`` for the operator, who may edit every facility and
        choose the ids of new ones. A viewer who cannot see every facility may only update, by
        id, a facility it may see; any other id is refused with the same reason whether or not
        it exists, and rows without an id are new facilities with server-assigned ids
        (:func:`~geodata.validate.new_facility_id`).
    limits
        What the file may expand to; past them :class:`~geodata.errors.FileTooLarge` (naming
        ``source_name``) is raised before the store is touched.
    fixes
        Cells corrected since the file was saved, ``{row number: {header: text}}``
        (:func:`apply_fixes`), as the console sends them with the file.

    A row with a ``version`` (the facility's ETag, as ``finder export`` writes it) that differs
    from the stored one is rejected ("changed since version N was read"); the checks hold
    until the write (:func:`~geodata.store.check_versions`).
    """
    say = progress or (lambda _msg: None)
    name = source_name or Path(path).name
    t0 = time.perf_counter()
    raw = read_table(path, name=name, limits=limits)
    say(f"read {len(raw):,} rows from {name} in {time.perf_counter() - t0:.1f} s")
    if fixes:
        raw = apply_fixes(raw, fixes)
    return import_frame(
        store,
        raw,
        crs=crs,
        columns=columns,
        kind=kind,
        access=access,
        actor=actor,
        districts=districts,
        source_name=name,
        dry_run=dry_run,
        progress=say,
        viewer=viewer,
    )


def import_frame(
    store: FacilityStore,
    raw: pd.DataFrame,
    *,
    crs: str | None = None,
    columns: Mapping[str, str] | None = None,
    kind: str | None = None,
    access: str | None = None,
    actor: str = "import",
    districts: gpd.GeoDataFrame | None = None,
    source_name: str = "",
    dry_run: bool = False,
    progress: Progress | None = None,
    viewer: Viewer | None = None,
) -> ImportReport:
    """Validate a raw frame (see :mod:`geodata.readers`) and write it; see :func:`import_file`."""
    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    rules = viewer if viewer is not None and not viewer.see_all else None
    assigned: set[str] = set()

    def server_id(kind: str, *_row: object) -> str:
        assigned.add(fid := new_facility_id(kind))
        return fid

    accepted, issues = validate_frame(
        raw,
        crs=crs,
        columns=columns,
        default_kind=kind,
        default_access=access,
        source=source_name,
        new_id=stable_id if rules is None else server_id,
    )
    malformed = raw.attrs.get("malformed", [])
    issues += [Issue(row, "row", None, reason) for row, reason in malformed]
    if districts is not None:
        _fill_districts(accepted, districts, issues)
    accepted, if_versions = _admitted(store, accepted, rules, assigned, issues)
    issues.sort(key=lambda it: (it.row, it.level != "rejected"))
    rejected = raw[ROW].isin([i.row for i in issues if i.level == "rejected"])
    own = [c for c in raw.columns if not c.startswith("_") and c not in REPORT_COLUMNS]
    report = ImportReport(
        source_name=source_name,
        total_rows=len(raw) + len(malformed),
        accepted=len(accepted),
        issues=issues,
        dry_run=dry_run,
        rejected_cells=raw.loc[rejected, [*own, ROW]],
        headers=map_headers(raw.columns, columns)[0],
    )
    say(
        f"validated: {report.accepted:,} accepted, {report.rejected:,} rejected "
        f"in {time.perf_counter() - t0:.1f} s"
    )
    if dry_run:
        report.rows = _preview(store, accepted)
        return report
    if accepted.empty:
        return report
    t1 = time.perf_counter()
    say(f"writing {len(accepted):,} facilities in one transaction ...")
    counts = store.upsert_frame(
        accepted.drop(columns=[ROW, "version"]),
        actor=actor,
        source_name=source_name,
        if_versions=if_versions,
    )
    report.inserted = counts["inserted"]
    report.updated = counts["updated"]
    report.unchanged = counts["unchanged"]
    say(
        f"written: {report.inserted:,} new, {report.updated:,} updated, "
        f"{report.unchanged:,} unchanged in {time.perf_counter() - t1:.1f} s"
    )
    logger.info("import %s by %s: %s", source_name, actor, report.to_dict(max_issues=0))
    return report
