"""The served base map: built from the real Jing'an extract, decoded back, drawn into the pages.

The archive is built once per module from tests/data/shanghai_jingan.osm (about a second).
"""

from __future__ import annotations

import base64
import gzip
import io
import itertools
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import mapbox_vector_tile
import numpy as np
import pytest
from fontTools.ttLib import TTFont

from geodata.basemap import (
    ATTRIBUTION,
    BasemapArchive,
    basemap_from_osm,
    label_name,
    tile_bounds_m,
)
from geodata.errors import InvalidInput, NotFound
from geodata.sample import sample_frame
from maps.basemap import VectorTiles
from maps.coveragemap import coverage_map_html
from maps.webmap import base_map_spec, facility_map_html

JINGAN = Path(__file__).resolve().parents[1] / "data" / "shanghai_jingan.osm"
#: People's Square, inside the extract (WGS-84).
CENTRE = (121.4737, 31.2304)


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """XYZ tile of a WGS-84 point (reference formula of the slippy-map convention)."""
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def extract_ways() -> tuple[dict[int, tuple[float, float]], list[tuple[dict[str, str], list[int]]]]:
    """Nodes and (tags, node refs) of the ways of the extract, read with the standard library."""
    root = ET.parse(JINGAN).getroot()
    nodes = {
        int(n.get("id", 0)): (float(n.get("lon", 0)), float(n.get("lat", 0)))
        for n in root.iter("node")
    }
    ways = [
        (
            {t.get("k", ""): t.get("v", "") for t in w.iter("tag")},
            [int(nd.get("ref", 0)) for nd in w.iter("nd")],
        )
        for w in root.iter("way")
    ]
    return nodes, ways


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> BasemapArchive:
    out = tmp_path_factory.mktemp("basemap") / "jingan.pmtiles"
    lines: list[str] = []
    summary = basemap_from_osm(JINGAN, out, progress=lines.append)
    assert summary.features == 796  # every way of the extract is a road
    assert lines and lines[-1].startswith("wrote")
    return BasemapArchive(out)


def decode(data: bytes) -> dict[str, dict]:
    return mapbox_vector_tile.decode(gzip.decompress(data), default_options={"y_coord_down": True})


def test_z14_tile_has_named_roads_of_the_extract(archive: BasemapArchive) -> None:
    x, y = tile_of(*CENTRE, 14)
    layers = decode(archive.tile(14, x, y) or b"")
    roads = layers["roads"]["features"]
    names = {f["properties"].get("name") for f in roads} - {None}
    _, ways = extract_ways()
    extract_names = {label_name(tags) for tags, _ in ways} - {""}
    assert len(names) >= 20
    assert names <= extract_names
    assert {"人民大道", "南京西路", "西藏中路"} <= names
    classes = {f["properties"]["class"] for f in roads}
    assert {"primary", "secondary", "tertiary", "minor"} <= classes


def test_road_geometry_lands_on_the_extract_nodes(archive: BasemapArchive) -> None:
    """Decoded tile coordinates, mapped back to lon/lat, lie on the extract's nodes (WGS-84)."""
    z = 14
    x, y = tile_of(*CENTRE, z)
    xmin, _, xmax, ymax = tile_bounds_m(z, x, y)
    unit = (xmax - xmin) / 4096
    nodes, ways = extract_ways()
    road = [f for f in decode(archive.tile(z, x, y) or b"")["roads"]["features"]]
    named = [f for f in road if f["properties"].get("name") == "人民大道"]
    assert named
    coords = []
    for feature in named:
        geometry = feature["geometry"]
        lines = geometry["coordinates"]
        if geometry["type"] == "LineString":
            lines = [lines]
        coords += [c for line in lines for c in line]
    mx = xmin + np.array([c[0] for c in coords]) * unit
    my = ymax - np.array([c[1] for c in coords]) * unit
    lon = np.degrees(mx / 6378137.0)
    lat = np.degrees(2 * np.arctan(np.exp(my / 6378137.0)) - np.pi / 2)
    refs = {r for tags, rs in ways if tags.get("name") == "人民大道" for r in rs}
    ref_xy = np.array([nodes[r] for r in refs])
    for a, b in zip(lon, lat, strict=True):
        d_m = np.hypot(
            (ref_xy[:, 0] - a) * 111_320 * math.cos(math.radians(b)), (ref_xy[:, 1] - b) * 110_574
        )
        # simplification may drop a vertex, never move one: every kept vertex is a node
        assert d_m.min() < 3.0


def test_no_named_line_doubles_back_on_itself(archive: BasemapArchive) -> None:
    """No repeated vertex and no immediate back-track (A-B-A) in any named line of any tile:
    the extract has ways drawn there and back, and such a line gives a label a zero-length
    direction, which made protomaps-leaflet drop every label (NaN in its label index)."""
    from pmtiles.reader import all_tiles

    with archive.path.open("rb") as handle:
        data = handle.read()
    checked = 0
    for (z, _, _), tile in all_tiles(lambda offset, length: data[offset : offset + length]):
        for layer in decode(tile).values():
            for feature in layer["features"]:
                geometry = feature["geometry"]
                lines_type = geometry["type"] in ("LineString", "MultiLineString")
                if not lines_type or "name" not in feature["properties"]:
                    continue
                lines = geometry["coordinates"]
                for line in [lines] if geometry["type"] == "LineString" else lines:
                    points = [tuple(p) for p in line]
                    assert all(a != b for a, b in itertools.pairwise(points)), (z, points)
                    back = [i for i in range(len(points) - 2) if points[i] == points[i + 2]]
                    assert back == [], (z, points)
                    checked += 1
    assert checked > 500


def test_empty_and_out_of_range_tiles(archive: BasemapArchive) -> None:
    x, y = tile_of(*CENTRE, 14)
    assert archive.tile(14, x + 5, y) is None  # inside the zoom range, no feature
    assert archive.tile(2, 3, 1) is None  # below the first zoom with data
    with pytest.raises(NotFound):
        archive.tile(archive.max_zoom + 1, 0, 0)
    with pytest.raises(NotFound):
        archive.tile(3, 8, 0)


def test_metadata_names_the_licence_and_the_label_characters(archive: BasemapArchive) -> None:
    assert archive.metadata["attribution"] == ATTRIBUTION == "© OpenStreetMap contributors"
    assert archive.gzipped
    _, ways = extract_ways()
    wanted = set("".join(label_name(tags) for tags, _ in ways))
    assert set(archive.label_characters) == wanted


def test_unreadable_input_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.osm"
    bad.write_text("not xml at all", encoding="utf-8")
    with pytest.raises(InvalidInput):
        basemap_from_osm(bad, tmp_path / "out.pmtiles")
    with pytest.raises(InvalidInput):
        basemap_from_osm(tmp_path / "missing.osm", tmp_path / "out.pmtiles")
    with pytest.raises(InvalidInput):
        BasemapArchive(bad)


def _font_characters(html: str) -> set[str]:
    match = re.search(r"url\(data:font/woff;base64,([A-Za-z0-9+/=]+)\)", html)
    assert match is not None
    font = TTFont(io.BytesIO(base64.b64decode(match.group(1))))
    return {chr(code) for code in font.getBestCmap()}


def _tiles(archive: BasemapArchive) -> VectorTiles:
    return VectorTiles("/basemap/{z}/{x}/{y}.mvt", archive.max_zoom, archive.label_characters)


def test_facility_map_draws_the_vector_base_map_with_a_font_for_its_labels(
    archive: BasemapArchive,
) -> None:
    html = facility_map_html(
        sample_frame(30, seed=3),
        base_map="vector",
        vector_tiles=_tiles(archive),
        asset_mode="served",
    )
    assert "FacilityBasemap.add(" in html
    assert '"/basemap/{z}/{x}/{y}.mvt"' in html
    assert "OpenStreetMap<\\/a> contributors" in html  # the layer's attribution
    assert '<script src="/static/facilitymap/vendor/protomaps-leaflet.js">' in html
    # no tofu: every character of every street name has a glyph in the embedded font
    cjk = set(re.findall("[\u4e00-\u9fff]", archive.label_characters))
    assert cjk and cjk <= _font_characters(html)


def test_coverage_map_draws_the_vector_base_map(archive: BasemapArchive) -> None:
    from finder.coverage import build_sample_grid
    from geodata.boundaries import load_districts

    grid = build_sample_grid(load_districts())
    html = coverage_map_html(
        grid, [121.47], [31.23], asset_mode="served", vector_tiles=_tiles(archive)
    )
    assert "FacilityBasemap.add(" in html
    cjk = set(re.findall("[\u4e00-\u9fff]", archive.label_characters))
    assert cjk <= _font_characters(html)
    plain = coverage_map_html(grid, [121.47], [31.23], asset_mode="served")
    assert "FacilityBasemap" not in plain
    approved = coverage_map_html(
        grid, [121.47], [31.23], vector_tiles=_tiles(archive), approval_no="沪S(2024)001号"
    )
    assert "审图号：沪S(2024)001号" in approved


def test_vector_base_map_needs_tiles() -> None:
    with pytest.raises(InvalidInput):
        base_map_spec("vector")
    with pytest.raises(InvalidInput):
        VectorTiles("/basemap/tiles.mvt", 14)


def _square(nodes: list[str], first_id: int, lon: float, lat: float, side: float) -> list[int]:
    """Append four nodes of a square to ``nodes``; return the closed ring of their ids."""
    corners = [(lon, lat), (lon + side, lat), (lon + side, lat + side), (lon, lat + side)]
    ids = list(range(first_id, first_id + 4))
    for node_id, (x, y) in zip(ids, corners, strict=True):
        nodes.append(f'<node id="{node_id}" version="1" lat="{y:.7f}" lon="{x:.7f}"/>')
    return [*ids, ids[0]]


def _way(way_id: int, refs: list[int], tags: dict[str, str]) -> str:
    nds = "".join(f'<nd ref="{r}"/>' for r in refs)
    tag_xml = "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items())
    return f'<way id="{way_id}" version="1">{nds}{tag_xml}</way>'


def test_every_layer_from_a_small_extract(tmp_path: Path) -> None:
    """Water, parks, buildings, railways, rivers, place and district labels (name:zh first)."""
    lon, lat = 121.47, 31.23
    nodes: list[str] = []
    park = _square(nodes, 1, lon, lat, 0.004)
    lake = _square(nodes, 11, lon + 0.005, lat, 0.003)
    house = _square(nodes, 21, lon, lat + 0.005, 0.0003)
    district = _square(nodes, 31, lon - 0.01, lat - 0.01, 0.03)
    for node_id, x in ((41, lon - 0.005), (42, lon + 0.012)):
        nodes.append(f'<node id="{node_id}" version="1" lat="{lat + 0.002:.7f}" lon="{x:.7f}"/>')
    for node_id, x in ((43, lon - 0.005), (44, lon + 0.012)):
        nodes.append(f'<node id="{node_id}" version="1" lat="{lat + 0.0045:.7f}" lon="{x:.7f}"/>')
    nodes.append(
        f'<node id="50" version="1" lat="{lat + 0.001}" lon="{lon + 0.001}">'
        '<tag k="place" v="suburb"/><tag k="name" v="Jing An"/><tag k="name:zh" v="静安寺"/></node>'
    )
    ways = [
        _way(100, park, {"leisure": "park", "name": "静安公园"}),
        _way(101, lake, {"natural": "water"}),
        _way(102, house, {"building": "yes"}),
        _way(103, district, {}),
        _way(104, [41, 42], {"railway": "subway", "name": "地铁2号线"}),
        _way(105, [43, 44], {"waterway": "river", "name": "苏州河"}),
    ]
    relation = (
        '<relation id="200" version="1"><member type="way" ref="103" role="outer"/>'
        '<tag k="type" v="boundary"/><tag k="boundary" v="administrative"/>'
        '<tag k="admin_level" v="6"/><tag k="name" v="静安区"/></relation>'
    )
    extract = tmp_path / "small.osm"
    extract.write_text(
        '<?xml version="1.0" encoding="UTF-8"?><osm version="0.6">'
        + "".join(nodes)
        + "".join(ways)
        + relation
        + "</osm>",
        encoding="utf-8",
    )
    out = tmp_path / "small.pmtiles"
    summary = basemap_from_osm(extract, out)
    assert summary.features == 7  # park, lake, house, subway, river, suburb, district label
    tiles = BasemapArchive(out)
    x, y = tile_of(lon + 0.002, lat + 0.002, 14)
    layers = decode(tiles.tile(14, x, y) or b"")
    assert {f["properties"]["class"] for f in layers["landuse"]["features"]} == {"park"}
    assert layers["water"]["features"] and layers["buildings"]["features"]
    assert [f["properties"] for f in layers["railways"]["features"]] == [
        {"class": "metro", "name": "地铁2号线"}
    ]
    assert {"class": "river", "name": "苏州河"} in [
        f["properties"] for f in layers["waterways"]["features"]
    ]
    places = {
        f["properties"]["name"]: f["properties"]["class"] for f in layers["places"]["features"]
    }
    assert places["静安寺"] == "suburb"  # name:zh before name
    # the district label is at zoom 9 already; the house only at 14, the park from its size
    x9, y9 = tile_of(lon + 0.005, lat + 0.005, 9)
    low = decode(tiles.tile(9, x9, y9) or b"")
    assert [f["properties"] for f in low["places"]["features"]] == [
        {"class": "district", "name": "静安区"}
    ]
    assert "buildings" not in low
    x13, y13 = tile_of(lon + 0.002, lat + 0.002, 13)
    assert "buildings" not in decode(tiles.tile(13, x13, y13) or b"")


def test_archive_reads_every_tile_as_the_pmtiles_reader_does(archive: BasemapArchive) -> None:
    """Our cached directory lookup against pmtiles' own traversal, tile by tile."""
    from pmtiles.reader import all_tiles

    data = archive.path.read_bytes()
    tiles = list(all_tiles(lambda offset, length: data[offset : offset + length]))
    assert len(tiles) == archive.header["addressed_tiles_count"] > 10
    for (z, x, y), tile in tiles:
        assert archive.tile(z, x, y) == tile
