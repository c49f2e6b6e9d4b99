"""Facility tables: one multi-source Dijkstra gives every street node its nearest facility
on foot."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix

from finder.walk.network import (
    DEFAULT_MAX_SNAP_M,
    FloatArray,
    IntArray,
    SnapArrays,
    WalkNetwork,
    _as_points,
)
from geodata.errors import InvalidInput


@dataclass(frozen=True, eq=False)
class FacilityTable:
    """Facilities of one kind placed on the walking network, with every node's nearest one.

    Build with :func:`build_facility_table`; build a new one whenever the facilities change.

    Attributes
    ----------
    lon, lat : numpy.ndarray of float64
        Facility locations as given, WGS-84 degrees.
    ids : tuple[str, ...]
        Facility ids, one per facility (``str(index)`` when none were given).
    snaps : SnapArrays
        Each facility's snap; facilities with ``edge == -1`` are off the network and never
        returned by walking queries.
    node_walk_m : numpy.ndarray of float64, shape (n_nodes,)
        For every street node, the walk to its nearest facility in metres (network distance
        plus that facility's snap leg); ``inf`` when no facility is on the network.
    node_facility : numpy.ndarray of int64, shape (n_nodes,)
        Index of that nearest facility, -1 when none.
    """

    lon: FloatArray
    lat: FloatArray
    ids: tuple[str, ...]
    snaps: SnapArrays
    node_walk_m: FloatArray
    node_facility: IntArray
    _by_edge_edges: IntArray
    _by_edge_facility: IntArray
    _node_entry_indptr: IntArray
    _node_entry_facility: IntArray
    _node_entry_cost_m: FloatArray

    @property
    def off_network(self) -> IntArray:
        """Indices of facilities farther than ``max_snap_m`` from every street."""
        return np.flatnonzero(self.snaps.edge < 0)

    def facilities_on_edge(self, edge: int) -> IntArray:
        """Indices of the facilities snapped onto street edge ``edge``."""
        lo, hi = np.searchsorted(self._by_edge_edges, [edge, edge + 1])
        return self._by_edge_facility[lo:hi]


def build_facility_table(
    network: WalkNetwork,
    lon: npt.ArrayLike,
    lat: npt.ArrayLike,
    *,
    ids: Sequence[str] | None = None,
    max_snap_m: float = DEFAULT_MAX_SNAP_M,
) -> FacilityTable:
    """Snap facilities of one kind and compute every street node's nearest one.

    One multi-source Dijkstra (``scipy.sparse.csgraph.dijkstra`` with ``min_only=True``) from a
    virtual node per facility; each virtual node has two edges to the ends of the facility's
    street edge weighted ``snap_m + partial edge length``.

    Parameters
    ----------
    network : WalkNetwork
        The walking network.
    lon, lat : array_like of float
        Facility locations, WGS-84 degrees.
    ids : Sequence[str], optional
        Facility ids returned in results; defaults to the index as a string.
    max_snap_m : float, default 500
        Facilities farther than this from every street (metres) are left out.

    Returns
    -------
    FacilityTable

    Raises
    ------
    InvalidInput
        If coordinates are invalid or ``ids`` differs in length.
    """
    from scipy.sparse.csgraph import dijkstra  # walking only: not loaded by a lean worker

    fac_lon, fac_lat = _as_points(lon, lat, "facilities")
    count = fac_lon.shape[0]
    id_tuple = tuple(str(i) for i in range(count)) if ids is None else tuple(ids)
    if len(id_tuple) != count:
        raise InvalidInput("ids must have one entry per facility", field="ids")
    snaps = network.snap_many(fac_lon, fac_lat, max_snap_m=max_snap_m)
    streets = network.streets
    n = streets.n_nodes

    on = np.flatnonzero(snaps.edge >= 0)
    edge = snaps.edge[on]
    length = streets.edge_length_m[edge]
    cost_u = snaps.snap_m[on] + snaps.fraction[on] * length
    cost_v = snaps.snap_m[on] + (1.0 - snaps.fraction[on]) * length
    end_u, end_v = streets.edge_u[edge], streets.edge_v[edge]

    node_walk_m = np.full(n, np.inf)
    node_facility = np.full(n, -1, dtype=np.int64)
    if on.size:
        base = network.adjacency
        sources = on.size
        graph = csr_matrix(
            (
                np.concatenate([base.data, np.stack([cost_u, cost_v], 1).ravel()]),
                np.concatenate([base.indices, np.stack([end_u, end_v], 1).ravel()]).astype(
                    np.int32
                ),
                np.concatenate(
                    [base.indptr, base.nnz + 2 * np.arange(1, sources + 1, dtype=np.int32)]
                ).astype(np.int32),
            ),
            shape=(n + sources, n + sources),
        )
        dist, _, source = dijkstra(
            graph,
            directed=True,
            indices=np.arange(n, n + sources),
            min_only=True,
            return_predecessors=True,
        )
        node_walk_m = np.asarray(dist[:n], dtype=np.float64)
        reached = source[:n] >= 0
        node_facility[reached] = on[source[:n][reached] - n]

    edge_order = np.argsort(edge, kind="stable")
    entry_node = np.concatenate([end_u, end_v])
    entry_order = np.argsort(entry_node, kind="stable")
    entry_indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(entry_node, minlength=n), out=entry_indptr[1:])
    return FacilityTable(
        lon=fac_lon,
        lat=fac_lat,
        ids=id_tuple,
        snaps=snaps,
        node_walk_m=node_walk_m,
        node_facility=node_facility,
        _by_edge_edges=edge[edge_order],
        _by_edge_facility=on[edge_order],
        _node_entry_indptr=entry_indptr,
        _node_entry_facility=np.concatenate([on, on])[entry_order],
        _node_entry_cost_m=np.concatenate([cost_u, cost_v])[entry_order],
    )
