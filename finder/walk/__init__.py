"""Walking distances on a street network: snapping, nearest facility, isochrones, coverage.

How it works
------------
* **Network.** :class:`WalkNetwork` wraps a :class:`geodata.streets.StreetNetwork` (nodes in
  WGS-84 lon/lat, straight edges with geodesic lengths in metres) with an undirected CSR
  adjacency (``scipy.sparse``, both directions stored) and an STRtree of the edge segments.
* **Snapping.** A point snaps to the nearest street *segment*, not the nearest node. Distances
  are measured in a local metric frame centred on the point: an equirectangular frame scaled by
  the WGS-84 meridian and prime-vertical radii at the point's latitude, which matches geodesic
  distances to a few centimetres within 500 m. The position along the edge is the fraction
  ``t`` of the projection; offsets along the edge are ``t * edge_length_m`` so that partial
  lengths add up to the geodesic edge length. Points farther than ``max_snap_m`` from every
  street are off the network (:class:`geodata.errors.OffNetwork`).
* **Walking distance.** ``walk_m`` = origin snap leg (straight, off-street) + along-network
  distance + facility snap leg. ``network_m`` is the along-network part alone. The nearest
  facility is the one with the smallest ``walk_m``. When origin and facility snap onto the same
  edge, the direct along-edge distance counts too.
* **Tables.** :func:`build_facility_table` runs one multi-source Dijkstra (scipy) from all
  facilities of one kind: each facility is a virtual node with two outgoing edges to the ends of
  its street edge (weights: snap leg + partial edge length). Every street node then knows its
  nearest facility and the walk to it. A ``k=1`` query costs a snap, two table look-ups (the two
  ends of the origin's edge) and a check of facilities on the same edge. ``k>1`` runs scipy's
  Dijkstra from the snapped origin on the streets within a radius (KD-tree ball), growing the
  radius until the ``k`` nearest on foot are certain (exact).
* **Isochrones.** :func:`isochrone` takes the streets reachable within the walking budget (full
  and partial edges; the facility's snap leg is subtracted from the budget), buffers them by
  ``buffer_m`` in a local metric frame around the facility and unions them. The band stands for
  the last short off-street steps; its width is not charged against the budget.

Coordinates are WGS-84 lon/lat degrees throughout. Longitudes are assumed not to cross the
antimeridian.
"""

from __future__ import annotations

from finder.walk.areas import (
    WalkCoverage,
    isochrone,
    walk_coverage_by_district,
    walk_coverage_share,
)
from finder.walk.network import DEFAULT_MAX_SNAP_M, DEFAULT_SPEED_KMH, Snap, SnapArrays, WalkNetwork
from finder.walk.search import NearestWalkArrays, WalkResult, nearest_walk, nearest_walk_many
from finder.walk.tables import FacilityTable, build_facility_table

__all__ = [
    "DEFAULT_MAX_SNAP_M",
    "DEFAULT_SPEED_KMH",
    "FacilityTable",
    "NearestWalkArrays",
    "Snap",
    "SnapArrays",
    "WalkCoverage",
    "WalkNetwork",
    "WalkResult",
    "build_facility_table",
    "isochrone",
    "nearest_walk",
    "nearest_walk_many",
    "walk_coverage_by_district",
    "walk_coverage_share",
]
