"""Geodesy for the facility index: WGS-84 Earth-centred coordinates, chord bounds, geodesics.

The index orders facilities by the straight-line (chord) distance between Earth-centred,
Earth-fixed (ECEF) points on the WGS-84 ellipsoid and reports the geodesic distance on that
ellipsoid. Two bounds tie the two together, for points on the ellipsoid surface (height 0):

* **lower**: the geodesic ``s`` is never shorter than the chord ``c`` (a straight segment is the
  shortest curve between two points), so ``c <= s``;
* **upper**: ``s <= 2 rho asin(c / (2 rho))`` with ``rho = b**2 / a`` (6,335,439 m), the least
  radius of curvature of any central section of the ellipsoid. The geodesic is no longer than the
  arc of the great ellipse through both points (the plane section through the centre), whose
  curvature is at most ``a / b**2``; by Schur's comparison theorem an arc whose curvature is at
  most ``1 / rho`` is no longer than the circular arc of radius ``rho`` over the same chord. The
  bound is used for chords up to ``rho``; beyond that the bound is ``pi a``, which exceeds every
  geodesic on the ellipsoid (the longest, between antipodal points on the equator, is half a
  meridian, 20,003.9 km).

At 10 km the two bounds differ by one part in ten million (1 mm), at 1,000 km by 0.1 %. A
candidate whose chord exceeds the upper bound of another candidate is therefore certainly farther
away on the ellipsoid, and the geodesic (pyproj ``Geod``, Karney's algorithm, accurate to
nanometres) is computed only for the few candidates the bounds cannot separate.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from geodata.geodesy import GEOD

#: WGS-84 semi-major axis, metres.
A_M = 6_378_137.0
#: WGS-84 flattening.
F = 1.0 / 298.257223563
#: WGS-84 semi-minor axis, metres.
B_M = A_M * (1.0 - F)
#: First eccentricity squared.
E2 = F * (2.0 - F)
#: Least radius of curvature of a central section of the ellipsoid, metres (``b**2 / a``).
RHO_M = B_M * B_M / A_M
#: An upper bound of every geodesic distance on the ellipsoid, metres (``pi a``).
MAX_GEODESIC_M = math.pi * A_M
#: The longest chord between two points of the ellipsoid surface, metres (equatorial diameter).
MAX_CHORD_M = 2.0 * A_M
#: Absolute slack added to bounds for floating-point round-off of chords and geodesics, metres.
SLACK_M = 1e-6

#: Degrees to radians, as ``math.radians`` and ``numpy.radians`` multiply.
_RADIANS_PER_DEGREE = math.pi / 180.0
_ONE_MINUS_E2 = 1.0 - E2

#: Up to this many end points, :func:`geodesic_from` uses pyproj's scalar path.
_SCALAR_PATH_MAX = 6


def ecef_from_lonlat(lon: ArrayLike, lat: ArrayLike) -> NDArray[np.float64]:
    """Earth-centred, Earth-fixed coordinates of points on the WGS-84 ellipsoid.

    Parameters
    ----------
    lon, lat : array_like
        WGS-84 longitude and latitude in degrees (height 0 on the ellipsoid).

    Returns
    -------
    numpy.ndarray
        Shape ``(n, 3)``: x, y, z in metres.
    """
    lon_rad = np.radians(np.asarray(lon, dtype=np.float64))
    lat_rad = np.radians(np.asarray(lat, dtype=np.float64))
    sin_lat = np.sin(lat_rad)
    cos_lat = np.cos(lat_rad)
    prime_vertical_m = A_M / np.sqrt(1.0 - E2 * sin_lat * sin_lat)
    out = np.empty((lon_rad.size, 3), dtype=np.float64)
    out[:, 0] = prime_vertical_m * cos_lat * np.cos(lon_rad)
    out[:, 1] = prime_vertical_m * cos_lat * np.sin(lon_rad)
    out[:, 2] = prime_vertical_m * (1.0 - E2) * sin_lat
    return out


def ecef_point(lon: float, lat: float) -> tuple[float, float, float]:
    """Earth-centred coordinates (metres) of one WGS-84 point (degrees), without numpy.

    The same operations in the same order as :func:`ecef_from_lonlat`, on Python floats.
    """
    lon_rad = lon * _RADIANS_PER_DEGREE
    lat_rad = lat * _RADIANS_PER_DEGREE
    sin_lat = math.sin(lat_rad)
    prime_vertical_m = A_M / math.sqrt(1.0 - E2 * sin_lat * sin_lat)
    across_m = prime_vertical_m * math.cos(lat_rad)
    return (
        across_m * math.cos(lon_rad),
        across_m * math.sin(lon_rad),
        prime_vertical_m * _ONE_MINUS_E2 * sin_lat,
    )


def geodesic_upper_bound_m(chord_m: float) -> float:
    """The longest geodesic (metres) two surface points ``chord_m`` metres apart can have."""
    if chord_m < RHO_M:
        return 2.0 * RHO_M * math.asin(chord_m / (2.0 * RHO_M)) * (1.0 + 1e-12) + SLACK_M
    return MAX_GEODESIC_M


def geodesic_upper_bounds_m(chord_m: NDArray[np.float64]) -> NDArray[np.float64]:
    """Vectorised :func:`geodesic_upper_bound_m`; infinite chords give infinite bounds."""
    chord = np.asarray(chord_m, dtype=np.float64)
    ratio = np.minimum(chord / (2.0 * RHO_M), 0.5)
    bound = 2.0 * RHO_M * np.arcsin(ratio) * (1.0 + 1e-12) + SLACK_M
    bound = np.where(chord < RHO_M, bound, MAX_GEODESIC_M)
    return np.where(np.isinf(chord), np.inf, bound)


def geodesic_inverse(
    lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Geodesic distance and forward azimuth on the WGS-84 ellipsoid.

    Parameters
    ----------
    lon1, lat1 : array_like
        Start points (the query), WGS-84 degrees.
    lon2, lat2 : array_like
        End points (the facilities), WGS-84 degrees.

    Returns
    -------
    distance_m : numpy.ndarray
        Geodesic distance in metres.
    bearing_deg : numpy.ndarray
        Forward azimuth at the start point, degrees clockwise from north in ``[0, 360)``.
    """
    lon1_a = np.asarray(lon1, dtype=np.float64)
    lat1_a = np.asarray(lat1, dtype=np.float64)
    lon2_a = np.asarray(lon2, dtype=np.float64)
    lat2_a = np.asarray(lat2, dtype=np.float64)
    shape = np.broadcast_shapes(lon1_a.shape, lat1_a.shape, lon2_a.shape, lat2_a.shape)
    az12, _az21, dist = GEOD.inv(
        np.broadcast_to(lon1_a, shape).ravel(),
        np.broadcast_to(lat1_a, shape).ravel(),
        np.broadcast_to(lon2_a, shape).ravel(),
        np.broadcast_to(lat2_a, shape).ravel(),
    )
    distance_m = np.asarray(dist, dtype=np.float64).reshape(shape)
    bearing_deg = np.mod(np.asarray(az12, dtype=np.float64), 360.0).reshape(shape)
    return distance_m, bearing_deg


def geodesic_from(
    lon: float, lat: float, lon2: NDArray[np.float64], lat2: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """:func:`geodesic_inverse` from one point (degrees) to many (1-D arrays, degrees).

    A handful of end points (the usual answer of a single query) go through pyproj's scalar
    path, which skips the array set-up; both paths call the same C routine, so the values are
    identical.
    """
    n = lon2.size
    if n <= _SCALAR_PATH_MAX:
        dist = np.empty(n, dtype=np.float64)
        bearing = np.empty(n, dtype=np.float64)
        for i, (x, y) in enumerate(zip(lon2.tolist(), lat2.tolist(), strict=True)):
            az12, _az21, dist[i] = GEOD.inv(lon, lat, x, y)
            bearing[i] = az12 % 360.0
        return dist, bearing
    az12_a, _az21_a, dist_a = GEOD.inv(np.full(n, lon), np.full(n, lat), lon2, lat2)
    return np.asarray(dist_a, dtype=np.float64), np.mod(np.asarray(az12_a, dtype=np.float64), 360.0)


def spatial_order(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> NDArray[np.intp]:
    """A permutation that puts nearby points next to each other (Z-order over lon/lat).

    A 256 x 256 Z-order grid over the points' extent, sorted with numpy's linear-time radix sort
    of 16-bit keys. It lays out the KD-tree's points and batch queries so that neighbours share
    cache lines: it changes speed only, never answers.
    """
    if lon.size == 0:
        return np.empty(0, dtype=np.intp)

    def spread(values: NDArray[np.float64]) -> NDArray[np.uint16]:
        low = float(values.min())
        span = float(values.max()) - low
        unit = (values - low) / span if span > 0 else np.zeros_like(values)
        v = (unit * 255.0).astype(np.uint16)
        v = (v | (v << np.uint16(4))) & np.uint16(0x0F0F)
        v = (v | (v << np.uint16(2))) & np.uint16(0x3333)
        return (v | (v << np.uint16(1))) & np.uint16(0x5555)

    key = spread(lon) | (spread(lat) << np.uint16(1))
    return np.argsort(key, kind="stable")
