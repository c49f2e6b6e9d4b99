"""The facility index: construction from frames, stores and arrays, and updated snapshots."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from finder.facility_columns import (
    columns_from_arrays,
    columns_from_frame,
    merge_columns,
)
from finder.hours import HolidayCalendar
from finder.index.regions import RegionQueries
from finder.index.search import NearestQueries
from finder.table_file import columns_of_store
from geodata.errors import (
    FacilityNotFound,
    InvalidInput,
)
from geodata.schema import (
    Facility,
)

_RTREE_STALE_SHARE = 0.5


class FacilityIndex(NearestQueries, RegionQueries):
    """An immutable, queryable snapshot of facilities.

    Build one with :meth:`from_frame`, :meth:`from_geodataframe`, :meth:`from_store` or
    :meth:`from_arrays`; derive an updated snapshot with :meth:`with_changes`. All queries are
    thread-safe.

    Every query takes the same question of which facilities count: a
    :class:`~finder.index.filters.FacilityFilter` as ``where=``, or its fields as keywords
    (``kinds``, ``amenities``, ``access``, ``viewer``, ``statuses``, ``min_stars``,
    ``open_at``). :meth:`mask` and :meth:`select` answer the question itself, compiled once per
    filter. By default only ``open`` facilities count, and anonymous callers see ``public`` ones
    only (the status rule: :mod:`finder.index.filters`).

    Examples
    --------
    >>> index = FacilityIndex.from_arrays(["a", "b"], [121.47, 121.50], [31.23, 31.24],
    ...                                   kinds=["mother_room", "worker_station"])
    >>> [r.facility_id for r in index.nearest(121.48, 31.23, k=2)]
    ['a', 'b']
    """

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
    def from_store(
        cls,
        store: Any,
        *,
        calendar: HolidayCalendar | None = None,
        table_dir: Path | None = None,
    ) -> FacilityIndex:
        """Build an index from a :class:`geodata.store.FacilityStore`.

        With ``table_dir`` the columns come from the store's shared table file there
        (:func:`finder.table_file.columns_of_store`: memory-mapped when another process wrote
        it for the store's current change counter, else read from the store and written);
        without, from ``store.frame()``.
        """
        columns, _ = columns_of_store(store, table_dir)
        return cls(columns, calendar=calendar)

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
        delete_ids = np.array(sorted(set(deletes)), dtype=str)
        both = np.intersect1d(delete_ids.astype(str), new.ids.astype(str))
        if both.size:
            raise InvalidInput(f"ids both upserted and deleted: {both[:5].tolist()}", field="id")
        ids = self._c.ids
        if delete_ids.size:
            at = np.searchsorted(ids, delete_ids)
            found = (at < ids.size) & (ids[np.minimum(at, max(ids.size - 1, 0))] == delete_ids)
            if ids.size == 0 or not found.all():
                missing = delete_ids[~found] if ids.size else delete_ids
                raise FacilityNotFound(f"no facility with id {str(missing[0])!r} to delete")
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
