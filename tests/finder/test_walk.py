"""Walking answers compared with networkx shortest paths on the same graph.

The reference builds a networkx graph from the same street edges, adds the snapped origin and
facilities as extra nodes on their edges (partial edge lengths at both ends, a direct edge when
origin and facility share a street edge) and runs Dijkstra. Snapping is checked separately
against a brute-force search in an azimuthal equidistant projection (pyproj).
"""

from __future__ import annotations

import itertools
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pyproj import Geod, Transformer

from finder.walk import (
    FacilityTable,
    WalkNetwork,
    build_facility_table,
    isochrone,
    nearest_walk,
    nearest_walk_many,
    walk_coverage_share,
)
from geodata.errors import InvalidInput, OffNetwork
from geodata.streets import (
    StreetNetwork,
    load_network,
    save_network,
    street_network_from_edges,
    streets_from_osm,
)

SHANGHAI = Path(__file__).parents[1] / "data" / "shanghai_jingan.osm"
GEOD = Geod(ellps="WGS84")
M_PER_DEG_LAT = 110_850.0


# --------------------------------------------------------------------------- generated grids


@dataclass
class Case:
    streets: StreetNetwork
    network: WalkNetwork
    fac_lon: np.ndarray
    fac_lat: np.ndarray
    origin_lon: float
    origin_lat: float


def _point_near_edge(
    streets: StreetNetwork, edge: int, fraction: float, offset_m: float
) -> tuple[float, float]:
    """A point at ``fraction`` along ``edge``, moved ``offset_m`` sideways."""
    u, v = int(streets.edge_u[edge]), int(streets.edge_v[edge])
    lon = streets.node_lon[u] + fraction * (streets.node_lon[v] - streets.node_lon[u])
    lat = streets.node_lat[u] + fraction * (streets.node_lat[v] - streets.node_lat[u])
    azimuth = GEOD.inv(
        streets.node_lon[u], streets.node_lat[u], streets.node_lon[v], streets.node_lat[v]
    )[0]
    moved_lon, moved_lat, _ = GEOD.fwd(lon, lat, azimuth + 90.0, offset_m)
    return float(moved_lon), float(moved_lat)


@st.composite
def grids(draw: st.DrawFn) -> StreetNetwork:
    """Jittered street grids near Shanghai with random edges removed (so parts get dropped)."""
    cols = draw(st.integers(2, 9))
    rows = draw(st.integers(2, 9))
    spacing_m = draw(st.floats(40.0, 250.0))
    lon0 = 121.40 + draw(st.floats(0.0, 0.1))
    lat0 = 31.15 + draw(st.floats(0.0, 0.1))
    seed = draw(st.integers(0, 2**32 - 1))
    removed = draw(st.floats(0.0, 0.45))
    rng = np.random.default_rng(seed)
    m_per_deg_lon = M_PER_DEG_LAT * math.cos(math.radians(lat0))
    ix, iy = np.meshgrid(np.arange(cols), np.arange(rows), indexing="xy")
    jitter = rng.uniform(-0.2, 0.2, size=(2, rows * cols)) * spacing_m
    lon = lon0 + (ix.ravel() * spacing_m + jitter[0]) / m_per_deg_lon
    lat = lat0 + (iy.ravel() * spacing_m + jitter[1]) / M_PER_DEG_LAT
    node = np.arange(rows * cols).reshape(rows, cols)
    u = np.concatenate([node[:, :-1].ravel(), node[:-1, :].ravel()])
    v = np.concatenate([node[:, 1:].ravel(), node[1:, :].ravel()])
    keep = rng.random(u.size) >= removed
    assume(keep.any())
    return street_network_from_edges(lon, lat, u[keep], v[keep])


@st.composite
def locations(draw: st.DrawFn, streets: StreetNetwork) -> tuple[float, float]:
    """A point on or beside a street (mid-edge included) or anywhere around the grid."""
    if draw(st.booleans()):
        edge = draw(st.integers(0, streets.n_edges - 1))
        fraction = draw(st.sampled_from([0.0, 1.0]) | st.floats(0.0, 1.0))
        offset_m = draw(st.sampled_from([0.0]) | st.floats(-60.0, 60.0))
        return _point_near_edge(streets, edge, fraction, offset_m)
    margin = 0.002
    lon = draw(st.floats(streets.node_lon.min() - margin, streets.node_lon.max() + margin))
    lat = draw(st.floats(streets.node_lat.min() - margin, streets.node_lat.max() + margin))
    return lon, lat


@st.composite
def cases(draw: st.DrawFn) -> Case:
    streets = draw(grids())
    network = WalkNetwork(streets)
    origin_lon, origin_lat = draw(locations(streets))
    count = draw(st.integers(1, 8))
    points = [draw(locations(streets)) for _ in range(count)]
    origin_edge = int(network.snap_many([origin_lon], [origin_lat]).edge[0])
    if origin_edge >= 0 and draw(st.booleans()):
        # Facilities on the origin's own edge: the direct along-edge walk may be shortest.
        for _ in range(draw(st.integers(1, 2))):
            fraction = draw(st.floats(0.0, 1.0))
            points.append(
                _point_near_edge(streets, origin_edge, fraction, draw(st.floats(-20, 20)))
            )
    fac_lon = np.array([p[0] for p in points])
    fac_lat = np.array([p[1] for p in points])
    return Case(streets, network, fac_lon, fac_lat, origin_lon, origin_lat)


def _reference_graph(streets: StreetNetwork) -> nx.Graph:
    graph = nx.Graph()
    for u, v, length in zip(
        streets.edge_u.tolist(),
        streets.edge_v.tolist(),
        streets.edge_length_m.tolist(),
        strict=True,
    ):
        graph.add_edge(u, v, weight=length)
    return graph


def _attach(
    graph: nx.Graph, streets: StreetNetwork, name: object, edge: int, fraction: float
) -> None:
    """Add ``name`` as a node on ``edge`` at ``fraction`` (partial lengths to both ends)."""
    length = float(streets.edge_length_m[edge])
    graph.add_edge(name, int(streets.edge_u[edge]), weight=fraction * length)
    graph.add_edge(name, int(streets.edge_v[edge]), weight=(1.0 - fraction) * length)


def _reference_walks(case: Case, table: FacilityTable) -> dict[int, float]:
    """Whole walk (both snap legs) from the origin to every facility, by networkx."""
    streets = case.streets
    origin = case.network.snap(case.origin_lon, case.origin_lat)
    graph = _reference_graph(streets)
    _attach(graph, streets, "origin", origin.edge, origin.fraction)
    for f in np.flatnonzero(table.snaps.edge >= 0).tolist():
        edge = int(table.snaps.edge[f])
        _attach(graph, streets, ("facility", f), edge, float(table.snaps.fraction[f]))
        if edge == origin.edge:
            direct = abs(origin.fraction - float(table.snaps.fraction[f]))
            graph.add_edge(
                "origin", ("facility", f), weight=direct * float(streets.edge_length_m[edge])
            )
    lengths = nx.single_source_dijkstra_path_length(graph, "origin")
    return {
        f: origin.snap_m + lengths[("facility", f)] + float(table.snaps.snap_m[f])
        for f in np.flatnonzero(table.snaps.edge >= 0).tolist()
        if ("facility", f) in lengths
    }


SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(cases(), st.integers(1, 6))
def test_nearest_walk_equals_networkx(case: Case, k: int) -> None:
    table = build_facility_table(case.network, case.fac_lon, case.fac_lat)
    if case.network.snap_many([case.origin_lon], [case.origin_lat]).edge[0] < 0:
        with pytest.raises(OffNetwork):
            nearest_walk(case.network, table, case.origin_lon, case.origin_lat, k=k)
        return
    reference = _reference_walks(case, table)
    results = nearest_walk(case.network, table, case.origin_lon, case.origin_lat, k=k)
    expected = sorted(reference.values())[:k]
    assert [r.walk_m for r in results] == pytest.approx(expected, rel=1e-9, abs=1e-6)
    assert len({r.facility_index for r in results}) == len(results)
    for result in results:
        assert reference[result.facility_index] == pytest.approx(result.walk_m, rel=1e-9, abs=1e-6)
        assert result.walk_s == pytest.approx(result.walk_m / (4.8 / 3.6))
        assert result.network_m == pytest.approx(
            result.walk_m - result.origin_snap_m - result.facility_snap_m, abs=1e-6
        )
        assert result.facility_id == str(result.facility_index)


@SETTINGS
@given(cases())
def test_k1_table_lookup_equals_radius_search(case: Case) -> None:
    table = build_facility_table(case.network, case.fac_lon, case.fac_lat)
    assume(case.network.snap_many([case.origin_lon], [case.origin_lat]).edge[0] >= 0)
    one = nearest_walk(case.network, table, case.origin_lon, case.origin_lat, k=1)
    two = nearest_walk(case.network, table, case.origin_lon, case.origin_lat, k=2)
    assert len(one) == min(1, len(two))
    if one:
        assert one[0].walk_m == pytest.approx(two[0].walk_m, rel=1e-12, abs=1e-9)


@SETTINGS
@given(cases())
def test_table_equals_networkx_multi_source(case: Case) -> None:
    table = build_facility_table(case.network, case.fac_lon, case.fac_lat)
    on = np.flatnonzero(table.snaps.edge >= 0).tolist()
    graph = _reference_graph(case.streets)
    for f in on:
        _attach(
            graph,
            case.streets,
            ("facility", f),
            int(table.snaps.edge[f]),
            float(table.snaps.fraction[f]),
        )
        graph.add_edge("source", ("facility", f), weight=float(table.snaps.snap_m[f]))
    if not on:
        assert np.all(np.isinf(table.node_walk_m))
        assert np.all(table.node_facility == -1)
        return
    lengths = nx.single_source_dijkstra_path_length(graph, "source")
    expected = np.array([lengths[node] for node in range(case.streets.n_nodes)])
    np.testing.assert_allclose(table.node_walk_m, expected, rtol=1e-9, atol=1e-6)
    # The named facility really is that far from each node.
    graph.remove_node("source")
    from_facility = {f: nx.single_source_dijkstra_path_length(graph, ("facility", f)) for f in on}
    for node in range(case.streets.n_nodes):
        f = int(table.node_facility[node])
        via = from_facility[f][node] + float(table.snaps.snap_m[f])
        assert via == pytest.approx(expected[node], rel=1e-9, abs=1e-6)


@SETTINGS
@given(cases(), st.lists(st.tuples(st.floats(-0.003, 0.003), st.floats(-0.003, 0.003)), max_size=8))
def test_nearest_walk_many_equals_single_queries(
    case: Case, shifts: list[tuple[float, float]]
) -> None:
    table = build_facility_table(case.network, case.fac_lon, case.fac_lat)
    lon = np.array([case.origin_lon] + [case.origin_lon + dx for dx, _ in shifts])
    lat = np.array([case.origin_lat] + [case.origin_lat + dy for _, dy in shifts])
    many = nearest_walk_many(case.network, table, lon, lat)
    for i in range(lon.size):
        try:
            single = nearest_walk(case.network, table, float(lon[i]), float(lat[i]))
        except OffNetwork:
            assert not many.on_network[i]
            assert many.facility_index[i] == -1
            assert math.isinf(many.walk_m[i])
            continue
        assert many.on_network[i]
        assert many.walk_m[i] == pytest.approx(single[0].walk_m, rel=1e-12, abs=1e-9)


def _aeqd_snap_m(streets: StreetNetwork, lon: float, lat: float) -> float:
    """Brute-force distance from a point to every street segment, in an aeqd projection."""
    to_local = Transformer.from_crs(
        "EPSG:4326", f"+proj=aeqd +lat_0={lat} +lon_0={lon} +datum=WGS84 +units=m", always_xy=True
    )
    x, y = to_local.transform(streets.node_lon, streets.node_lat)
    u, v = streets.edge_u, streets.edge_v
    segments = shapely.linestrings(
        np.stack([np.stack([x[u], y[u]], 1), np.stack([x[v], y[v]], 1)], 1)
    )
    return float(shapely.distance(shapely.Point(0.0, 0.0), segments).min())


@SETTINGS
@given(grids(), st.data())
def test_snap_equals_brute_force(streets: StreetNetwork, data: st.DataObject) -> None:
    network = WalkNetwork(streets)
    lon, lat = data.draw(locations(streets))
    expected = _aeqd_snap_m(streets, lon, lat)
    if expected > 520.0:
        with pytest.raises(OffNetwork):
            network.snap(lon, lat)
        return
    assume(abs(expected - 500.0) > 1.0)
    if expected > 500.0:
        with pytest.raises(OffNetwork):
            network.snap(lon, lat)
        return
    snap = network.snap(lon, lat)
    assert snap.snap_m == pytest.approx(expected, rel=1e-4, abs=0.02)
    # The snapped point lies on its edge at the reported fraction and that far from the point.
    assert GEOD.inv(lon, lat, snap.lon, snap.lat)[2] == pytest.approx(
        snap.snap_m, rel=1e-4, abs=0.02
    )
    assert 0.0 <= snap.fraction <= 1.0
    assert snap.offset_m == pytest.approx(snap.fraction * streets.edge_length_m[snap.edge])


@SETTINGS
@given(grids(), st.data())
def test_point_on_mid_edge_snaps_there(streets: StreetNetwork, data: st.DataObject) -> None:
    network = WalkNetwork(streets)
    edge = data.draw(st.integers(0, streets.n_edges - 1))
    fraction = data.draw(st.floats(0.05, 0.95))
    lon, lat = _point_near_edge(streets, edge, fraction, 0.0)
    snap = network.snap(lon, lat)
    assert snap.snap_m < 0.01
    if snap.edge == edge:
        assert snap.fraction == pytest.approx(fraction, abs=1e-6)
    assert snap.lon == pytest.approx(lon, abs=1e-7)
    assert snap.lat == pytest.approx(lat, abs=1e-7)


def test_same_edge_direct_walk_is_shortest() -> None:
    # A 400 m street u-v closed into a long loop: the only short way is along the edge itself.
    lon = np.array([121.47, 121.4742, 121.4742, 121.47])
    lat = np.array([31.23, 31.23, 31.24, 31.24])
    streets = street_network_from_edges(lon, lat, [0, 1, 2, 3], [1, 2, 3, 0])
    network = WalkNetwork(streets)
    edge = next(
        e
        for e in range(streets.n_edges)
        if {streets.node_lat[streets.edge_u[e]], streets.node_lat[streets.edge_v[e]]} == {31.23}
    )
    origin = _point_near_edge(streets, edge, 0.3, 10.0)
    facility = _point_near_edge(streets, edge, 0.6, -5.0)
    table = build_facility_table(network, [facility[0]], [facility[1]])
    (result,) = nearest_walk(network, table, *origin)
    along = 0.3 * float(streets.edge_length_m[edge])
    assert result.network_m == pytest.approx(along, rel=1e-4)
    assert result.origin_snap_m == pytest.approx(10.0, abs=0.01)
    assert result.facility_snap_m == pytest.approx(5.0, abs=0.01)
    assert result.walk_m == pytest.approx(along + 15.0, abs=0.05)


def test_off_network_points_and_facilities() -> None:
    lon = np.array([121.47, 121.471, 121.471])
    lat = np.array([31.23, 31.23, 31.231])
    network = WalkNetwork(street_network_from_edges(lon, lat, [0, 1], [1, 2]))
    far_lon, far_lat = 121.50, 31.23  # about 2.8 km east
    table = build_facility_table(
        network, [121.4705, far_lon], [31.2301, far_lat], ids=["near", "far"]
    )
    assert table.off_network.tolist() == [1]
    with pytest.raises(OffNetwork) as raised:
        nearest_walk(network, table, far_lon, far_lat)
    assert isinstance(raised.value, LookupError)
    with pytest.raises(OffNetwork):
        isochrone(network, far_lon, far_lat, minutes=10)
    results = nearest_walk(network, table, 121.4702, 31.2299, k=5)
    assert [r.facility_id for r in results] == ["near"]
    many = nearest_walk_many(network, table, [121.4702, far_lon], [31.2299, far_lat])
    assert many.on_network.tolist() == [True, False]
    assert many.facility_index.tolist() == [0, -1]
    assert math.isinf(many.walk_m[1])
    # A larger snap radius brings the far point on the network.
    assert (
        nearest_walk(network, table, far_lon, far_lat, max_snap_m=5000.0)[0].facility_id == "near"
    )
    # No facility on the network: empty answers, not errors.
    empty = build_facility_table(network, [far_lon], [far_lat])
    assert nearest_walk(network, empty, 121.4702, 31.2299, k=3) == []


def test_invalid_arguments() -> None:
    lon = np.array([121.47, 121.471])
    lat = np.array([31.23, 31.23])
    network = WalkNetwork(street_network_from_edges(lon, lat, [0], [1]))
    table = build_facility_table(network, [121.4705], [31.2301])
    with pytest.raises(InvalidInput):
        nearest_walk(network, table, 121.47, 31.23, k=0)
    with pytest.raises(InvalidInput):
        nearest_walk(network, table, 121.47, 31.23, speed_kmh=0.0)
    with pytest.raises(InvalidInput):
        nearest_walk(network, table, 181.0, 31.23)
    with pytest.raises(InvalidInput):
        build_facility_table(network, [121.4705], [31.2301], ids=["a", "b"])
    with pytest.raises(InvalidInput):
        isochrone(network, 121.47, 31.23, minutes=-1.0)
    with pytest.raises(InvalidInput):
        walk_coverage_share(network, table, [121.47], [31.23], minutes=5, speed_kmh=math.nan)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), st.floats(0.5, 8.0))
def test_walk_coverage_share_equals_reference(case: Case, minutes: float) -> None:
    table = build_facility_table(case.network, case.fac_lon, case.fac_lat)
    rng = np.random.default_rng(7)
    margin = 0.004
    sample_lon = rng.uniform(
        case.streets.node_lon.min() - margin, case.streets.node_lon.max() + margin, 40
    )
    sample_lat = rng.uniform(
        case.streets.node_lat.min() - margin, case.streets.node_lat.max() + margin, 40
    )
    coverage = walk_coverage_share(case.network, table, sample_lon, sample_lat, minutes=minutes)
    budget_m = minutes * 60 * 4.8 / 3.6
    within = off = 0
    for lon, lat in zip(sample_lon.tolist(), sample_lat.tolist(), strict=True):
        point = Case(case.streets, case.network, case.fac_lon, case.fac_lat, lon, lat)
        try:
            walks = _reference_walks(point, table)
        except OffNetwork:
            off += 1
            continue
        best = min(walks.values(), default=math.inf)
        within += best <= budget_m - 1e-6
        assume(abs(best - budget_m) > 1e-6)
    assert coverage.n_points == 40
    assert coverage.n_off_network == off
    assert coverage.n_within == within
    assert coverage.share == pytest.approx(within / 40)


# --------------------------------------------------------------------------- isochrones


def _local_frame(lon0: float, lat0: float) -> Transformer:
    return Transformer.from_crs(
        "EPSG:4326", f"+proj=aeqd +lat_0={lat0} +lon_0={lon0} +datum=WGS84 +units=m", always_xy=True
    )


def _reference_reach(
    streets: StreetNetwork, network: WalkNetwork, lon: float, lat: float, reach_m: float
) -> list[tuple[int, float, float]]:
    """Reachable pieces (edge, start fraction, end fraction) from networkx distances."""
    snap = network.snap(lon, lat)
    graph = _reference_graph(streets)
    _attach(graph, streets, "start", snap.edge, snap.fraction)
    dist = nx.single_source_dijkstra_path_length(graph, "start")
    pieces = []
    for e in range(streets.n_edges):
        length = float(streets.edge_length_m[e])
        du = dist.get(int(streets.edge_u[e]), math.inf)
        dv = dist.get(int(streets.edge_v[e]), math.inf)
        if du <= reach_m:
            pieces.append((e, 0.0, min(1.0, (reach_m - du) / length)))
        if dv <= reach_m:
            pieces.append((e, max(0.0, 1.0 - (reach_m - dv) / length), 1.0))
        if e == snap.edge:
            pieces.append(
                (
                    e,
                    max(0.0, snap.fraction - reach_m / length),
                    min(1.0, snap.fraction + reach_m / length),
                )
            )
    return pieces


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grids(), st.data(), st.floats(1.0, 12.0), st.floats(15.0, 60.0))
def test_isochrone_is_the_buffered_reachable_streets(
    streets: StreetNetwork, data: st.DataObject, minutes: float, buffer_m: float
) -> None:
    network = WalkNetwork(streets)
    edge = data.draw(st.integers(0, streets.n_edges - 1))
    lon, lat = _point_near_edge(
        streets, edge, data.draw(st.floats(0.0, 1.0)), data.draw(st.floats(-30, 30))
    )
    snap = network.snap(lon, lat)
    reach_m = minutes * 60 * 4.8 / 3.6 - snap.snap_m
    area = isochrone(network, lon, lat, minutes=minutes, buffer_m=buffer_m, quad_segs=8)
    assert area.is_valid
    assert area.geom_type in ("Polygon", "MultiPolygon")

    frame = _local_frame(lon, lat)
    area_m = shapely.transform(
        area, lambda xy: np.column_stack(frame.transform(xy[:, 0], xy[:, 1]))
    )
    pieces = _reference_reach(streets, network, lon, lat, reach_m)
    pieces = [p for p in pieces if p[2] > p[1]]
    u = streets.edge_u[[p[0] for p in pieces]]
    v = streets.edge_v[[p[0] for p in pieces]]
    ux, uy = frame.transform(streets.node_lon[u], streets.node_lat[u])
    vx, vy = frame.transform(streets.node_lon[v], streets.node_lat[v])
    s0 = np.array([p[1] for p in pieces])
    s1 = np.array([p[2] for p in pieces])
    starts = np.column_stack([ux + s0 * (vx - ux), uy + s0 * (vy - uy)])
    ends = np.column_stack([ux + s1 * (vx - ux), uy + s1 * (vy - uy)])
    reachable = shapely.union_all(shapely.linestrings(np.stack([starts, ends], axis=1)))

    # Every reachable street point is inside; every boundary vertex is buffer_m from them.
    # Tolerance 0.6 m: the implementation's local equirectangular frame and this aeqd frame
    # drift apart by a few decimetres at 2 km from the centre.
    samples = shapely.line_interpolate_point(reachable, np.linspace(0, 1, 200), normalized=True)
    assert np.all(shapely.distance(area_m, samples) < 0.6)
    boundary = shapely.get_coordinates(area_m.boundary)
    gaps = shapely.distance(reachable, shapely.points(boundary))
    assert gaps.max() <= buffer_m + 0.6
    assert gaps.min() >= buffer_m * math.cos(math.pi / 32) - 0.6


def test_isochrone_empty_when_snap_leg_uses_the_budget() -> None:
    lon = np.array([121.47, 121.471])
    lat = np.array([31.23, 31.23])
    network = WalkNetwork(street_network_from_edges(lon, lat, [0], [1]))
    # About 220 m north of the street; 2 minutes is 160 m of walking.
    assert isochrone(network, 121.4705, 31.232, minutes=2).is_empty
    assert not isochrone(network, 121.4705, 31.232, minutes=4).is_empty


# --------------------------------------------------------------------------- Shanghai extract


@pytest.fixture(scope="module")
def shanghai() -> StreetNetwork:
    return streets_from_osm(SHANGHAI)


@pytest.fixture(scope="module")
def shanghai_network(shanghai: StreetNetwork) -> WalkNetwork:
    return WalkNetwork(shanghai)


def test_shanghai_walks_equal_networkx(
    shanghai: StreetNetwork, shanghai_network: WalkNetwork
) -> None:
    rng = np.random.default_rng(2024)
    lon_lo, lon_hi = shanghai.node_lon.min(), shanghai.node_lon.max()
    lat_lo, lat_hi = shanghai.node_lat.min(), shanghai.node_lat.max()
    fac_lon = rng.uniform(lon_lo, lon_hi, 25)
    fac_lat = rng.uniform(lat_lo, lat_hi, 25)
    table = build_facility_table(shanghai_network, fac_lon, fac_lat)
    for _ in range(30):
        case = Case(
            shanghai,
            shanghai_network,
            fac_lon,
            fac_lat,
            float(rng.uniform(lon_lo, lon_hi)),
            float(rng.uniform(lat_lo, lat_hi)),
        )
        reference = sorted(_reference_walks(case, table).values())
        results = nearest_walk(shanghai_network, table, case.origin_lon, case.origin_lat, k=4)
        assert [r.walk_m for r in results] == pytest.approx(reference[:4], rel=1e-9)


def test_shanghai_one_way_streets_do_not_restrict_walking(
    shanghai: StreetNetwork, shanghai_network: WalkNetwork
) -> None:
    root = ET.parse(SHANGHAI).getroot()
    drive = nx.DiGraph()
    one_way: list[tuple[int, int]] = []
    index = {int(osm): i for i, osm in enumerate(shanghai.node_osm_id.tolist())}
    for way in root.iter("way"):
        tags = {tag.get("k", ""): tag.get("v", "") for tag in way.iter("tag")}
        refs = [int(nd.get("ref", "0")) for nd in way.iter("nd")]
        for a, b in itertools.pairwise(refs):
            if a in index and b in index and a != b:
                length = GEOD.inv(
                    shanghai.node_lon[index[a]], shanghai.node_lat[index[a]],
                    shanghai.node_lon[index[b]], shanghai.node_lat[index[b]],
                )[2]  # fmt: skip
                drive.add_edge(a, b, weight=length)
                if tags.get("oneway") == "yes":
                    one_way.append((a, b))
                else:
                    drive.add_edge(b, a, weight=length)
    assert len(one_way) > 100
    against_traffic = 0
    for a, b in one_way[::15]:
        # Walk from b back to a, against the one-way direction.
        table = build_facility_table(
            shanghai_network, [shanghai.node_lon[index[a]]], [shanghai.node_lat[index[a]]]
        )
        (result,) = nearest_walk(
            shanghai_network,
            table,
            float(shanghai.node_lon[index[b]]),
            float(shanghai.node_lat[index[b]]),
        )
        segment = drive[a][b]["weight"]
        assert result.walk_m == pytest.approx(segment, rel=1e-9)
        if not drive.has_edge(b, a):
            try:
                driving = nx.dijkstra_path_length(drive, b, a)
            except nx.NetworkXNoPath:
                driving = math.inf
            assert driving > segment
            against_traffic += 1
    assert against_traffic > 10


def test_shanghai_detour_ratio(shanghai: StreetNetwork, shanghai_network: WalkNetwork) -> None:
    rng = np.random.default_rng(1)
    graph = _reference_graph(shanghai)
    ratios = []
    while len(ratios) < 150:
        a, b = rng.integers(0, shanghai.n_nodes, 2).tolist()
        straight = GEOD.inv(
            shanghai.node_lon[a], shanghai.node_lat[a], shanghai.node_lon[b], shanghai.node_lat[b]
        )[2]
        if not 200.0 <= straight <= 1500.0:
            continue
        table = build_facility_table(
            shanghai_network, [shanghai.node_lon[b]], [shanghai.node_lat[b]]
        )
        (result,) = nearest_walk(
            shanghai_network, table, float(shanghai.node_lon[a]), float(shanghai.node_lat[a])
        )
        assert result.walk_m == pytest.approx(nx.dijkstra_path_length(graph, a, b), rel=1e-9)
        ratios.append(result.walk_m / straight)
    median = float(np.median(ratios))
    assert 1.1 <= median <= 1.6
    assert np.percentile(ratios, 90) > median


def test_shanghai_isochrones_nest(shanghai: StreetNetwork, shanghai_network: WalkNetwork) -> None:
    lon, lat = 121.4745, 31.2300
    five = isochrone(shanghai_network, lon, lat, minutes=5)
    fifteen = isochrone(shanghai_network, lon, lat, minutes=15)
    assert five.is_valid and fifteen.is_valid
    assert fifteen.buffer(1e-7).contains(five)
    assert fifteen.area > 3 * five.area
    assert shapely.contains_xy(five, lon, lat)
    geojson = shapely.geometry.mapping(fifteen)
    assert geojson["type"] in ("Polygon", "MultiPolygon")


def test_saved_network_gives_the_same_answers(tmp_path: Path, shanghai: StreetNetwork) -> None:
    path = tmp_path / "walk.npz"
    save_network(shanghai, path)
    fresh = WalkNetwork(shanghai)
    loaded = WalkNetwork(load_network(path))
    fac_lon, fac_lat = [121.468, 121.480], [31.225, 31.236]
    for network in (fresh, loaded):
        table = build_facility_table(network, fac_lon, fac_lat)
        walks = [r.walk_m for r in nearest_walk(network, table, 121.474, 31.230, k=2)]
        assert len(walks) == 2
    table_fresh = build_facility_table(fresh, fac_lon, fac_lat)
    table_loaded = build_facility_table(loaded, fac_lon, fac_lat)
    np.testing.assert_array_equal(table_fresh.node_walk_m, table_loaded.node_walk_m)
