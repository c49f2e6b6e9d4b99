"""The registry as files for people: CSV and XLSX for spreadsheets, GeoJSON for GIS.

One writer for ``finder export`` and ``GET /export`` (the staff console's export): the same
columns (:data:`geodata.schema.COLUMNS`, WGS-84 ``lon`` / ``lat``), cells a spreadsheet would
run as formulas quoted (:mod:`geodata.cells`; the readers undo it, so an export imports again
as it is, ``version`` included).
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import geopandas as gpd
import pandas as pd

from geodata.cells import escape_frame, frame_to_csv
from geodata.errors import InvalidInput

#: Formats of :func:`export_bytes` -> (media type, file suffix).
EXPORT_FORMATS: dict[str, tuple[str, str]] = {
    "csv": ("text/csv; charset=utf-8", ".csv"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".xlsx"),
    "geojson": ("application/geo+json", ".geojson"),
}


def export_bytes(frame: pd.DataFrame, fmt: str) -> bytes:
    """A facility frame as a file of :data:`EXPORT_FORMATS`.

    CSV is UTF-8 with a byte-order mark (Excel on Chinese Windows shows the Chinese); XLSX has
    one sheet; GeoJSON has WGS-84 points and every column as a property.

    Raises
    ------
    InvalidInput
        For an unknown format.
    """
    if fmt == "csv":
        return str(frame_to_csv(frame)).encode("utf-8-sig")
    if fmt == "xlsx":
        buffer = io.BytesIO()
        escape_frame(frame).to_excel(buffer, index=False, sheet_name="facilities")
        return buffer.getvalue()
    if fmt == "geojson":
        gdf = gpd.GeoDataFrame(
            frame, geometry=gpd.points_from_xy(frame["lon"], frame["lat"]), crs="EPSG:4326"
        )
        gdf["star_rating"] = gdf["star_rating"].astype("float")
        with tempfile.TemporaryDirectory(prefix="finder-export-") as folder:
            path = Path(folder) / "facilities.geojson"
            gdf.to_file(path, driver="GeoJSON")
            return path.read_bytes()
    raise InvalidInput(
        f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}", field="format"
    )
