"""Facility columns for the index: validation, coding and merging of facility arrays.

:class:`FacilityColumns` holds the facilities as numpy columns in id order, with kind, access and
status packed in one byte, amenities as a bit mask and text attributes (organisation, opening
hours, adcode) as integer codes into small vocabularies; ids are a fixed-width text array and
the other fields (name, address, ...) Apache Arrow arrays (offset-buffer text), so that no column
holds a Python object per facility and every column can live in a memory-mapped file
(:mod:`finder.table_file`). :func:`columns_from_arrays` and :func:`columns_from_frame` validate
and code input once (each distinct value hashed once); :func:`merge_columns` inserts changed rows
without re-coding the rest. Used by :mod:`finder.index`; coordinates are WGS-84 degrees.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from numpy.typing import ArrayLike, NDArray

from finder.ecef_tree import EcefTree
from geodata.crs import CRS_NAMES, PLAIN_CRS, parse_crs, to_wgs84
from geodata.errors import InvalidInput
from geodata.geodesy import check_points
from geodata.schema import ACCESS_CLASSES, AMENITIES, AMENITY_BIT, COLUMNS, KINDS, STATUSES

#: Entries of the class-code lookup tables: every value of the one-byte code.
CLASS_CODES = 256
ACCESS_CODE = {name: i for i, name in enumerate(ACCESS_CLASSES)}
#: Facility-frame columns that are coded (the others are kept as Arrow arrays).
CODED_COLUMNS = frozenset(
    {
        "id",
        "lon",
        "lat",
        "kind",
        "access",
        "organization",
        "status",
        "amenities",
        "star_rating",
        "opening_hours",
        "adcode",
    }
)


def canonical_crs(crs: str) -> str:
    """The canonical name of a coordinate system (``geodata.crs.parse_crs``; raises UnknownCRS)."""
    if isinstance(crs, str) and crs in CRS_NAMES:  # already canonical: every query's usual case
        return crs
    return str(parse_crs(crs))


@dataclass(frozen=True, eq=False)
class FacilityColumns:
    """The facilities as columns in id order (position ``i`` is the ``i``-th id).

    ``ids`` is a numpy unicode array (sorted); ``extra`` holds the uncoded facility-frame
    columns (name, address, version, timestamps, ...) as Arrow arrays, nulls for missing values.
    ``tree`` is the KD-tree over all ``lon``/``lat`` points when the columns came with one
    (a table file, :mod:`finder.table_file`); derived columns (:meth:`take`,
    :func:`merge_columns`) have none, and the index builds it.
    """

    ids: NDArray[np.str_]
    lon: NDArray[np.float64]
    lat: NDArray[np.float64]
    cls: NDArray[np.uint8]
    amenity_bits: NDArray[np.uint32]
    stars: NDArray[np.int8]
    org: NDArray[np.int32]
    orgs: tuple[str, ...]
    hours: NDArray[np.int32]
    hours_exprs: tuple[str, ...]
    adcode: NDArray[np.int32]
    adcodes: tuple[str, ...]
    extra: Mapping[str, pa.Array]
    tree: EcefTree | None = None

    def __len__(self) -> int:
        return int(self.ids.size)

    def kind(self, position: int) -> str:
        """The kind of the facility at a position (decoded from the class byte)."""
        return KINDS[int(self.cls[position]) >> 4]

    def extra_value(self, name: str, position: int) -> Any:
        """The value of an uncoded column at a position as a Python object (``None`` if missing)."""
        values = self.extra.get(name)
        return None if values is None else values[position].as_py()

    def take(self, mask: NDArray[np.bool_] | NDArray[np.intp]) -> FacilityColumns:
        """The rows selected by a boolean mask or an index array (vocabularies kept)."""
        rows = pa.array(np.flatnonzero(mask) if mask.dtype == bool else mask, type=pa.int64())
        return FacilityColumns(
            ids=self.ids[mask],
            lon=self.lon[mask],
            lat=self.lat[mask],
            cls=self.cls[mask],
            amenity_bits=self.amenity_bits[mask],
            stars=self.stars[mask],
            org=self.org[mask],
            orgs=self.orgs,
            hours=self.hours[mask],
            hours_exprs=self.hours_exprs,
            adcode=self.adcode[mask],
            adcodes=self.adcodes,
            extra={name: values.take(rows) for name, values in self.extra.items()},
        )


def is_missing(value: Any) -> bool:
    """Whether a frame value is missing (None, pandas NA or NaN)."""
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _object_column(values: ArrayLike | None, n: int, field: str) -> NDArray[np.object_]:
    if values is None:
        return np.full(n, None, dtype=object)
    out = np.asarray(values, dtype=object).ravel()
    if out.size != n:
        raise InvalidInput(f"{field} has {out.size} values for {n} facilities", field=field)
    return out


def _extra_column(values: ArrayLike, n: int, field: str) -> pa.Array:
    """An uncoded column as an Arrow array (NaN / NA / None become nulls).

    Values of mixed types that Arrow cannot hold in one array are kept as their text.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        if len(values) != n:
            raise InvalidInput(f"{field} has {len(values)} values for {n} facilities", field=field)
        return values
    column = _object_column(values, n, field)
    try:
        return pa.array(column, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if is_missing(v) else str(v) for v in column], type=pa.string())


def concat_extra(first: pa.Array, second: pa.Array) -> pa.Array:
    """Two Arrow arrays of one column end to end, reconciling their types.

    An all-null array takes the other's type; otherwise ``second`` is cast to ``first``'s type,
    or both to text when that fails.
    """
    if first.type != second.type:
        if pa.types.is_null(first.type):
            first = pa.nulls(len(first), second.type)
        elif pa.types.is_null(second.type):
            second = pa.nulls(len(second), first.type)
        else:
            try:
                second = second.cast(first.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                first, second = first.cast(pa.string()), second.cast(pa.string())
    return pa.concat_arrays([first, second])


def _factorized(
    values: ArrayLike | None, n: int, field: str
) -> tuple[NDArray[np.int32], list[Any]]:
    """Integer codes (``-1`` for missing) and the distinct values, hashing each value once."""
    if values is None:
        return np.full(n, -1, dtype=np.int32), []
    codes, uniques = pd.factorize(_object_column(values, n, field), use_na_sentinel=True)
    return codes.astype(np.int32), list(uniques)


def _coded(
    values: ArrayLike | None,
    vocabulary: Sequence[str],
    n: int,
    field: str,
    default: str | None,
) -> NDArray[np.uint8]:
    codes, uniques = _factorized(values, n, field)
    if default is None and (values is None or (codes < 0).any()):
        raise InvalidInput(f"{field} is required for every facility", field=field)
    unknown = sorted({str(u) for u in uniques if u not in vocabulary})
    if unknown:
        raise InvalidInput(
            f"unknown {field} values {unknown[:5]}; known: {', '.join(vocabulary)}", field=field
        )
    table = np.array(
        [vocabulary.index(str(u)) for u in uniques]
        + [vocabulary.index(default) if default is not None else 0],
        dtype=np.uint8,
    )
    return table[codes]


def _text_codes(
    values: ArrayLike | None, n: int, field: str
) -> tuple[NDArray[np.int32], tuple[str, ...]]:
    """Codes into a vocabulary of distinct non-blank texts; missing and blank give ``-1``."""
    codes, uniques = _factorized(values, n, field)
    texts = [str(u).strip() for u in uniques]
    vocabulary = tuple(sorted({t for t in texts if t}))
    lookup = {t: i for i, t in enumerate(vocabulary)}
    table = np.array([lookup.get(t, -1) for t in texts] + [-1], dtype=np.int32)
    return table[codes], vocabulary


def _amenity_bits_from_text(values: ArrayLike | None, n: int) -> NDArray[np.uint32]:
    codes, uniques = _factorized(values, n, "amenities")
    table = np.zeros(len(uniques) + 1, dtype=np.uint32)
    for i, text in enumerate(uniques):
        names = text.split(";") if isinstance(text, str) else list(text)
        names = [a.strip() for a in names if a.strip()]
        unknown = sorted(set(names).difference(AMENITY_BIT))
        if unknown:
            raise InvalidInput(
                f"unknown amenities {unknown}; known: {', '.join(AMENITIES)}", field="amenities"
            )
        table[i] = sum(1 << AMENITY_BIT[a] for a in set(names))
    return table[codes]


def _stars(values: ArrayLike | None, n: int) -> NDArray[np.int8]:
    if values is None:
        return np.zeros(n, dtype=np.int8)
    raw = np.asarray(values).ravel()
    if raw.size != n:
        raise InvalidInput(f"star_rating has {raw.size} values for {n} facilities")
    if raw.dtype.kind in "iuf":
        array = raw.astype(np.float64)
    else:
        series = pd.to_numeric(pd.Series(raw, dtype=object), errors="coerce")
        array = series.to_numpy(dtype=np.float64, na_value=np.nan)
        if (np.isnan(array) & ~pd.isna(raw)).any():
            raise InvalidInput("star_rating must be an integer 1-5 or empty", field="star_rating")
    given = ~np.isnan(array)
    if (given & ~np.isin(array, (1.0, 2.0, 3.0, 4.0, 5.0))).any():
        raise InvalidInput("star_rating must be an integer 1-5 or empty", field="star_rating")
    return np.where(given, array, 0.0).astype(np.int8)


def _class_code(
    kind: NDArray[np.uint8], access: NDArray[np.uint8], status: NDArray[np.uint8]
) -> NDArray[np.uint8]:
    """Kind, access class and status packed in one byte: ``kind << 4 | access << 2 | status``.

    The filters look the byte up in a :data:`CLASS_CODES`-entry table (up to 16 kinds of the
    registry :mod:`geodata.kinds`, 4 access classes and 4 statuses); a vocabulary that outgrows
    that needs a wider code.
    """
    if len(KINDS) > 16 or len(ACCESS_CLASSES) > 4 or len(STATUSES) > 4:
        raise InvalidInput("the kind/access/status vocabularies outgrew the one-byte class code")
    return (kind << np.uint8(4)) | (access << np.uint8(2)) | status


def columns_from_arrays(
    ids: ArrayLike,
    lon: ArrayLike,
    lat: ArrayLike,
    *,
    crs: str,
    kinds: ArrayLike,
    access: ArrayLike | None,
    organization: ArrayLike | None,
    amenities: ArrayLike | None,
    amenity_bits: ArrayLike | None,
    star_rating: ArrayLike | None,
    status: ArrayLike | None,
    opening_hours: ArrayLike | None,
    adcode: ArrayLike | None,
    extra: Mapping[str, ArrayLike] | None,
) -> FacilityColumns:
    """Validate and code facility arrays (see ``FacilityIndex.from_arrays``), sorted by id."""
    id_objects = np.asarray(ids, dtype=object).ravel()
    n = id_objects.size
    if n and pd.api.types.infer_dtype(id_objects, skipna=False) != "string":
        raise InvalidInput("every facility needs a text id", field="id")
    id_column = id_objects.astype(str)
    lon_a, lat_a = check_points(lon, lat)
    if lon_a.size != n:
        raise InvalidInput(f"{lon_a.size} coordinates for {n} ids", field="lon")
    crs_name = canonical_crs(crs)
    if crs_name not in PLAIN_CRS:
        lon_a, lat_a = (np.asarray(v, dtype=np.float64) for v in to_wgs84(lon_a, lat_a, crs_name))
    if amenity_bits is not None:
        bits = np.asarray(amenity_bits).ravel()
        if bits.size != n or bits.dtype.kind not in "iu" or (bits.size and bits.min() < 0):
            raise InvalidInput("amenity_bits must be one non-negative integer per facility")
        if bits.size and int(bits.max()) >= 1 << len(AMENITIES):
            raise InvalidInput("amenity_bits has bits beyond the amenity vocabulary")
        bits_u = bits.astype(np.uint32)
    else:
        bits_u = _amenity_bits_from_text(amenities, n)
    org, orgs = _text_codes(organization, n, "organization")
    access_codes = _coded(access, ACCESS_CLASSES, n, "access", "public")
    employees = access_codes == ACCESS_CODE["employees"]
    if (employees & (org < 0)).any():
        raise InvalidInput("access 'employees' needs the host organization", field="organization")
    hours, hours_exprs = _text_codes(opening_hours, n, "opening_hours")
    adcodes_code, adcodes = _text_codes(adcode, n, "adcode")
    extras = {name: _extra_column(values, n, name) for name, values in (extra or {}).items()}
    columns = FacilityColumns(
        ids=id_column,
        lon=lon_a,
        lat=lat_a,
        cls=_class_code(
            _coded(kinds, KINDS, n, "kind", None),
            access_codes,
            _coded(status, STATUSES, n, "status", "open"),
        ),
        amenity_bits=bits_u,
        stars=_stars(star_rating, n),
        org=org,
        orgs=orgs,
        hours=hours,
        hours_exprs=hours_exprs,
        adcode=adcodes_code,
        adcodes=adcodes,
        extra=extras,
    )
    return _sorted_by_id(columns)


def _sorted_by_id(columns: FacilityColumns) -> FacilityColumns:
    ids = columns.ids
    if ids.size > 1 and not bool(np.all(ids[1:] > ids[:-1])):
        order = np.argsort(ids.astype(str), kind="stable")
        columns = columns.take(order)
        ids = columns.ids
        duplicated = ids[1:] == ids[:-1]
        if duplicated.any():
            dup = sorted({str(v) for v in ids[1:][duplicated]})[:5]
            raise InvalidInput(f"facility ids must be unique; repeated: {dup}", field="id")
    return columns


def _remap(
    codes: NDArray[np.int32], vocabulary: tuple[str, ...], into: tuple[str, ...]
) -> tuple[NDArray[np.int32], tuple[str, ...]]:
    """Codes against ``vocabulary`` re-expressed against ``into`` (extended as needed)."""
    lookup = {v: i for i, v in enumerate(into)}
    merged = list(into)
    table = np.empty(len(vocabulary) + 1, dtype=np.int32)
    table[-1] = -1
    for i, value in enumerate(vocabulary):
        if value not in lookup:
            lookup[value] = len(merged)
            merged.append(value)
        table[i] = lookup[value]
    return table[codes], tuple(merged)


def merge_columns(kept: FacilityColumns, new: FacilityColumns) -> FacilityColumns:
    """Insert the (id-sorted, disjoint) rows of ``new`` into ``kept``, keeping id order."""
    org, orgs = _remap(new.org, new.orgs, kept.orgs)
    hours, hours_exprs = _remap(new.hours, new.hours_exprs, kept.hours_exprs)
    adcode, adcodes = _remap(new.adcode, new.adcodes, kept.adcodes)
    at = np.searchsorted(kept.ids, new.ids)

    def merged(old: NDArray[Any], add: NDArray[Any]) -> NDArray[Any]:
        return np.insert(old.astype(np.result_type(old, add), copy=False), at, add)

    # Row order of the merged columns in the kept rows followed by the new ones.
    order = np.insert(np.arange(len(kept), dtype=np.int64), at, np.arange(len(new)) + len(kept))
    rows = pa.array(order, type=pa.int64())
    # A column only the new rows have is added when it holds something.
    names = set(kept.extra) | {n for n, v in new.extra.items() if v.null_count < len(v)}
    extra = {
        name: concat_extra(
            kept.extra.get(name, pa.nulls(len(kept))), new.extra.get(name, pa.nulls(len(new)))
        ).take(rows)
        for name in names
    }
    return FacilityColumns(
        ids=merged(kept.ids, new.ids),
        lon=merged(kept.lon, new.lon),
        lat=merged(kept.lat, new.lat),
        cls=merged(kept.cls, new.cls),
        amenity_bits=merged(kept.amenity_bits, new.amenity_bits),
        stars=merged(kept.stars, new.stars),
        org=merged(kept.org, org),
        orgs=orgs,
        hours=merged(kept.hours, hours),
        hours_exprs=hours_exprs,
        adcode=merged(kept.adcode, adcode),
        adcodes=adcodes,
        extra=extra,
    )


def columns_from_frame(frame: pd.DataFrame, crs: str) -> FacilityColumns:
    """Validate and code a facility frame (needs ``id``, ``lon``, ``lat``, ``kind``)."""
    missing = [c for c in ("id", "lon", "lat", "kind") if c not in frame.columns]
    if missing:
        raise InvalidInput(f"the facility frame lacks columns {missing}", field=missing[0])

    def column(name: str) -> ArrayLike | None:
        return frame[name].to_numpy(dtype=object) if name in frame.columns else None

    return columns_from_arrays(
        frame["id"].to_numpy(dtype=object),
        frame["lon"].to_numpy(dtype=np.float64),
        frame["lat"].to_numpy(dtype=np.float64),
        crs=crs,
        kinds=frame["kind"].to_numpy(dtype=object),
        access=column("access"),
        organization=column("organization"),
        amenities=column("amenities"),
        amenity_bits=None,
        star_rating=column("star_rating"),
        status=column("status"),
        opening_hours=column("opening_hours"),
        adcode=column("adcode"),
        extra={
            c: frame[c].to_numpy(dtype=object)
            for c in COLUMNS
            if c in frame.columns and c not in CODED_COLUMNS
        },
    )
