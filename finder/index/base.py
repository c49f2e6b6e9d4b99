"""The snapshot every query shares: facility columns, compiled filters, coordinate systems."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Hashable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from finder.facility_columns import FacilityColumns, canonical_crs
from finder.hours import HolidayCalendar, OpenState, state_at
from finder.index.filters import (
    FILTER_CACHE_SIZE,
    CompiledFilter,
    FacilityFilter,
    FilterFields,
    Positions,
    compile_static,
    filter_of,
    output_coords,
    region_mask,
    static_mask,
)
from finder.index.results import WALK_SPEED_M_S, NearestResult
from finder.index.trees import RTreeLayer, Searcher
from finder.lru import LRUCache
from geodata.crs import PLAIN_CRS, to_wgs84
from geodata.errors import (
    FacilityNotFound,
    InvalidOpeningHours,
    InvalidQuery,
)
from geodata.geodesy import check_point, check_points
from geodata.schema import (
    ACCESS_CLASSES,
    AMENITIES,
    AMENITY_BIT,
    COLUMNS,
    KINDS,
    STATUSES,
    Facility,
)
from geodata.store import facility_from_row

logger = logging.getLogger(__name__)

_OPEN_CACHE_SIZE = 64
#: Filter masks kept per snapshot (one byte per facility each).
_MASK_CACHE_SIZE = 32
#: How far (degrees) GCJ-02 / BD-09 coordinates may lie from WGS-84 ones, with margin.
_OBFUSCATION_PAD_DEG = 0.05

_CODE_OF_STATE = {OpenState.CLOSED: 0, OpenState.OPEN: 1, OpenState.UNKNOWN: 2}
_STATE_OF_CODE = {v: k for k, v in _CODE_OF_STATE.items()}
#: Bytes of one cKDTree node (``ckdtreenode``: split dim, split, children, bounds, counts).
_CKDTREE_NODE_BYTES = 72


def _amenities(c: FacilityColumns, i: int) -> str:
    bits = int(c.amenity_bits[i])
    return ";".join(a for a in AMENITIES if bits >> AMENITY_BIT[a] & 1)


#: The facility-frame fields the columns hold coded, each decoded at a position.
_CODED: dict[str, Callable[[FacilityColumns, int], Any]] = {
    "id": lambda c, i: str(c.ids[i]),
    "lon": lambda c, i: float(c.lon[i]),
    "lat": lambda c, i: float(c.lat[i]),
    "kind": lambda c, i: c.kind(i),
    "access": lambda c, i: ACCESS_CLASSES[(int(c.cls[i]) >> 2) & 3],
    "organization": lambda c, i: c.orgs[int(c.org[i])] if c.org[i] >= 0 else None,
    "status": lambda c, i: STATUSES[int(c.cls[i]) & 3],
    "amenities": _amenities,
    "star_rating": lambda c, i: int(c.stars[i]) if c.stars[i] > 0 else None,
    "opening_hours": lambda c, i: c.hours_exprs[int(c.hours[i])] if c.hours[i] >= 0 else None,
    "adcode": lambda c, i: c.adcodes[int(c.adcode[i])] if c.adcode[i] >= 0 else None,
}


class SinglePlan(NamedTuple):
    """How single nearest queries asking one question run on one snapshot."""

    #: The question, compiled for this snapshot (with its moment, if any).
    flt: CompiledFilter
    #: The KD-tree to search.
    searcher: Searcher
    #: Whether the tree's facilities still need the static filters (not yet a tree of its own).
    check_static: bool


class IndexBase:
    """Facility columns and what every query needs: filters, open states, coordinates."""

    def __init__(
        self,
        columns: FacilityColumns,
        *,
        calendar: HolidayCalendar | None = None,
        uids: NDArray[np.int64] | None = None,
        next_uid: int | None = None,
        rtree_layer: RTreeLayer | None = None,
    ) -> None:
        self._c = columns
        # The single query reads a few coordinates: a memory view gives Python floats directly.
        self._lon_at, self._lat_at = columns.lon.data, columns.lat.data
        n = len(columns)
        self._calendar = calendar
        self._uids = uids
        self._next_uid = n if next_uid is None else next_uid
        if columns.tree is None:
            self._searcher = Searcher.build(np.arange(n, dtype=np.int64), columns.lon, columns.lat)
        else:  # the table file's tree: its order is the index positions
            self._searcher = Searcher.of_tree(
                columns.tree.order, columns.tree, columns.lon, columns.lat
            )
        self._lock = threading.Lock()
        self._rtree_layer = rtree_layer
        self._uid_lookup: tuple[NDArray[np.int64], NDArray[np.int64]] | None = None
        # KD-trees over the facilities passing a filter: at most as many points as the main tree.
        self._subsets: LRUCache[Hashable, Searcher] = LRUCache(
            FILTER_CACHE_SIZE, weight=lambda s: s.size, max_weight=n
        )
        self._uses: dict[tuple[Any, ...], int] = {}
        # Single nearest queries' plans by filter keywords or ``where`` (see
        # ``NearestQueries._single_plan``); emptied whenever a subset tree is published.
        self._plans: dict[Hashable, SinglePlan] = {}
        self._filters: LRUCache[Hashable, CompiledFilter] = LRUCache(FILTER_CACHE_SIZE)
        self._masks: LRUCache[FacilityFilter, NDArray[np.bool_]] = LRUCache(_MASK_CACHE_SIZE)
        self._open_cache: LRUCache[datetime, NDArray[np.int8]] = LRUCache(_OPEN_CACHE_SIZE)
        self._frame: pd.DataFrame | None = None

    def __len__(self) -> int:
        return len(self._c)

    @property
    def ids(self) -> NDArray[np.str_]:
        """Facility ids in position order (sorted)."""
        return self._c.ids

    @property
    def columns(self) -> FacilityColumns:
        """The facility columns this index owns (read-only; position ``i`` is the ``i``-th id)."""
        return self._c

    @property
    def calendar(self) -> HolidayCalendar:
        """The holiday calendar used by ``open_at``."""
        if self._calendar is None:
            self._calendar = HolidayCalendar.default()
        return self._calendar

    def position_of(self, facility_id: str) -> int:
        """The position of a facility id in this snapshot.

        Raises
        ------
        FacilityNotFound
            When no facility has this id.
        """
        ids = self._c.ids
        at = int(np.searchsorted(ids, facility_id))
        if at < ids.size and ids[at] == facility_id:
            return at
        raise FacilityNotFound(f"no facility with id {facility_id!r}")

    def lonlat(
        self, positions: ArrayLike, *, crs: str = "wgs84"
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Locations of facilities (degrees) in coordinate system ``crs``."""
        pos = np.asarray(positions, dtype=np.int64)
        return self._output_coords(self._c.lon[pos], self._c.lat[pos], canonical_crs(crs))

    def classes(
        self, positions: ArrayLike
    ) -> tuple[NDArray[np.object_], NDArray[np.object_], NDArray[np.object_]]:
        """Kind, access class and status (names) of facilities, one array each."""
        code = self._c.cls[np.asarray(positions, dtype=np.int64)]
        return (
            np.array(KINDS, dtype=object)[code >> 4],
            np.array(ACCESS_CLASSES, dtype=object)[(code >> 2) & 3],
            np.array(STATUSES, dtype=object)[code & 3],
        )

    def record(self, position: int, names: Sequence[str] = COLUMNS) -> dict[str, Any]:
        """One facility as a facility-frame row (WGS-84 ``lon``/``lat``, ``;``-joined
        amenities), or just its fields ``names`` (each decoded only when asked for)."""
        c = self._c
        i = int(position)
        row: dict[str, Any] = {}
        for name in names:
            coded = _CODED.get(name)
            if coded is not None:
                row[name] = coded(c, i)
            else:
                values = c.extra.get(name)
                row[name] = None if values is None else values[i].as_py()
        return row

    def facility(self, position: int) -> Facility:
        """One facility as a validated :class:`Facility` model."""
        return facility_from_row(self.record(position))

    @property
    def frame(self) -> pd.DataFrame:
        """All facilities as a facility frame in position (id) order, built once on first use.

        The frame holds a Python object per facility and text cell: answers that need a few
        facilities use :meth:`record` instead.
        """
        if self._frame is None:
            self._frame = self._build_frame()
        return self._frame

    def _build_frame(self) -> pd.DataFrame:
        c = self._c

        def decoded(codes: NDArray[np.int32], vocabulary: tuple[str, ...]) -> NDArray[Any]:
            return np.array([*vocabulary, None], dtype=object)[codes]

        bits, inverse = np.unique(c.amenity_bits, return_inverse=True)
        amenity_text = np.array(
            [";".join(a for a in AMENITIES if int(b) >> AMENITY_BIT[a] & 1) for b in bits],
            dtype=object,
        )
        columns: dict[str, Any] = {name: None for name in COLUMNS}
        columns.update(
            {
                name: values.to_numpy(zero_copy_only=False)
                for name, values in c.extra.items()
                if name in columns
            }
        )
        columns.update(
            id=c.ids.astype(object),
            kind=np.array(KINDS, dtype=object)[c.cls >> 4],
            access=np.array(ACCESS_CLASSES, dtype=object)[(c.cls >> 2) & 3],
            status=np.array(STATUSES, dtype=object)[c.cls & 3],
            lon=c.lon,
            lat=c.lat,
            organization=decoded(c.org, c.orgs),
            opening_hours=decoded(c.hours, c.hours_exprs),
            adcode=decoded(c.adcode, c.adcodes),
            amenities=amenity_text[inverse.ravel()],
            star_rating=pd.array(np.where(c.stars > 0, c.stars, 0), dtype="Int64"),
        )
        frame = pd.DataFrame({name: columns[name] for name in COLUMNS}, index=range(len(c)))
        frame["star_rating"] = frame["star_rating"].mask(frame["star_rating"] == 0)
        return frame

    def open_states(self, positions: ArrayLike, when: datetime) -> list[OpenState]:
        """Whether each facility is open at ``when`` (naive = Asia/Shanghai local time)."""
        pos = np.asarray(positions, dtype=np.int64)
        states = self._expr_states(when, self._c.hours[pos])
        codes = self._c.hours[pos]
        out = [OpenState.UNKNOWN] * pos.size
        for j, code in enumerate(codes.tolist()):
            if code >= 0:
                out[j] = _STATE_OF_CODE[int(states[code])]
        return out

    def memory_bytes(self) -> dict[str, int]:
        """Bytes held by the numeric index structures, by part (not the text columns).

        ``coordinates`` are lon/lat (WGS-84) and the KD-tree's ECEF copy; ``kd_tree`` is its
        node array and permutation; ``filters`` the coded filter columns; ``rtree`` is not
        counted (built on first box/polygon query, held by libspatialindex).
        """
        c = self._c
        tree = self._searcher.tree
        nodes = int(tree.size) * _CKDTREE_NODE_BYTES
        return {
            "coordinates": c.lon.nbytes + c.lat.nbytes + tree.data.nbytes,
            "kd_tree": nodes
            + tree.indices.nbytes
            + self._searcher.positions.nbytes
            + self._searcher.grid.unit_radius_m.nbytes,
            "filters": c.cls.nbytes
            + c.amenity_bits.nbytes
            + c.stars.nbytes
            + c.org.nbytes
            + c.hours.nbytes
            + c.adcode.nbytes,
            "uids": 0 if self._uids is None else self._uids.nbytes,
        }

    def _where(self, where: FacilityFilter | None, filters: FilterFields) -> FacilityFilter:
        """The question of a query: ``where`` or the filter keywords (not both)."""
        if where is None:
            return filter_of(filters)
        if filters:
            raise InvalidQuery(
                f"give where= or filter keywords, not both ({', '.join(filters)})",
                field="filters",
            )
        return where

    def _compile(self, where: FacilityFilter) -> CompiledFilter:
        """``where``'s static part compiled for this snapshot (cached), with its moment."""
        key = where.static_key
        compiled = self._filters.get(key)
        if compiled is None:
            compiled = compile_static(self._c, where)
            self._filters.put(key, compiled)
        if where.open_at is None:
            return compiled
        return dataclasses.replace(compiled, open_at=where.open_at)

    def _static_mask(self, compiled: CompiledFilter, pos: Positions | None) -> NDArray[np.bool_]:
        return static_mask(self._c, compiled, pos)

    def _keep(self, where: FacilityFilter, pos: Positions) -> NDArray[np.int64]:
        """The positions of ``pos`` whose facilities pass ``where`` entirely."""
        pos = pos[self._static_mask(self._compile(where), pos)]
        if where.open_at is not None:
            pos = pos[self._open_keep(where.open_at, pos)]
        if where.has_region:
            pos = pos[region_mask(self._c, where, pos)]
        return pos.astype(np.int64, copy=False)

    def mask(self, where: FacilityFilter) -> NDArray[np.bool_]:
        """Which facilities pass ``where``: one boolean per position, read-only.

        Compiled once per filter and snapshot (the last few are kept). This is the answer every
        surface shares: the index queries, ``/nearest``, OGC items, maps and coverage select
        exactly these facilities for the same question.
        """
        cached = self._masks.get(where)
        if cached is None:
            cached = np.zeros(len(self), dtype=bool)
            cached[self._keep(where, self._candidates(where))] = True
            cached.flags.writeable = False
            self._masks.put(where, cached)
        return cached

    def select(self, where: FacilityFilter) -> NDArray[np.int64]:
        """Positions (id order) of the facilities passing ``where`` (see :meth:`mask`)."""
        return np.flatnonzero(self.mask(where)).astype(np.int64, copy=False)

    def _candidates(self, where: FacilityFilter) -> NDArray[np.int64]:
        """Positions that may pass ``where``'s region: from the R-tree, the adcodes or all."""
        c = self._c
        if where.bbox is not None or where.polygon is not None:
            if where.bbox is not None:
                min_lon, min_lat, max_lon, max_lat = where.bbox
            elif where.polygon is not None and not where.polygon.is_empty:
                min_lon, min_lat, max_lon, max_lat = (float(v) for v in where.polygon.bounds)
            else:
                return np.empty(0, np.int64)
            pad = 0.0 if where.crs in PLAIN_CRS else _OBFUSCATION_PAD_DEG
            uids = self._rtree().query(min_lon - pad, min_lat - pad, max_lon + pad, max_lat + pad)
            return self._positions_of_uids(uids)
        if where.adcodes is not None:
            wanted = [i for i, code in enumerate(c.adcodes) if code in where.adcodes]
            return np.flatnonzero(np.isin(c.adcode, wanted)).astype(np.int64)
        return np.arange(len(self), dtype=np.int64)

    def _rtree(self) -> RTreeLayer:
        with self._lock:
            if self._rtree_layer is None:
                uids = (
                    self._uids if self._uids is not None else np.arange(len(self), dtype=np.int64)
                )
                self._rtree_layer = RTreeLayer(uids, self._c.lon, self._c.lat)
                logger.debug("R-tree over %d facilities", uids.size)
            return self._rtree_layer

    def _positions_of_uids(self, uids: NDArray[np.int64]) -> NDArray[np.int64]:
        if self._uids is None:
            return np.unique(uids[uids < len(self)])
        with self._lock:
            if self._uid_lookup is None:
                order = np.argsort(self._uids, kind="stable")
                self._uid_lookup = (self._uids[order], order.astype(np.int64))
            sorted_uids, order = self._uid_lookup
        if not sorted_uids.size:
            return np.empty(0, np.int64)
        at = np.minimum(np.searchsorted(sorted_uids, uids), sorted_uids.size - 1)
        return np.unique(order[at[sorted_uids[at] == uids]])

    def _expr_states(self, when: datetime, codes: NDArray[np.int32]) -> NDArray[np.int8]:
        """Open-state codes of the hours expressions used by ``codes`` at ``when`` (cached)."""
        states = self._open_cache.get_or_build(
            when, lambda: np.full(len(self._c.hours_exprs), -1, dtype=np.int8)
        )
        used = codes[codes >= 0]
        if used.size and (states[used] < 0).any():
            calendar = self.calendar
            for code in np.unique(used[states[used] < 0]).tolist():
                try:
                    state = state_at(self._c.hours_exprs[code], when, calendar)
                except InvalidOpeningHours:
                    state = OpenState.UNKNOWN
                states[code] = _CODE_OF_STATE[state]
        return states

    def _open_keep(self, when: datetime, pos: Positions | None) -> NDArray[np.bool_]:
        codes = self._c.hours if pos is None else self._c.hours[pos]
        states = self._expr_states(when, codes)
        lut = np.append(states == _CODE_OF_STATE[OpenState.OPEN], False)
        return lut[codes]

    @staticmethod
    def _input_point(lon: float, lat: float, crs: str) -> tuple[float, float]:
        lon_f, lat_f = check_point(lon, lat)
        if crs in PLAIN_CRS:
            return lon_f, lat_f
        x, y = to_wgs84(np.array([lon_f]), np.array([lat_f]), crs)
        return float(np.asarray(x)[0]), float(np.asarray(y)[0])

    def _input_points(
        self, lon: ArrayLike, lat: ArrayLike, crs: str
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        lon_a, lat_a = check_points(lon, lat)
        if crs in PLAIN_CRS:
            return lon_a, lat_a
        x, y = to_wgs84(lon_a, lat_a, crs)
        return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)

    @staticmethod
    def _output_coords(
        lon: NDArray[np.float64], lat: NDArray[np.float64], crs: str
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        return output_coords(lon, lat, crs)

    def _results_of_rows(
        self, rows: list[tuple[float, int, float]], crs: str
    ) -> list[NearestResult]:
        if crs in PLAIN_CRS:
            id_at, lon_at, lat_at = self._c.ids.item, self._lon_at, self._lat_at
            return [
                NearestResult._make(
                    (id_at(p), p, d, b, d / WALK_SPEED_M_S, lon_at[p], lat_at[p], crs)
                )
                for d, p, b in rows
            ]
        pos = np.array([p for _d, p, _b in rows], dtype=np.int64)
        return self._results(
            pos,
            np.array([d for d, _p, _b in rows], dtype=np.float64),
            np.array([b for _d, _p, b in rows], dtype=np.float64),
            crs,
        )

    def _results(
        self,
        pos: Positions,
        dist: NDArray[np.float64],
        bearing: NDArray[np.float64],
        crs: str,
    ) -> list[NearestResult]:
        lon, lat = self._output_coords(self._c.lon[pos], self._c.lat[pos], crs)
        ids = self._c.ids[pos].tolist()
        return [
            NearestResult(fid, p, d, b, d / WALK_SPEED_M_S, x, y, crs)
            for fid, p, d, b, x, y in zip(
                ids,
                pos.tolist(),
                dist.tolist(),
                bearing.tolist(),
                lon.tolist(),
                lat.tolist(),
                strict=True,
            )
        ]
