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
    """Facility counts on a lon/lat grid, to guess a search radius that holds ``need`` points."""

    lon0: float
    lat0: float
    dlon: float
    dlat: float
    nx: int
    ny: int
    counts: NDArray[np.int32]

    @classmethod
    def build(cls, lon: NDArray[np.float64], lat: NDArray[np.float64]) -> DensityGrid:
        if lon.size == 0:
            return cls(0.0, 0.0, 1.0, 1.0, 1, 1, np.zeros(1, dtype=np.int32))
        lon0, lat0 = float(lon.min()), float(lat.min())
        span_lon = max(float(lon.max()) - lon0, 1e-6)
        span_lat = max(float(lat.max()) - lat0, 1e-6)
        cells = max(1, lon.size // 16)
        nx = max(1, min(4096, round(math.sqrt(cells * span_lon / span_lat))))
        ny = max(1, min(4096, cells // nx))
        dlon, dlat = span_lon / nx * (1 + 1e-9), span_lat / ny * (1 + 1e-9)
        ix = ((lon - lon0) / dlon).astype(np.int64)
        iy = ((lat - lat0) / dlat).astype(np.int64)
        counts = np.bincount(iy * nx + ix, minlength=nx * ny).astype(np.int32)
        return cls(lon0, lat0, dlon, dlat, nx, ny, counts)

    def radius_m(self, lon: float, lat: float, need: float) -> float:
        """A chord radius (metres) likely to hold about ``need`` points around the point."""
        dlon, dlat, nx = self.dlon, self.dlat, self.nx
        cell_w = dlon * METRES_PER_DEGREE * max(math.cos(math.radians(lat)), 0.01)
        cell_h = dlat * METRES_PER_DEGREE
        ix = int((lon - self.lon0) // dlon)
        iy = int((lat - self.lat0) // dlat)
        if 0 <= ix < nx and 0 <= iy < self.ny:
            count = self.counts.item(iy * nx + ix)  # a Python int, no numpy scalar
            if count:
                return max(1.0, math.sqrt(need * cell_w * cell_h / (math.pi * count)) * 1.3)
        return max(cell_w, cell_h)


@dataclass(frozen=True, eq=False)
class Searcher:
    """A KD-tree over ECEF points of some facilities, with their index positions."""

    tree: cKDTree
    positions: Positions
    grid: DensityGrid

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
        return cls(built.tree, positions, DensityGrid.build(lon, lat))

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
