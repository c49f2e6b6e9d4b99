"""Facilities in a bounding box, a polygon or an administrative district."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

import numpy as np
import shapely
from numpy.typing import NDArray

from finder.facility_columns import (
    PLAIN_CRS,
    canonical_crs,
    check_point,
)
from finder.index.base import IndexBase
from finder.index.filters import DEFAULT_STATUSES
from finder.index.trees import RTreeLayer
from geodata.errors import (
    InvalidCoordinate,
    InvalidQuery,
)
from geodata.schema import (
    ANONYMOUS,
    Viewer,
)

logger = logging.getLogger(__name__)

#: How far (degrees) GCJ-02 / BD-09 coordinates may lie from WGS-84 ones, with margin.
_OBFUSCATION_PAD_DEG = 0.05


class RegionQueries(IndexBase):
    """Box, polygon and district queries through the R-tree."""

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
