"""Nearest and within queries: growing search balls certified by the geodesic bounds."""

from __future__ import annotations

import itertools
import logging
import math
import os
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar, Unpack

import numpy as np
from numpy.typing import ArrayLike, NDArray

from finder import geodesy
from finder.facility_columns import (
    canonical_crs,
)
from finder.index.base import IndexBase, SinglePlan
from finder.index.filters import (
    FILTER_CACHE_SIZE,
    CompiledFilter,
    FacilityFilter,
    FilterFields,
    Positions,
    fields_key,
)
from finder.index.results import BatchNearest, BatchWithin, NearestResult
from finder.index.trees import Searcher
from geodata.errors import (
    InvalidQuery,
)
from geodata.geodesy import GEOD

logger = logging.getLogger(__name__)
_Part = TypeVar("_Part")

#: Largest ``k`` a nearest query accepts.
MAX_K = 1000
#: A facility lies within a radius when its geodesic distance is at most the radius plus this
#: tolerance (one micrometre), which absorbs the round-off of the geodesic solver (nanometres):
#: a facility placed exactly on the radius with ``Geod.fwd`` counts as inside.
RADIUS_TOLERANCE_M = 1e-6

#: A nearest query whose search ball holds this many facilities without finding ``k`` that pass
#: the filters switches to a KD-tree over just the passing facilities.
_SUBSET_SWITCH_HITS = 4096
#: Single queries with the same filters this many times get a KD-tree of their own.
_PROMOTE_AFTER = 64
#: Up to this many candidates, geodesics go through pyproj's scalar path (same C routine).
_SCALAR_GEODESICS = 8
#: Up to this many candidates, chords are computed on Python floats.
_SCALAR_CHORDS = 16
#: The first search ball is sized by the density grid to hold ``_NEED_PER_K * (k + 1)``
#: facilities. The grid underestimates clustered places, so even this small figure usually
#: gives one to four facilities: each costs a geodesic, while a ball that holds too few simply
#: grows (one more ball query).
_NEED_PER_K = 0.35
#: Fewest batch queries per thread: below that, a thread costs more than it saves.
_PART_MIN = 4096
#: Guessed share of facilities open at a given moment, for sizing the first search ball.
_OPEN_SHARE_GUESS = 0.5


def _in_parts(work: Callable[[int, int], _Part], n: int) -> list[_Part]:
    """``work(lo, hi)`` over contiguous parts of ``range(n)``, one thread per CPU.

    For batch queries: the KD-tree search and the geodesics release the GIL, so the parts run in
    parallel; a batch smaller than :data:`_PART_MIN` per CPU runs in the calling thread.
    """
    count = max(1, min(os.cpu_count() or 1, n // _PART_MIN))
    if count == 1:
        return [work(0, n)]
    bounds = np.linspace(0, n, count + 1).astype(int).tolist()
    with ThreadPoolExecutor(count, thread_name_prefix="nearest-batch") as pool:
        return list(pool.map(work, bounds[:-1], bounds[1:]))


def _check_k(k: int) -> int:
    if k.__class__ is int and 1 <= k <= MAX_K:  # the usual case, without the checks below
        return k
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= int(k) <= MAX_K:
        raise InvalidQuery(f"k must be an integer in [1, {MAX_K}], not {k!r}", field="k")
    return int(k)


def _check_distance(value: float | None, field: str) -> float | None:
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidQuery(f"{field} must be a number of metres", field=field) from exc
    if not (math.isfinite(out) and out >= 0.0):
        raise InvalidQuery(f"{field} must be a finite distance >= 0 m, not {value!r}", field=field)
    return out


def _check_radius(radius_m: float) -> float:
    radius = _check_distance(radius_m, "radius_m")
    if radius is None:
        raise InvalidQuery("radius_m is required", field="radius_m")
    return radius


class NearestQueries(IndexBase):
    """Nearest / within queries, single and batch."""

    def _subset_searcher(self, flt: CompiledFilter) -> Searcher:
        """A KD-tree over the facilities passing the static filters (cached per filter)."""
        cached = self._subsets.get(flt.static_key)
        if cached is not None:
            return cached
        positions = np.flatnonzero(self._static_mask(flt, None)).astype(np.int64)
        searcher = Searcher.build(positions, self._c.lon[positions], self._c.lat[positions])
        logger.debug("KD-tree over the %d facilities passing a filter", positions.size)
        self._publish_subset(flt.static_key, searcher)
        return searcher

    def _region_searcher(self, where: FacilityFilter) -> Searcher:
        """A KD-tree over the facilities passing ``where`` (a region, no moment; cached)."""
        cached = self._subsets.get(where)
        if cached is None:
            positions = self.select(where)
            cached = Searcher.build(positions, self._c.lon[positions], self._c.lat[positions])
            self._publish_subset(where, cached)
        return cached

    def _publish_subset(self, key: Hashable, searcher: Searcher) -> None:
        """Keep a subset's KD-tree; the single-query plans are made again (it may evict one)."""
        self._subsets.put(key, searcher)
        self._plans = {}

    def _searcher_for_single(self, flt: CompiledFilter) -> tuple[Searcher, bool]:
        """The tree for a single query and whether its candidates still need the static filters.

        A filter combination asked :data:`_PROMOTE_AFTER` times gets its own KD-tree (built in a
        background thread, published when complete), so that the usual requests of a service
        search only the facilities they may see.
        """
        if flt.static_trivial:
            return self._searcher, False
        cached = self._subsets.get(flt.static_key)
        if cached is not None:
            return cached, False
        with self._lock:
            if len(self._uses) > FILTER_CACHE_SIZE:
                self._uses.clear()
            uses = self._uses.get(flt.static_key, 0) + 1
            self._uses[flt.static_key] = uses
        if uses == _PROMOTE_AFTER:
            # Built off the request path; queries use the main tree until it is ready.
            threading.Thread(
                target=self._subset_searcher, args=(flt,), name="filter-kd-tree", daemon=True
            ).start()
        return self._searcher, True

    def _searcher_for(self, where: FacilityFilter, flt: CompiledFilter) -> Searcher:
        """The KD-tree holding exactly the facilities that pass ``where`` (for batch queries)."""
        if where.open_at is None:
            if where.has_region:
                return self._region_searcher(where)
            return self._searcher if flt.static_trivial else self._subset_searcher(flt)
        positions = self.select(where)
        return Searcher.build(positions, self._c.lon[positions], self._c.lat[positions])

    def nearest(
        self,
        lon: float,
        lat: float,
        *,
        k: int = 1,
        crs: str = "wgs84",
        max_distance_m: float | None = None,
        where: FacilityFilter | None = None,
        **filters: Unpack[FilterFields],
    ) -> list[NearestResult]:
        """The ``k`` nearest facilities that pass the filters, nearest first.

        Parameters
        ----------
        lon, lat
            Query point in degrees, in coordinate system ``crs``.
        k
            How many facilities (1 to :data:`MAX_K`).
        crs
            Coordinate system of the query and of the returned ``lon``/``lat``.
        max_distance_m
            Keep only facilities at most this far (geodesic metres, inclusive).
        where, **filters
            Which facilities: a :class:`~finder.index.filters.FacilityFilter`, or its fields as
            keywords (``kinds=``, ``amenities=``, ``viewer=``, ...), not both.

        Returns
        -------
        list of NearestResult
            Up to ``k`` results ordered by geodesic distance, ties by id. Fewer than ``k`` only
            when fewer pass the filters within ``max_distance_m``.

        Raises
        ------
        InvalidCoordinate
            When ``lon``/``lat`` is not finite or out of range.
        InvalidQuery
            When ``k``, ``max_distance_m`` or a filter value is out of its domain.
        """
        crs_name = canonical_crs(crs)
        k = _check_k(k)
        max_d = (
            None if max_distance_m is None else _check_distance(max_distance_m, "max_distance_m")
        )
        if where is None:
            key: Hashable = fields_key(filters)
        else:
            key = None if filters else where  # both given: the plan says what is wrong
        try:
            plan = self._plans.get(key)
        except TypeError:  # an unhashable filter value: the filter says what is wrong
            plan, key = None, None
        if plan is None:
            plan = self._single_plan(where, filters, key)
        qlon, qlat = self._input_point(lon, lat, crs_name)
        rows = self._nearest_one(plan.searcher, qlon, qlat, k, plan.flt, plan.check_static, max_d)
        return self._results_of_rows(rows, crs_name)

    def _single_plan(
        self, where: FacilityFilter | None, filters: FilterFields, key: Hashable | None
    ) -> SinglePlan:
        """The compiled filter and tree of a single query, kept under ``key`` once final.

        A plan is final when its tree holds just the passing facilities or no filter applies;
        until a filter's own tree is published, every query goes through
        :meth:`_searcher_for_single`, which counts the uses that promote it.
        """
        where = self._where(where, filters)
        flt = self._compile(where)
        if where.has_region:
            searcher, check_static = self._region_searcher(where.replace(open_at=None)), False
        else:
            searcher, check_static = self._searcher_for_single(flt)
        plan = SinglePlan(flt, searcher, check_static)
        if key is not None and not check_static:
            plans = self._plans
            if len(plans) >= FILTER_CACHE_SIZE:
                plans.clear()
            plans[key] = plan
        return plan

    def _nearest_one(
        self,
        searcher: Searcher,
        qlon: float,
        qlat: float,
        k: int,
        flt: CompiledFilter | None,
        check_static: bool,
        max_d: float | None,
    ) -> list[tuple[float, int, float]]:
        """Exact k nearest in ``searcher`` by growing a search ball until the bounds certify it.

        Returns (distance_m, position, bearing_deg) rows, nearest first, ties by id.

        Facilities outside a ball of chord radius ``r`` have geodesic distance > ``r``; once the
        ``k``-th passing chord ``c_k`` has ``U(c_k) < r``, no facility outside can be nearer than
        the ``k``-th, and the geodesic is computed for the candidates with chord ``<= U(c_k)``.
        """
        positions = searcher.positions
        if not positions.size:
            return []
        if flt is None:
            check_static, open_at = False, None
        else:
            check_static = check_static and not flt.static_trivial
            open_at = flt.open_at
        exact_set = not check_static and open_at is None
        q_xyz = geodesy.ecef_point(qlon, qlat)
        q = np.array(q_xyz)
        limit = math.inf if max_d is None else max_d + RADIUS_TOLERANCE_M + geodesy.SLACK_M
        need = _NEED_PER_K * (k + 1)
        if check_static and flt is not None:
            need /= flt.pass_share
        if open_at is not None:
            need /= _OPEN_SHARE_GUESS
        r = searcher.grid.radius_m(qlon, qlat, need)
        tree = searcher.tree
        data = tree.data
        position_at, (x, y, z) = searcher.position_at, searcher.xyz
        largest = min(limit, 1.01 * geodesy.MAX_CHORD_M)
        last = min(limit, geodesy.MAX_CHORD_M)
        while True:
            r = min(r, largest)
            exhausted = r >= last
            # A numpy float: scipy takes it faster than a Python float (0.3 µs a call).
            hits: list[int] | NDArray[np.intp] = tree.query_ball_point(q, np.float64(r))
            n_hits = len(hits)
            if not exact_set and n_hits:
                hits = np.array(hits, dtype=np.intp)
                keep = np.ones(n_hits, dtype=bool)
                if check_static and flt is not None:
                    keep &= self._static_mask(flt, positions[hits])
                if open_at is not None:
                    keep &= self._open_keep(open_at, positions[hits])
                hits = hits[keep]
            n_pass = len(hits)
            if n_pass < k and not exhausted:
                if check_static and flt is not None and n_hits > _SUBSET_SWITCH_HITS:
                    subset = self._subset_searcher(flt)
                    return self._nearest_one(subset, qlon, qlat, k, flt, False, max_d)
                if n_pass == 0:
                    r *= 4.0 if n_hits == 0 else 2.0
                else:
                    r *= max(1.5, 1.2 * math.sqrt(k / n_pass))
                continue
            if n_pass == 0:
                return []
            if n_pass <= k:
                # Every hit is an answer, so its geodesic is needed anyway. Facilities outside
                # the ball lie farther than ``r`` on the ellipsoid too (the geodesic is never
                # shorter than the chord): a ``k``-th geodesic within ``r`` is certain without
                # chord bounds. More hits are ranked by their chords first (below): a chord on
                # Python floats costs a fraction of a geodesic.
                rows = self._geodesics_few(qlon, qlat, [position_at[h] for h in hits])
                if n_pass >= k and rows[k - 1][0] > r and not exhausted:
                    r = rows[k - 1][0] * (1.0 + 1e-9) + geodesy.SLACK_M
                    continue
                return self._within_max(rows[:k], max_d)
            if n_pass <= _SCALAR_CHORDS:
                # A few candidates (the usual case): plain floats beat numpy's per-call cost.
                chords = [math.dist(q_xyz, (x[h], y[h], z[h])) for h in hits]
                c_k = min(chords) if k == 1 else sorted(chords)[k - 1]  # here n_pass > k
            else:
                diff = data[hits] - q
                chord = np.sqrt(np.einsum("ij,ij->i", diff, diff))
                c_k = float(np.partition(chord, min(k, n_pass) - 1)[min(k, n_pass) - 1])
            bound = math.inf
            if n_pass >= k:
                bound = geodesy.geodesic_upper_bound_m(c_k)
                if bound >= r and not exhausted:
                    r = bound * (1.0 + 1e-9) + 1.0
                    continue
            if n_pass <= _SCALAR_CHORDS:
                near = [position_at[h] for h, c in zip(hits, chords, strict=True) if c <= bound]
                rows = self._geodesics_few(qlon, qlat, near)
                return self._within_max(rows[:k], max_d)
            return self._ranked(qlon, qlat, positions[np.asarray(hits)[chord <= bound]], k, max_d)

    def _geodesics_few(
        self, qlon: float, qlat: float, pos: list[int]
    ) -> list[tuple[float, int, float]]:
        """(distance_m, position, bearing_deg) of a few positions, nearest first, ties by id.

        On pyproj's scalar path, which skips the array set-up (same C routine as the arrays).
        """
        lon_at, lat_at, inv = self._lon_at, self._lat_at, GEOD.inv
        if len(pos) == 1:  # the usual case: nothing to sort
            p = pos[0]
            az12, _az21, dist = inv(qlon, qlat, lon_at[p], lat_at[p])
            return [(dist, p, az12 % 360.0)]
        rows = []
        for p in pos:
            az12, _az21, dist = inv(qlon, qlat, lon_at[p], lat_at[p])
            rows.append((dist, p, az12 % 360.0))
        rows.sort()
        return rows

    def _ranked(
        self, qlon: float, qlat: float, pos: Positions, k: int, max_d: float | None
    ) -> list[tuple[float, int, float]]:
        """(distance_m, position, bearing_deg) of the ``k`` nearest of ``pos``, ties by id."""
        if pos.size <= _SCALAR_GEODESICS:
            return self._within_max(self._geodesics_few(qlon, qlat, pos.tolist())[:k], max_d)
        dist_a, bearing_a = geodesy.geodesic_from(qlon, qlat, self._c.lon[pos], self._c.lat[pos])
        order = np.lexsort((pos, dist_a))[:k]
        rows = list(
            zip(
                dist_a[order].tolist(),
                pos[order].tolist(),
                bearing_a[order].tolist(),
                strict=True,
            )
        )
        return self._within_max(rows, max_d)

    @staticmethod
    def _within_max(
        rows: list[tuple[float, int, float]], max_d: float | None
    ) -> list[tuple[float, int, float]]:
        if max_d is None:
            return rows
        return [row for row in rows if row[0] <= max_d + RADIUS_TOLERANCE_M]

    def nearest_batch(
        self,
        lon: ArrayLike,
        lat: ArrayLike,
        *,
        k: int = 1,
        crs: str = "wgs84",
        max_distance_m: float | None = None,
        where: FacilityFilter | None = None,
        **filters: Unpack[FilterFields],
    ) -> BatchNearest:
        """The ``k`` nearest passing facilities of many query points at once.

        Same parameters and answers as :meth:`nearest`, for arrays ``lon``/``lat`` (degrees in
        ``crs``); see :class:`BatchNearest` for the layout. Exact: equal to :meth:`nearest` for
        every point.

        Raises
        ------
        InvalidCoordinate, InvalidQuery
            As :meth:`nearest`; the message names the first bad element.
        """
        crs_name = canonical_crs(crs)
        k = _check_k(k)
        max_d = _check_distance(max_distance_m, "max_distance_m")
        where = self._where(where, filters)
        flt = self._compile(where)
        qlon, qlat = self._input_points(lon, lat, crs_name)
        searcher = self._searcher_for(where, flt)
        return self._nearest_many(searcher, qlon, qlat, k, max_d)

    def _nearest_many(
        self,
        searcher: Searcher,
        qlon: NDArray[np.float64],
        qlat: NDArray[np.float64],
        k: int,
        max_d: float | None,
    ) -> BatchNearest:
        n = qlon.size
        positions = np.full((n, k), -1, dtype=np.int64)
        distance = np.full((n, k), np.nan, dtype=np.float64)
        if n == 0 or searcher.size == 0:
            return BatchNearest(positions, distance)
        order = geodesy.spatial_order(qlon, qlat) if n > 64 else np.arange(n)
        slon, slat = qlon[order], qlat[order]
        limit = math.inf if max_d is None else max_d + RADIUS_TOLERANCE_M + geodesy.SLACK_M
        size = searcher.size

        def part(lo: int, hi: int) -> tuple[NDArray[np.float64], Positions, NDArray[np.float64]]:
            """Chords, positions and geodesics of the ``k + 1`` nearest of queries lo..hi."""
            chord, tidx = searcher.tree.query(
                geodesy.ecef_from_lonlat(slon[lo:hi], slat[lo:hi]),
                k=k + 1,
                distance_upper_bound=limit,
            )
            found = tidx[:, :k] < size
            pos = np.where(found, searcher.positions[np.minimum(tidx[:, :k], size - 1)], -1)
            rows, cols = np.nonzero(found)
            dist = np.full((hi - lo, k), np.inf)
            dist[rows, cols], _bearing = geodesy.geodesic_inverse(
                slon[lo:hi][rows],
                slat[lo:hi][rows],
                self._c.lon[pos[rows, cols]],
                self._c.lat[pos[rows, cols]],
            )
            return chord, pos.astype(np.int64, copy=False), dist

        parts = _in_parts(part, n)
        chord = np.concatenate([p[0] for p in parts])
        pos = np.concatenate([p[1] for p in parts])
        dist = np.concatenate([p[2] for p in parts])
        bound = geodesy.geodesic_upper_bounds_m(chord[:, k - 1])
        ambiguous = np.isfinite(chord[:, k]) & (chord[:, k] <= bound)
        if max_d is not None:
            outside = dist > max_d + RADIUS_TOLERANCE_M
            dist[outside] = np.inf
            pos[outside] = -1
        if k > 1:
            tie_key = np.where(pos >= 0, pos, np.iinfo(np.int64).max)
            sort = np.lexsort((tie_key, dist), axis=1)
            pos = np.take_along_axis(pos, sort, axis=1)
            dist = np.take_along_axis(dist, sort, axis=1)
        for row in np.flatnonzero(ambiguous).tolist():
            exact = self._nearest_one(
                searcher, float(slon[row]), float(slat[row]), k, None, False, max_d
            )
            pos[row] = -1
            dist[row] = np.inf
            pos[row, : len(exact)] = [p for _d, p, _b in exact]
            dist[row, : len(exact)] = [d for d, _p, _b in exact]
        dist[pos < 0] = np.nan
        positions[order] = pos
        distance[order] = dist
        return BatchNearest(positions, distance)

    def within(
        self,
        lon: float,
        lat: float,
        radius_m: float,
        *,
        crs: str = "wgs84",
        where: FacilityFilter | None = None,
        limit: int | None = None,
        **filters: Unpack[FilterFields],
    ) -> list[NearestResult]:
        """Every passing facility within ``radius_m`` geodesic metres (inclusive), nearest first.

        A facility exactly on the circle counts as inside (see :data:`RADIUS_TOLERANCE_M`).
        ``limit`` keeps only the nearest ``limit`` results. Other parameters as :meth:`nearest`.

        Raises
        ------
        InvalidCoordinate, InvalidQuery
            For a bad point, a negative or non-finite radius, or a bad filter.
        """
        crs_name = canonical_crs(crs)
        radius = _check_radius(radius_m)
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            raise InvalidQuery(f"limit must be an integer >= 0, not {limit!r}", field="limit")
        where = self._where(where, filters)
        qlon, qlat = self._input_point(lon, lat, crs_name)
        q = np.array(geodesy.ecef_point(qlon, qlat))
        searcher = self._searcher
        hits = searcher.tree.query_ball_point(q, radius + RADIUS_TOLERANCE_M + geodesy.SLACK_M)
        pos = self._keep(where, searcher.positions[np.array(hits, dtype=np.intp)])
        dist, bearing = geodesy.geodesic_from(qlon, qlat, self._c.lon[pos], self._c.lat[pos])
        inside = dist <= radius + RADIUS_TOLERANCE_M
        pos, dist, bearing = pos[inside], dist[inside], bearing[inside]
        order = np.lexsort((pos, dist))[:limit]
        return self._results(pos[order], dist[order], bearing[order], crs_name)

    def within_batch(
        self,
        lon: ArrayLike,
        lat: ArrayLike,
        radius_m: float,
        *,
        crs: str = "wgs84",
        where: FacilityFilter | None = None,
        **filters: Unpack[FilterFields],
    ) -> BatchWithin:
        """:meth:`within` for arrays of points (degrees in ``crs``); see :class:`BatchWithin`."""
        crs_name = canonical_crs(crs)
        radius = _check_radius(radius_m)
        where = self._where(where, filters)
        flt = self._compile(where)
        qlon, qlat = self._input_points(lon, lat, crs_name)
        searcher = self._searcher_for(where, flt)
        n = qlon.size
        if n == 0 or searcher.size == 0:
            return BatchWithin(
                np.zeros(n + 1, np.int64), np.empty(0, np.int64), np.empty(0, np.float64)
            )
        hits = searcher.tree.query_ball_point(
            geodesy.ecef_from_lonlat(qlon, qlat),
            radius + RADIUS_TOLERANCE_M + geodesy.SLACK_M,
            workers=-1,
        )
        lengths = np.fromiter(map(len, hits), dtype=np.int64, count=n)
        flat = np.fromiter(itertools.chain.from_iterable(hits), dtype=np.intp)
        rows = np.repeat(np.arange(n), lengths)
        pos = searcher.positions[flat]
        dist, _bearing = geodesy.geodesic_inverse(
            qlon[rows], qlat[rows], self._c.lon[pos], self._c.lat[pos]
        )
        inside = dist <= radius + RADIUS_TOLERANCE_M
        rows, pos, dist = rows[inside], pos[inside], dist[inside]
        order = np.lexsort((pos, dist, rows))
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n), out=offsets[1:])
        return BatchWithin(offsets, pos[order].astype(np.int64), dist[order])
