"""The street network for walking: local metric frames, snapping points to street segments."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import shapely
from scipy.sparse import csr_matrix
from scipy.spatial import cKDTree

from geodata.errors import InvalidInput, OffNetwork
from geodata.geodesy import check_points

if TYPE_CHECKING:  # its module reads OSM (pyosmium): a worker loads it only with a network
    from geodata.streets import StreetNetwork

DEFAULT_SPEED_KMH = 4.8
"""Default walking speed, km/h."""
DEFAULT_MAX_SNAP_M = 500.0
"""Default largest distance, metres, from a point to a street for it to count as on the network."""
_WGS84_A = 6378137.0
_WGS84_E2 = 0.00669437999014
_DEG = math.pi / 180.0

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def _metres_per_degree(lat_deg: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Metres per degree of longitude and latitude on the WGS-84 ellipsoid at ``lat_deg``."""
    phi = np.radians(lat_deg)
    sin_phi = np.sin(phi)
    w = np.sqrt(1.0 - _WGS84_E2 * sin_phi * sin_phi)
    prime_vertical = _WGS84_A / w
    meridian = _WGS84_A * (1.0 - _WGS84_E2) / (w * w * w)
    return prime_vertical * np.cos(phi) * _DEG, meridian * _DEG


def _as_points(lon: npt.ArrayLike, lat: npt.ArrayLike, field: str) -> tuple[FloatArray, FloatArray]:
    """Validate WGS-84 lon/lat arrays of equal length."""
    if np.ndim(lon) > 1 or np.ndim(lat) > 1:
        raise InvalidInput("lon and lat must be 1-d arrays of equal length", field=field)
    try:
        return check_points(lon, lat)
    except InvalidInput as exc:
        raise InvalidInput(str(exc), field=field) from exc


def _check_positive(value: float, field: str) -> float:
    if not (math.isfinite(value) and value > 0):
        raise InvalidInput(f"{field} must be a positive number", field=field)
    return float(value)


@dataclass(frozen=True, slots=True)
class Snap:
    """Where one point meets the walking network.

    Attributes
    ----------
    edge : int
        Index of the street edge (into ``StreetNetwork.edge_u``).
    fraction : float
        Position along the edge from ``edge_u`` (0) to ``edge_v`` (1).
    offset_m : float
        Distance along the edge from ``edge_u`` to the snapped point, metres.
    snap_m : float
        Straight distance from the point to the snapped point, metres.
    lon, lat : float
        The snapped point, WGS-84 degrees.
    """

    edge: int
    fraction: float
    offset_m: float
    snap_m: float
    lon: float
    lat: float


@dataclass(frozen=True, eq=False)
class SnapArrays:
    """Snaps of many points; ``edge == -1`` marks points off the network.

    Attributes
    ----------
    edge : numpy.ndarray of int64
        Street edge index, or -1 when no street is within ``max_snap_m``.
    fraction : numpy.ndarray of float64
        Position along the edge, 0..1 (0 where off the network).
    snap_m : numpy.ndarray of float64
        Straight distance to the nearest street in metres; ``inf`` when none was searched for
        within the search radius. May exceed ``max_snap_m`` where ``edge == -1``.
    """

    edge: IntArray
    fraction: FloatArray
    snap_m: FloatArray

    @property
    def on_network(self) -> BoolArray:
        """Mask of points that snapped to a street."""
        return self.edge >= 0


class WalkNetwork:
    """A street network ready for walking queries: CSR adjacency and a segment index.

    Parameters
    ----------
    streets : StreetNetwork
        Walking graph from :func:`geodata.streets.streets_from_osm` or
        :func:`geodata.streets.load_network`.

    Attributes
    ----------
    streets : StreetNetwork
        The underlying arrays (node lon/lat WGS-84, edges, lengths in metres).
    adjacency : scipy.sparse.csr_matrix
        Symmetric ``n_nodes x n_nodes`` matrix of edge lengths in metres.
    adjacency_edge : numpy.ndarray of int64
        Edge index of every stored entry of ``adjacency`` (same order as ``adjacency.data``).
    total_length_m : float
        Sum of all edge lengths, metres (an upper bound of any shortest walk on the network).
    """

    def __init__(self, streets: StreetNetwork) -> None:
        self.streets = streets
        n, m = streets.n_nodes, streets.n_edges
        rows = np.concatenate([streets.edge_u, streets.edge_v])
        cols = np.concatenate([streets.edge_v, streets.edge_u])
        order = np.lexsort((cols, rows))
        indptr = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
        self.adjacency = csr_matrix(
            (
                np.concatenate([streets.edge_length_m, streets.edge_length_m])[order],
                cols[order].astype(np.int32),
                indptr,
            ),
            shape=(n, n),
        )
        self.adjacency_edge: IntArray = np.concatenate([np.arange(m), np.arange(m)])[order]
        self.total_length_m = float(streets.edge_length_m.sum())

        lon, lat = streets.node_lon, streets.node_lat
        self._lon0 = float((lon.min() + lon.max()) / 2)
        self._lat0 = float((lat.min() + lat.max()) / 2)
        kx0, ky0 = _metres_per_degree(np.array([self._lat0]))
        self._kx0, self._ky0 = float(kx0[0]), float(ky0[0])
        x = (lon - self._lon0) * self._kx0
        y = (lat - self._lat0) * self._ky0
        u, v = streets.edge_u, streets.edge_v
        segments = np.stack([np.stack([x[u], y[u]], axis=1), np.stack([x[v], y[v]], axis=1)], 1)
        self._tree = shapely.STRtree(shapely.linestrings(segments))
        self._node_tree = cKDTree(np.column_stack([x, y]))

    @property
    def n_nodes(self) -> int:
        """Number of street nodes."""
        return self.streets.n_nodes

    def snap_many(
        self,
        lon: npt.ArrayLike,
        lat: npt.ArrayLike,
        *,
        max_snap_m: float = DEFAULT_MAX_SNAP_M,
    ) -> SnapArrays:
        """Snap points to their nearest street segments.

        Parameters
        ----------
        lon, lat : array_like of float
            Points, WGS-84 degrees.
        max_snap_m : float, default 500
            Points farther than this from every street (metres) are off the network.

        Returns
        -------
        SnapArrays
            Edge, fraction along the edge and snap distance per point (``edge == -1`` off).

        Raises
        ------
        InvalidInput
            If coordinates are not finite WGS-84 degrees or ``max_snap_m`` is not positive.
        """
        lon_p, lat_p = _as_points(lon, lat, "lon/lat")
        max_snap_m = _check_positive(max_snap_m, "max_snap_m")
        count = lon_p.shape[0]
        edge = np.full(count, -1, dtype=np.int64)
        fraction = np.zeros(count)
        snap_m = np.full(count, np.inf)
        if count == 0:
            return SnapArrays(edge, fraction, snap_m)

        # Local frame scales relative to the network frame bound the distance distortion.
        kx, ky = _metres_per_degree(lat_p)
        rx, ry = kx / self._kx0, ky / self._ky0
        k_min, k_max = np.minimum(rx, ry), np.maximum(rx, ry)
        points = shapely.points((lon_p - self._lon0) * self._kx0, (lat_p - self._lat0) * self._ky0)
        near, near_dist = self._tree.query_nearest(
            points, max_distance=float(max_snap_m / k_min.min()) * 1.000001, return_distance=True
        )
        if near.shape[1] == 0:
            return SnapArrays(edge, fraction, snap_m)
        best_global = np.full(count, np.inf)
        np.minimum.at(best_global, near[0], near_dist)
        found = np.flatnonzero(np.isfinite(best_global))
        radius = best_global[found] * (k_max[found] / k_min[found]) * (1 + 1e-9) + 1e-6
        pairs = self._tree.query(points[found], predicate="dwithin", distance=radius)
        point_i = found[pairs[0]]
        edge_i = pairs[1].astype(np.int64)

        streets = self.streets
        u, v = streets.edge_u[edge_i], streets.edge_v[edge_i]
        ax = (streets.node_lon[u] - lon_p[point_i]) * kx[point_i]
        ay = (streets.node_lat[u] - lat_p[point_i]) * ky[point_i]
        dx = (streets.node_lon[v] - lon_p[point_i]) * kx[point_i] - ax
        dy = (streets.node_lat[v] - lat_p[point_i]) * ky[point_i] - ay
        t = np.clip(-(ax * dx + ay * dy) / (dx * dx + dy * dy), 0.0, 1.0)
        dist = np.hypot(ax + t * dx, ay + t * dy)

        order = np.lexsort((edge_i, dist, point_i))
        first = order[np.r_[True, point_i[order][1:] != point_i[order][:-1]]]
        winners = point_i[first]
        snap_m[winners] = dist[first]
        on = dist[first] <= max_snap_m
        edge[winners[on]] = edge_i[first][on]
        fraction[winners[on]] = t[first][on]
        return SnapArrays(edge, fraction, snap_m)

    def snap(self, lon: float, lat: float, *, max_snap_m: float = DEFAULT_MAX_SNAP_M) -> Snap:
        """Snap one point to its nearest street segment.

        Parameters
        ----------
        lon, lat : float
            The point, WGS-84 degrees.
        max_snap_m : float, default 500
            Largest straight distance to a street, metres.

        Returns
        -------
        Snap
            Edge, fraction and offset along it, snap distance and the snapped point.

        Raises
        ------
        OffNetwork
            If no street is within ``max_snap_m``.
        InvalidInput
            If the coordinates are not finite WGS-84 degrees.
        """
        snaps = self.snap_many([lon], [lat], max_snap_m=max_snap_m)
        edge = int(snaps.edge[0])
        snap_m = float(snaps.snap_m[0])
        if edge < 0:
            raise OffNetwork(
                f"no street within {max_snap_m:.0f} m of the point",
                snap_m=snap_m if math.isfinite(snap_m) else None,
            )
        streets = self.streets
        t = float(snaps.fraction[0])
        u, v = int(streets.edge_u[edge]), int(streets.edge_v[edge])
        return Snap(
            edge=edge,
            fraction=t,
            offset_m=t * float(streets.edge_length_m[edge]),
            snap_m=snap_m,
            lon=float(streets.node_lon[u] + t * (streets.node_lon[v] - streets.node_lon[u])),
            lat=float(streets.node_lat[u] + t * (streets.node_lat[v] - streets.node_lat[u])),
        )


def _gather_rows(indptr: IntArray, rows: IntArray) -> IntArray:
    """Indices of all CSR entries of ``rows`` (concatenated in row order)."""
    starts, ends = indptr[rows], indptr[rows + 1]
    sizes = ends - starts
    first = np.cumsum(sizes) - sizes
    return np.asarray(np.repeat(starts - first, sizes) + np.arange(int(sizes.sum())), np.int64)
