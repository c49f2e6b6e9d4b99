"""OSM import to a walking graph, compared with an independent ElementTree + networkx reading."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from pathlib import Path

import networkx as nx
import numpy as np
import osmium
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod

from geodata.errors import InvalidStreetNetwork
from geodata.streets import (
    StreetNetwork,
    is_walkable,
    load_network,
    save_network,
    street_network_from_edges,
    streets_from_osm,
)

SHANGHAI = Path(__file__).parents[1] / "data" / "shanghai_jingan.osm"
GEOD = Geod(ellps="WGS84")


@pytest.mark.parametrize(
    ("tags", "walkable"),
    [
        ({"highway": "footway"}, True),
        ({"highway": "footway", "footway": "crossing"}, True),
        ({"highway": "path"}, True),
        ({"highway": "steps"}, True),
        ({"highway": "pedestrian"}, True),
        ({"highway": "living_street"}, True),
        ({"highway": "residential", "oneway": "yes"}, True),
        ({"highway": "service"}, True),
        ({"highway": "unclassified"}, True),
        ({"highway": "track"}, True),
        ({"highway": "primary_link"}, True),
        ({"highway": "secondary"}, True),
        ({"highway": "tertiary"}, True),
        ({"highway": "motorway"}, False),
        ({"highway": "motorway_link", "foot": "yes"}, False),
        ({"highway": "trunk"}, False),
        ({"highway": "trunk_link", "bridge": "yes"}, False),
        ({"highway": "trunk", "foot": "yes"}, True),
        ({"highway": "trunk", "foot": "designated"}, True),
        ({"highway": "trunk", "sidewalk": "both"}, True),
        ({"highway": "trunk", "sidewalk": "no"}, False),
        ({"highway": "trunk_link", "sidewalk:left": "yes"}, True),
        ({"highway": "residential", "foot": "no"}, False),
        ({"highway": "footway", "foot": "no"}, False),
        ({"highway": "service", "access": "private"}, False),
        ({"highway": "service", "access": "private", "foot": "yes"}, True),
        ({"highway": "residential", "access": "no"}, False),
        ({"highway": "cycleway"}, False),
        ({"highway": "cycleway", "foot": "yes"}, True),
        ({"highway": "construction"}, False),
        ({"building": "yes"}, False),
    ],
)
def test_is_walkable_rules(tags: dict[str, str], walkable: bool) -> None:
    assert is_walkable(tags) is walkable


def _reference_walkable(tags: dict[str, str]) -> bool:
    """The issue's rules, written out independently of geodata.streets."""
    highway = tags.get("highway", "")
    foot = tags.get("foot")
    foot_ok = foot in ("yes", "designated", "permissive")
    if foot == "no" or highway.startswith("motorway"):
        return False
    if tags.get("access") in ("private", "no") and not foot_ok:
        return False
    if highway in ("trunk", "trunk_link"):
        return foot_ok or tags.get("sidewalk") not in (None, "no", "none")
    return highway in {
        "footway", "path", "steps", "pedestrian", "living_street", "residential", "service",
        "unclassified", "road", "track", "corridor", "tertiary", "tertiary_link", "secondary",
        "secondary_link", "primary", "primary_link",
    }  # fmt: skip


def _reference_graph(path: Path) -> nx.Graph:
    """Walking graph read with ElementTree, keyed by OSM node id, lengths from Geod.inv."""
    root = ET.parse(path).getroot()
    location = {
        int(node.get("id", "0")): (float(node.get("lon", "nan")), float(node.get("lat", "nan")))
        for node in root.iter("node")
    }
    graph = nx.Graph()
    for way in root.iter("way"):
        tags = {tag.get("k", ""): tag.get("v", "") for tag in way.iter("tag")}
        if not _reference_walkable(tags):
            continue
        refs = [int(nd.get("ref", "0")) for nd in way.iter("nd")]
        for a, b in itertools.pairwise(refs):
            if a != b:
                (lon_a, lat_a), (lon_b, lat_b) = location[a], location[b]
                length = GEOD.inv(lon_a, lat_a, lon_b, lat_b)[2]
                graph.add_edge(a, b, length=length)
    return graph


@pytest.fixture(scope="module")
def shanghai() -> StreetNetwork:
    return streets_from_osm(SHANGHAI)


def test_shanghai_equals_independent_reading(shanghai: StreetNetwork) -> None:
    reference = _reference_graph(SHANGHAI)
    parts = sorted(nx.connected_components(reference), key=len, reverse=True)
    largest = reference.subgraph(parts[0])

    assert set(shanghai.node_osm_id.tolist()) == set(largest.nodes)
    ids = shanghai.node_osm_id
    ours = {
        frozenset((int(ids[u]), int(ids[v]))): length
        for u, v, length in zip(
            shanghai.edge_u, shanghai.edge_v, shanghai.edge_length_m, strict=True
        )
    }
    theirs = {frozenset((a, b)): data["length"] for a, b, data in largest.edges(data=True)}
    assert ours.keys() == theirs.keys()
    for key, length in theirs.items():
        assert ours[key] == pytest.approx(length, rel=1e-9)
    assert shanghai.dropped_part_sizes == tuple(len(part) for part in parts[1:])
    assert len(shanghai.dropped_part_sizes) > 0


def test_shanghai_node_coordinates_match_file(shanghai: StreetNetwork) -> None:
    root = ET.parse(SHANGHAI).getroot()
    location = {
        int(node.get("id", "0")): (float(node.get("lon", "nan")), float(node.get("lat", "nan")))
        for node in root.iter("node")
    }
    for osm_id, lon, lat in zip(
        shanghai.node_osm_id, shanghai.node_lon, shanghai.node_lat, strict=True
    ):
        assert location[int(osm_id)] == pytest.approx((lon, lat), abs=1e-7)


def test_trunk_and_motorway_segments_are_excluded(shanghai: StreetNetwork) -> None:
    root = ET.parse(SHANGHAI).getroot()
    walkable_pairs: set[frozenset[int]] = set()
    trunk_pairs: set[frozenset[int]] = set()
    for way in root.iter("way"):
        tags = {tag.get("k", ""): tag.get("v", "") for tag in way.iter("tag")}
        refs = [int(nd.get("ref", "0")) for nd in way.iter("nd")]
        pairs = {frozenset(p) for p in itertools.pairwise(refs)}
        if tags.get("highway") in ("trunk", "trunk_link", "motorway", "motorway_link"):
            trunk_pairs |= pairs
        else:
            walkable_pairs |= pairs
    ids = shanghai.node_osm_id
    ours = {
        frozenset((int(ids[u]), int(ids[v])))
        for u, v in zip(shanghai.edge_u, shanghai.edge_v, strict=True)
    }
    only_trunk = trunk_pairs - walkable_pairs
    assert len(only_trunk) > 50
    assert not ours & only_trunk


def _write_osm(path: Path, nodes: dict[int, tuple[float, float]], ways: list[tuple]) -> None:
    with osmium.SimpleWriter(str(path)) as writer:
        for node_id, location in sorted(nodes.items()):
            writer.add_node(osmium.osm.mutable.Node(id=node_id, location=location))
        for way_id, refs, tags in ways:
            writer.add_way(osmium.osm.mutable.Way(id=way_id, nodes=refs, tags=tags))


@pytest.mark.parametrize("suffix", [".osm", ".osm.pbf"])
def test_tag_rules_and_parts_on_written_file(tmp_path: Path, suffix: str) -> None:
    # A row of nodes 1..9 along a parallel; each way joins two neighbours.
    nodes = {i: (121.47 + 0.001 * i, 31.23) for i in range(1, 10)}
    nodes |= {20: (121.50, 31.25), 21: (121.501, 31.25), 22: (121.502, 31.25)}
    ways = [
        (1, [1, 2], {"highway": "footway"}),
        (2, [2, 3], {"highway": "primary", "oneway": "yes"}),
        (3, [3, 4], {"highway": "trunk", "sidewalk": "both"}),
        (4, [4, 5], {"highway": "service", "access": "private", "foot": "yes"}),
        (5, [5, 6], {"highway": "steps"}),
        (6, [6, 7], {"highway": "motorway", "foot": "yes"}),
        (7, [6, 7], {"highway": "trunk"}),
        (8, [7, 8], {"highway": "residential", "foot": "no"}),
        (9, [8, 9], {"highway": "service", "access": "private"}),
        (10, [20, 21, 22], {"highway": "pedestrian"}),
    ]
    path = tmp_path / f"streets{suffix}"
    _write_osm(path, nodes, ways)
    network = streets_from_osm(path)
    assert sorted(network.node_osm_id.tolist()) == [1, 2, 3, 4, 5, 6]
    ids = network.node_osm_id
    pairs = {
        tuple(sorted((int(ids[u]), int(ids[v]))))
        for u, v in zip(network.edge_u, network.edge_v, strict=True)
    }
    assert pairs == {(1, 2), (2, 3), (3, 4), (4, 5), (5, 6)}
    assert network.dropped_part_sizes == (3,)
    for u, v, length in zip(network.edge_u, network.edge_v, network.edge_length_m, strict=True):
        expected = GEOD.inv(nodes[int(ids[u])][0], 31.23, nodes[int(ids[v])][0], 31.23)[2]
        assert length == pytest.approx(expected, rel=1e-12)


def test_pbf_reads_the_same_as_xml(tmp_path: Path, shanghai: StreetNetwork) -> None:
    pbf = tmp_path / "shanghai.osm.pbf"
    with osmium.SimpleWriter(str(pbf)) as writer:
        for obj in osmium.FileProcessor(str(SHANGHAI)):
            writer.add(obj)
    from_pbf = streets_from_osm(pbf)
    order_xml = np.argsort(shanghai.node_osm_id)
    order_pbf = np.argsort(from_pbf.node_osm_id)
    np.testing.assert_array_equal(shanghai.node_osm_id[order_xml], from_pbf.node_osm_id[order_pbf])
    np.testing.assert_allclose(shanghai.node_lon[order_xml], from_pbf.node_lon[order_pbf])
    np.testing.assert_allclose(shanghai.node_lat[order_xml], from_pbf.node_lat[order_pbf])
    assert from_pbf.n_edges == shanghai.n_edges
    assert from_pbf.edge_length_m.sum() == pytest.approx(shanghai.edge_length_m.sum())
    assert from_pbf.dropped_part_sizes == shanghai.dropped_part_sizes


def test_save_load_round_trip(tmp_path: Path, shanghai: StreetNetwork) -> None:
    path = tmp_path / "walk.npz"
    save_network(shanghai, path)
    loaded = load_network(path)
    for name in ("node_lon", "node_lat", "node_osm_id", "edge_u", "edge_v", "edge_length_m"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(shanghai, name))
    assert loaded.dropped_part_sizes == shanghai.dropped_part_sizes
    assert path.stat().st_size < SHANGHAI.stat().st_size


def test_load_rejects_other_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidStreetNetwork):
        load_network(tmp_path / "missing.npz")
    other = tmp_path / "other.npz"
    np.savez(other, values=np.arange(3))
    with pytest.raises(InvalidStreetNetwork):
        load_network(other)
    text = tmp_path / "text.npz"
    text.write_text("not a network")
    with pytest.raises(InvalidStreetNetwork):
        load_network(text)


def test_import_rejects_missing_and_streetless_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidStreetNetwork):
        streets_from_osm(tmp_path / "missing.osm")
    only_motorway = tmp_path / "motorway.osm"
    _write_osm(
        only_motorway,
        {1: (121.47, 31.23), 2: (121.48, 31.23)},
        [(1, [1, 2], {"highway": "motorway"})],
    )
    with pytest.raises(InvalidStreetNetwork):
        streets_from_osm(only_motorway)


@st.composite
def random_graphs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n = draw(st.integers(min_value=2, max_value=30))
    lon = np.array(draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))) * 1e-3 + 121.4
    lat = np.array(draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))) * 1e-3 + 31.2
    pairs = draw(
        st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), min_size=1, max_size=60)
    )
    u = np.array([p[0] for p in pairs])
    v = np.array([p[1] for p in pairs])
    return lon, lat, u, v


@settings(max_examples=150, deadline=None)
@given(random_graphs())
def test_from_edges_matches_networkx_components(
    graph: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    lon, lat, u, v = graph
    reference = nx.Graph()
    for a, b in zip(u.tolist(), v.tolist(), strict=True):
        key_a, key_b = (lon[a], lat[a]), (lon[b], lat[b])
        if key_a != key_b:
            reference.add_edge(key_a, key_b)
    if reference.number_of_edges() == 0:
        with pytest.raises(InvalidStreetNetwork):
            street_network_from_edges(lon, lat, u, v)
        return
    network = street_network_from_edges(lon, lat, u, v)
    sizes = sorted((len(c) for c in nx.connected_components(reference)), reverse=True)
    assert network.n_nodes == sizes[0]
    assert network.dropped_part_sizes == tuple(sizes[1:])
    assert np.all(network.edge_u < network.edge_v)
    ours = {
        frozenset(
            (
                (network.node_lon[a], network.node_lat[a]),
                (network.node_lon[b], network.node_lat[b]),
            )
        )
        for a, b in zip(network.edge_u, network.edge_v, strict=True)
    }
    # Ties between equally large parts may go either way; the kept part must be one of them.
    largest_parts = [
        {frozenset(edge) for edge in reference.subgraph(part).edges}
        for part in nx.connected_components(reference)
        if len(part) == sizes[0]
    ]
    assert ours in largest_parts
    assert network.n_edges == len(ours)
    for a, b, length in zip(network.edge_u, network.edge_v, network.edge_length_m, strict=True):
        expected = GEOD.inv(
            network.node_lon[a], network.node_lat[a], network.node_lon[b], network.node_lat[b]
        )[2]
        assert length == pytest.approx(expected, rel=1e-12)
