"""The facility index: exact nearest / within / bounding-box / polygon queries on the ellipsoid.

:class:`FacilityIndex` is an immutable snapshot of the facilities, built from a facility frame, a
GeoDataFrame, a store or plain arrays. It answers

* :meth:`FacilityIndex.nearest` - the ``k`` nearest facilities that pass the filters;
* :meth:`FacilityIndex.within` - every passing facility within a radius, nearest first;
* :meth:`FacilityIndex.in_bbox`, :meth:`FacilityIndex.in_polygon`,
  :meth:`FacilityIndex.in_district` - facilities in a box, a polygon or an administrative unit;
* :meth:`FacilityIndex.nearest_batch`, :meth:`FacilityIndex.within_batch` - the same for arrays
  of points (analytics, coverage).

Distances are geodesic distances on the WGS-84 ellipsoid (pyproj ``Geod``), and the order is the
order of those distances, ties broken by facility id: every answer equals a brute-force geodesic
search over all facilities. Which structure answers which question, and why the answers are
exact, is explained in ``docs/index.md``; the bounds that make it exact are in
:mod:`finder.geodesy`.

:class:`LiveIndex` holds the current snapshot for a service: an update builds a new snapshot and
swaps it in with one reference assignment, so a reader sees either the old or the new index,
never a half-built one, and the next query after an update sees the update.

Coordinates are WGS-84 longitude/latitude in degrees inside; queries take and results give
coordinates in the system the caller names (``"wgs84"``, ``"cgcs2000"``, ``"gcj02"``,
``"bd09"``).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import rtree
import shapely
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

from finder import geodesy
from finder.facility_columns import (
    PLAIN_CRS,
    FacilityColumns,
    canonical_crs,
    check_point,
    check_points,
    columns_from_arrays,
    columns_from_frame,
    is_missing,
    merge_columns,
)
from finder.hours import HolidayCalendar, OpenState, state_at
from geodata.crs import from_wgs84, to_wgs84
from geodata.errors import (
    FacilityNotFound,
    InvalidCoordinate,
    InvalidInput,
    InvalidOpeningHours,
    InvalidQuery,
)
from geodata.schema import (
    ACCESS_CLASSES,
    AMENITIES,
    AMENITY_BIT,
    ANONYMOUS,
    COLUMNS,
    KINDS,
    STATUSES,
    Facility,
    Viewer,
)
from geodata.store import facility_from_row

logger = logging.getLogger(__name__)

#: Walking speed behind ``walk_s_est``: 4.8 km/h, straight line, no detour factor.
WALK_SPEED_M_S = 4.8 / 3.6
#: Largest ``k`` a nearest query accepts.
MAX_K = 1000
#: A facility lies within a radius when its geodesic distance is at most the radius plus this
#: tolerance (one micrometre), which absorbs the round-off of the geodesic solver (nanometres):
#: a facility placed exactly on the radius with ``Geod.fwd`` counts as inside.
RADIUS_TOLERANCE_M = 1e-6
#: Statuses a query keeps unless told otherwise: closed and temporarily closed rooms are hidden.
DEFAULT_STATUSES: tuple[str, ...] = ("open",)

#: Facility positions inside the index (int32 below 2**31 facilities, else int64).
_Positions = NDArray[np.signedinteger[Any]]

#: How far (degrees) GCJ-02 / BD-09 coordinates may lie from WGS-84 ones, with margin.
_OBFUSCATION_PAD_DEG = 0.05
#: KD-tree leaf size: 32 keeps the build fast and the nodes small.
_LEAF_SIZE = 32
#: A nearest query whose search ball holds this many facilities without finding ``k`` that pass
#: the filters switches to a KD-tree over just the passing facilities.
_SUBSET_SWITCH_HITS = 4096
#: Single queries with the same filters this many times get a KD-tree of their own.
_PROMOTE_AFTER = 64
_FILTER_CACHE_SIZE = 256
_SHARE_SAMPLE = 2048
#: Up to this many candidates, geodesics go through pyproj's scalar path (same C routine).
_SCALAR_GEODESICS = 8
#: Guessed share of facilities open at a given moment, for sizing the first search ball.
_OPEN_SHARE_GUESS = 0.5
_OPEN_CACHE_SIZE = 64
_RTREE_STALE_SHARE = 0.5
_METRES_PER_DEGREE = 111_195.0


# --- results ------------------------------------------------------------------------------------


class NearestResult(NamedTuple):
    """One facility found by a query, seen from the query point (an immutable named tuple).

    Attributes
    ----------
    facility_id
        The facility's id.
    position
        Its position in this index snapshot (for :meth:`FacilityIndex.record`); positions change
        when the index is rebuilt, ids do not.
    distance_m
        Geodesic distance on the WGS-84 ellipsoid, metres.
    bearing_deg
        Forward azimuth from the query point to the facility, degrees clockwise from north.
    walk_s_est
        Straight-line walking time estimate, seconds: ``distance_m / WALK_SPEED_M_S``, with no
        detour factor (a walking route is ``finder.walk``'s job).
    lon, lat
        The facility's location in ``crs``, degrees.
    crs
        The coordinate system of ``lon``/``lat``: the one the caller asked for.
    """

    facility_id: str
    position: int
    distance_m: float
    bearing_deg: float
    walk_s_est: float
    lon: float
    lat: float
    crs: str


@dataclass(frozen=True, slots=True)
class BatchNearest:
    """Answers of :meth:`FacilityIndex.nearest_batch`, one row per query point.

    ``positions[i, j]`` is the position of the ``j``-th nearest passing facility of query ``i``
    (``-1`` where fewer than ``k`` exist within ``max_distance_m``) and ``distance_m[i, j]`` its
    geodesic distance in metres (NaN there). Rows are ordered by distance, ties by facility id.
    """

    positions: NDArray[np.int64]
    distance_m: NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class BatchWithin:
    """Answers of :meth:`FacilityIndex.within_batch` in compressed-row form.

    The facilities of query ``i`` are ``positions[offsets[i]:offsets[i + 1]]`` with geodesic
    distances ``distance_m[offsets[i]:offsets[i + 1]]`` (metres), nearest first, ties by id.
    """

    offsets: NDArray[np.int64]
    positions: NDArray[np.int64]
    distance_m: NDArray[np.float64]

    def counts(self) -> NDArray[np.int64]:
        """How many facilities each query point has within the radius."""
        return np.diff(self.offsets)


# --- validation helpers -------------------------------------------------------------------------


def _check_k(k: int) -> int:
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


def _key(values: Iterable[str] | str | None) -> tuple[str, ...] | str | None:
    if values is None or isinstance(values, str):
        return values
    return tuple(values)


def _vocabulary_lut(
    values: Iterable[str] | str | None, vocabulary: Sequence[str], field: str
) -> NDArray[np.bool_] | None:
    if values is None:
        return None
    chosen = {values} if isinstance(values, str) else set(values)
    unknown = sorted(chosen.difference(vocabulary))
    if unknown:
        raise InvalidQuery(
            f"unknown {field} {unknown}; known: {', '.join(vocabulary)}", field=field
        )
    return np.array([v in chosen for v in vocabulary], dtype=bool)


def _amenity_mask(amenities: Iterable[str] | str | None) -> int:
    if amenities is None:
        return 0
    chosen = [amenities] if isinstance(amenities, str) else list(amenities)
    unknown = sorted(set(chosen).difference(AMENITY_BIT))
    if unknown:
        raise InvalidQuery(
            f"unknown amenities {unknown}; known: {', '.join(AMENITIES)}", field="amenities"
        )
    bits = 0
    for name in chosen:
        bits |= 1 << AMENITY_BIT[name]
    return bits


# --- filters ------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Filter:
    """A compiled set of query filters, bound to one index snapshot's vocabularies."""

    cls_any: NDArray[np.bool_]
    cls_org: NDArray[np.bool_]
    org_codes: NDArray[np.int32]
    amenity_bits: int
    min_stars: int
    open_at: datetime | None
    static_key: tuple[Any, ...]
    static_trivial: bool
    pass_share: float


# --- search structures --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _DensityGrid:
    """Facility counts on a lon/lat grid, to guess a search radius that holds ``need`` points."""

    lon0: float
    lat0: float
    dlon: float
    dlat: float
    nx: int
    ny: int
    counts: NDArray[np.int32]

    @classmethod
    def build(cls, lon: NDArray[np.float64], lat: NDArray[np.float64]) -> _DensityGrid:
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
        cell_w = self.dlon * _METRES_PER_DEGREE * max(math.cos(math.radians(lat)), 0.01)
        cell_h = self.dlat * _METRES_PER_DEGREE
        ix = int((lon - self.lon0) // self.dlon)
        iy = int((lat - self.lat0) // self.dlat)
        if 0 <= ix < self.nx and 0 <= iy < self.ny:
            count = int(self.counts[iy * self.nx + ix])
            if count:
                return max(1.0, math.sqrt(need * cell_w * cell_h / (math.pi * count)) * 1.3)
        return max(cell_w, cell_h)


@dataclass(frozen=True, eq=False)
class _Searcher:
    """A KD-tree over ECEF points of some facilities, with their index positions."""

    tree: cKDTree
    positions: _Positions
    grid: _DensityGrid

    @classmethod
    def build(
        cls, positions: NDArray[np.int64], lon: NDArray[np.float64], lat: NDArray[np.float64]
    ) -> _Searcher:
        order = geodesy.spatial_order(lon, lat)
        positions = positions[order].astype(np.int32 if positions.size < 2**31 else np.int64)
        xyz = geodesy.ecef_from_lonlat(lon[order], lat[order])
        tree = cKDTree(xyz, leafsize=_LEAF_SIZE, balanced_tree=False, compact_nodes=False)
        return cls(tree, positions, _DensityGrid.build(lon, lat))

    @property
    def size(self) -> int:
        return int(self.positions.size)


class _RTreeLayer:
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


# --- the index ----------------------------------------------------------------------------------


class FacilityIndex:
    """An immutable, queryable snapshot of facilities.

    Build one with :meth:`from_frame`, :meth:`from_geodataframe`, :meth:`from_store` or
    :meth:`from_arrays`; derive an updated snapshot with :meth:`with_changes`. All queries are
    thread-safe.

    Every query takes the same filters:

    kinds
        Facility kinds to keep (:data:`geodata.schema.KINDS`); ``None`` keeps all.
    amenities
        Amenities a facility must all have (:data:`geodata.schema.AMENITIES`).
    access
        Access classes to keep (:data:`geodata.schema.ACCESS_CLASSES`), on top of what
        ``viewer`` may see.
    open_at
        Keep only facilities open at this moment (naive = Asia/Shanghai local time) according to
        their OSM ``opening_hours`` and the holiday calendar; unknown hours, dates the calendar
        does not cover and unparseable hours do not count as open.
    min_stars
        Keep only facilities rated at least this many stars (unrated ones are dropped).
    statuses
        Statuses to keep; default ``("open",)`` hides closed and temporarily closed rooms.
    viewer
        Who asks: anonymous callers see ``public`` facilities only (see
        :meth:`geodata.schema.Viewer.may_see`).

    Examples
    --------
    >>> index = FacilityIndex.from_arrays(["a", "b"], [121.47, 121.50], [31.23, 31.24],
    ...                                   kinds=["mother_room", "worker_station"])
    >>> [r.facility_id for r in index.nearest(121.48, 31.23, k=2)]
    ['a', 'b']
    """

    def __init__(
        self,
        columns: FacilityColumns,
        *,
        calendar: HolidayCalendar | None = None,
        uids: NDArray[np.int64] | None = None,
        next_uid: int | None = None,
        rtree_layer: _RTreeLayer | None = None,
    ) -> None:
        self._c = columns
        n = len(columns)
        self._calendar = calendar
        self._uids = uids
        self._next_uid = n if next_uid is None else next_uid
        self._searcher = _Searcher.build(np.arange(n, dtype=np.int64), columns.lon, columns.lat)
        self._lock = threading.Lock()
        self._rtree_layer = rtree_layer
        self._uid_lookup: tuple[NDArray[np.int64], NDArray[np.int64]] | None = None
        self._subsets: OrderedDict[tuple[Any, ...], _Searcher] = OrderedDict()
        self._uses: dict[tuple[Any, ...], int] = {}
        self._filters: OrderedDict[tuple[Any, ...], _Filter] = OrderedDict()
        self._open_cache: OrderedDict[datetime, NDArray[np.int8]] = OrderedDict()
        self._frame: pd.DataFrame | None = None

    # --- construction ---------------------------------------------------------------------------

    @classmethod
    def from_arrays(
        cls,
        ids: ArrayLike,
        lon: ArrayLike,
        lat: ArrayLike,
        *,
        kinds: ArrayLike,
        crs: str = "wgs84",
        access: ArrayLike | None = None,
        organization: ArrayLike | None = None,
        amenities: ArrayLike | None = None,
        amenity_bits: ArrayLike | None = None,
        star_rating: ArrayLike | None = None,
        status: ArrayLike | None = None,
        opening_hours: ArrayLike | None = None,
        adcode: ArrayLike | None = None,
        extra: Mapping[str, ArrayLike] | None = None,
        calendar: HolidayCalendar | None = None,
    ) -> FacilityIndex:
        """Build an index from plain arrays, one element per facility.

        Parameters
        ----------
        ids
            Unique facility ids (text).
        lon, lat
            Locations in degrees, in coordinate system ``crs`` (stored as WGS-84).
        kinds
            Facility kinds (:data:`geodata.schema.KINDS`).
        crs
            ``"wgs84"`` (default), ``"cgcs2000"``, ``"gcj02"`` or ``"bd09"``.
        access, organization
            Access classes (default ``"public"``) and host organisations (``None`` allowed,
            except for ``"employees"``).
        amenities, amenity_bits
            Either ``;``-joined amenity names, or integer bit masks (bit ``i`` is
            ``AMENITIES[i]``).
        star_rating
            1-5 or missing (``None``/NaN).
        status
            :data:`geodata.schema.STATUSES`, default ``"open"``.
        opening_hours
            OSM ``opening_hours`` expressions or missing.
        adcode
            6-digit administrative codes for :meth:`in_district`, or missing.
        extra
            Other facility-frame columns (name, address, ...) returned by :meth:`record`.
        calendar
            Holiday calendar for ``open_at``; default :meth:`HolidayCalendar.default`.

        Raises
        ------
        InvalidInput, InvalidCoordinate
            When a column is malformed (duplicate ids, unknown kinds, coordinates out of range).
        """
        columns = columns_from_arrays(
            ids,
            lon,
            lat,
            crs=crs,
            kinds=kinds,
            access=access,
            organization=organization,
            amenities=amenities,
            amenity_bits=amenity_bits,
            star_rating=star_rating,
            status=status,
            opening_hours=opening_hours,
            adcode=adcode,
            extra=extra,
        )
        return cls(columns, calendar=calendar)

    @classmethod
    def from_frame(
        cls, frame: pd.DataFrame, *, calendar: HolidayCalendar | None = None
    ) -> FacilityIndex:
        """Build an index from a facility frame (:data:`geodata.schema.COLUMNS`, WGS-84 lon/lat).

        Needs at least ``id``, ``lon``, ``lat`` and ``kind``; ``amenities`` is ``;``-joined.
        """
        return cls(columns_from_frame(frame, "wgs84"), calendar=calendar)

    @classmethod
    def from_geodataframe(
        cls, gdf: Any, *, calendar: HolidayCalendar | None = None
    ) -> FacilityIndex:
        """Build an index from a GeoDataFrame of facility points.

        The CRS must be geographic WGS-84 (EPSG:4326) or CGCS2000 (EPSG:4490, equal to WGS-84
        within centimetres); projected or other systems are refused rather than guessed.

        Raises
        ------
        InvalidInput
            When the CRS is missing or not one of those, or a geometry is not a point.
        """
        crs = gdf.crs
        epsg = crs.to_epsg() if crs is not None else None
        if crs is None or not crs.is_geographic or epsg not in (4326, 4490):
            raise InvalidInput(
                f"facility points must be in EPSG:4326 or EPSG:4490 lon/lat, not {crs}; "
                "reproject with gdf.to_crs(4326) first",
                field="crs",
            )
        geometry = gdf.geometry
        if not bool((geometry.geom_type == "Point").all()):
            raise InvalidInput("facility geometries must all be points", field="geometry")
        frame = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
        frame["lon"] = geometry.x.to_numpy()
        frame["lat"] = geometry.y.to_numpy()
        return cls(columns_from_frame(frame, "wgs84"), calendar=calendar)

    @classmethod
    def from_store(cls, store: Any, *, calendar: HolidayCalendar | None = None) -> FacilityIndex:
        """Build an index from a :class:`geodata.store.FacilityStore` (its ``frame()``)."""
        return cls.from_frame(store.frame(), calendar=calendar)

    def with_changes(
        self,
        upserts: pd.DataFrame | Sequence[Facility] | None = None,
        deletes: Iterable[str] = (),
    ) -> FacilityIndex:
        """A new snapshot with facilities added, replaced (same id) or removed.

        ``self`` is not modified: readers holding it keep a consistent view.

        Parameters
        ----------
        upserts
            Facilities to add or replace, as a facility frame or :class:`Facility` models.
        deletes
            Ids to remove.

        Raises
        ------
        FacilityNotFound
            When an id to delete is not in the index.
        InvalidInput
            When an id is both upserted and deleted, or an upsert row is malformed.
        """
        if upserts is None:
            frame = pd.DataFrame({"id": [], "lon": [], "lat": [], "kind": []})
        elif isinstance(upserts, pd.DataFrame):
            frame = upserts
        else:
            frame = pd.DataFrame([f.to_row() for f in upserts])
            if frame.empty:
                frame = pd.DataFrame({"id": [], "lon": [], "lat": [], "kind": []})
        new = columns_from_frame(frame, "wgs84")
        delete_ids = np.array(sorted(set(deletes)), dtype=object)
        both = np.intersect1d(delete_ids.astype(str), new.ids.astype(str))
        if both.size:
            raise InvalidInput(f"ids both upserted and deleted: {both[:5].tolist()}", field="id")
        ids = self._c.ids
        if delete_ids.size:
            at = np.searchsorted(ids, delete_ids)
            found = (at < ids.size) & (ids[np.minimum(at, max(ids.size - 1, 0))] == delete_ids)
            if ids.size == 0 or not found.all():
                missing = delete_ids[~found] if ids.size else delete_ids
                raise FacilityNotFound(f"no facility with id {missing[0]!r} to delete")
        removed = np.zeros(ids.size, dtype=bool)
        for batch in (delete_ids, new.ids):
            if batch.size and ids.size:
                at = np.minimum(np.searchsorted(ids, batch), ids.size - 1)
                hit = ids[at] == batch
                removed[at[hit]] = True
        kept = self._c.take(~removed)
        merged = merge_columns(kept, new)
        old_uids = self._uids if self._uids is not None else np.arange(ids.size, dtype=np.int64)
        new_uids = np.arange(self._next_uid, self._next_uid + len(new), dtype=np.int64)
        at_new = np.searchsorted(kept.ids, new.ids)
        uids = np.insert(old_uids[~removed], at_new, new_uids)
        layer = self._rtree_layer
        if layer is not None:
            stale = layer.entries + len(new) - len(merged)
            if stale > _RTREE_STALE_SHARE * max(len(merged), 1):
                layer = None
            else:
                layer.insert(new_uids, new.lon, new.lat)
        return FacilityIndex(
            merged,
            calendar=self._calendar,
            uids=uids,
            next_uid=self._next_uid + len(new),
            rtree_layer=layer,
        )

    # --- access to facilities -------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._c)

    @property
    def ids(self) -> NDArray[np.object_]:
        """Facility ids in position order (sorted)."""
        return self._c.ids

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
            value = values[i]
            row[name] = None if is_missing(value) else value
        row.update(
            id=str(c.ids[i]),
            lon=float(c.lon[i]),
            lat=float(c.lat[i]),
            kind=KINDS[int(c.cls[i]) >> 4],
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
        """All facilities as a facility frame in position (id) order, built once on first use."""
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
        columns.update({name: values for name, values in c.extra.items() if name in columns})
        columns.update(
            id=c.ids,
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

    # --- filters --------------------------------------------------------------------------------

    def _compile(
        self,
        kinds: Iterable[str] | str | None,
        amenities: Iterable[str] | str | None,
        access: Iterable[str] | str | None,
        open_at: datetime | None,
        min_stars: int | None,
        statuses: Iterable[str] | str | None,
        viewer: Viewer,
    ) -> _Filter:
        if open_at is not None and not isinstance(open_at, datetime):
            raise InvalidQuery("open_at must be a datetime", field="open_at")
        kinds_k, amenities_k, access_k = _key(kinds), _key(amenities), _key(access)
        statuses_k = _key(statuses)
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
                if len(self._filters) > _FILTER_CACHE_SIZE:
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
    ) -> _Filter:
        kind_ok = _vocabulary_lut(kinds, KINDS, "kinds")
        status_ok = _vocabulary_lut(statuses, STATUSES, "statuses")
        access_ok = _vocabulary_lut(access, ACCESS_CLASSES, "access")
        if min_stars is not None and (
            isinstance(min_stars, bool) or not isinstance(min_stars, int) or not 1 <= min_stars <= 5
        ):
            raise InvalidQuery(f"min_stars must be 1-5, not {min_stars!r}", field="min_stars")
        bits = _amenity_mask(amenities)
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
        flt = _Filter(cls_any, cls_org, org_codes, bits, stars, None, key, trivial, 1.0)
        if trivial or not len(self):
            return flt
        # The share of facilities passing, from an evenly spaced sample: sizes the first ball.
        sample = np.arange(0, len(self), max(1, len(self) // _SHARE_SAMPLE), dtype=np.int64)
        share = float(self._static_mask(flt, sample).mean())
        return dataclasses.replace(flt, pass_share=max(share, 1.0 / _SHARE_SAMPLE))

    def _static_mask(self, flt: _Filter, pos: _Positions | None) -> NDArray[np.bool_]:
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

    def _open_keep(self, when: datetime, pos: _Positions | None) -> NDArray[np.bool_]:
        codes = self._c.hours if pos is None else self._c.hours[pos]
        states = self._expr_states(when, codes)
        lut = np.append(states == _CODE_OF_STATE[OpenState.OPEN], False)
        return lut[codes]

    def _passing(self, flt: _Filter) -> NDArray[np.int64]:
        mask = self._static_mask(flt, None)
        if flt.open_at is not None:
            mask &= self._open_keep(flt.open_at, None)
        return np.flatnonzero(mask).astype(np.int64)

    def _subset_searcher(self, flt: _Filter) -> _Searcher:
        """A KD-tree over the facilities passing the static filters (cached per filter)."""
        with self._lock:
            cached = self._subsets.get(flt.static_key)
            if cached is not None:
                self._subsets.move_to_end(flt.static_key)
                return cached
        positions = np.flatnonzero(self._static_mask(flt, None)).astype(np.int64)
        searcher = _Searcher.build(positions, self._c.lon[positions], self._c.lat[positions])
        logger.debug("KD-tree over the %d facilities passing a filter", positions.size)
        with self._lock:
            self._subsets[flt.static_key] = searcher
            # Keep at most as many points in filter trees as in the main tree (LRU eviction).
            while sum(t.size for t in self._subsets.values()) > max(len(self), searcher.size):
                self._subsets.popitem(last=False)
        return searcher

    def _searcher_for_single(self, flt: _Filter) -> tuple[_Searcher, bool]:
        """The tree for a single query and whether its candidates still need the static filters.

        A filter combination asked :data:`_PROMOTE_AFTER` times gets its own KD-tree (built in a
        background thread, published when complete), so that the usual requests of a service
        search only the facilities they may see.
        """
        if flt.static_trivial:
            return self._searcher, False
        with self._lock:
            cached = self._subsets.get(flt.static_key)
            if cached is not None:
                self._subsets.move_to_end(flt.static_key)
                return cached, False
            if len(self._uses) > _FILTER_CACHE_SIZE:
                self._uses.clear()
            uses = self._uses.get(flt.static_key, 0) + 1
            self._uses[flt.static_key] = uses
        if uses == _PROMOTE_AFTER:
            # Built off the request path; queries use the main tree until it is ready.
            threading.Thread(
                target=self._subset_searcher, args=(flt,), name="filter-kd-tree", daemon=True
            ).start()
        return self._searcher, True

    # --- coordinate systems ---------------------------------------------------------------------

    @staticmethod
    def _input_point(lon: float, lat: float, crs: str) -> tuple[float, float]:
        lon_f, lat_f = check_point(lon, lat)
        if crs in PLAIN_CRS:
            return lon_f, lat_f
        x, y = to_wgs84(np.array([lon_f]), np.array([lat_f]), crs)
        return float(np.asarray(x)[0]), float(np.asarray(y)[0])

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
                    ids[p], p, d, b, d / WALK_SPEED_M_S, float(lon[p]), float(lat[p]), crs
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
        pos: _Positions,
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

    # --- nearest --------------------------------------------------------------------------------

    def nearest(
        self,
        lon: float,
        lat: float,
        *,
        k: int = 1,
        crs: str = "wgs84",
        kinds: Iterable[str] | str | None = None,
        amenities: Iterable[str] | str | None = None,
        access: Iterable[str] | str | None = None,
        open_at: datetime | None = None,
        min_stars: int | None = None,
        max_distance_m: float | None = None,
        statuses: Iterable[str] | str | None = DEFAULT_STATUSES,
        viewer: Viewer = ANONYMOUS,
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
        kinds, amenities, access, open_at, min_stars, statuses, viewer
            Filters, see :class:`FacilityIndex`.

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
        max_d = _check_distance(max_distance_m, "max_distance_m")
        flt = self._compile(kinds, amenities, access, open_at, min_stars, statuses, viewer)
        qlon, qlat = self._input_point(lon, lat, crs_name)
        searcher, check_static = self._searcher_for_single(flt)
        rows = self._nearest_one(searcher, qlon, qlat, k, flt, check_static, max_d)
        return self._results_of_rows(rows, crs_name)

    def _nearest_one(
        self,
        searcher: _Searcher,
        qlon: float,
        qlat: float,
        k: int,
        flt: _Filter | None,
        check_static: bool,
        max_d: float | None,
    ) -> list[tuple[float, int, float]]:
        """Exact k nearest in ``searcher`` by growing a search ball until the bounds certify it.

        Returns (distance_m, position, bearing_deg) rows, nearest first, ties by id.

        Facilities outside a ball of chord radius ``r`` have geodesic distance > ``r``; once the
        ``k``-th passing chord ``c_k`` has ``U(c_k) < r``, no facility outside can be nearer than
        the ``k``-th, and the geodesic is computed for the candidates with chord ``<= U(c_k)``.
        """
        if searcher.size == 0:
            return []
        check_static = check_static and flt is not None and not flt.static_trivial
        open_at = flt.open_at if flt is not None else None
        q = np.array(geodesy.ecef_point(qlon, qlat))
        limit = math.inf if max_d is None else max_d + RADIUS_TOLERANCE_M + geodesy.SLACK_M
        need = 1.2 * (k + 2)
        if check_static and flt is not None:
            need /= flt.pass_share
        if open_at is not None:
            need /= _OPEN_SHARE_GUESS
        r = searcher.grid.radius_m(qlon, qlat, need)
        tree = searcher.tree
        while True:
            r = min(r, limit, 1.01 * geodesy.MAX_CHORD_M)
            exhausted = r >= limit or r >= geodesy.MAX_CHORD_M
            hits = tree.query_ball_point(q, r)
            n_hits = len(hits)
            tidx = np.array(hits, dtype=np.intp)
            pos = searcher.positions[tidx]
            if check_static and flt is not None and n_hits:
                keep = self._static_mask(flt, pos)
                tidx, pos = tidx[keep], pos[keep]
            if open_at is not None and pos.size:
                keep = self._open_keep(open_at, pos)
                tidx, pos = tidx[keep], pos[keep]
            n_pass = int(pos.size)
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
            diff = tree.data[tidx] - q
            chord = np.sqrt(np.einsum("ij,ij->i", diff, diff))
            if n_pass >= k:
                if k == 1:
                    c_k = float(chord.min())
                elif n_pass > k:
                    c_k = float(np.partition(chord, k - 1)[k - 1])
                else:
                    c_k = float(chord.max())
                bound = geodesy.geodesic_upper_bound_m(c_k)
                if bound >= r and not exhausted:
                    r = bound * (1.0 + 1e-9) + 1.0
                    continue
                if n_pass > k:
                    pos = pos[chord <= bound]
            return self._ranked(qlon, qlat, pos, k, max_d)

    def _ranked(
        self, qlon: float, qlat: float, pos: _Positions, k: int, max_d: float | None
    ) -> list[tuple[float, int, float]]:
        """(distance_m, position, bearing_deg) of the ``k`` nearest of ``pos``, ties by id."""
        if pos.size <= _SCALAR_GEODESICS:
            lon, lat, inv = self._c.lon, self._c.lat, geodesy.GEOD.inv
            rows = []
            for p in pos.tolist():
                az12, _az21, dist = inv(qlon, qlat, float(lon[p]), float(lat[p]))
                rows.append((dist, p, az12 % 360.0))
            rows.sort()
        else:
            dist_a, bearing_a = geodesy.geodesic_from(
                qlon, qlat, self._c.lon[pos], self._c.lat[pos]
            )
            order = np.lexsort((pos, dist_a))[:k]
            rows = list(
                zip(
                    dist_a[order].tolist(),
                    pos[order].tolist(),
                    bearing_a[order].tolist(),
                    strict=True,
                )
            )
        rows = rows[:k]
        if max_d is not None:
            rows = [row for row in rows if row[0] <= max_d + RADIUS_TOLERANCE_M]
        return rows

    def nearest_batch(
        self,
        lon: ArrayLike,
        lat: ArrayLike,
        *,
        k: int = 1,
        crs: str = "wgs84",
        kinds: Iterable[str] | str | None = None,
        amenities: Iterable[str] | str | None = None,
        access: Iterable[str] | str | None = None,
        open_at: datetime | None = None,
        min_stars: int | None = None,
        max_distance_m: float | None = None,
        statuses: Iterable[str] | str | None = DEFAULT_STATUSES,
        viewer: Viewer = ANONYMOUS,
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
        flt = self._compile(kinds, amenities, access, open_at, min_stars, statuses, viewer)
        qlon, qlat = self._input_points(lon, lat, crs_name)
        searcher = self._searcher_for(flt)
        return self._nearest_many(searcher, qlon, qlat, k, max_d)

    def _input_points(
        self, lon: ArrayLike, lat: ArrayLike, crs: str
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        lon_a, lat_a = check_points(lon, lat)
        if crs in PLAIN_CRS:
            return lon_a, lat_a
        x, y = to_wgs84(lon_a, lat_a, crs)
        return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)

    def _searcher_for(self, flt: _Filter) -> _Searcher:
        """The KD-tree holding exactly the facilities that pass ``flt`` (for batch queries)."""
        if flt.open_at is None:
            return self._searcher if flt.static_trivial else self._subset_searcher(flt)
        positions = self._passing(flt)
        return _Searcher.build(positions, self._c.lon[positions], self._c.lat[positions])

    def _nearest_many(
        self,
        searcher: _Searcher,
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
        chord, tidx = searcher.tree.query(
            geodesy.ecef_from_lonlat(slon, slat), k=k + 1, distance_upper_bound=limit, workers=-1
        )
        found = tidx[:, :k] < searcher.size
        pos = np.where(found, searcher.positions[np.minimum(tidx[:, :k], searcher.size - 1)], -1)
        bound = geodesy.geodesic_upper_bounds_m(chord[:, k - 1])
        ambiguous = np.isfinite(chord[:, k]) & (chord[:, k] <= bound)
        rows, cols = np.nonzero(found)
        dist = np.full((n, k), np.inf)
        dist[rows, cols], _bearing = geodesy.geodesic_inverse(
            slon[rows], slat[rows], self._c.lon[pos[rows, cols]], self._c.lat[pos[rows, cols]]
        )
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

    # --- within ---------------------------------------------------------------------------------

    def within(
        self,
        lon: float,
        lat: float,
        radius_m: float,
        *,
        crs: str = "wgs84",
        kinds: Iterable[str] | str | None = None,
        amenities: Iterable[str] | str | None = None,
        access: Iterable[str] | str | None = None,
        open_at: datetime | None = None,
        min_stars: int | None = None,
        statuses: Iterable[str] | str | None = DEFAULT_STATUSES,
        viewer: Viewer = ANONYMOUS,
        limit: int | None = None,
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
        flt = self._compile(kinds, amenities, access, open_at, min_stars, statuses, viewer)
        qlon, qlat = self._input_point(lon, lat, crs_name)
        q = np.array(geodesy.ecef_point(qlon, qlat))
        searcher = self._searcher
        hits = searcher.tree.query_ball_point(q, radius + RADIUS_TOLERANCE_M + geodesy.SLACK_M)
        pos = searcher.positions[np.array(hits, dtype=np.intp)]
        pos = pos[self._static_mask(flt, pos)]
        if open_at is not None:
            pos = pos[self._open_keep(open_at, pos)]
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
        kinds: Iterable[str] | str | None = None,
        amenities: Iterable[str] | str | None = None,
        access: Iterable[str] | str | None = None,
        open_at: datetime | None = None,
        min_stars: int | None = None,
        statuses: Iterable[str] | str | None = DEFAULT_STATUSES,
        viewer: Viewer = ANONYMOUS,
    ) -> BatchWithin:
        """:meth:`within` for arrays of points (degrees in ``crs``); see :class:`BatchWithin`."""
        crs_name = canonical_crs(crs)
        radius = _check_radius(radius_m)
        flt = self._compile(kinds, amenities, access, open_at, min_stars, statuses, viewer)
        qlon, qlat = self._input_points(lon, lat, crs_name)
        searcher = self._searcher_for(flt)
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

    # --- boxes, polygons, districts -------------------------------------------------------------

    def _rtree(self) -> _RTreeLayer:
        with self._lock:
            if self._rtree_layer is None:
                uids = (
                    self._uids if self._uids is not None else np.arange(len(self), dtype=np.int64)
                )
                self._rtree_layer = _RTreeLayer(uids, self._c.lon, self._c.lat)
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

    def _box_candidates(
        self, min_lon: float, min_lat: float, max_lon: float, max_lat: float, crs: str
    ) -> NDArray[np.int64]:
        pad = 0.0 if crs in PLAIN_CRS else _OBFUSCATION_PAD_DEG
        uids = self._rtree().query(min_lon - pad, min_lat - pad, max_lon + pad, max_lat + pad)
        return self._positions_of_uids(uids)

    def _filtered(
        self,
        pos: NDArray[np.int64],
        kinds: Iterable[str] | str | None,
        amenities: Iterable[str] | str | None,
        access: Iterable[str] | str | None,
        open_at: datetime | None,
        min_stars: int | None,
        statuses: Iterable[str] | str | None,
        viewer: Viewer,
    ) -> NDArray[np.int64]:
        flt = self._compile(kinds, amenities, access, open_at, min_stars, statuses, viewer)
        pos = pos[self._static_mask(flt, pos)]
        if open_at is not None:
            pos = pos[self._open_keep(open_at, pos)]
        return pos

    def in_bbox(
        self,
        min_lon: float,
        min_lat: float,
        max_lon: float,
        max_lat: float,
        *,
        crs: str = "wgs84",
        kinds: Iterable[str] | str | None = None,
        amenities: Iterable[str] | str | None = None,
        access: Iterable[str] | str | None = None,
        open_at: datetime | None = None,
        min_stars: int | None = None,
        statuses: Iterable[str] | str | None = DEFAULT_STATUSES,
        viewer: Viewer = ANONYMOUS,
    ) -> NDArray[np.int64]:
        """Positions (id order) of passing facilities inside a lon/lat box, edges included.

        The box is in ``crs``; for GCJ-02/BD-09 the facilities' coordinates are converted to
        that system before the test, so the answer is exact in the caller's system.

        Raises
        ------
        InvalidCoordinate
            When a corner is out of range or ``min`` exceeds ``max``.
        """
        crs_name = canonical_crs(crs)
        min_lon, min_lat = check_point(min_lon, min_lat)
        max_lon, max_lat = check_point(max_lon, max_lat)
        if min_lon > max_lon or min_lat > max_lat:
            raise InvalidCoordinate("the box's minimum exceeds its maximum", field="bbox")
        pos = self._box_candidates(min_lon, min_lat, max_lon, max_lat, crs_name)
        x, y = self._output_coords(self._c.lon[pos], self._c.lat[pos], crs_name)
        pos = pos[(x >= min_lon) & (x <= max_lon) & (y >= min_lat) & (y <= max_lat)]
        return self._filtered(pos, kinds, amenities, access, open_at, min_stars, statuses, viewer)

    def in_polygon(
        self,
        polygon: shapely.Geometry,
        *,
        crs: str = "wgs84",
        kinds: Iterable[str] | str | None = None,
        amenities: Iterable[str] | str | None = None,
        access: Iterable[str] | str | None = None,
        open_at: datetime | None = None,
        min_stars: int | None = None,
        statuses: Iterable[str] | str | None = DEFAULT_STATUSES,
        viewer: Viewer = ANONYMOUS,
    ) -> NDArray[np.int64]:
        """Positions (id order) of passing facilities in a (multi)polygon, boundary included.

        ``polygon`` is in ``crs`` lon/lat (e.g. a GCJ-02 district boundary with
        ``crs="gcj02"``): the R-tree finds the facilities in its bounding box, and each is then
        tested against the polygon in that system.
        """
        crs_name = canonical_crs(crs)
        if polygon is None or polygon.is_empty:
            return np.empty(0, np.int64)
        min_lon, min_lat, max_lon, max_lat = (float(v) for v in polygon.bounds)
        pos = self._box_candidates(min_lon, min_lat, max_lon, max_lat, crs_name)
        x, y = self._output_coords(self._c.lon[pos], self._c.lat[pos], crs_name)
        shapely.prepare(polygon)
        pos = pos[shapely.intersects_xy(polygon, x, y)]
        return self._filtered(pos, kinds, amenities, access, open_at, min_stars, statuses, viewer)

    def in_district(
        self,
        adcode: str,
        *,
        kinds: Iterable[str] | str | None = None,
        amenities: Iterable[str] | str | None = None,
        access: Iterable[str] | str | None = None,
        open_at: datetime | None = None,
        min_stars: int | None = None,
        statuses: Iterable[str] | str | None = DEFAULT_STATUSES,
        viewer: Viewer = ANONYMOUS,
    ) -> NDArray[np.int64]:
        """Positions (id order) of passing facilities whose ``adcode`` column is ``adcode``.

        A prefix ending in zeros selects a whole city or province (``"310000"`` all of
        Shanghai, ``"310100"`` its districts), as adcodes nest.
        """
        code = str(adcode)
        if not (len(code) == 6 and code.isdigit()):
            raise InvalidQuery(f"adcode must be 6 digits, not {adcode!r}", field="adcode")
        prefix = code.rstrip("0")
        if len(prefix) % 2:
            prefix += "0"
        matching = np.array(
            [i for i, a in enumerate(self._c.adcodes) if a.startswith(prefix)], dtype=np.int32
        )
        pos = np.flatnonzero(np.isin(self._c.adcode, matching)).astype(np.int64)
        return self._filtered(pos, kinds, amenities, access, open_at, min_stars, statuses, viewer)


_CODE_OF_STATE = {OpenState.CLOSED: 0, OpenState.OPEN: 1, OpenState.UNKNOWN: 2}
_STATE_OF_CODE = {v: k for k, v in _CODE_OF_STATE.items()}
#: Bytes of one cKDTree node (``ckdtreenode``: split dim, split, children, bounds, counts).
_CKDTREE_NODE_BYTES = 72


class LiveIndex:
    """The current :class:`FacilityIndex` of a service, swapped atomically on update.

    Readers take :attr:`current` once per request and query that snapshot; writers call
    :meth:`apply` (or :meth:`replace`), which builds the next snapshot off to the side and
    publishes it with one reference assignment. Writers are serialised by a lock; readers never
    wait and never see a half-built index. The query after :meth:`apply` returns sees the
    change.
    """

    def __init__(self, index: FacilityIndex) -> None:
        self._current = index
        self._write_lock = threading.Lock()

    @property
    def current(self) -> FacilityIndex:
        """The snapshot to query now."""
        return self._current

    def apply(
        self,
        upserts: pd.DataFrame | Sequence[Facility] | None = None,
        deletes: Iterable[str] = (),
    ) -> FacilityIndex:
        """Add/replace ``upserts`` and remove ``deletes``; returns the published snapshot.

        Raises
        ------
        FacilityNotFound, InvalidInput
            As :meth:`FacilityIndex.with_changes`; the current snapshot is then unchanged.
        """
        with self._write_lock:
            self._current = self._current.with_changes(upserts, deletes)
            return self._current

    def replace(self, index: FacilityIndex) -> None:
        """Publish a freshly built index (e.g. rebuilt from the store)."""
        with self._write_lock:
            self._current = index
