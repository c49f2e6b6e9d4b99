"""Coordinate systems used for facility locations in China, and exact conversions between them.

========== ============================================================================
name       meaning
========== ============================================================================
wgs84      GPS, OpenStreetMap, GeoJSON (EPSG:4326). What the store keeps.
cgcs2000   official Chinese data (EPSG:4490); equal to WGS-84 to within centimetres, so
           treated as identical.
gcj02      the obfuscated "Mars" system of Amap (高德), Tencent and every map licensed in
           mainland China; 300-700 m from WGS-84.
bd09       Baidu's system: a further shift of GCJ-02.
========== ============================================================================

All functions take and return longitude first, then latitude, in degrees. They accept Python floats
(returning floats) or numpy arrays (returning arrays, vectorised). NaN inputs give NaN outputs.

Outside mainland China no system is shifted: Hong Kong, Macau and Taiwan use WGS-84 on Amap and
Baidu as everywhere else. The usual rectangular ``out_of_china`` box would shift them; here mainland
China is that box less polygons around Hong Kong, Macau and Taiwan (main island and Penghu; the small
Kinmen and Matsu islands next to the Fujian coast are not carved out). The inverse is consistent: a
GCJ-02 / BD-09 point outside mainland China comes back unchanged.

GCJ-02 -> WGS-84 is the exact inverse, found by fixed-point iteration of the forward formula until
the forward image of the result matches the input to 1e-10 degree (about 0.01 mm); the usual
one-step inverse is off by metres.
"""

from __future__ import annotations

from typing import Literal, overload

import numpy as np
import shapely
from numpy.typing import NDArray

from geodata.errors import UnknownCRS

CrsName = Literal["wgs84", "cgcs2000", "gcj02", "bd09"]
CRS_NAMES: tuple[CrsName, ...] = ("wgs84", "cgcs2000", "gcj02", "bd09")

_ALIASES: dict[str, CrsName] = {
    "wgs84": "wgs84", "wgs-84": "wgs84", "wgs 84": "wgs84", "epsg:4326": "wgs84",
    "4326": "wgs84", "crs84": "wgs84", "gps": "wgs84", "osm": "wgs84",
    "http://www.opengis.net/def/crs/ogc/1.3/crs84": "wgs84",
    "http://www.opengis.net/def/crs/epsg/0/4326": "wgs84",
    "cgcs2000": "cgcs2000", "epsg:4490": "cgcs2000", "4490": "cgcs2000",
    "http://www.opengis.net/def/crs/epsg/0/4490": "cgcs2000", "tianditu": "cgcs2000",
    "gcj02": "gcj02", "gcj-02": "gcj02", "gcj": "gcj02", "amap": "gcj02", "gaode": "gcj02",
    "tencent": "gcj02", "mars": "gcj02",
    "bd09": "bd09", "bd-09": "bd09", "bd09ll": "bd09", "baidu": "bd09",
}

# Krasovsky ellipsoid parameters of the GCJ-02 formula, and Baidu's constant.
_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = np.pi * 3000.0 / 180.0

_BOX = (72.004, 0.8293, 137.8347, 55.8271)
_NOT_MAINLAND = shapely.MultiPolygon([
    # Hong Kong: south of the Shenzhen River and Deep Bay; Shekou and Yantian stay mainland.
    shapely.Polygon([(113.815, 22.135), (114.45, 22.135), (114.45, 22.43), (114.30, 22.56),
                     (114.23, 22.555), (114.16, 22.54), (114.11, 22.535), (114.07, 22.515),
                     (114.03, 22.508), (113.95, 22.505), (113.89, 22.44), (113.815, 22.40)]),
    # Macau: the peninsula, Taipa and Coloane; Zhuhai and Hengqin stay mainland.
    shapely.Polygon([(113.527, 22.18), (113.527, 22.216), (113.556, 22.218), (113.566, 22.195),
                     (113.61, 22.17), (113.61, 22.105), (113.551, 22.105), (113.551, 22.17)]),
    # Taiwan main island and Penghu.
    shapely.box(120.0, 21.85, 122.1, 25.35),
    shapely.box(119.25, 23.1, 119.75, 23.85),
])
shapely.prepare(_NOT_MAINLAND)

FloatArray = NDArray[np.float64]


def parse_crs(name: str) -> CrsName:
    """The canonical name of a coordinate system given by any common alias.

    >>> parse_crs("EPSG:4326"), parse_crs("GCJ-02"), parse_crs("baidu")
    ('wgs84', 'gcj02', 'bd09')

    Raises :class:`UnknownCRS` listing the accepted names.
    """
    key = str(name).strip().lower()
    if key in _ALIASES:
        return _ALIASES[key]
    raise UnknownCRS(
        f"unknown coordinate system {name!r}; use one of {', '.join(CRS_NAMES)} "
        "(aliases: EPSG:4326, CRS84, EPSG:4490, GCJ-02, amap, BD-09, baidu)",
        field="crs",
    )


def in_mainland(lon: FloatArray, lat: FloatArray) -> NDArray[np.bool_]:
    """Whether points lie where GCJ-02 / BD-09 are shifted: mainland China (see module doc)."""
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    box = (lon >= _BOX[0]) & (lon <= _BOX[2]) & (lat >= _BOX[1]) & (lat <= _BOX[3])
    out = box.copy()
    if box.any():
        out[box] = ~shapely.contains_xy(_NOT_MAINLAND, lon[box], lat[box])
    return out


def _transform_lat(x: FloatArray, y: FloatArray) -> FloatArray:
    r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    r += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    r += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    r += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    return r


def _transform_lon(x: FloatArray, y: FloatArray) -> FloatArray:
    r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    r += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    r += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    r += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    return r


def _gcj_offset(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The GCJ-02 shift (dlon, dlat) in degrees at WGS-84 points, ignoring the mainland test."""
    dlat = _transform_lat(lon - 105.0, lat - 35.0)
    dlon = _transform_lon(lon - 105.0, lat - 35.0)
    rad = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(rad) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * np.cos(rad) * np.pi)
    return dlon, dlat


def _wgs_to_gcj(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    shift = in_mainland(lon, lat)
    dlon, dlat = _gcj_offset(lon, lat)
    return np.where(shift, lon + dlon, lon), np.where(shift, lat + dlat, lat)


def _gcj_to_wgs(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Exact inverse of :func:`_wgs_to_gcj`.

    Iterates inside the box, then keeps the solution only where it lies in mainland China: near
    the Hong Kong border a mainland point can shift into Hong Kong's polygon, and deciding by the
    solution (not by the shifted input) keeps every round trip exact.
    """
    box = (lon >= _BOX[0]) & (lon <= _BOX[2]) & (lat >= _BOX[1]) & (lat <= _BOX[3])
    x, y = lon.copy(), lat.copy()
    if box.any():
        tx, ty = lon[box], lat[box]
        gx, gy = tx.copy(), ty.copy()
        for _ in range(50):
            dlon, dlat = _gcj_offset(gx, gy)
            ex, ey = gx + dlon - tx, gy + dlat - ty
            gx, gy = gx - ex, gy - ey
            if np.nanmax(np.abs(np.concatenate([ex, ey])), initial=0.0) < 1e-10:
                break
        keep = in_mainland(gx, gy)
        x[box] = np.where(keep, gx, tx)
        y[box] = np.where(keep, gy, ty)
    return x, y


def _gcj_to_bd(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    z = np.sqrt(lon * lon + lat * lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def _bd_to_gcj(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Exact inverse of :func:`_gcj_to_bd`: Baidu's one-step formula, then refined."""
    x, y = lon - 0.0065, lat - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    gx, gy = z * np.cos(theta), z * np.sin(theta)
    for _ in range(10):
        bx, by = _gcj_to_bd(gx, gy)
        gx, gy = gx - (bx - lon), gy - (by - lat)
    return gx, gy


def _wgs_to_bd(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    shift = in_mainland(lon, lat)
    gx, gy = _wgs_to_gcj(lon, lat)
    bx, by = _gcj_to_bd(gx, gy)
    return np.where(shift, bx, lon), np.where(shift, by, lat)


def _bd_to_wgs(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    gx, gy = _bd_to_gcj(lon, lat)
    wx, wy = _gcj_to_wgs(gx, gy)
    keep = in_mainland(wx, wy) & ((wx != gx) | (wy != gy))
    return np.where(keep, wx, lon), np.where(keep, wy, lat)


@overload
def to_wgs84(lon: float, lat: float, crs: str) -> tuple[float, float]: ...
@overload
def to_wgs84(lon: FloatArray, lat: FloatArray, crs: str) -> tuple[FloatArray, FloatArray]: ...
def to_wgs84(lon, lat, crs):  # type: ignore[no-untyped-def]
    """Convert lon/lat degrees given in ``crs`` to WGS-84 lon/lat degrees.

    Raises :class:`UnknownCRS` for an unknown system name.
    """
    return transform(lon, lat, crs, "wgs84")


@overload
def from_wgs84(lon: float, lat: float, crs: str) -> tuple[float, float]: ...
@overload
def from_wgs84(lon: FloatArray, lat: FloatArray, crs: str) -> tuple[FloatArray, FloatArray]: ...
def from_wgs84(lon, lat, crs):  # type: ignore[no-untyped-def]
    """Convert WGS-84 lon/lat degrees to ``crs`` lon/lat degrees."""
    return transform(lon, lat, "wgs84", crs)


@overload
def transform(lon: float, lat: float, from_crs: str, to_crs: str) -> tuple[float, float]: ...
@overload
def transform(
    lon: FloatArray, lat: FloatArray, from_crs: str, to_crs: str
) -> tuple[FloatArray, FloatArray]: ...
def transform(lon, lat, from_crs, to_crs):  # type: ignore[no-untyped-def]
    """Convert lon/lat degrees from one system to another (names as in :func:`parse_crs`)."""
    src, dst = parse_crs(from_crs), parse_crs(to_crs)
    scalar = np.ndim(lon) == 0 and np.ndim(lat) == 0
    x = np.atleast_1d(np.asarray(lon, dtype=np.float64)).copy()
    y = np.atleast_1d(np.asarray(lat, dtype=np.float64)).copy()
    if x.shape != y.shape:
        raise UnknownCRS("lon and lat must have the same shape", field="lat")
    src_key = "wgs84" if src == "cgcs2000" else src
    dst_key = "wgs84" if dst == "cgcs2000" else dst
    if src_key != dst_key:
        if src_key == "gcj02":
            x, y = _gcj_to_wgs(x, y)
        elif src_key == "bd09":
            x, y = _bd_to_wgs(x, y)
        if dst_key == "gcj02":
            x, y = _wgs_to_gcj(x, y)
        elif dst_key == "bd09":
            x, y = _wgs_to_bd(x, y)
    if scalar:
        return float(x[0]), float(y[0])
    return x.reshape(np.shape(lon)), y.reshape(np.shape(lat))
