"""Coverage as geometry: the reached parts and the gaps of one district as GeoJSON."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import shapely
from numpy.typing import ArrayLike
from pyproj import Transformer
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from finder.coverage.facilities import FacilityPoints, NearbyFacilities, check_radius
from finder.coverage.grid import DistrictCells, FloatArray, SampleGrid


def reach_and_gaps_local(
    cells: DistrictCells,
    lon: ArrayLike,
    lat: ArrayLike,
    *,
    radius_m: float = 1000.0,
    quad_segs: int = 32,
) -> tuple[BaseGeometry, BaseGeometry]:
    """Reached part and gaps of one district as exact vector geometry in local metres.

    Circles are polygons of ``4 * quad_segs`` sides (inscribed; area 0.04 % short at 32).

    Returns
    -------
    tuple of shapely geometry
        ``(reach, gaps)`` in the district's local projection (``cells.to_lonlat`` maps back).
    """
    radius = check_radius(radius_m)
    nearby = NearbyFacilities(cells, FacilityPoints.from_lonlat(lon, lat), radius * 1.01)
    xy = nearby.local_xy
    circles = shapely.buffer(shapely.points(xy), radius, quad_segs=quad_segs)
    union = shapely.union_all(circles) if len(circles) else shapely.Polygon()
    reach = shapely.intersection(cells.polygon_local, union)
    gaps = shapely.difference(cells.polygon_local, union)
    return reach, gaps


def _polygon_features(geometry: BaseGeometry, cells: DistrictCells) -> list[dict[str, Any]]:
    def to_lonlat(coords: FloatArray) -> FloatArray:
        x, y = cells.to_lonlat.transform(coords[:, 0], coords[:, 1])
        return np.round(np.column_stack([x, y]), 7)

    parts = shapely.get_parts(geometry)
    features = []
    for part in parts:
        if not isinstance(part, shapely.Polygon) or part.is_empty:
            continue
        features.append(
            {
                "type": "Feature",
                "properties": {"adcode": cells.adcode, "area_m2": round(float(part.area), 1)},
                "geometry": mapping(shapely.transform(part, to_lonlat)),
            }
        )
    features.sort(key=lambda f: -f["properties"]["area_m2"])
    return features


def coverage_layers(
    grid: SampleGrid,
    lon: ArrayLike,
    lat: ArrayLike,
    *,
    radius_m: float = 1000.0,
    adcodes: Iterable[str] | None = None,
    min_gap_m2: float = 0.0,
    simplify_m: float = 0.0,
) -> dict[str, dict[str, Any]]:
    """GeoJSON layers of the reached parts and the gaps of districts.

    Parameters
    ----------
    grid
        Sample grid (gives the districts, their bases and local projections).
    lon, lat
        Facility locations, WGS-84 degrees.
    radius_m
        Reach, geodesic metres.
    adcodes
        Districts to draw (default all).
    min_gap_m2
        Leave out gap polygons smaller than this, m2.
    simplify_m
        Simplify gap outlines to this tolerance, metres (topology kept), with coordinates
        rounded to 1e-6 degrees (print precision); 0 keeps every vertex (1e-7 degrees).

    Returns
    -------
    dict
        ``{"reach": FeatureCollection, "gaps": FeatureCollection}`` in WGS-84; each feature has
        ``adcode`` and ``area_m2`` (local metric area) properties. Gaps, largest first within
        each district, also have ``district`` (name), ``gap_rank`` (1 = largest of its district),
        ``farthest_m`` (greatest distance from a sample point of the gap to the nearest
        facility, metres; ``None`` without facilities) and ``lon``/``lat`` of that point, which
        lies in the gap.
    """
    radius = check_radius(radius_m)
    facilities = FacilityPoints.from_lonlat(lon, lat)
    selected = list(grid.cells) if adcodes is None else [grid.district(a) for a in adcodes]
    reach_features: list[dict[str, Any]] = []
    gap_features: list[dict[str, Any]] = []
    for cells in selected:
        reach, gaps = reach_and_gaps_local(cells, lon, lat, radius_m=radius)
        reach_features.extend(_polygon_features(reach, cells))
        gap_features.extend(
            _gap_features(
                cells,
                gaps,
                facilities,
                radius,
                min_area_m2=min_gap_m2,
                simplify_m=simplify_m,
                digits=6 if simplify_m else 7,
            )
        )
    meta = {"radius_m": radius, "area_basis": grid.area_basis, "simplify_m": simplify_m}
    return {
        "reach": {"type": "FeatureCollection", "metadata": meta, "features": reach_features},
        "gaps": {"type": "FeatureCollection", "metadata": meta, "features": gap_features},
    }


def _to_lonlat(geometry: BaseGeometry, to_lonlat: Transformer, *, digits: int) -> BaseGeometry:
    """Local metres to WGS-84 degrees rounded to ``digits`` decimals."""

    def transform(coords: FloatArray) -> FloatArray:
        x, y = to_lonlat.transform(coords[:, 0], coords[:, 1])
        return np.round(np.column_stack([x, y]), digits)

    return shapely.transform(geometry, transform)


def _gap_features(
    cells: DistrictCells,
    gaps: BaseGeometry,
    facilities: FacilityPoints,
    radius_m: float,
    *,
    min_area_m2: float,
    simplify_m: float,
    digits: int,
) -> list[dict[str, Any]]:
    """GeoJSON features of one district's gap polygons (local metres), largest first, each with
    its rank, area and the point of it farthest from any facility (at the sample cells)."""
    parts = [
        p
        for p in shapely.get_parts(gaps)
        if isinstance(p, shapely.Polygon) and not p.is_empty and p.area >= min_area_m2
    ]
    parts.sort(key=lambda p: -p.area)
    nearby = NearbyFacilities(cells, facilities, max(3.0 * radius_m, 3000.0))
    features: list[dict[str, Any]] = []
    for rank, part in enumerate(parts, start=1):
        shape = part.simplify(simplify_m, preserve_topology=True) if simplify_m else part
        inside = shapely.contains_xy(shape, cells.x_m, cells.y_m)
        if inside.any():
            px, py = cells.x_m[inside], cells.y_m[inside]
        else:
            point = shape.representative_point()
            px, py = np.array([point.x]), np.array([point.y])
        farthest: int | None = None
        j = 0
        if facilities.size:
            distance = nearby.nearest_two(px, py)[:, 0]
            j = int(np.argmax(distance))
            farthest = round(float(distance[j]))
        plon, plat = cells.to_lonlat.transform(px[j], py[j])
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "adcode": cells.adcode,
                    "district": cells.name,
                    "gap_rank": rank,
                    "area_m2": round(float(part.area), 1),
                    "farthest_m": farthest,
                    "lon": round(float(plon), 7),
                    "lat": round(float(plat), 7),
                },
                "geometry": mapping(_to_lonlat(shape, cells.to_lonlat, digits=digits)),
            }
        )
    return features
