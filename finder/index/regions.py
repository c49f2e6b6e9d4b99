"""Facilities in a bounding box, a polygon or an administrative district.

Each is :meth:`~finder.index.base.IndexBase.select` with the region put into the question's
:class:`~finder.index.filters.FacilityFilter` (the region given here replaces one in ``where``).
"""

from __future__ import annotations

from typing import Unpack

import numpy as np
import shapely
from numpy.typing import NDArray

from finder.index.base import IndexBase
from finder.index.filters import FacilityFilter, FilterFields
from geodata.errors import InvalidQuery


class RegionQueries(IndexBase):
    """Box, polygon and district queries (the R-tree finds the candidates)."""

    def in_bbox(
        self,
        min_lon: float,
        min_lat: float,
        max_lon: float,
        max_lat: float,
        *,
        crs: str = "wgs84",
        where: FacilityFilter | None = None,
        **filters: Unpack[FilterFields],
    ) -> NDArray[np.int64]:
        """Positions (id order) of passing facilities inside a lon/lat box, edges included.

        The box is in ``crs``; for GCJ-02/BD-09 the facilities' coordinates are converted to
        that system before the test, so the answer is exact in the caller's system.

        Raises
        ------
        InvalidCoordinate
            When a corner is out of range or ``min`` exceeds ``max``.
        """
        box = (min_lon, min_lat, max_lon, max_lat)
        return self.select(self._where(where, filters).replace(bbox=box, crs=crs))

    def in_polygon(
        self,
        polygon: shapely.Geometry,
        *,
        crs: str = "wgs84",
        where: FacilityFilter | None = None,
        **filters: Unpack[FilterFields],
    ) -> NDArray[np.int64]:
        """Positions (id order) of passing facilities in a (multi)polygon, boundary included.

        ``polygon`` is in ``crs`` lon/lat (e.g. a GCJ-02 district boundary with
        ``crs="gcj02"``): the R-tree finds the facilities in its bounding box, and each is then
        tested against the polygon in that system.
        """
        if polygon is None or polygon.is_empty:
            return np.empty(0, np.int64)
        return self.select(self._where(where, filters).replace(polygon=polygon, crs=crs))

    def in_district(
        self,
        adcode: str,
        *,
        where: FacilityFilter | None = None,
        **filters: Unpack[FilterFields],
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
        nested = [a for a in self._c.adcodes if a.startswith(prefix)]
        return self.select(self._where(where, filters).replace(adcodes=nested))
