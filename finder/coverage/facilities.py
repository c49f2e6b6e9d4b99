"""The facilities a coverage question counts, projected per district, and the checks of its
inputs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

from finder.coverage.grid import _M_PER_DEG_LAT, _M_PER_DEG_LON_EQUATOR, DistrictCells, FloatArray
from finder.index import FacilityFilter, FacilityIndex
from geodata.errors import InvalidInput
from geodata.geodesy import check_points
from geodata.schema import ACCESS_CLASSES, KINDS, STATUSES


@dataclass(frozen=True, eq=False)
class FacilityPoints:
    """Facility locations sorted by longitude, for fast selection by box.

    Attributes
    ----------
    lon, lat
        WGS-84 degrees, sorted by ``lon``.
    order
        ``order[i]`` is the caller's index of sorted facility ``i``.
    """

    lon: FloatArray
    lat: FloatArray
    order: NDArray[np.intp]

    @classmethod
    def from_lonlat(cls, lon: ArrayLike, lat: ArrayLike) -> FacilityPoints:
        """Check and sort WGS-84 facility coordinates (degrees)."""
        lon_arr, lat_arr = check_points(lon, lat)
        order = np.argsort(lon_arr, kind="stable")
        return cls(lon_arr[order], lat_arr[order], order)

    @property
    def size(self) -> int:
        """Number of facilities."""
        return int(self.lon.size)

    def in_box(self, west: float, south: float, east: float, north: float) -> NDArray[np.intp]:
        """Sorted-order indices of the facilities inside a lon/lat box (degrees)."""
        first = int(np.searchsorted(self.lon, west, side="left"))
        last = int(np.searchsorted(self.lon, east, side="right"))
        lat = self.lat[first:last]
        return np.flatnonzero((lat >= south) & (lat <= north)) + first


class NearbyFacilities:
    """Facilities around one district, in its local plane, with exact nearest-two distances.

    Build with ``NearbyFacilities(cells, facilities, margin_m)``. Facilities are taken from a box
    ``margin_m`` around the district; a distance larger than the margin may have missed a closer
    facility outside the box, so such points are re-queried with a four times larger margin until
    none is in doubt or every facility is in.
    """

    def __init__(self, cells: DistrictCells, facilities: FacilityPoints, margin_m: float) -> None:
        self._cells = cells
        self._facilities = facilities
        self._levels: list[tuple[float, cKDTree | None, bool]] = []
        self._add_level(margin_m)

    def _select(self, margin_m: float) -> NDArray[np.intp]:
        west, south, east, north = self._cells.bounds_deg
        dlat = margin_m / _M_PER_DEG_LAT * 1.01
        max_lat = min(89.0, max(abs(south), abs(north)) + dlat)
        dlon = margin_m / (_M_PER_DEG_LON_EQUATOR * math.cos(math.radians(max_lat))) * 1.01
        return self._facilities.in_box(west - dlon, south - dlat, east + dlon, north + dlat)

    def _add_level(self, margin_m: float) -> None:
        chosen = self._select(margin_m)
        complete = chosen.size == self._facilities.size
        tree = None
        if chosen.size:
            fx, fy = self._cells.to_local.transform(
                self._facilities.lon[chosen], self._facilities.lat[chosen]
            )
            tree = cKDTree(np.column_stack([fx, fy]))
        self._levels.append((margin_m, tree, complete))

    @property
    def local_xy(self) -> FloatArray:
        """Local x/y metres of the facilities of the first (smallest) margin."""
        tree = self._levels[0][1]
        return np.empty((0, 2)) if tree is None else np.asarray(tree.data)

    def nearest_two(
        self,
        x_m: FloatArray,
        y_m: FloatArray,
        *,
        within_m: float | None = None,
        open_search: bool = True,
    ) -> FloatArray:
        """Distances in metres to the nearest and second-nearest facility, shape ``(n, 2)``.

        ``inf`` where there is no such facility. The first distance is exact everywhere, the
        second wherever it is within the first margin. With ``within_m``, a first search only
        looks that far (cheaper); points with nothing that close then get an open search, unless
        ``open_search`` is false (their distances stay ``inf``).
        """
        out = np.full((x_m.size, 2), np.inf)
        todo = np.arange(x_m.size)
        if within_m is not None and todo.size:
            self._query(0, x_m, y_m, todo, out, within_m)
            todo = todo[np.isinf(out[:, 0])] if open_search else todo[:0]
        level = 0
        while todo.size:
            margin_m, _, complete = self._levels[level]
            self._query(level, x_m, y_m, todo, out, None)
            if complete:
                break
            todo = todo[out[todo, 0] > margin_m]
            level += 1
            if level == len(self._levels) and todo.size:
                self._add_level(margin_m * 4.0)
        return out

    def _query(
        self,
        level: int,
        x_m: FloatArray,
        y_m: FloatArray,
        todo: NDArray[np.intp],
        out: FloatArray,
        bound_m: float | None,
    ) -> None:
        tree = self._levels[level][1]
        if tree is None:
            return
        k = min(2, tree.n)
        workers = -1 if todo.size > 20_000 else 1
        dist, _ = tree.query(
            np.column_stack([x_m[todo], y_m[todo]]),
            k=k,
            distance_upper_bound=np.inf if bound_m is None else bound_m,
            workers=workers,
        )
        out[todo, :k] = dist.reshape(todo.size, k)


def check_radius(radius_m: float) -> float:
    """Return ``radius_m`` as float; raise :class:`InvalidInput` unless in (0, 100 km]."""
    if not (math.isfinite(radius_m) and 0 < radius_m <= 100_000):
        raise InvalidInput("radius_m must be in (0, 100000] metres", field="radius_m")
    return float(radius_m)


@dataclass(frozen=True)
class CountedFacilities:
    """The facilities a coverage answer counts, with a description of the rule.

    Attributes
    ----------
    lon, lat
        WGS-84 degrees.
    kind
        Facility kind per facility.
    summary
        ``kinds``, ``access`` (classes among the facilities the caller may see), ``status``
        (the statuses counted, ``["open"]`` by the status rule) and ``facilities`` (how many),
        JSON-ready; printed maps say it in words.
    """

    lon: FloatArray
    lat: FloatArray
    kind: NDArray[Any]
    summary: dict[str, Any]


def counted_facilities(index: FacilityIndex, where: FacilityFilter) -> CountedFacilities:
    """The facilities coverage figures count: exactly ``index.select(where)``.

    By the status rule (:mod:`finder.index.filters`) a default :class:`FacilityFilter` counts
    open facilities only (not temporarily closed ones) that its viewer may see; the API, the
    ``finder coverage / suggest / print`` commands and the printed maps all count through here.

    Parameters
    ----------
    index
        The facilities.
    where
        Which of them count (kinds, viewer, statuses, ...).
    """
    positions = index.select(where)
    lon, lat = index.lonlat(positions)
    kind, _access, _status = index.classes(positions)
    _kind, seen_access, _seen_status = index.classes(index.select(where.replace(kinds=None)))
    classes = {"public"} | set(seen_access.tolist())
    summary = {
        "kinds": [k for k in KINDS if where.kinds is None or k in where.kinds],
        "access": [a for a in ACCESS_CLASSES if a in classes],
        "status": [s for s in STATUSES if where.statuses is None or s in where.statuses],
        "facilities": int(positions.size),
    }
    return CountedFacilities(lon, lat, kind, summary)
