"""Readers for the lists unions keep: CSV, XLSX, GeoJSON, GeoPackage and Shapefile.

Every reader returns a *raw frame*: all values as text (or ``None``), the original column headers,
and a ``_row`` column with the row number a person sees in the source (for CSV and XLSX the
spreadsheet row, the header being row 1; for vector files the 1-based feature number). Files with a
geometry get ``_geom_lon`` / ``_geom_lat`` columns holding the point coordinates as text, in the
file's coordinates (``_geom_crs`` says which system the file declared, if any).

Chinese CSV comes in UTF-8, UTF-8 with a byte-order mark, or GBK/GB18030 (what Excel writes on a
Chinese Windows): :func:`read_table` detects which. Text cells of CSV and XLSX lose the quote that
:func:`geodata.cells.escape_cell` puts before formulas, so exports read back as written.

Files come from strangers (the import API), so what one may expand to is bounded
(:class:`ReadLimits`): an archive (XLSX, zipped Shapefile) is checked member by member with
:mod:`zipfile` before anything parses it, declared sizes and compression ratios first, then the
actual sizes, streamed; workbooks are streamed (openpyxl read-only, the sheet's declared
dimensions ignored) and rows and cells counted as they come. A file over a limit raises
:class:`~geodata.errors.FileTooLarge` naming the file and the limit.
"""

from __future__ import annotations

import csv
import io
import logging
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely

from geodata.cells import ESCAPE, ESCAPED_PATTERN, unescape_cell
from geodata.errors import FileTooLarge, UnreadableFile

logger = logging.getLogger(__name__)

ROW = "_row"
GEOM_LON = "_geom_lon"
GEOM_LAT = "_geom_lat"
GEOM_CRS = "_geom_crs"

_CSV_ENCODINGS = ("utf-8-sig", "gb18030")
VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".zip")
TABLE_SUFFIXES = (".csv", ".txt", ".xlsx", ".xlsm")
_MiB = 1 << 20
_RATIO_FLOOR = _MiB  # members smaller than this may compress as well as they like


@dataclass(frozen=True)
class ReadLimits:
    """How far a file may expand while it is read (the same for every reader).

    Attributes
    ----------
    max_expanded_mb
        Total uncompressed size of the members of an archive (XLSX, zipped Shapefile), MiB.
    max_ratio
        Largest compression ratio (uncompressed / compressed size) of an archive member of
        1 MiB or more; real workbooks stay under 20, zip bombs reach 1,000.
    max_rows
        Most rows (features) of a file, the header not counted.
    max_cells
        Most cells: rows times columns (for XLSX the cells openpyxl yields, which fills each row
        up to its last cell).
    """

    max_expanded_mb: int = 512
    max_ratio: int = 100
    max_rows: int = 2_000_000
    max_cells: int = 50_000_000


DEFAULT_LIMITS = ReadLimits()


def _check_shape(name: str, rows: int, cells: int, limits: ReadLimits) -> None:
    """Raise :class:`FileTooLarge` when ``rows`` or ``cells`` pass the limits."""
    if rows > limits.max_rows:
        raise FileTooLarge(
            f"{name}: more than {limits.max_rows:,} rows (limit max_rows)", limit="max_rows"
        )
    if cells > limits.max_cells:
        raise FileTooLarge(
            f"{name}: more than {limits.max_cells:,} cells (limit max_cells)", limit="max_cells"
        )


def _check_archive(path: Path, name: str, limits: ReadLimits, kind: str) -> None:
    """Refuse a zip archive (an XLSX ``kind`` of one, say) that would expand past ``limits``,
    before anything parses it.

    The declared sizes and ratios come from the central directory (instant); then every member
    is streamed through :mod:`zipfile`, which never yields more than the declared size and
    checks the CRC, so a member holding more than it declares fails here, not in GDAL.
    """
    budget = limits.max_expanded_mb * _MiB
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            total = 0
            for member in members:
                total += member.file_size
                if total > budget:
                    raise FileTooLarge(
                        f"{name}: {member.filename} expands the file to {total / _MiB:,.0f} MiB;"
                        f" the limit is {limits.max_expanded_mb:,} MiB (limit max_expanded_mb)",
                        limit="max_expanded_mb",
                    )
                ratio = member.file_size / max(member.compress_size, 1)
                if member.file_size >= _RATIO_FLOOR and ratio > limits.max_ratio:
                    raise FileTooLarge(
                        f"{name}: {member.filename} is compressed {ratio:,.0f} to 1; the limit"
                        f" is {limits.max_ratio:,} to 1 (limit max_ratio)",
                        limit="max_ratio",
                    )
            for member in members:
                try:
                    with archive.open(member) as stream:
                        while stream.read(_MiB):
                            pass
                except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                    raise UnreadableFile(
                        f"{name}: {member.filename} is damaged or larger than it declares ({exc})"
                    ) from exc
    except (zipfile.BadZipFile, NotImplementedError, OSError) as exc:
        raise UnreadableFile(f"{name}: not a readable {kind}: {exc}") from exc


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode the bytes of a text file, trying UTF-8 (with or without BOM), then GB18030.

    GB18030 is a superset of GBK and GB2312, so it reads what Excel writes on Chinese Windows.
    Returns ``(text, encoding)``; raises :class:`UnreadableFile` if no encoding fits.
    """
    for encoding in _CSV_ENCODINGS:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise UnreadableFile("the file is neither UTF-8 nor GBK/GB18030 text")


def _all_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Strip every cell; empty cells become ``None``; headers stripped too."""
    frame = frame.astype(object)
    frame.columns = [str(c).strip().lstrip("\ufeff") for c in frame.columns]
    for col in frame.columns:
        values = frame[col]
        text = values.where(values.isna(), values.astype(str).str.strip())
        frame[col] = text.where(text.notna() & (text != ""), None)
    return frame


def read_csv_bytes(
    data: bytes, *, name: str = "the CSV file", limits: ReadLimits = DEFAULT_LIMITS
) -> pd.DataFrame:
    """A raw frame from the bytes of a CSV file (delimiter sniffed among , ; tab).

    A row with the wrong number of cells does not stop the file: it comes back in
    ``frame.attrs["malformed"]`` as ``(row, reason)`` pairs, and the other rows keep their
    spreadsheet row numbers. Parsing is pyarrow's multi-threaded CSV reader. Raises
    :class:`FileTooLarge` past ``limits.max_rows`` / ``max_cells`` (``name`` is the file's name
    in messages).
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyarrow import csv as pacsv

    text, encoding = decode_text(data)
    first = text.split("\n", 1)[0]
    sep = max((",", ";", "\t"), key=first.count)
    malformed: list[tuple[int, str]] = []

    def skip(row: pacsv.InvalidRow) -> str:
        line = row.number if row.number is not None else -1
        malformed.append((line, f"expected {row.expected_columns} cells, got {row.actual_columns}"))
        return "skip"

    raw = text.encode("utf-8")

    def parse(use_threads: bool) -> pa.Table:
        malformed.clear()
        return pacsv.read_csv(
            io.BytesIO(raw),
            read_options=pacsv.ReadOptions(use_threads=use_threads),
            parse_options=pacsv.ParseOptions(
                delimiter=sep,
                ignore_empty_lines=False,
                invalid_row_handler=skip,
                newlines_in_values=True,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in header},
                strings_can_be_null=True,
                null_values=[""],
                quoted_strings_can_be_null=True,
            ),
        )

    try:
        header = next(csv.reader(io.StringIO(text), delimiter=sep), [])
        table = parse(use_threads=True)
        if malformed:  # row numbers of bad rows are only known to the single-threaded reader
            table = parse(use_threads=False)
    except (pa.ArrowInvalid, csv.Error) as exc:
        raise UnreadableFile(f"not a readable CSV ({encoding}): {exc}") from exc
    _check_shape(name, table.num_rows, table.num_rows * table.num_columns, limits)

    def cleaned(column: pa.ChunkedArray) -> pa.ChunkedArray:
        trimmed = pc.utf8_trim_whitespace(column)
        if pc.any(pc.starts_with(trimmed, ESCAPE)).as_py():  # the regex only where it may bite
            unescaped = pc.replace_substring_regex(
                trimmed, ESCAPED_PATTERN, r"\1", max_replacements=1
            )
            trimmed = pc.utf8_trim_whitespace(unescaped)
        return pc.if_else(pc.equal(trimmed, ""), None, trimmed)

    frame = pd.DataFrame(
        {
            _header(col): cleaned(table.column(i)).to_numpy(zero_copy_only=False)
            for i, col in enumerate(table.column_names)
        },
        dtype=object,
    )
    rows = np.arange(2, len(frame) + 2)
    for line, _ in sorted(malformed):
        rows[rows >= line] += 1
    frame[ROW] = rows
    frame.attrs["malformed"] = sorted(malformed)
    blank = frame.drop(columns=[ROW]).isna().all(axis=1)
    return frame[~blank].reset_index(drop=True)


def _header(value: object) -> str:
    return unescape_cell(str(value).strip().lstrip("\ufeff"))


def _cell_text(value: Any) -> str | None:
    """A workbook value as the text a person sees (integral numbers without ``.0``)."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return unescape_cell(str(value).strip()).strip() or None


def _unique_headers(texts: list[str | None], width: int) -> list[str]:
    """Header texts, ``Unnamed: i`` for empty ones, repeats numbered ``x.1``, ``x.2`` ..."""
    out: list[str] = []
    for i in range(width):
        text = texts[i] if i < len(texts) else None
        base = text.lstrip("\ufeff") if text else f"Unnamed: {i}"
        candidate, n = base, 0
        while candidate in out:
            n += 1
            candidate = f"{base}.{n}"
        out.append(candidate)
    return out


def read_xlsx(
    path: str | Path, *, name: str | None = None, limits: ReadLimits = DEFAULT_LIMITS
) -> pd.DataFrame:
    """A raw frame from the first sheet of an XLSX workbook, streamed.

    The archive is checked first (see :class:`ReadLimits`); openpyxl then reads in read-only
    mode with the sheet's declared dimensions dropped (a forged ``A1:XFD1048576`` would make it
    fill every row to 16,384 cells), and rows and cells are counted as they stream. Row numbers
    are the spreadsheet's (header in row 1); blank rows are dropped.
    """
    from openpyxl import load_workbook

    path = Path(path)
    label = name or path.name
    _check_archive(path, label, limits, "XLSX workbook")
    try:
        book = load_workbook(path, read_only=True, data_only=True, keep_links=False)
    except Exception as exc:  # openpyxl raises many unrelated types for a bad workbook
        raise UnreadableFile(f"not a readable XLSX workbook: {exc}") from exc
    rows: list[list[str | None]] = []
    cells = 0
    try:
        if not book.worksheets:
            raise UnreadableFile(f"{label}: the workbook has no sheet")
        sheet = book.worksheets[0]
        sheet.reset_dimensions()
        for values in sheet.iter_rows(values_only=True):
            cells += len(values)
            _check_shape(label, len(rows), cells, limits)
            rows.append([_cell_text(v) for v in values])
    except UnreadableFile:
        raise
    except Exception as exc:
        raise UnreadableFile(f"not a readable XLSX workbook: {exc}") from exc
    finally:
        book.close()
    if not rows:
        return pd.DataFrame({ROW: np.array([], dtype=np.int64)})
    width = max(
        (max((i + 1 for i, v in enumerate(r) if v is not None), default=0) for r in rows),
        default=0,
    )
    columns = _unique_headers(rows[0], width)
    body = [r[:width] + [None] * (width - len(r)) for r in rows[1:]]
    frame = pd.DataFrame(body, columns=columns, dtype=object)
    frame[ROW] = np.arange(2, len(body) + 2)
    blank = frame.drop(columns=[ROW]).isna().all(axis=1)
    return frame[~blank].reset_index(drop=True)


def read_vector(
    path: str | Path, *, name: str | None = None, limits: ReadLimits = DEFAULT_LIMITS
) -> pd.DataFrame:
    """A raw frame from a GeoJSON, GeoPackage or Shapefile (``.zip``) of points (first layer).

    A ``.zip`` is checked as an archive first; the feature count is checked before reading
    where the file declares it, and GDAL reads at most ``limits.max_rows + 1`` features.
    """
    import pyogrio

    path = Path(path)
    label = name or path.name
    if path.suffix.lower() == ".zip":
        _check_archive(path, label, limits, "zip archive")
    try:
        info = pyogrio.read_info(path)
        width = len(info["fields"]) + 2
        _check_shape(
            label, max(int(info["features"]), 0), max(int(info["features"]), 0) * width, limits
        )
        gdf = pyogrio.read_dataframe(path, max_features=limits.max_rows + 1)
    except FileTooLarge:
        raise
    except Exception as exc:  # pyogrio.errors.DataSourceError and GDAL errors
        raise UnreadableFile(f"not a readable vector file: {exc}") from exc
    _check_shape(label, len(gdf), len(gdf) * width, limits)
    crs = gdf.crs.to_string() if gdf.crs is not None else None
    geoms = gdf.geometry
    frame = _all_text(pd.DataFrame(gdf.drop(columns=gdf.geometry.name)))
    is_point = (geoms.notna() & (geoms.geom_type == "Point") & ~geoms.is_empty).to_numpy()
    values = geoms.to_numpy()
    lon = np.full(len(gdf), np.nan)
    lat = np.full(len(gdf), np.nan)
    lon[is_point] = shapely.get_x(values[is_point])
    lat[is_point] = shapely.get_y(values[is_point])
    frame[GEOM_LON] = [None if np.isnan(v) else repr(float(v)) for v in lon]
    frame[GEOM_LAT] = [None if np.isnan(v) else repr(float(v)) for v in lat]
    other = (geoms.notna() & ~geoms.is_empty).to_numpy() & ~is_point
    frame.loc[other, GEOM_LON] = [f"not-a-point:{t}" for t in geoms[other].geom_type]
    frame[GEOM_CRS] = crs
    frame[ROW] = np.arange(1, len(frame) + 1)
    return frame


def read_table(
    path: str | Path, *, name: str | None = None, limits: ReadLimits = DEFAULT_LIMITS
) -> pd.DataFrame:
    """Read any supported file into a raw frame, choosing the reader by the file's suffix.

    Parameters
    ----------
    path
        The file.
    name
        The file's name in messages (an upload's own name rather than its temporary path);
        default the path's name.
    limits
        What the file may expand to (:class:`ReadLimits`).

    Raises
    ------
    UnreadableFile
        For a missing file, an unknown suffix or unreadable content.
    FileTooLarge
        For a file past ``limits``.
    """
    path = Path(path)
    if not path.is_file():
        raise UnreadableFile(f"no such file: {path}")
    label = name or path.name
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return read_csv_bytes(path.read_bytes(), name=label, limits=limits)
    if suffix in (".xlsx", ".xlsm"):
        return read_xlsx(path, name=label, limits=limits)
    if suffix in VECTOR_SUFFIXES:
        return read_vector(path, name=label, limits=limits)
    raise UnreadableFile(
        f"unknown file type {suffix!r}: use CSV, XLSX, GeoJSON, GeoPackage or Shapefile"
    )
