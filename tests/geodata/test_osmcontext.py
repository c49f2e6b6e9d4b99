"""Map context from the Jing'an OpenStreetMap extract (real file, read with pyosmium)."""

from __future__ import annotations

from pathlib import Path

import pytest

from geodata.errors import InvalidInput
from geodata.osmcontext import context_from_osm, nearest_road_names

EXTRACT = Path(__file__).resolve().parents[1] / "data" / "shanghai_jingan.osm"


def test_roads_by_class_with_names() -> None:
    context = context_from_osm(EXTRACT)
    roads = context.roads
    assert context.source == "shanghai_jingan.osm" and roads.crs == "EPSG:4326"
    assert set(roads["road_class"]) == {"major", "minor"}
    major_names = set(roads.loc[roads["road_class"] == "major", "name"])
    assert {"南京西路", "延安东路", "西藏中路"} & major_names
    west, south, east, north = roads.total_bounds
    assert 121.46 < west < east < 121.49 and 31.21 < south < north < 31.25
    # the extract holds only highways
    assert context.water.empty and context.railways.empty and context.subdistricts.empty


def test_nearest_road_names_are_distinct_nearest_first() -> None:
    roads = context_from_osm(EXTRACT).roads
    # a node of a 西藏中路 way, at 人民广场's east side
    names = nearest_road_names(roads, 121.4718212, 31.2336659, n=3)
    assert len(names) == len(set(names)) == 3
    assert names[0] == "西藏中路"
    assert nearest_road_names(roads, 121.0, 31.0) == []  # 45 km away: nothing nearby


def test_missing_or_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        context_from_osm(tmp_path / "none.osm")
    bad = tmp_path / "bad.osm"
    bad.write_text("<osm><way id='1'", encoding="utf-8")
    with pytest.raises(InvalidInput):
        context_from_osm(bad)
