"""Walking-network benchmark: nearest-facility tables, single queries and isochrones.

Run ``python bench/walk.py`` (1,000,000-node grid) or ``python bench/walk.py --quick``
(40,000 nodes). Each figure is printed beside a networkx reference measured in the same run on
the same graph. networkx would need minutes and gigabytes on the 1,000,000-node grid, so the
reference graph is a smaller grid (100,000 nodes; 10,000 with ``--quick``) on which our code is
timed too; the ratio is taken there, and our 1,000,000-node figure is shown beside it.

Isochrones use the real OpenStreetMap extract of central Shanghai in tests/data.

Times are CPU time of this process (``time.process_time``; all code measured is
single-threaded), so that other load on a shared machine does not inflate them; on an idle
machine wall time is the same.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import networkx as nx
import numpy as np
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from finder.walk import (
    FacilityTable,
    WalkNetwork,
    build_facility_table,
    isochrone,
    nearest_walk,
)
from geodata.streets import StreetNetwork, street_network_from_edges, streets_from_osm

SHANGHAI = Path(__file__).resolve().parents[1] / "tests" / "data" / "shanghai_jingan.osm"
SPEED_MPS = 4.8 / 3.6


def grid_streets(side: int, *, seed: int) -> StreetNetwork:
    """A jittered ``side x side`` street grid near Shanghai, 80 m blocks, 3 % of edges removed."""
    rng = np.random.default_rng(seed)
    lat0, lon0, spacing_m = 31.0, 121.0, 80.0
    m_per_deg_lat = 110_850.0
    m_per_deg_lon = m_per_deg_lat * math.cos(math.radians(lat0))
    ix, iy = np.meshgrid(np.arange(side), np.arange(side), indexing="xy")
    jitter = rng.uniform(-0.15, 0.15, size=(2, side * side)) * spacing_m
    lon = lon0 + (ix.ravel() * spacing_m + jitter[0]) / m_per_deg_lon
    lat = lat0 + (iy.ravel() * spacing_m + jitter[1]) / m_per_deg_lat
    node = np.arange(side * side).reshape(side, side)
    u = np.concatenate([node[:, :-1].ravel(), node[:-1, :].ravel()])
    v = np.concatenate([node[:, 1:].ravel(), node[1:, :].ravel()])
    keep = rng.random(u.size) >= 0.03
    return street_network_from_edges(lon, lat, u[keep], v[keep])


def random_points(
    streets: StreetNetwork, count: int, *, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    lon = rng.uniform(streets.node_lon.min(), streets.node_lon.max(), count)
    lat = rng.uniform(streets.node_lat.min(), streets.node_lat.max(), count)
    return lon, lat


def timed(function: Callable[[], object], repeat: int) -> tuple[float, object]:
    """Median CPU time in seconds over ``repeat`` runs, and the last result."""
    times = []
    result: object = None
    for _ in range(repeat):
        start = time.process_time()
        result = function()
        times.append(time.process_time() - start)
    return statistics.median(times), result


def networkx_graph(streets: StreetNetwork, table: FacilityTable) -> nx.Graph:
    """The same street graph in networkx, with each facility as a node on its edge."""
    graph = nx.Graph()
    graph.add_weighted_edges_from(
        zip(
            streets.edge_u.tolist(),
            streets.edge_v.tolist(),
            streets.edge_length_m.tolist(),
            strict=True,
        )
    )
    for f in np.flatnonzero(table.snaps.edge >= 0).tolist():
        edge = int(table.snaps.edge[f])
        length = float(streets.edge_length_m[edge])
        t = float(table.snaps.fraction[f])
        snap_m = float(table.snaps.snap_m[f])
        graph.add_edge(("f", f), int(streets.edge_u[edge]), weight=snap_m + t * length)
        graph.add_edge(("f", f), int(streets.edge_v[edge]), weight=snap_m + (1 - t) * length)
    return graph


def query_origins(network: WalkNetwork, count: int, *, seed: int) -> list[tuple[float, float]]:
    lon, lat = random_points(network.streets, count, seed=seed)
    snaps = network.snap_many(lon, lat)
    return [(float(x), float(y)) for x, y, e in zip(lon, lat, snaps.edge, strict=True) if e >= 0]


def query_p50_ms(
    network: WalkNetwork, table: FacilityTable, origins: list[tuple[float, float]], k: int
) -> float:
    times = []
    for lon, lat in origins:
        start = time.process_time()
        nearest_walk(network, table, lon, lat, k=k)
        times.append(time.process_time() - start)
    return statistics.median(times) * 1e3


def networkx_query_p50_ms(
    network: WalkNetwork, table: FacilityTable, graph: nx.Graph, origins: list[tuple[float, float]]
) -> tuple[float, float]:
    """networkx k=1: multi-source Dijkstra from all facilities stopping at the origin node."""
    streets = network.streets
    sources = [("f", f) for f in np.flatnonzero(table.snaps.edge >= 0).tolist()]
    times, worst_gap = [], 0.0
    for lon, lat in origins:
        start = time.process_time()
        snap = network.snap(lon, lat)
        length = float(streets.edge_length_m[snap.edge])
        graph.add_edge("o", int(streets.edge_u[snap.edge]), weight=snap.offset_m)
        graph.add_edge("o", int(streets.edge_v[snap.edge]), weight=length - snap.offset_m)
        reference_m, _ = nx.multi_source_dijkstra(graph, sources, target="o")
        graph.remove_node("o")
        times.append(time.process_time() - start)
        ours = nearest_walk(network, table, lon, lat)[0]
        if not any(table.snaps.edge[f] == snap.edge for f in range(len(table.ids))):
            worst_gap = max(worst_gap, abs(ours.walk_m - (reference_m + snap.snap_m)))
    return statistics.median(times) * 1e3, worst_gap


def naive_isochrone(
    network: WalkNetwork, graph: nx.Graph, lon: float, lat: float, minutes: float
) -> object:
    """Reference: networkx cut-off Dijkstra, then each reached edge buffered and unioned."""
    streets = network.streets
    snap = network.snap(lon, lat)
    reach_m = minutes * 60 * SPEED_MPS - snap.snap_m
    length = float(streets.edge_length_m[snap.edge])
    graph.add_edge("o", int(streets.edge_u[snap.edge]), weight=snap.offset_m)
    graph.add_edge("o", int(streets.edge_v[snap.edge]), weight=length - snap.offset_m)
    dist = nx.single_source_dijkstra_path_length(graph, "o", cutoff=reach_m)
    graph.remove_node("o")
    kx = 111_320.0 * math.cos(math.radians(lat))
    ky = 110_850.0
    lines = []
    for u, v in zip(streets.edge_u.tolist(), streets.edge_v.tolist(), strict=True):
        if u in dist or v in dist:
            lines.append(
                shapely.LineString(
                    [
                        ((streets.node_lon[u] - lon) * kx, (streets.node_lat[u] - lat) * ky),
                        ((streets.node_lon[v] - lon) * kx, (streets.node_lat[v] - lat) * ky),
                    ]
                )
            )
    return shapely.union_all(shapely.buffer(lines, 40.0, quad_segs=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small graphs (seconds)")
    args = parser.parse_args()
    big_side, ref_side = (200, 100) if args.quick else (1000, 316)
    rows: list[tuple[str, str, str, str, str]] = []

    def row(name: str, ours: float, reference: float | None, unit: str, target: str) -> None:
        ref_text = "-" if reference is None else f"{reference:,.3f} {unit}"
        ratio = "-" if reference is None else f"{reference / ours:,.1f}x"
        rows.append((name, f"{ours:,.3f} {unit}", ref_text, ratio, target))

    # --- all-node nearest facility, reference graph (ours and networkx on the same graph)
    small = grid_streets(ref_side, seed=1)
    small_net = WalkNetwork(small)
    fac_lon, fac_lat = random_points(small, max(small.n_nodes // 500, 10), seed=2)
    ours_small_s, small_table = timed(lambda: build_facility_table(small_net, fac_lon, fac_lat), 3)
    assert isinstance(small_table, FacilityTable)
    graph = networkx_graph(small, small_table)
    sources = [("f", f) for f in np.flatnonzero(small_table.snaps.edge >= 0).tolist()]
    nx_s, nx_dist = timed(lambda: nx.multi_source_dijkstra_path_length(graph, sources), 1)
    assert isinstance(nx_dist, dict)
    gap = max(abs(nx_dist[n] - small_table.node_walk_m[n]) for n in range(small.n_nodes))
    row(f"all-node nearest facility, {small.n_nodes:,} nodes", ours_small_s, nx_s, "s", "")

    # --- all-node nearest facility on the big grid
    start = time.process_time()
    big = grid_streets(big_side, seed=3)
    big_net = WalkNetwork(big)
    build_s = time.process_time() - start
    big_lon, big_lat = random_points(big, max(big.n_nodes // 500, 10), seed=4)
    ours_big_s, big_table = timed(lambda: build_facility_table(big_net, big_lon, big_lat), 3)
    assert isinstance(big_table, FacilityTable)
    scaled_nx = nx_s * big.n_nodes / small.n_nodes
    row(f"all-node nearest facility, {big.n_nodes:,} nodes", ours_big_s, None, "s", "< 1 s")
    row("  (networkx scaled linearly to that size)", ours_big_s, scaled_nx, "s", "")

    # --- single walking-nearest query (snap included)
    origins_small = query_origins(small_net, 100, seed=5)
    nx_query_ms, query_gap = networkx_query_p50_ms(small_net, small_table, graph, origins_small)
    row(
        f"nearest_walk k=1 p50, {small.n_nodes:,} nodes",
        query_p50_ms(small_net, small_table, origins_small, 1),
        nx_query_ms,
        "ms",
        "",
    )
    origins_big = query_origins(big_net, 2000, seed=6)
    row(
        f"nearest_walk k=1 p50, {big.n_nodes:,} nodes",
        query_p50_ms(big_net, big_table, origins_big, 1),
        None,
        "ms",
        "< 0.5 ms",
    )
    row(
        f"nearest_walk k=5 p50, {big.n_nodes:,} nodes",
        query_p50_ms(big_net, big_table, origins_big[:500], 5),
        None,
        "ms",
        "",
    )

    # --- isochrones on the Shanghai extract
    shanghai = WalkNetwork(streets_from_osm(SHANGHAI))
    sh_graph = nx.Graph()
    sh_graph.add_weighted_edges_from(
        zip(
            shanghai.streets.edge_u.tolist(),
            shanghai.streets.edge_v.tolist(),
            shanghai.streets.edge_length_m.tolist(),
            strict=True,
        )
    )
    centres = query_origins(shanghai, 40, seed=7)
    iso_ms, naive_ms = [], []
    for lon, lat in centres:
        iso_ms.append(
            timed(lambda lon=lon, lat=lat: isochrone(shanghai, lon, lat, minutes=15), 1)[0]
        )
        naive_ms.append(
            timed(lambda lon=lon, lat=lat: naive_isochrone(shanghai, sh_graph, lon, lat, 15), 1)[0]
        )
    row(
        f"isochrone 15 min p50, Shanghai ({shanghai.n_nodes:,} nodes)",
        statistics.median(iso_ms) * 1e3,
        statistics.median(naive_ms) * 1e3,
        "ms",
        "< 5 ms",
    )
    big_centres = origins_big[:30]
    big_iso = [
        timed(lambda c=c: isochrone(big_net, c[0], c[1], minutes=15), 1)[0] for c in big_centres
    ]
    row(
        f"isochrone 15 min p50, {big.n_nodes:,} nodes",
        statistics.median(big_iso) * 1e3,
        None,
        "ms",
        "",
    )

    print(f"walking-network benchmark ({'quick' if args.quick else 'full'} run)")
    print(
        f"big grid: {big.n_nodes:,} nodes, {big.n_edges:,} edges, {len(big_lon):,} facilities; "
        f"built in {build_s:.1f} s"
    )
    print(
        f"reference grid: {small.n_nodes:,} nodes, {len(fac_lon):,} facilities; "
        f"max |ours - networkx| all-node {gap:.2e} m, single query {query_gap:.2e} m"
    )
    widths = [
        max(len(r[i]) for r in [("metric", "ours", "networkx", "ratio", "target"), *rows])
        for i in range(5)
    ]
    header = ("metric", "ours", "networkx", "ratio", "target")
    for line in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)))
    print("times are process CPU time; ratio = networkx / ours on the same graph (higher: faster).")
    print("networkx isochrone reference: cut-off Dijkstra, each reached edge buffered, unioned.")


if __name__ == "__main__":
    main()
