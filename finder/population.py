"""Population rasters (GeoTIFF of persons per cell, e.g. GHS-POP or WorldPop) as coverage layers.

:func:`population_from_geotiff` reads band 1 of a raster of **counts** (persons per cell, not
density), keeps the cells holding people and turns each into a weighted point at its centre in
WGS-84 (:class:`finder.coverage.PopulationLayer`), whatever the raster's own projection (GHS-POP
is Mollweide, ESRI:54009; WorldPop is EPSG:4326). With ``bounds`` only the window around the
districts is read, so a national or global file need not fit in memory.

Example
-------
>>> layer = population_from_geotiff("GHS_POP_E2020_GLOBE_R2023A_54009_1000.tif",
...                                 bounds=(73.5, 18.0, 135.1, 53.6))  # doctest: +SKIP
>>> grid = build_sample_grid(districts, population=layer)  # doctest: +SKIP
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import rasterio
import rasterio.windows
from pyproj import CRS, Transformer
from rasterio.errors import RasterioIOError
from rasterio.warp import transform_bounds

from finder.coverage import PopulationLayer
from geodata.errors import InvalidInput


def population_from_geotiff(
    path: str | Path,
    *,
    bounds: tuple[float, float, float, float] | None = None,
    name: str | None = None,
) -> PopulationLayer:
    """Read a raster of persons per cell as WGS-84 weighted points (the cell centres).

    Parameters
    ----------
    path
        GeoTIFF (any raster GDAL reads) with a coordinate system; band 1 holds persons per cell.
        Cells that are nodata, NaN, zero or negative hold nobody and are dropped.
    bounds
        ``(west, south, east, north)`` WGS-84 degrees: read only the cells of this box (plus
        the cells it cuts); default the whole raster.
    name
        Description for results' ``population_basis``; default ``"population raster <file>"``.

    Returns
    -------
    PopulationLayer

    Raises
    ------
    InvalidInput
        If the file cannot be read as a raster or has no coordinate system.
    """
    path = Path(path)
    try:
        dataset = rasterio.open(path)
    except RasterioIOError as error:
        raise InvalidInput(f"cannot read population raster {path.name}: {error}") from None
    with dataset:
        if dataset.crs is None:
            raise InvalidInput(f"population raster {path.name} has no coordinate system")
        crs = CRS.from_user_input(dataset.crs.to_wkt())
        window = rasterio.windows.Window(0, 0, dataset.width, dataset.height)
        if bounds is not None:
            box = transform_bounds("EPSG:4326", dataset.crs, *bounds, densify_pts=21)
            cut = rasterio.windows.from_bounds(*box, transform=dataset.transform)
            col0, row0 = math.floor(cut.col_off), math.floor(cut.row_off)
            col1 = math.ceil(cut.col_off + cut.width)
            row1 = math.ceil(cut.row_off + cut.height)
            col0, col1 = max(col0, 0), min(col1, dataset.width)
            row0, row1 = max(row0, 0), min(row1, dataset.height)
            window = rasterio.windows.Window(col0, row0, max(col1 - col0, 0), max(row1 - row0, 0))
        values = dataset.read(1, window=window, masked=True).astype(np.float64)
        transform = dataset.transform
    grid = values.filled(np.nan)
    keep = np.isfinite(grid) & (grid > 0)
    rows, cols = np.nonzero(keep)
    col, row = cols + window.col_off + 0.5, rows + window.row_off + 0.5
    x = transform.c + col * transform.a + row * transform.b
    y = transform.f + col * transform.d + row * transform.e
    if crs.equals(CRS.from_epsg(4326)):
        lon, lat = x, y
    else:
        to_wgs84 = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        lon, lat = to_wgs84.transform(x, y)
    return PopulationLayer.from_points(
        lon, lat, grid[keep], name=name or f"population raster {path.name}"
    )
