"""Search structures: KD-trees over ECEF points and the R-tree of lon/lat points."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
import rtree
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from finder.ecef_tree import EcefTree, build_ecef_tree
from finder.index.filters import Positions

METRES_PER_DEGREE = 111_195.0


@dataclass(frozen=True, eq=False)
class DensityGrid:
    """A lon/lat grid of search radii, to guess a ball that holds ``need`` facilities.

    ``unit_radius_m[iy * nx + ix]`` is the chord radius (metres) of a disc holding one facility
    at the density of cell ``(ix, iy)`` (widened by 1.3), 0 for an empty cell: a disc holding
    ``need`` facilities has ``sqrt(need)`` times that radius, so a query reads one number.
    """

    lon0: float
    lat0: float
    dlon: float
    dlat: float
    nx: int
    ny: int
    unit_radius_m: NDArray[np.float32]

    @classmethod
    def build(cls, lon: NDArray[np.float64], lat: NDArray[np.float64]) -> DensityGrid:
        if lon.size == 0:
            return cls(0.0, 0.0, 1.0, 1.0, 1, 1, np.zeros(1, dtype=np.float32))
        lon0, lat0 = float(lon.min()), float(lat.min())
        span_lon = max(float(lon.max()) - lon0, 1e-6)
        span_lat = max(float(lat.max()) - lat0, 1e-6)
        cells = max(1, lon.size // 16)
        nx = max(1, min(4096, round(math.sqrt(cells * span_lon / span_lat))))
        ny = max(1, min(4096, cells // nx))
        dlon, dlat = span_lon / nx * (1 + 1e-9), span_lat / ny * (1 + 1e-9)
        ix = ((lon - lon0) / dlon).astype(np.int64)
        iy = ((lat - lat0) / dlat).astype(np.int64)
        counts = np.bincount(iy * nx + ix, minlength=nx * ny).reshape(ny, nx)
        # Cell areas (m²) at each row's middle latitude.
        row_lat = lat0 + (np.arange(ny) + 0.5) * dlat
        cell_w = dlon * METRES_PER_DEGREE * np.maximum(np.cos(np.radians(row_lat)), 0.01)
        area = (cell_w * dlat * METRES_PER_DEGREE)[:, None]
        with np.errstate(divide="ignore"):
            unit = np.where(counts > 0, np.sqrt(area / (np.pi * counts)) * 1.3, 0.0)
        return cls(lon0, lat0, dlon, dlat, nx, ny, unit.astype(np.float32).ravel())

    def radius_m(self, lon: float, lat: float, need: float) -> float:
        """A chord radius (metres) likely to hold about ``need`` points around the point."""
        ix = int((lon - self.lon0) // self.dlon)
        iy = int((lat - self.lat0) // self.dlat)
        nx = self.nx
        if 0 <= ix < nx and 0 <= iy < self.ny:
            unit = self.unit_radius_m.item(iy * nx + ix)  # a Python float, no numpy scalar
            if unit:
                return max(1.0, unit * math.sqrt(need))
        # An empty cell or outside the grid: a ball as wide as a cell.
        cell_w = self.dlon * METRES_PER_DEGREE * max(math.cos(math.radians(lat)), 0.01)
        return max(cell_w, self.dlat * METRES_PER_DEGREE)


@dataclass(frozen=True, eq=False)
class Searcher:
    """A KD-tree over ECEF points of some facilities, with their index positions.

    ``xyz`` (the x, y and z columns of the tree's points) and ``position_at`` (``positions``)
    are memory views of the same arrays: one element of a memory view is read as a Python
    number in a third of the time of ``ndarray.item`` (the single query reads a few per
    search ball).
    """

    tree: cKDTree
    positions: Positions
    grid: DensityGrid
    xyz: tuple[memoryview, memoryview, memoryview]
    position_at: memoryview

    @classmethod
    def build(
        cls, positions: NDArray[np.int64], lon: NDArray[np.float64], lat: NDArray[np.float64]
    ) -> Searcher:
        built = build_ecef_tree(lon, lat)
        return cls.of_tree(positions[built.order].astype(built.order.dtype), built, lon, lat)

    @classmethod
    def of_tree(
        cls,
        positions: Positions,
        built: EcefTree,
        lon: NDArray[np.float64],
        lat: NDArray[np.float64],
    ) -> Searcher:
        """The searcher of a built tree (:func:`finder.ecef_tree.build_ecef_tree` over ``lon``,
        ``lat``); ``positions`` are the index positions of the tree's points, in tree order."""
        data = built.tree.data
        x, y, z = (data[:, axis].data for axis in range(3))
        grid = DensityGrid.build(lon, lat)
        return cls(built.tree, positions, grid, (x, y, z), positions.data)

    @property
    def size(self) -> int:
        return int(self.positions.size)


class RTreeLayer:
    """An R-tree (libspatialindex) of facility points keyed by uid, shared along update chains.

    Entries are only inserted: a moved, edited or deleted facility leaves a stale entry, which
    every query drops by checking the uid and the coordinates against its own snapshot. Readers of
    an older snapshot therefore still find what that snapshot holds. When stale entries reach
    half of the live ones, the next snapshot builds a fresh R-tree instead.
    """

    def __init__(
        self, uids: NDArray[np.int64], lon: NDArray[np.float64], lat: NDArray[np.float64]
    ) -> None:
        self._lock = threading.Lock()
        points = np.column_stack([lon, lat])
        if uids.size:
            self._rtree = rtree.index.Index((uids.astype(np.int64), points, points))
        else:
            self._rtree = rtree.index.Index()
        self.entries = int(uids.size)

    def insert(
        self, uids: NDArray[np.int64], lon: NDArray[np.float64], lat: NDArray[np.float64]
    ) -> None:
        with self._lock:
            for uid, x, y in zip(uids.tolist(), lon.tolist(), lat.tolist(), strict=True):
                self._rtree.insert(uid, (x, y, x, y))
            self.entries += int(uids.size)

    def query(
        self, min_lon: float, min_lat: float, max_lon: float, max_lat: float
    ) -> NDArray[np.int64]:
        with self._lock:
            return np.fromiter(
                self._rtree.intersection((min_lon, min_lat, max_lon, max_lat)), dtype=np.int64
            )
