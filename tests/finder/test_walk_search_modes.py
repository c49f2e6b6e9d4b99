"""The two ``k > 1`` searches of :func:`finder.walk.nearest_walk` give the same answers.

Networks of up to ``_WHOLE_GRAPH_MAX_NODES`` nodes run Dijkstra on the whole graph (limited to
the search radius); larger ones on the streets within the radius only. Both are exact, so on
the Shanghai extract, forced into each mode, they must agree with each other and with networkx.
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest

import finder.walk.search
from finder.walk import WalkNetwork, build_facility_table, nearest_walk
from geodata.streets import streets_from_osm

OSM = Path(__file__).parents[1] / "data" / "shanghai_jingan.osm"


@pytest.fixture(scope="module")
def network() -> WalkNetwork:
    return WalkNetwork(streets_from_osm(OSM))


def _networkx_walks(
    network: WalkNetwork, table: finder.walk.FacilityTable, lon: float, lat: float
) -> list[float]:
    """Sorted whole walks from a point to every facility on the network, by networkx."""
    streets = network.streets
    graph = nx.Graph()
    edges = zip(
        streets.edge_u.tolist(),
        streets.edge_v.tolist(),
        streets.edge_length_m.tolist(),
        strict=True,
    )
    for u, v, w in edges:
        graph.add_edge(u, v, weight=w)
    origin = network.snap(lon, lat)
    points: list[tuple[object, int, float]] = [("o", origin.edge, origin.fraction)]
    points += [
        (("facility", f), int(table.snaps.edge[f]), float(table.snaps.fraction[f]))
        for f in np.flatnonzero(table.snaps.edge >= 0).tolist()
    ]
    for name, edge, t in points:
        length = float(streets.edge_length_m[edge])
        graph.add_edge(name, int(streets.edge_u[edge]), weight=t * length)
        graph.add_edge(name, int(streets.edge_v[edge]), weight=(1 - t) * length)
        if name != "o" and edge == origin.edge:
            graph.add_edge("o", name, weight=abs(t - origin.fraction) * length)
    lengths = nx.single_source_dijkstra_path_length(graph, "o")
    return sorted(
        origin.snap_m + lengths[name] + float(table.snaps.snap_m[name[1]])  # type: ignore[index]
        for name, _, _ in points[1:]
        if name in lengths
    )


@pytest.mark.parametrize("k", [2, 5, 12])
def test_whole_graph_and_ball_searches_agree(
    network: WalkNetwork, monkeypatch: pytest.MonkeyPatch, k: int
) -> None:
    rng = np.random.default_rng(k)
    streets = network.streets
    west, east = streets.node_lon.min(), streets.node_lon.max()
    south, north = streets.node_lat.min(), streets.node_lat.max()
    table = build_facility_table(
        network, rng.uniform(west, east, 30), rng.uniform(south, north, 30)
    )
    for _ in range(8):
        lon, lat = float(rng.uniform(west, east)), float(rng.uniform(south, north))
        whole = nearest_walk(network, table, lon, lat, k=k)
        with monkeypatch.context() as patch:
            patch.setattr(finder.walk.search, "_WHOLE_GRAPH_MAX_NODES", 0)
            ball = nearest_walk(network, table, lon, lat, k=k)
        assert [r.facility_id for r in whole] == [r.facility_id for r in ball]
        assert [r.walk_m for r in whole] == pytest.approx([r.walk_m for r in ball], rel=1e-12)
        expected = _networkx_walks(network, table, lon, lat)[:k]
        assert [r.walk_m for r in whole] == pytest.approx(expected, rel=1e-9)


def test_fewer_facilities_than_k_ends(network: WalkNetwork) -> None:
    streets = network.streets
    table = build_facility_table(network, streets.node_lon[:3], streets.node_lat[:3])
    found = nearest_walk(
        network, table, float(streets.node_lon[500]), float(streets.node_lat[500]), k=10
    )
    assert len(found) == 3
