"""District boundaries as the web map draws them: simplified GeoJSON in the display system."""

from __future__ import annotations

import functools
import json
import re
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely

from geodata.crs import from_wgs84
from maps.webmap.labels import DisplayCrs

if TYPE_CHECKING:
    import geopandas as gpd

#: Tolerance of the boundary simplification, degrees (about 20 m).
BOUNDARY_SIMPLIFY_DEG = 0.0002


def _boundaries_geojson(boundaries: gpd.GeoDataFrame, display_crs: DisplayCrs) -> dict[str, Any]:
    """District polygons, simplified (~20 m), in the display system; property ``adcode`` only."""
    geometries = shapely.simplify(
        np.asarray(boundaries.geometry.to_numpy()), BOUNDARY_SIMPLIFY_DEG, preserve_topology=True
    )
    if display_crs == "gcj02":

        def shift(coords: np.ndarray) -> np.ndarray:
            lon, lat = from_wgs84(coords[:, 0], coords[:, 1], "gcj02")
            return np.column_stack([np.asarray(lon), np.asarray(lat)])

        geometries = shapely.transform(geometries, shift)
    geometries = shapely.set_precision(geometries, 1e-6)
    features = [
        {
            "type": "Feature",
            "properties": {"adcode": re.sub(r"\D", "", str(adcode))},
            "geometry": json.loads(shapely.to_geojson(geometry)),
        }
        for adcode, geometry in zip(boundaries["adcode"], geometries, strict=True)
    ]
    return {"type": "FeatureCollection", "features": features}


@functools.cache
def _bundled_boundaries_geojson(
    display_crs: DisplayCrs,
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """:func:`_boundaries_geojson` of the bundled districts and their names (read once)."""
    from geodata.boundaries import load_districts

    districts = load_districts()
    names = tuple(str(name) for name in districts["name"])
    return _boundaries_geojson(districts, display_crs), names
