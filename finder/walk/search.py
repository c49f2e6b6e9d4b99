"""Nearest facilities on foot: one origin (``k`` nearest, exact) or many origins (``k=1``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from finder.walk.network import (
    DEFAULT_MAX_SNAP_M,
    DEFAULT_SPEED_KMH,
    BoolArray,
    FloatArray,
    IntArray,
    Snap,
    WalkNetwork,
    _check_positive,
    _gather_rows,
    _metres_per_degree,
)
from finder.walk.tables import FacilityTable
from geodata.errors import InvalidInput

#: Networks up to this many nodes run the ``k > 1`` Dijkstra on the whole graph (limited to the
#: search radius): cheaper than extracting the sub-graph within the radius (measured: 40 us
#: against 400 us per search on 1,600 nodes; break-even near 200,000 nodes).
_WHOLE_GRAPH_MAX_NODES = 100_000


@dataclass(frozen=True, slots=True)
class WalkResult:
    """One facility reached on foot.

    Attributes
    ----------
    facility_index : int
        Index into the facility arrays the table was built from.
    facility_id : str
        The facility's id.
    walk_m : float
        Whole walk in metres: origin snap leg + along-network distance + facility snap leg.
    walk_s : float
        ``walk_m`` at the walking speed, seconds.
    network_m : float
        Along-network part of the walk, metres.
    origin_snap_m, facility_snap_m : float
        Straight off-street legs at both ends, metres.
    """

    facility_index: int
    facility_id: str
    walk_m: float
    walk_s: float
    network_m: float
    origin_snap_m: float
    facility_snap_m: float


def _result(
    table: FacilityTable, facility: int, walk_m: float, origin_snap_m: float, speed_mps: float
) -> WalkResult:
    facility_snap_m = float(table.snaps.snap_m[facility])
    return WalkResult(
        facility_index=facility,
        facility_id=table.ids[facility],
        walk_m=walk_m,
        walk_s=walk_m / speed_mps,
        network_m=max(walk_m - origin_snap_m - facility_snap_m, 0.0),
        origin_snap_m=origin_snap_m,
        facility_snap_m=facility_snap_m,
    )


def _same_edge_candidates(
    table: FacilityTable, edge: int, fraction: float, length_m: float
) -> list[tuple[float, int]]:
    """Direct along-edge walks (facility snap leg included) to facilities on the origin's edge."""
    snaps = table.snaps
    return [
        (abs(fraction - float(snaps.fraction[f])) * length_m + float(snaps.snap_m[f]), int(f))
        for f in table.facilities_on_edge(edge)
    ]


def nearest_walk(
    network: WalkNetwork,
    table: FacilityTable,
    lon: float,
    lat: float,
    *,
    k: int = 1,
    speed_kmh: float = DEFAULT_SPEED_KMH,
    max_snap_m: float = DEFAULT_MAX_SNAP_M,
    max_walk_m: float | None = None,
) -> list[WalkResult]:
    """The ``k`` facilities nearest on foot from a point.

    ``k=1`` reads the precomputed table (two look-ups plus facilities on the same edge);
    ``k>1`` runs Dijkstra from the snapped origin on the streets within a growing radius until
    the ``k`` nearest on foot are certain. Both are exact on the network.

    Parameters
    ----------
    network : WalkNetwork
        The walking network the table was built on.
    table : FacilityTable
        Facilities of one kind (:func:`build_facility_table`).
    lon, lat : float
        Origin, WGS-84 degrees.
    k : int, default 1
        Number of facilities wanted.
    speed_kmh : float, default 4.8
        Walking speed for ``walk_s``, km/h.
    max_snap_m : float, default 500
        Largest straight distance from the origin to a street, metres.
    max_walk_m : float, optional
        Leave out facilities whose ``walk_m`` exceeds this, metres.

    Returns
    -------
    list[WalkResult]
        Up to ``k`` results by increasing ``walk_m``; fewer when fewer facilities are on the
        network (or within ``max_walk_m``), empty when none is.

    Raises
    ------
    OffNetwork
        If the origin is farther than ``max_snap_m`` from every street.
    InvalidInput
        If ``k < 1``, the speed is not positive or the coordinates are invalid.
    """
    if k < 1:
        raise InvalidInput("k must be at least 1", field="k")
    speed_mps = _check_positive(speed_kmh, "speed_kmh") / 3.6
    limit_m = math.inf if max_walk_m is None else float(max_walk_m)
    snap = network.snap(lon, lat, max_snap_m=max_snap_m)
    streets = network.streets
    edge = snap.edge
    length_m = float(streets.edge_length_m[edge])
    a, b = int(streets.edge_u[edge]), int(streets.edge_v[edge])
    same_edge = _same_edge_candidates(table, edge, snap.fraction, length_m)
    if snap.snap_m > limit_m:
        return []

    if k == 1:
        candidates = [
            (snap.offset_m + float(table.node_walk_m[a]), int(table.node_facility[a])),
            (length_m - snap.offset_m + float(table.node_walk_m[b]), int(table.node_facility[b])),
            *same_edge,
        ]
        best_m, best_f = min(candidates)
        walk_m = best_m + snap.snap_m
        if best_f < 0 or not math.isfinite(best_m) or walk_m > limit_m:
            return []
        return [_result(table, best_f, walk_m, snap.snap_m, speed_mps)]

    # k > 1: Dijkstra from the snapped origin on the streets within a growing radius.
    best_m = min(
        snap.offset_m + float(table.node_walk_m[a]),
        length_m - snap.offset_m + float(table.node_walk_m[b]),
        *(d for d, _ in same_edge),
    )
    if not math.isfinite(best_m):
        return []
    # First radius: 1.3 x the straight distance to the k-th straight-nearest facility (a typical
    # detour); grown by half until the k nearest on foot are certain.
    on = table.snaps.edge >= 0
    kx, ky = _metres_per_degree(np.array([snap.lat]))
    straight = np.hypot((table.lon[on] - snap.lon) * kx[0], (table.lat[on] - snap.lat) * ky[0])
    kth = min(k, straight.size) - 1
    radius_m = max(1.3 * float(np.partition(straight, kth)[kth]), best_m, 100.0)
    while True:
        radius_m = min(radius_m, limit_m - snap.snap_m)
        walks, complete = _walks_within(network, table, snap, same_edge, radius_m)
        order = np.argsort(walks, kind="stable")[:k]
        exact = walks[order] <= radius_m
        if complete or (order.size == k and bool(exact.all())) or radius_m >= limit_m - snap.snap_m:
            return [
                _result(table, int(f), float(walks[f]) + snap.snap_m, snap.snap_m, speed_mps)
                for f in order[exact | complete].tolist()
                if math.isfinite(walks[f]) and walks[f] + snap.snap_m <= limit_m
            ]
        radius_m *= 1.5


def _contains_sorted(values: IntArray, value: int) -> bool:
    i = int(np.searchsorted(values, value))
    return i < values.size and int(values[i]) == value


def _walks_within(
    network: WalkNetwork,
    table: FacilityTable,
    snap: Snap,
    same_edge: list[tuple[float, int]],
    radius_m: float,
) -> tuple[FloatArray, bool]:
    """Walks from the snapped origin (facility snap leg included, origin leg not) to facilities.

    Dijkstra runs on the streets within ``radius_m`` (straight) of the snapped origin (on the
    whole graph for networks of at most ``_WHOLE_GRAPH_MAX_NODES`` nodes), limited to
    ``radius_m`` along the network, so every value ``<= radius_m`` is exact and every facility
    left at a larger value is farther than ``radius_m``. ``complete`` is True when the search
    covered the whole network, making every value exact.
    """
    from scipy.sparse.csgraph import dijkstra  # walking only: not loaded by a lean worker

    streets = network.streets
    a, b = int(streets.edge_u[snap.edge]), int(streets.edge_v[snap.edge])
    length_m = float(streets.edge_length_m[snap.edge])
    if streets.n_nodes <= _WHOLE_GRAPH_MAX_NODES:
        # Small networks: Dijkstra on the whole graph, limited to the radius, is cheaper than
        # cutting out the streets within the radius first.
        two = dijkstra(network.adjacency, directed=True, indices=[a, b], limit=radius_m)
        whole = np.minimum(two[0] + snap.offset_m, two[1] + (length_m - snap.offset_m))
        nodes = np.flatnonzero(np.isfinite(whole))
        dist = whole[nodes]
        complete = nodes.size == streets.n_nodes or radius_m >= network.total_length_m
    else:
        kx, ky = _metres_per_degree(np.array([snap.lat]))
        k_min = min(float(kx[0]) / network._kx0, float(ky[0]) / network._ky0)
        centre = (
            (snap.lon - network._lon0) * network._kx0,
            (snap.lat - network._lat0) * network._ky0,
        )
        near = network._node_tree.query_ball_point(
            centre, r=radius_m * 1.001 / k_min + 1.0, return_sorted=True
        )
        nodes = np.asarray(near, dtype=np.int64)
        missing = [n for n in (a, b) if not _contains_sorted(nodes, n)]
        if missing:
            nodes = np.union1d(nodes, missing)
        complete = nodes.size == streets.n_nodes
        sub = network.adjacency[nodes][:, nodes]
        local_a, local_b = np.searchsorted(nodes, [a, b])
        two = dijkstra(
            sub, directed=True, indices=[local_a, local_b], limit=math.inf if complete else radius_m
        )
        dist = np.minimum(two[0] + snap.offset_m, two[1] + (length_m - snap.offset_m))

    walks = np.full(len(table.ids), np.inf)
    entries = _gather_rows(table._node_entry_indptr, nodes)
    indptr = table._node_entry_indptr
    entry_node = np.repeat(np.arange(nodes.size), indptr[nodes + 1] - indptr[nodes])
    np.minimum.at(
        walks,
        table._node_entry_facility[entries],
        dist[entry_node] + table._node_entry_cost_m[entries],
    )
    for direct_m, facility in same_edge:
        walks[facility] = min(walks[facility], direct_m)
    return walks, complete


@dataclass(frozen=True, eq=False)
class NearestWalkArrays:
    """Nearest facility on foot for many points.

    Attributes
    ----------
    facility_index : numpy.ndarray of int64
        Nearest facility, -1 for points off the network or with no reachable facility.
    walk_m : numpy.ndarray of float64
        Whole walk in metres (both snap legs included); ``inf`` where ``facility_index == -1``.
    origin_snap_m : numpy.ndarray of float64
        Straight distance from each point to its street, metres (``inf`` if none searched).
    on_network : numpy.ndarray of bool
        Points within ``max_snap_m`` of a street.
    """

    facility_index: IntArray
    walk_m: FloatArray
    origin_snap_m: FloatArray
    on_network: BoolArray


def nearest_walk_many(
    network: WalkNetwork,
    table: FacilityTable,
    lon: npt.ArrayLike,
    lat: npt.ArrayLike,
    *,
    max_snap_m: float = DEFAULT_MAX_SNAP_M,
) -> NearestWalkArrays:
    """Nearest facility on foot for many points at once (vectorised ``k=1``).

    Parameters
    ----------
    network : WalkNetwork
        The walking network the table was built on.
    table : FacilityTable
        Facilities of one kind.
    lon, lat : array_like of float
        Points, WGS-84 degrees.
    max_snap_m : float, default 500
        Largest straight distance from a point to a street, metres.

    Returns
    -------
    NearestWalkArrays
        Per point: nearest facility, walk in metres, snap distance, on-network flag.
    """
    snaps = network.snap_many(lon, lat, max_snap_m=max_snap_m)
    count = snaps.edge.shape[0]
    facility = np.full(count, -1, dtype=np.int64)
    best = np.full(count, np.inf)
    on = np.flatnonzero(snaps.edge >= 0)
    streets = network.streets
    edge = snaps.edge[on]
    length = streets.edge_length_m[edge]
    offset = snaps.fraction[on] * length
    a, b = streets.edge_u[edge], streets.edge_v[edge]
    via_a = offset + table.node_walk_m[a]
    via_b = length - offset + table.node_walk_m[b]
    use_b = via_b < via_a
    best[on] = np.where(use_b, via_b, via_a)
    facility[on] = np.where(use_b, table.node_facility[b], table.node_facility[a])

    # Facilities on the same edge as the point: direct along-edge walk.
    lo = np.searchsorted(table._by_edge_edges, edge, side="left")
    hi = np.searchsorted(table._by_edge_edges, edge, side="right")
    counts = hi - lo
    if counts.sum():
        point_rep = np.repeat(np.arange(on.size), counts)
        starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
        fac = table._by_edge_facility[starts + np.arange(point_rep.size)]
        direct = (
            np.abs(snaps.fraction[on][point_rep] - table.snaps.fraction[fac]) * length[point_rep]
            + table.snaps.snap_m[fac]
        )
        for i, d, f in zip(point_rep.tolist(), direct.tolist(), fac.tolist(), strict=True):
            if d < best[on[i]]:
                best[on[i]] = d
                facility[on[i]] = f
    walk_m = best + snaps.snap_m
    walk_m[facility < 0] = np.inf
    return NearestWalkArrays(
        facility_index=facility,
        walk_m=walk_m,
        origin_snap_m=snaps.snap_m,
        on_network=snaps.edge >= 0,
    )
