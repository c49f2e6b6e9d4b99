"""Readers for the lists unions keep: CSV, XLSX, GeoJSON, GeoPackage and Shapefile.

Every reader returns a *raw frame*: all values as text (or ``None``), the original column headers,
and a ``_row`` column with the row number a person sees in the source (for CSV and XLSX the
spreadsheet row, the header being row 1; for vector files the 1-based feature number). Files with a
geometry get ``_geom_lon`` / ``_geom_lat`` columns holding the point coordinates as text, in the
file's coordinates (``_geom_crs`` says which system the file declared, if any).

Chinese CSV comes in UTF-8, UTF-8 with a byte-order mark, or GBK/GB18030 (what Excel writes on a
Chinese Windows): :func:`read_table` detects which.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from geodata.errors import UnreadableFile

logger = logging.getLogger(__name__)

ROW = "_row"
GEOM_LON = "_geom_lon"
GEOM_LAT = "_geom_lat"
GEOM_CRS = "_geom_crs"

_CSV_ENCODINGS = ("utf-8-sig", "gb18030")
VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".zip")
TABLE_SUFFIXES = (".csv", ".txt", ".xlsx", ".xlsm")


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


def read_csv_bytes(data: bytes) -> pd.DataFrame:
    """A raw frame from the bytes of a CSV file (delimiter sniffed among , ; tab).

    A row with the wrong number of cells does not stop the file: it comes back in
    ``frame.attrs["malformed"]`` as ``(row, reason)`` pairs, and the other rows keep their
    spreadsheet row numbers. Parsing is pyarrow's multi-threaded CSV reader.
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
    columns = {
        name: pc.if_else(pc.equal(trimmed, ""), None, trimmed)
        for name, trimmed in (
            (name, pc.utf8_trim_whitespace(table.column(i)))
            for i, name in enumerate(table.column_names)
        )
    }
    frame = pd.DataFrame(
        {
            str(name).strip().lstrip("\ufeff"): col.to_numpy(zero_copy_only=False)
            for name, col in columns.items()
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


def read_xlsx_bytes(data: bytes) -> pd.DataFrame:
    """A raw frame from the first sheet of an XLSX workbook."""
    try:
        frame = pd.read_excel(io.BytesIO(data), dtype=str, engine="openpyxl")
    except Exception as exc:  # openpyxl raises many unrelated types for a bad workbook
        raise UnreadableFile(f"not a readable XLSX workbook: {exc}") from exc
    frame = _all_text(frame)
    frame[ROW] = np.arange(2, len(frame) + 2)
    blank = frame.drop(columns=[ROW]).isna().all(axis=1)
    return frame[~blank].reset_index(drop=True)


def read_vector(path: str | Path) -> pd.DataFrame:
    """A raw frame from a GeoJSON, GeoPackage or Shapefile of points (first layer)."""
    import pyogrio

    try:
        gdf = pyogrio.read_dataframe(path)
    except Exception as exc:  # pyogrio.errors.DataSourceError and GDAL errors
        raise UnreadableFile(f"not a readable vector file: {exc}") from exc
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


def read_table(path: str | Path) -> pd.DataFrame:
    """Read any supported file into a raw frame, choosing the reader by the file's suffix.

    Raises :class:`UnreadableFile` for a missing file, an unknown suffix or unreadable content.
    """
    path = Path(path)
    if not path.is_file():
        raise UnreadableFile(f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return read_csv_bytes(path.read_bytes())
    if suffix in (".xlsx", ".xlsm"):
        return read_xlsx_bytes(path.read_bytes())
    if suffix in VECTOR_SUFFIXES:
        return read_vector(path)
    raise UnreadableFile(
        f"unknown file type {suffix!r}: use CSV, XLSX, GeoJSON, GeoPackage or Shapefile"
    )
