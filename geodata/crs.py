"""Coordinate systems of facility locations in China, and exact conversions between them.

Every function takes and returns **longitude first, then latitude, in decimal degrees**. Systems
are named by short strings (:data:`CRS_NAMES`; :func:`parse_crs` also accepts common aliases):

============ =====================================================================================
name         meaning
============ =====================================================================================
``wgs84``    WGS-84 (EPSG:4326, OGC CRS84): GPS, OpenStreetMap, GeoJSON. What the store keeps.
``cgcs2000`` China Geodetic Coordinate System 2000 (EPSG:4490), used by official Chinese data and
             Tianditu. It differs from WGS-84 by centimetres and is treated as identical.
``gcj02``    GCJ-02, the obfuscated system of Amap (高德), Tencent and other maps licensed in
             mainland China: WGS-84 shifted by up to about 700 m, by the standard
             Krasovsky-parameter formula (a = 6378245.0 m, e^2 = 0.00669342162296594323).
``bd09``     BD-09, Baidu's system: GCJ-02 with a further shift (x_pi = pi * 3000 / 180); 0.7 to
             1.5 km from WGS-84.
============ =====================================================================================

Conversions accept Python floats (and return floats) or anything array-like (and return float64
arrays of the broadcast shape); the maths is vectorised with numpy.

Where the shift applies
-----------------------
The offsets apply in mainland China only: everywhere else, including Hong Kong, Macau and Taiwan,
all four systems coincide with WGS-84 and points pass through unchanged. The rectangular
``out_of_china`` box of most libraries would shift Hong Kong, Macau and Taiwan (and Korea, Japan
west of 137.8 E, Vietnam...), so this module uses polygons shipped in
``geodata/data/mainland_china_region.geojson``, derived from Natural Earth 1:10m admin-0 countries
(public domain): an *include* outline (China's land, widened 0.05 degree over land borders and
1 degree out to sea so coastal islands are covered) and *exclude* polygons for Hong Kong, Macao and
Taiwan (with Penghu, Kinmen and Matsu). See :func:`in_mainland_china`. The land borders are resolved
to about 5 km, leaning to the mainland side (a town just across a land border, such as Sinuiju or
Mong Cai, counts as mainland); the borders with Hong Kong (Shenzhen River) and Macau to a few
hundred metres. The same polygons are used for points in every system: the shift itself (under
1 km) is far below the resolution that matters away from those borders.

A forward conversion (WGS-84 to GCJ-02 or BD-09) decides "mainland or not" on its input point. The
inverse decides by its solution: where the preimage lies in mainland China it is the answer,
elsewhere the point was never shifted and comes back unchanged. So every mainland point round-trips
exactly, also in Shenzhen or Zhuhai next to the border where the GCJ-02 image lies across it; the
price is that a Hong Kong or Macau point within about 700 m of the border, given as GCJ-02, is
read as the mainland point that shifts onto it (the registry serves mainland unions).

The region the registry serves (:func:`in_service_region`) is the union of the same polygons:
mainland China with Hong Kong, Macau and Taiwan. Every write and every query point is checked
against it (see :func:`geodata.validate.outside_service_region`).

Exact inverse
-------------
GCJ-02 -> WGS-84 (and BD-09 -> GCJ-02) is not the usual one-step approximation, which is off by up
to 4 m: it iterates ``w <- w - (forward(w) - g)`` per point until the forward image of the
result matches the input to 1e-9 degree (0.1 mm; the returned point is then within about 1e-11
degree), with at most 30 iterations (four suffice: each gains a factor of about 200).

Missing values
--------------
A point with a NaN longitude or latitude converts to (NaN, NaN) without an exception, so arrays
with gaps convert in one call. Infinite values are outside mainland China and pass through.

Examples
--------
>>> lon, lat = from_wgs84(121.4737, 31.2304, "gcj02")  # People's Square, Shanghai
>>> round(lon, 6), round(lat, 6)
(121.478223, 31.228458)
>>> [round(v, 9) for v in to_wgs84(lon, lat, "GCJ-02")]
[121.4737, 31.2304]
>>> from_wgs84(114.17, 22.28, "bd09")  # Hong Kong: unchanged
(114.17, 22.28)
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from typing import Any, Literal, get_args, overload

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import shape

from geodata.errors import InvalidInput, UnknownCRS

CrsName = Literal["wgs84", "cgcs2000", "gcj02", "bd09"]
"""Canonical name of a supported coordinate system."""

CRS_NAMES: tuple[CrsName, ...] = get_args(CrsName)
"""All supported systems, in the order shown to users."""

SERVICE_REGION = "mainland China, Hong Kong, Macau and Taiwan (with coastal waters)"
"""What :func:`in_service_region` covers, in words shown to users."""

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
_Step = Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]]

# Keys are compared after lower-casing and dropping spaces, "-" and "_".
_ALIASES: dict[str, CrsName] = {
    **dict.fromkeys(
        (
            "wgs84",
            "wgs1984",
            "epsg:4326",
            "epsg4326",
            "4326",
            "crs84",
            "ogc:crs84",
            "urn:ogc:def:crs:ogc:1.3:crs84",
            "urn:ogc:def:crs:epsg::4326",
            "http://www.opengis.net/def/crs/ogc/1.3/crs84",
            "http://www.opengis.net/def/crs/epsg/0/4326",
            "gps",
            "osm",
        ),
        "wgs84",
    ),
    **dict.fromkeys(
        (
            "cgcs2000",
            "epsg:4490",
            "epsg4490",
            "4490",
            "urn:ogc:def:crs:epsg::4490",
            "http://www.opengis.net/def/crs/epsg/0/4490",
            "tianditu",
            "天地图",
            "国家2000",
        ),
        "cgcs2000",
    ),
    **dict.fromkeys(
        (
            "gcj02",
            "gcj",
            "amap",
            "gaode",
            "autonavi",
            "tencent",
            "mars",
            "高德",
            "腾讯",
            "火星",
            "国测局",
        ),
        "gcj02",
    ),
    **dict.fromkeys(("bd09", "bd09ll", "baidu", "bmap", "百度"), "bd09"),
}
_SHOWN_ALIASES = "EPSG:4326, CRS84, EPSG:4490, CGCS2000, GCJ-02, amap, tencent, BD-09, baidu"

# Krasovsky ellipsoid as used by the GCJ-02 formula, and Baidu's constant.
_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = np.pi * 3000.0 / 180.0

_TOL_DEG = 1e-9
_MAX_ITERATIONS = 30
_REGION_FILE = "mainland_china_region.geojson"
_GRID_DEG = 0.25


def parse_crs(name: str) -> CrsName:
    """Return the canonical name of a coordinate system given by name or common alias.

    Parameters
    ----------
    name : str
        Case-insensitive; spaces, ``-`` and ``_`` are ignored. Accepted: ``wgs84`` (also
        ``EPSG:4326``, ``4326``, ``CRS84``, their OGC URNs and URIs, ``gps``, ``osm``),
        ``cgcs2000`` (``EPSG:4490``, ``4490``, its URN and URI, ``tianditu``, ``天地图``,
        ``国家2000``), ``gcj02`` (``GCJ-02``, ``amap``, ``gaode``, ``autonavi``, ``tencent``,
        ``mars``, ``高德``, ``腾讯``, ``火星``, ``国测局``) and ``bd09`` (``BD-09``,
        ``bd09ll``, ``baidu``, ``bmap``, ``百度``). The name selects the datum and offsets
        only: arguments are always (lon, lat), whatever axis order EPSG:4326 defines.

    Returns
    -------
    CrsName
        One of :data:`CRS_NAMES`.

    Raises
    ------
    UnknownCRS
        If ``name`` is not a string or names no supported system; the message lists the
        accepted names.

    Examples
    --------
    >>> parse_crs("EPSG:4326"), parse_crs("GCJ-02"), parse_crs("Baidu")
    ('wgs84', 'gcj02', 'bd09')
    """
    if isinstance(name, str):
        key = name.strip().lower().replace(" ", "").replace("-", "").replace("_", "")
        if key in _ALIASES:
            return _ALIASES[key]
    raise UnknownCRS(
        f"unknown coordinate system {name!r}: use one of {', '.join(CRS_NAMES)} "
        f"(aliases such as {_SHOWN_ALIASES} are accepted, case-insensitively)",
        field="crs",
    )


@overload
def in_mainland_china(lon: float, lat: float) -> bool: ...
@overload
def in_mainland_china(lon: npt.ArrayLike, lat: npt.ArrayLike) -> BoolArray: ...
def in_mainland_china(lon: npt.ArrayLike, lat: npt.ArrayLike) -> bool | BoolArray:
    """Whether points lie where the GCJ-02 and BD-09 offsets apply: mainland China.

    Hong Kong, Macau and Taiwan (with Penghu, Kinmen and Matsu) are outside, as is the rest of
    the world; the polygons and their precision are described in the module documentation.

    Parameters
    ----------
    lon, lat : float or array_like
        Longitude and latitude in degrees, in any of the supported systems (the polygons are
        drawn in WGS-84 and applied as they are to GCJ-02 / BD-09 points). NaN is outside.

    Returns
    -------
    bool or numpy.ndarray of bool
        A bool for scalar input, else an array of the broadcast shape.
    """
    x, y, scalar = _as_arrays(lon, lat)
    inside = _inside_mainland(x, y)
    return bool(inside) if scalar else inside


@overload
def in_service_region(lon: float, lat: float) -> bool: ...
@overload
def in_service_region(lon: npt.ArrayLike, lat: npt.ArrayLike) -> BoolArray: ...
def in_service_region(lon: npt.ArrayLike, lat: npt.ArrayLike) -> bool | BoolArray:
    """Whether points lie in the region the registry serves: mainland China, Hong Kong, Macau
    and Taiwan, with their coastal waters.

    The same polygons as :func:`in_mainland_china`, without cutting out Hong Kong, Macau and
    Taiwan (:data:`SERVICE_REGION` names it). Off the coasts the region reaches 1 degree
    (about 100 km) out to sea from the mainland and Hainan, 0.15 degree around Taiwan and
    Penghu (Green Island, Orchid Island), 0.06 degree around Hong Kong and 0.03 degree around
    Macau, and takes in Kinmen and Matsu: ferry piers and inhabited islands are inside. Land
    borders are widened by 0.05 degree (about 5 km). Outside: Pratas (Dongsha), the Spratlys
    and every other country, e.g. Seoul, Kobe, Hanoi or Ulaanbaatar.

    Parameters
    ----------
    lon, lat : float or array_like
        Longitude and latitude in degrees, in any of the supported systems (the GCJ-02 / BD-09
        shift of at most 1.5 km is far below the region's margins). NaN is outside.

    Returns
    -------
    bool or numpy.ndarray of bool
        A bool for scalar input, else an array of the broadcast shape.

    Examples
    --------
    >>> in_service_region(121.4737, 31.2304), in_service_region(114.17, 22.28)
    (True, True)
    >>> in_service_region([2.35, 126.98], [48.85, 37.57]).tolist()  # Paris, Seoul
    [False, False]
    """
    if isinstance(lon, int | float) and isinstance(lat, int | float):
        return _service_region().contains_point(float(lon), float(lat))
    x, y, scalar = _as_arrays(lon, lat)
    inside = _service_region().contains(x, y)
    return bool(inside) if scalar else inside


@overload
def transform(lon: float, lat: float, from_crs: str, to_crs: str) -> tuple[float, float]: ...
@overload
def transform(
    lon: npt.ArrayLike, lat: npt.ArrayLike, from_crs: str, to_crs: str
) -> tuple[FloatArray, FloatArray]: ...
def transform(
    lon: npt.ArrayLike, lat: npt.ArrayLike, from_crs: str, to_crs: str
) -> tuple[float, float] | tuple[FloatArray, FloatArray]:
    """Convert points from one coordinate system to another.

    Parameters
    ----------
    lon, lat : float or array_like
        Longitude and latitude in degrees in ``from_crs``; arrays are broadcast together.
    from_crs, to_crs : str
        System names or aliases, see :func:`parse_crs`.

    Returns
    -------
    tuple
        ``(lon, lat)`` in degrees in ``to_crs``: floats for scalar input, else new float64 arrays
        of the broadcast shape. Points outside mainland China are returned unchanged; points
        with a NaN coordinate as (NaN, NaN).

    Raises
    ------
    UnknownCRS
        If either system name is unknown.
    InvalidInput
        If ``lon`` / ``lat`` are not numeric or their shapes do not broadcast.

    Examples
    --------
    >>> lon, lat = transform(121.4737, 31.2304, "wgs84", "bd09")
    >>> round(lon, 6), round(lat, 6)
    (121.484781, 31.234311)
    """
    src, dst = parse_crs(from_crs), parse_crs(to_crs)
    x, y, scalar = _as_arrays(lon, lat)
    out_x, out_y = _convert(x, y, src, dst)
    if scalar:
        return float(out_x), float(out_y)
    return out_x, out_y


@overload
def to_wgs84(lon: float, lat: float, crs: str) -> tuple[float, float]: ...
@overload
def to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike, crs: str) -> tuple[FloatArray, FloatArray]: ...
def to_wgs84(
    lon: npt.ArrayLike, lat: npt.ArrayLike, crs: str
) -> tuple[float, float] | tuple[FloatArray, FloatArray]:
    """Convert points given in ``crs`` to WGS-84.

    From GCJ-02 and BD-09 this is the exact inverse of :func:`from_wgs84` (see the module
    documentation), not the usual one-step approximation.

    Parameters
    ----------
    lon, lat : float or array_like
        Longitude and latitude in degrees in ``crs``.
    crs : str
        The input system: ``wgs84``, ``cgcs2000``, ``gcj02`` or ``bd09`` or an alias.

    Returns
    -------
    tuple
        WGS-84 ``(lon, lat)`` in degrees, floats for scalar input, else float64 arrays.

    Raises
    ------
    UnknownCRS
        If ``crs`` is unknown.
    InvalidInput
        If ``lon`` / ``lat`` are not numeric or their shapes do not broadcast.
    """
    return transform(lon, lat, crs, "wgs84")


@overload
def from_wgs84(lon: float, lat: float, crs: str) -> tuple[float, float]: ...
@overload
def from_wgs84(
    lon: npt.ArrayLike, lat: npt.ArrayLike, crs: str
) -> tuple[FloatArray, FloatArray]: ...
def from_wgs84(
    lon: npt.ArrayLike, lat: npt.ArrayLike, crs: str
) -> tuple[float, float] | tuple[FloatArray, FloatArray]:
    """Convert WGS-84 points to ``crs``.

    Parameters
    ----------
    lon, lat : float or array_like
        WGS-84 longitude and latitude in degrees.
    crs : str
        The output system: ``wgs84``, ``cgcs2000``, ``gcj02`` or ``bd09`` or an alias.

    Returns
    -------
    tuple
        ``(lon, lat)`` in degrees in ``crs``, floats for scalar input, else float64 arrays.

    Raises
    ------
    UnknownCRS
        If ``crs`` is unknown.
    InvalidInput
        If ``lon`` / ``lat`` are not numeric or their shapes do not broadcast.
    """
    return transform(lon, lat, "wgs84", crs)


def _as_arrays(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray, bool]:
    """Float64 copies of ``lon`` and ``lat`` broadcast together, and whether both were scalars."""
    try:
        x = np.asarray(lon, dtype=np.float64)
        y = np.asarray(lat, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput("lon and lat must be numbers or arrays of numbers", field="lon") from exc
    try:
        bx, by = np.broadcast_arrays(x, y)
    except ValueError as exc:
        raise InvalidInput(
            f"lon (shape {x.shape}) and lat (shape {y.shape}) do not have matching shapes",
            field="lat",
        ) from exc
    return bx.copy(), by.copy(), x.ndim == 0 and y.ndim == 0


#: Classes of a grid cell of :class:`_Region`: not looked at yet, outside, inside, mixed.
_UNKNOWN, _OUTSIDE, _INSIDE, _MIXED = -1, 0, 1, 2


@dataclass(frozen=True)
class _Region:
    """A region's polygon and a 0.25-degree grid saying which cells are inside, outside or mixed.

    Only points in mixed cells (about 7 % of the cells that touch the mainland region) need the
    exact point-in-polygon test, which keeps :func:`in_mainland_china` and
    :func:`in_service_region` fast for large batches. A cell is classified the first time a
    point falls in it (a few microseconds per cell), so the first query of a process does not
    pay for the whole grid (38,000 cells, 0.05-0.15 s).
    """

    polygon: Any
    west: float
    south: float
    cells: npt.NDArray[np.int8]
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    @classmethod
    def gridded(cls, polygon: Any) -> _Region:
        """Prepare ``polygon`` and lay an unclassified grid over its bounds (once per region)."""
        shapely.prepare(polygon)
        xmin, ymin, xmax, ymax = polygon.bounds
        west = math.floor(xmin / _GRID_DEG) * _GRID_DEG
        south = math.floor(ymin / _GRID_DEG) * _GRID_DEG
        shape = (math.ceil((ymax - south) / _GRID_DEG), math.ceil((xmax - west) / _GRID_DEG))
        return cls(polygon, west, south, np.full(shape, _UNKNOWN, dtype=np.int8))

    def _classes(
        self, rows: npt.NDArray[np.intp], cols: npt.NDArray[np.intp]
    ) -> npt.NDArray[np.int8]:
        """The classes of the cells at ``rows``, ``cols`` (on the grid), classifying those not
        looked at yet."""
        found = self.cells[rows, cols]
        unknown = found == _UNKNOWN
        if not unknown.any():
            return found
        with self._lock:
            cell = np.unique(rows[unknown] * self.cells.shape[1] + cols[unknown])
            row, col = np.divmod(cell, self.cells.shape[1])
            boxes = shapely.box(
                self.west + col * _GRID_DEG,
                self.south + row * _GRID_DEG,
                self.west + (col + 1) * _GRID_DEG,
                self.south + (row + 1) * _GRID_DEG,
            )
            inside = shapely.contains_properly(self.polygon, boxes)
            touching = shapely.intersects(self.polygon, boxes)
            self.cells[row, col] = np.where(inside, _INSIDE, np.where(touching, _MIXED, _OUTSIDE))
        return self.cells[rows, cols]

    def contains(self, x: FloatArray, y: FloatArray) -> BoolArray:
        """Whether each point lies in the region (NaN: no)."""
        rows, cols = self.cells.shape
        result = np.zeros(x.shape, dtype=np.bool_)
        with np.errstate(invalid="ignore"):
            col = np.floor((x - self.west) / _GRID_DEG)
            row = np.floor((y - self.south) / _GRID_DEG)
        on_grid = (col >= 0) & (col < cols) & (row >= 0) & (row < rows)
        found = self._classes(row[on_grid].astype(np.intp), col[on_grid].astype(np.intp))
        result[on_grid] = found == _INSIDE
        exact = np.zeros(x.shape, dtype=np.bool_)
        exact[on_grid] = found == _MIXED
        if exact.any():
            result[exact] = shapely.contains_xy(self.polygon, x[exact], y[exact])
        return result

    def contains_point(self, x: float, y: float) -> bool:
        """:meth:`contains` for one point, without arrays (a few microseconds per call)."""
        if not (math.isfinite(x) and math.isfinite(y)):
            return False
        rows, cols = self.cells.shape
        col = math.floor((x - self.west) / _GRID_DEG)
        row = math.floor((y - self.south) / _GRID_DEG)
        if not (0 <= col < cols and 0 <= row < rows):
            return False
        found = self.cells.item(row, col)
        if found == _UNKNOWN:
            found = int(self._classes(np.array([row]), np.array([col]))[0])
        if found == _MIXED:
            return bool(shapely.contains_xy(self.polygon, x, y))
        return found == _INSIDE


@cache
def _region_parts() -> tuple[Any, Any]:
    """The union of the *include* polygons and that of the *exclude* polygons (read once)."""
    text = files("geodata").joinpath("data", _REGION_FILE).read_text(encoding="utf-8")
    features = json.loads(text)["features"]
    include = shapely.union_all(
        [shape(f["geometry"]) for f in features if f["properties"]["part"] == "include"]
    )
    exclude = shapely.union_all(
        [shape(f["geometry"]) for f in features if f["properties"]["part"] == "exclude"]
    )
    return include, exclude


@cache
def _mainland_region() -> _Region:
    """Mainland China: the include outline less Hong Kong, Macau and Taiwan (first call only)."""
    include, exclude = _region_parts()
    return _Region.gridded(shapely.difference(include, exclude))


@cache
def _service_region() -> _Region:
    """Mainland China with Hong Kong, Macau and Taiwan (first call only)."""
    include, exclude = _region_parts()
    return _Region.gridded(shapely.union(include, exclude))


def _inside_mainland(x: FloatArray, y: FloatArray) -> BoolArray:
    return _mainland_region().contains(x, y)


def _convert(
    x: FloatArray, y: FloatArray, src: CrsName, dst: CrsName
) -> tuple[FloatArray, FloatArray]:
    """Convert the points in place between systems along the chain WGS-84 - GCJ-02 - BD-09."""
    missing = np.isnan(x) | np.isnan(y)
    x[missing] = np.nan
    y[missing] = np.nan
    start, end = _CHAIN_POSITION[src], _CHAIN_POSITION[dst]
    if start == end:
        return x, y
    if start < end:
        # Forward: the input is the true location; it decides whether the shift applies.
        shift = _inside_mainland(x, y)
        if shift.any():
            sx, sy = x[shift], y[shift]
            for step in _FORWARD[start:end]:
                sx, sy = step(sx, sy)
            x[shift], y[shift] = sx, sy
        return x, y
    # Inverse: a mainland point near the Hong Kong or Macau border can be shifted across it, so
    # the solution, not the shifted input, decides: where the solution lies in mainland China
    # it is the answer, elsewhere the point was never shifted. Every mainland round trip is exact.
    flat_x, flat_y = x.reshape(-1), y.reshape(-1)
    region = _mainland_region()
    rows, cols = region.cells.shape
    margin = 0.1  # degrees, more than any GCJ-02 + BD-09 shift
    finite = np.flatnonzero(
        (flat_x >= region.west - margin)
        & (flat_x <= region.west + cols * _GRID_DEG + margin)
        & (flat_y >= region.south - margin)
        & (flat_y <= region.south + rows * _GRID_DEG + margin)
    )
    sx, sy = flat_x[finite], flat_y[finite]
    for step in _INVERSE[end:start][::-1]:
        sx, sy = step(sx, sy)
    keep = (
        _inside_mainland(sx, sy) if end == 0 else _inside_mainland(flat_x[finite], flat_y[finite])
    )
    flat_x[finite[keep]], flat_y[finite[keep]] = sx[keep], sy[keep]
    return flat_x.reshape(x.shape), flat_y.reshape(y.shape)


def _gcj_offset(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The GCJ-02 shift (dlon, dlat) in degrees at WGS-84 points (no mainland test).

    The standard formula, with sin(pi t) and sin(6 pi t) taken from sin(pi t / 3) and
    sin(2 pi t) by the triple-angle identity: 8 instead of 12 trigonometric calls.
    """
    x = lon - 105.0
    y = lat - 35.0
    sin_x3 = np.sin(x * np.pi / 3.0)
    sin_x = sin_x3 * (3.0 - 4.0 * sin_x3 * sin_x3)
    sin_2x = np.sin(2.0 * x * np.pi)
    sin_6x = sin_2x * (3.0 - 4.0 * sin_2x * sin_2x)
    sin_y3 = np.sin(y * np.pi / 3.0)
    sin_y = sin_y3 * (3.0 - 4.0 * sin_y3 * sin_y3)
    sqrt_abs_x = np.sqrt(np.abs(x))
    common = (20.0 * sin_6x + 20.0 * sin_2x) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x + common
    dlat += (20.0 * sin_y + 40.0 * sin_y3) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x + common
    dlon += (20.0 * sin_x + 40.0 * sin_x3) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    sin_lat = np.sin(lat / 180.0 * np.pi)
    magic = 1.0 - _EE * sin_lat * sin_lat
    sqrt_magic = np.sqrt(magic)
    cos_lat = np.sqrt(1.0 - sin_lat * sin_lat)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * cos_lat * np.pi)
    return dlon, dlat


def _gcj_from_wgs(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    dlon, dlat = _gcj_offset(lon, lat)
    return lon + dlon, lat + dlat


def _wgs_from_gcj(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    dlon, dlat = _gcj_offset(lon, lat)
    return _invert(_gcj_from_wgs, lon, lat, lon - dlon, lat - dlat)


def _bd_from_gcj(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    z = np.sqrt(lon * lon + lat * lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def _gcj_from_bd(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    # Baidu's published one-step inverse as the first guess, then refined to exact.
    x = lon - 0.0065
    y = lat - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return _invert(_bd_from_gcj, lon, lat, z * np.cos(theta), z * np.sin(theta))


def _invert(
    forward: _Step, x: FloatArray, y: FloatArray, guess_x: FloatArray, guess_y: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Solve ``forward(u, v) == (x, y)`` by fixed-point iteration, point by point.

    ``forward`` is the identity plus a slowly varying shift (derivative about 1e-2), so
    ``u <- u - (forward(u) - x)`` contracts by about 100 per step. Points leave the iteration
    once their residual is below ``_TOL_DEG``, so each point's result does not depend on the
    other points in the batch.
    """
    u = guess_x.copy()
    v = guess_y.copy()
    active = np.flatnonzero(np.isfinite(u) & np.isfinite(v))
    for _ in range(_MAX_ITERATIONS):
        if active.size == 0:
            break
        fx, fy = forward(u[active], v[active])
        ex = fx - x[active]
        ey = fy - y[active]
        u[active] -= ex
        v[active] -= ey
        active = active[(np.abs(ex) > _TOL_DEG) | (np.abs(ey) > _TOL_DEG)]
    return u, v


_CHAIN_POSITION: dict[CrsName, int] = {"wgs84": 0, "cgcs2000": 0, "gcj02": 1, "bd09": 2}

PLAIN_CRS: frozenset[CrsName] = frozenset(n for n, p in _CHAIN_POSITION.items() if p == 0)
"""Systems that need no conversion to or from WGS-84 (CGCS2000 differs by centimetres)."""

_FORWARD: tuple[_Step, ...] = (_gcj_from_wgs, _bd_from_gcj)
_INVERSE: tuple[_Step, ...] = (_wgs_from_gcj, _gcj_from_bd)
