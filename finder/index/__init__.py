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

:meth:`FacilityIndex.with_changes` builds an updated snapshot off to the side; the service
(:mod:`api.state`) publishes it with one reference assignment, so a reader sees either the old or
the new index, never a half-built one.

Which facilities a query is about is one :class:`FacilityFilter` (the status rule: open ones
only unless a question names other statuses), compiled once per snapshot:
:meth:`FacilityIndex.mask` / :meth:`FacilityIndex.select` answer it for every surface.

The package's rooms: :mod:`~finder.index.results` (what queries answer),
:mod:`~finder.index.filters` (filters compiled per snapshot), :mod:`~finder.index.trees` (KD-trees
and the R-tree), :mod:`~finder.index.base` (columns, filters and coordinate systems every query
shares), :mod:`~finder.index.search` (nearest / within), :mod:`~finder.index.regions` (box,
polygon, district) and :mod:`~finder.index.facility_index` (construction and updated snapshots).

Coordinates are WGS-84 longitude/latitude in degrees inside; queries take and results give
coordinates in the system the caller names (``"wgs84"``, ``"cgcs2000"``, ``"gcj02"``,
``"bd09"``).
"""

from finder.index.facility_index import FacilityIndex
from finder.index.filters import DEFAULT_STATUSES, MAP_STATUSES, FacilityFilter
from finder.index.results import WALK_SPEED_M_S, BatchNearest, BatchWithin, NearestResult
from finder.index.search import MAX_K, RADIUS_TOLERANCE_M

__all__ = [
    "DEFAULT_STATUSES",
    "MAP_STATUSES",
    "MAX_K",
    "RADIUS_TOLERANCE_M",
    "WALK_SPEED_M_S",
    "BatchNearest",
    "BatchWithin",
    "FacilityFilter",
    "FacilityIndex",
    "NearestResult",
]
