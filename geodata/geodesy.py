"""The WGS-84 ellipsoid and the one check of longitudes and latitudes.

Every geodesic distance, azimuth and area in the project comes from :data:`GEOD` (pyproj
``Geod``, Karney's algorithm, accurate to nanometres), and every check that a position is WGS-84
degrees (finite, longitude in [-180, 180], latitude in [-90, 90], both ends included) from
:func:`invalid_degrees`, :func:`check_point` or :func:`check_points`.

Examples
--------
>>> round(GEOD.inv(121.0, 31.0, 121.0, 32.0)[2])
110872
>>> check_point(121.47, 31.23)
(121.47, 31.23)
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyproj
from numpy.typing import ArrayLike, NDArray

from geodata.errors import InvalidCoordinate

__all__ = [
    "GEOD",
    "LAT_RANGE",
    "LON_RANGE",
    "check_point",
    "check_points",
    "degrees_check_sql",
    "invalid_degrees",
    "range_text",
]

#: The WGS-84 ellipsoid for geodesic distances, azimuths and areas.
GEOD = pyproj.Geod(ellps="WGS84")
#: Longitudes, degrees (both ends valid).
LON_RANGE = (-180.0, 180.0)
#: Latitudes, degrees (both ends valid).
LAT_RANGE = (-90.0, 90.0)


def range_text(axis: Literal["lon", "lat"]) -> str:
    """The valid degrees of ``axis`` for messages: ``"[-180, 180]"`` or ``"[-90, 90]"``."""
    low, high = LON_RANGE if axis == "lon" else LAT_RANGE
    return f"[{low:g}, {high:g}]"


def degrees_check_sql(lon: str = "lon", lat: str = "lat") -> str:
    """An SQL condition that columns ``lon`` and ``lat`` hold valid degrees (a table's CHECK)."""
    return (
        f"{lon} BETWEEN {LON_RANGE[0]:g} AND {LON_RANGE[1]:g} "
        f"AND {lat} BETWEEN {LAT_RANGE[0]:g} AND {LAT_RANGE[1]:g}"
    )


def invalid_degrees(values: ArrayLike, axis: Literal["lon", "lat"]) -> NDArray[np.bool_]:
    """Where ``values`` are not WGS-84 degrees of ``axis``: not finite or outside its range.

    Parameters
    ----------
    values
        Degrees (a number or an array of numbers).
    axis
        ``"lon"`` (:data:`LON_RANGE`) or ``"lat"`` (:data:`LAT_RANGE`).

    Returns
    -------
    numpy.ndarray
        Boolean, the shape of ``values`` (0-d for a number).
    """
    low, high = LON_RANGE if axis == "lon" else LAT_RANGE
    array = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.asarray(~(np.isfinite(array) & (array >= low) & (array <= high)))


def check_point(lon: float, lat: float) -> tuple[float, float]:
    """``lon``/``lat`` (WGS-84 degrees) as floats.

    Raises
    ------
    InvalidCoordinate
        When either is not a number, not finite or out of its range (``field`` names which).
    """
    try:
        lon_f = float(lon)
        lat_f = float(lat)
    except (TypeError, ValueError) as exc:
        raise InvalidCoordinate("lon and lat must be numbers", field="lon") from exc
    # Plain comparisons, not numpy (about 6 µs for one number): every single nearest query
    # checks its point. NaN fails every comparison and infinities lie out of range.
    if not LON_RANGE[0] <= lon_f <= LON_RANGE[1]:
        raise InvalidCoordinate(f"lon must lie in {range_text('lon')}, not {lon!r}", field="lon")
    if not LAT_RANGE[0] <= lat_f <= LAT_RANGE[1]:
        raise InvalidCoordinate(f"lat must lie in {range_text('lat')}, not {lat!r}", field="lat")
    return lon_f, lat_f


def check_points(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """:func:`check_point` for arrays: 1-d float arrays of equal length.

    Raises
    ------
    InvalidCoordinate
        On lengths that differ or a value that is not WGS-84 degrees; the message names the
        first bad element.
    """
    try:
        lon_a = np.asarray(lon, dtype=np.float64).ravel()
        lat_a = np.asarray(lat, dtype=np.float64).ravel()
    except (TypeError, ValueError) as exc:
        raise InvalidCoordinate("lon and lat must be numeric arrays", field="lon") from exc
    if lon_a.shape != lat_a.shape:
        raise InvalidCoordinate(
            f"lon and lat differ in length ({lon_a.size} and {lat_a.size})", field="lat"
        )
    bad_lon = invalid_degrees(lon_a, "lon")
    if bad_lon.any():
        first = int(np.flatnonzero(bad_lon)[0])
        raise InvalidCoordinate(
            f"lon must lie in {range_text('lon')}; element {first} is {lon_a[first]!r}", field="lon"
        )
    bad_lat = invalid_degrees(lat_a, "lat")
    if bad_lat.any():
        first = int(np.flatnonzero(bad_lat)[0])
        raise InvalidCoordinate(
            f"lat must lie in {range_text('lat')}; element {first} is {lat_a[first]!r}", field="lat"
        )
    return lon_a, lat_a
