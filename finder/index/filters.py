"""Which facilities a question is about: :class:`FacilityFilter`, compiled once per snapshot.

A :class:`FacilityFilter` is a plain, hashable value: kinds, amenities, access classes, the
viewer (who asks), statuses, least stars, a moment the facilities must be open at, and a region
(a lon/lat box, a polygon, district adcodes). Every surface asks its question with one: the index
queries, ``/nearest`` (line and walk), the OGC items, ``/map``, ``/coverage*`` and the ``finder``
commands, so the same question selects the same facilities everywhere.

The status rule
---------------
``statuses`` defaults to :data:`DEFAULT_STATUSES` (``open`` only): nearest and coverage count
only open facilities, and ``temporarily_closed`` ones take part only when a question names them
(``statuses=("open", "temporarily_closed")``). The facility maps ask for
:data:`MAP_STATUSES` (they draw temporarily closed rooms, marked closed); OGC items ask for
``statuses=None`` (every status the caller may see, filterable with ``status=``). See
``docs/api.md``.

A filter is compiled against one snapshot's vocabularies (:func:`compile_static`) into lookup
tables over the coded columns; :meth:`finder.index.FacilityIndex.mask` caches the result per
filter.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypedDict

import numpy as np
import shapely
from numpy.typing import NDArray

from finder.facility_columns import CLASS_CODES, FacilityColumns, canonical_crs
from finder.lru import LRUCache
from geodata.crs import PLAIN_CRS, from_wgs84
from geodata.errors import InvalidCoordinate, InvalidQuery
from geodata.geodesy import check_point
from geodata.schema import (
    ACCESS_CLASSES,
    AMENITIES,
    AMENITY_BIT,
    ANONYMOUS,
    KINDS,
    STATUSES,
    Viewer,
)

#: Statuses a question keeps unless it names others: closed and temporarily closed are hidden.
DEFAULT_STATUSES: tuple[str, ...] = ("open",)
#: Statuses the facility maps draw: temporarily closed rooms too (shown as closed).
MAP_STATUSES: tuple[str, ...] = ("open", "temporarily_closed")
#: Compiled filters kept per snapshot.
FILTER_CACHE_SIZE = 256
#: Facilities sampled to estimate the share passing a filter.
SHARE_SAMPLE = 2048

#: Filters built from keywords (:func:`filter_of`), shared by every index.
_FILTERS_OF_FIELDS: LRUCache[tuple[Any, ...], FacilityFilter] = LRUCache(1024)

#: Facility positions inside the index (int32 below 2**31 facilities, else int64).
Positions = NDArray[np.signedinteger[Any]]


class _Key:
    """A tuple as a dictionary key, its hash computed once (filters are looked up per query)."""

    __slots__ = ("_hash", "fields")

    def __init__(self, fields: tuple[Any, ...]) -> None:
        self.fields = fields
        self._hash = hash(fields)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Key) and self._hash == other._hash and self.fields == other.fields


class FilterFields(TypedDict, total=False):
    """The non-region fields of :class:`FacilityFilter`, as keywords of the index queries."""

    kinds: Collection[str] | None
    amenities: Collection[str] | None
    access: Collection[str] | None
    viewer: Viewer
    statuses: Collection[str] | None
    min_stars: int | None
    open_at: datetime | None


def _names(
    values: Collection[str] | None, vocabulary: Sequence[str], field: str
) -> frozenset[str] | None:
    if values is None:
        return None
    chosen = frozenset((values,) if isinstance(values, str) else values)
    unknown = sorted(chosen.difference(vocabulary))
    if unknown:
        raise InvalidQuery(
            f"unknown {field} {unknown}; known: {', '.join(vocabulary)}", field=field
        )
    return chosen


@dataclass(frozen=True)
class FacilityFilter:
    """Which facilities a question is about (all conditions must hold).

    Parameters
    ----------
    kinds
        Facility kinds to keep (:data:`geodata.schema.KINDS`); ``None`` keeps all.
    amenities
        Amenities a facility must all offer (:data:`geodata.schema.AMENITIES`).
    access
        Access classes to keep (:data:`geodata.schema.ACCESS_CLASSES`), on top of what
        ``viewer`` may see.
    viewer
        Who asks (plain data, :class:`geodata.schema.Viewer`): anonymous callers see ``public``
        facilities only (:meth:`~geodata.schema.Viewer.may_see`).
    statuses
        Statuses to keep; ``None`` keeps all. Default :data:`DEFAULT_STATUSES` (the status rule
        above).
    min_stars
        Keep only facilities rated at least this many stars, 1-5 (unrated ones are dropped).
    open_at
        Keep only facilities open at this moment (naive = Asia/Shanghai local time) by their
        ``opening_hours`` and the holiday calendar; unknown or unparseable hours and dates the
        calendar does not cover do not count as open.
    bbox
        ``(min_lon, min_lat, max_lon, max_lat)`` degrees in ``crs``, edges included.
    polygon
        A (multi)polygon in ``crs`` lon/lat, boundary included; an empty one selects nothing.
    adcodes
        Keep only facilities whose 6-digit ``adcode`` is one of these.
    crs
        Coordinate system of ``bbox`` and ``polygon`` (``"wgs84"``, ``"gcj02"``, ...): the test
        is made in that system, so a GCJ-02 district boundary selects exactly what it shows.

    Raises
    ------
    InvalidQuery
        For a name outside its vocabulary, stars outside 1-5, an ``open_at`` that is not a
        datetime or a malformed adcode.
    InvalidCoordinate
        For a box corner out of range or a box whose minimum exceeds its maximum.
    UnknownCRS
        For an unknown ``crs``.

    Examples
    --------
    >>> FacilityFilter(kinds="mother_room", amenities=["fridge"]).kinds
    frozenset({'mother_room'})
    """

    kinds: Collection[str] | None = None
    amenities: Collection[str] | None = frozenset()
    access: Collection[str] | None = None
    viewer: Viewer = ANONYMOUS
    statuses: Collection[str] | None = DEFAULT_STATUSES
    min_stars: int | None = None
    open_at: datetime | None = None
    bbox: tuple[float, float, float, float] | None = None
    polygon: shapely.Geometry | None = None
    adcodes: Collection[str] | None = None
    crs: str = "wgs84"
    _static_key: _Key = field(init=False, repr=False, compare=False)
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(self, "kinds", _names(self.kinds, KINDS, "kinds"))
        put(self, "amenities", _names(self.amenities, AMENITIES, "amenities") or frozenset())
        put(self, "access", _names(self.access, ACCESS_CLASSES, "access"))
        put(self, "statuses", _names(self.statuses, STATUSES, "statuses"))
        stars = self.min_stars
        if stars is not None and (
            isinstance(stars, bool) or not isinstance(stars, int) or not 1 <= stars <= 5
        ):
            raise InvalidQuery(f"min_stars must be 1-5, not {stars!r}", field="min_stars")
        if self.open_at is not None and not isinstance(self.open_at, datetime):
            raise InvalidQuery("open_at must be a datetime", field="open_at")
        if not isinstance(self.viewer, Viewer):
            raise InvalidQuery("viewer must be a geodata.schema.Viewer", field="viewer")
        if self.adcodes is not None:
            codes = frozenset((self.adcodes,) if isinstance(self.adcodes, str) else self.adcodes)
            bad = sorted(c for c in codes if not (len(c) == 6 and c.isdigit()))
            if bad:
                raise InvalidQuery(f"adcodes must be 6 digits, not {bad}", field="adcode")
            put(self, "adcodes", codes)
        if self.crs != "wgs84":
            put(self, "crs", canonical_crs(self.crs))
        if self.bbox is not None:
            min_lon, min_lat, max_lon, max_lat = self.bbox
            min_lon, min_lat = check_point(min_lon, min_lat)
            max_lon, max_lat = check_point(max_lon, max_lat)
            if min_lon > max_lon or min_lat > max_lat:
                raise InvalidCoordinate("the box's minimum exceeds its maximum", field="bbox")
            put(self, "bbox", (min_lon, min_lat, max_lon, max_lat))
        static = (self.kinds, self.amenities, self.access, self.viewer, self.statuses, stars)
        put(self, "_static_key", _Key(static))
        region = (self.open_at, self.bbox, self.polygon, self.adcodes, self.crs)
        put(self, "_hash", hash((static, region)))

    def __hash__(self) -> int:
        return self._hash

    @property
    def static_key(self) -> Hashable:
        """The part compiled into lookup tables (everything but the moment and the region)."""
        return self._static_key

    @property
    def has_region(self) -> bool:
        """Whether a box, polygon or adcodes limit the facilities."""
        return self.bbox is not None or self.polygon is not None or self.adcodes is not None

    def replace(self, **changes: Any) -> FacilityFilter:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def fields_key(fields: FilterFields) -> tuple[Any, ...]:
    """The filter keywords as a dictionary key: equal keys for equal keywords.

    Lists become tuples; a viewer (a pydantic model) is keyed by its fields: its own hash and
    equality cost more than the rest of a lookup. The key may still be unhashable (hashing it
    raises ``TypeError``) when a value is.
    """
    return tuple(
        [
            (
                name,
                tuple(value)
                if value.__class__ is list
                else (Viewer, value.member, value.organizations, value.see_all)
                if value.__class__ is Viewer
                else value,
            )
            for name, value in fields.items()
        ]
    )


def filter_of(fields: FilterFields) -> FacilityFilter:
    """``FacilityFilter(**fields)``, the same object for the same fields (the last 1,024 kept).

    The index queries take filter keywords on every call; building and validating a filter
    costs more than a cache lookup.
    """
    key = fields_key(fields)
    try:
        cached = _FILTERS_OF_FIELDS.get(key)
    except TypeError:  # an unhashable value: build it, let the filter say what is wrong
        return FacilityFilter(**fields)
    if cached is None:
        cached = FacilityFilter(**fields)
        _FILTERS_OF_FIELDS.put(key, cached)
    return cached


def amenity_mask(amenities: Iterable[str]) -> int:
    """The bit mask of amenity names (bit ``i`` is ``AMENITIES[i]``)."""
    bits = 0
    for name in amenities:
        bits |= 1 << AMENITY_BIT[name]
    return bits


# --- filters ------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class CompiledFilter:
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


def compile_static(columns: FacilityColumns, flt: FacilityFilter) -> CompiledFilter:
    """Lookup tables of ``flt``'s static part over the coded columns of one snapshot.

    Kind, access class and status share one byte code (``kind << 4 | access << 2 | status``),
    so one 64-entry table answers all three and the viewer's rights; organisations, amenities
    and stars are tested on their own columns (:func:`static_mask`).
    """
    viewer = flt.viewer
    lookup = {name: i for i, name in enumerate(columns.orgs)}
    org_codes = np.array(
        sorted(lookup[o] for o in viewer.organizations if o in lookup), dtype=np.int32
    )
    cls_any = np.zeros(CLASS_CODES, dtype=bool)
    cls_org = np.zeros(CLASS_CODES, dtype=bool)
    for k_code, kind in enumerate(KINDS):
        for a_code, access_name in enumerate(ACCESS_CLASSES):
            for s_code, status in enumerate(STATUSES):
                chosen = (
                    (flt.kinds is None or kind in flt.kinds)
                    and (flt.statuses is None or status in flt.statuses)
                    and (flt.access is None or access_name in flt.access)
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
    used = np.zeros(CLASS_CODES, dtype=bool)
    used[np.unique(columns.cls)] = True
    bits = amenity_mask(flt.amenities or ())
    stars = 0 if flt.min_stars is None else int(flt.min_stars)
    trivial = bool(cls_any[used].all()) and bits == 0 and stars == 0
    key = (cls_any.tobytes(), cls_org.tobytes(), org_codes.tobytes(), bits, stars)
    compiled = CompiledFilter(cls_any, cls_org, org_codes, bits, stars, None, key, trivial, 1.0)
    n = len(columns)
    if trivial or not n:
        return compiled
    # The share of facilities passing, from an evenly spaced sample: sizes the first ball.
    sample = np.arange(0, n, max(1, n // SHARE_SAMPLE), dtype=np.int64)
    share = float(static_mask(columns, compiled, sample).mean())
    return dataclasses.replace(compiled, pass_share=max(share, 1.0 / SHARE_SAMPLE))


def static_mask(
    columns: FacilityColumns, compiled: CompiledFilter, pos: Positions | None
) -> NDArray[np.bool_]:
    """Which facilities (all, or those at ``pos``) pass the static part of a filter."""
    c = columns
    cls = c.cls if pos is None else c.cls[pos]
    mask = compiled.cls_any[cls]
    if compiled.org_codes.size:
        org = c.org if pos is None else c.org[pos]
        mask |= compiled.cls_org[cls] & np.isin(org, compiled.org_codes)
    if compiled.amenity_bits:
        want = np.uint32(compiled.amenity_bits)
        bits = c.amenity_bits if pos is None else c.amenity_bits[pos]
        mask &= (bits & want) == want
    if compiled.min_stars:
        stars = c.stars if pos is None else c.stars[pos]
        mask &= stars >= compiled.min_stars
    return mask


def region_mask(columns: FacilityColumns, flt: FacilityFilter, pos: Positions) -> NDArray[np.bool_]:
    """Which facilities at ``pos`` lie in ``flt``'s box, polygon and districts.

    Box and polygon are tested in ``flt.crs`` (facility coordinates converted to it).
    """
    keep = np.ones(pos.size, dtype=bool)
    if flt.adcodes is not None:
        wanted = np.array(
            [i for i, code in enumerate(columns.adcodes) if code in flt.adcodes], dtype=np.int32
        )
        keep &= np.isin(columns.adcode[pos], wanted)
    if flt.bbox is None and flt.polygon is None:
        return keep
    x, y = output_coords(columns.lon[pos], columns.lat[pos], flt.crs)
    if flt.bbox is not None:
        min_lon, min_lat, max_lon, max_lat = flt.bbox
        keep &= (x >= min_lon) & (x <= max_lon) & (y >= min_lat) & (y <= max_lat)
    if flt.polygon is not None:
        polygon = flt.polygon
        if polygon.is_empty:
            return np.zeros(pos.size, dtype=bool)
        shapely.prepare(polygon)
        keep &= shapely.intersects_xy(polygon, x, y)
    return keep


def output_coords(
    lon: NDArray[np.float64], lat: NDArray[np.float64], crs: str
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """WGS-84 lon/lat (degrees) in the coordinate system ``crs`` (canonical name)."""
    if crs in PLAIN_CRS or lon.size == 0:
        return lon, lat
    x, y = from_wgs84(lon, lat, crs)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
