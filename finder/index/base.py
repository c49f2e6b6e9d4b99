"""The snapshot every query shares: facility columns, compiled filters, coordinate systems."""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from finder.facility_columns import (
    PLAIN_CRS,
    FacilityColumns,
    canonical_crs,
    check_point,
    check_points,
)
from finder.hours import HolidayCalendar, OpenState, state_at
from finder.index.filters import (
    FILTER_CACHE_SIZE,
    SHARE_SAMPLE,
    CompiledFilter,
    amenity_mask,
    filter_key,
    vocabulary_lut,
)
from finder.index.results import WALK_SPEED_M_S, NearestResult
from finder.index.trees import Positions, RTreeLayer, Searcher
from geodata.crs import from_wgs84, to_wgs84
from geodata.errors import (
    FacilityNotFound,
    InvalidOpeningHours,
    InvalidQuery,
)
from geodata.schema import (
    ACCESS_CLASSES,
    AMENITIES,
    AMENITY_BIT,
    COLUMNS,
    KINDS,
    STATUSES,
    Facility,
    Viewer,
)
from geodata.store import facility_from_row

_OPEN_CACHE_SIZE = 64

_CODE_OF_STATE = {OpenState.CLOSED: 0, OpenState.OPEN: 1, OpenState.UNKNOWN: 2}
_STATE_OF_CODE = {v: k for k, v in _CODE_OF_STATE.items()}
#: Bytes of one cKDTree node (``ckdtreenode``: split dim, split, children, bounds, counts).
_CKDTREE_NODE_BYTES = 72


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
        n = len(columns)
        self._calendar = calendar
        self._uids = uids
        self._next_uid = n if next_uid is None else next_uid
        self._searcher = Searcher.build(np.arange(n, dtype=np.int64), columns.lon, columns.lat)
        self._lock = threading.Lock()
        self._rtree_layer = rtree_layer
        self._uid_lookup: tuple[NDArray[np.int64], NDArray[np.int64]] | None = None
        self._subsets: OrderedDict[tuple[Any, ...], Searcher] = OrderedDict()
        self._uses: dict[tuple[Any, ...], int] = {}
        self._filters: OrderedDict[tuple[Any, ...], CompiledFilter] = OrderedDict()
        self._open_cache: OrderedDict[datetime, NDArray[np.int8]] = OrderedDict()
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

    def record(self, position: int) -> dict[str, Any]:
        """One facility as a facility-frame row (WGS-84 ``lon``/``lat``, ``;``-joined amenities)."""
        c = self._c
        i = int(position)
        bits = int(c.amenity_bits[i])
        row: dict[str, Any] = {name: None for name in COLUMNS}
        for name, values in c.extra.items():
            row[name] = values[i].as_py()
        row.update(
            id=str(c.ids[i]),
            lon=float(c.lon[i]),
            lat=float(c.lat[i]),
            kind=c.kind(i),
            access=ACCESS_CLASSES[(int(c.cls[i]) >> 2) & 3],
            organization=c.orgs[int(c.org[i])] if c.org[i] >= 0 else None,
            status=STATUSES[int(c.cls[i]) & 3],
            amenities=";".join(a for a in AMENITIES if bits >> AMENITY_BIT[a] & 1),
            star_rating=int(c.stars[i]) if c.stars[i] > 0 else None,
            opening_hours=c.hours_exprs[int(c.hours[i])] if c.hours[i] >= 0 else None,
            adcode=c.adcodes[int(c.adcode[i])] if c.adcode[i] >= 0 else None,
        )
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
            + self._searcher.grid.counts.nbytes,
            "filters": c.cls.nbytes
            + c.amenity_bits.nbytes
            + c.stars.nbytes
            + c.org.nbytes
            + c.hours.nbytes
            + c.adcode.nbytes,
            "uids": 0 if self._uids is None else self._uids.nbytes,
        }

    def _compile(
        self,
        kinds: Iterable[str] | str | None,
        amenities: Iterable[str] | str | None,
        access: Iterable[str] | str | None,
        open_at: datetime | None,
        min_stars: int | None,
        statuses: Iterable[str] | str | None,
        viewer: Viewer,
    ) -> CompiledFilter:
        if open_at is not None and not isinstance(open_at, datetime):
            raise InvalidQuery("open_at must be a datetime", field="open_at")
        kinds_k, amenities_k, access_k = (
            filter_key(kinds),
            filter_key(amenities),
            filter_key(access),
        )
        statuses_k = filter_key(statuses)
        key = (kinds_k, amenities_k, access_k, min_stars, statuses_k, viewer)
        try:
            cached = self._filters.get(key)
        except TypeError as exc:
            raise InvalidQuery(f"unusable filter value: {exc}", field="filters") from exc
        if cached is None:
            cached = self._compile_static(
                kinds_k, amenities_k, access_k, min_stars, statuses_k, viewer
            )
            with self._lock:
                self._filters[key] = cached
                if len(self._filters) > FILTER_CACHE_SIZE:
                    self._filters.popitem(last=False)
        if open_at is None:
            return cached
        return dataclasses.replace(cached, open_at=open_at)

    def _compile_static(
        self,
        kinds: Iterable[str] | str | None,
        amenities: Iterable[str] | str | None,
        access: Iterable[str] | str | None,
        min_stars: int | None,
        statuses: Iterable[str] | str | None,
        viewer: Viewer,
    ) -> CompiledFilter:
        kind_ok = vocabulary_lut(kinds, KINDS, "kinds")
        status_ok = vocabulary_lut(statuses, STATUSES, "statuses")
        access_ok = vocabulary_lut(access, ACCESS_CLASSES, "access")
        if min_stars is not None and (
            isinstance(min_stars, bool) or not isinstance(min_stars, int) or not 1 <= min_stars <= 5
        ):
            raise InvalidQuery(f"min_stars must be 1-5, not {min_stars!r}", field="min_stars")
        bits = amenity_mask(amenities)
        lookup = {name: i for i, name in enumerate(self._c.orgs)}
        org_codes = np.array(
            sorted(lookup[o] for o in viewer.organizations if o in lookup), dtype=np.int32
        )
        cls_any = np.zeros(64, dtype=bool)
        cls_org = np.zeros(64, dtype=bool)
        for k_code in range(len(KINDS)):
            for a_code, access_name in enumerate(ACCESS_CLASSES):
                for s_code in range(len(STATUSES)):
                    chosen = (
                        (kind_ok is None or bool(kind_ok[k_code]))
                        and (status_ok is None or bool(status_ok[s_code]))
                        and (access_ok is None or bool(access_ok[a_code]))
                    )
                    code = k_code << 4 | a_code << 2 | s_code
                    # Viewer.may_see without the organisation, then with one of the viewer's.
                    cls_any[code] = chosen and viewer.may_see(access_name, None)
                    cls_org[code] = (
                        chosen
                        and not cls_any[code]
                        and access_name != "public"
                        and bool(org_codes.size)
                    )
        used = np.zeros(64, dtype=bool)
        used[np.unique(self._c.cls)] = True
        stars = 0 if min_stars is None else int(min_stars)
        trivial = bool(cls_any[used].all()) and bits == 0 and stars == 0
        key = (cls_any.tobytes(), cls_org.tobytes(), org_codes.tobytes(), bits, stars)
        flt = CompiledFilter(cls_any, cls_org, org_codes, bits, stars, None, key, trivial, 1.0)
        if trivial or not len(self):
            return flt
        # The share of facilities passing, from an evenly spaced sample: sizes the first ball.
        sample = np.arange(0, len(self), max(1, len(self) // SHARE_SAMPLE), dtype=np.int64)
        share = float(self._static_mask(flt, sample).mean())
        return dataclasses.replace(flt, pass_share=max(share, 1.0 / SHARE_SAMPLE))

    def _static_mask(self, flt: CompiledFilter, pos: Positions | None) -> NDArray[np.bool_]:
        c = self._c
        cls = c.cls if pos is None else c.cls[pos]
        mask = flt.cls_any[cls]
        if flt.org_codes.size:
            org = c.org if pos is None else c.org[pos]
            mask |= flt.cls_org[cls] & np.isin(org, flt.org_codes)
        if flt.amenity_bits:
            want = np.uint32(flt.amenity_bits)
            bits = c.amenity_bits if pos is None else c.amenity_bits[pos]
            mask &= (bits & want) == want
        if flt.min_stars:
            stars = c.stars if pos is None else c.stars[pos]
            mask &= stars >= flt.min_stars
        return mask

    def _expr_states(self, when: datetime, codes: NDArray[np.int32]) -> NDArray[np.int8]:
        """Open-state codes of the hours expressions used by ``codes`` at ``when`` (cached)."""
        with self._lock:
            states = self._open_cache.get(when)
            if states is None:
                states = np.full(len(self._c.hours_exprs), -1, dtype=np.int8)
                self._open_cache[when] = states
                if len(self._open_cache) > _OPEN_CACHE_SIZE:
                    self._open_cache.popitem(last=False)
            else:
                self._open_cache.move_to_end(when)
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

    def _passing(self, flt: CompiledFilter) -> NDArray[np.int64]:
        mask = self._static_mask(flt, None)
        if flt.open_at is not None:
            mask &= self._open_keep(flt.open_at, None)
        return np.flatnonzero(mask).astype(np.int64)

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
        if crs in PLAIN_CRS or lon.size == 0:
            return lon, lat
        x, y = from_wgs84(lon, lat, crs)
        return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)

    def _results_of_rows(
        self, rows: list[tuple[float, int, float]], crs: str
    ) -> list[NearestResult]:
        ids, lon, lat = self._c.ids, self._c.lon, self._c.lat
        if crs in PLAIN_CRS:
            return [
                NearestResult(
                    str(ids[p]), p, d, b, d / WALK_SPEED_M_S, float(lon[p]), float(lat[p]), crs
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
