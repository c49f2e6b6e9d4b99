"""District boundaries: the bundled WGS-84 file, census join and point-in-polygon lookup."""

from __future__ import annotations

import json
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod

from geodata.boundaries import (
    SHANGHAI_DISTRICTS,
    assign_adcode,
    build_districts_geojson,
    district_by_adcode,
    district_names,
    load_districts,
    main,
)
from geodata.errors import InvalidInput, UnknownDistrict

TEST_DATA = Path(__file__).resolve().parents[1] / "data" / "boundaries_gcj02"  # see PROVENANCE.txt
SOURCE_GCJ02 = TEST_DATA / "shanghai_16_districts_gcj02.geojson"
INDEX_CSV = TEST_DATA / "index.csv"

GEOD = Geod(ellps="WGS84")


def _wgs84_to_gcj02(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The published forward GCJ-02 formula (eviltransform), an independent reference."""
    a, ee = 6378245.0, 0.00669342162296594323
    x, y = lon - 105.0, lat - 35.0
    d_lat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    d_lat += (20.0 * np.sin(6.0 * x * math.pi) + 20.0 * np.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    d_lat += (20.0 * np.sin(y * math.pi) + 40.0 * np.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    d_lat += (160.0 * np.sin(y / 12.0 * math.pi) + 320 * np.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    d_lon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    d_lon += (20.0 * np.sin(6.0 * x * math.pi) + 20.0 * np.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    d_lon += (20.0 * np.sin(x * math.pi) + 40.0 * np.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    d_lon += (150.0 * np.sin(x / 12.0 * math.pi) + 300.0 * np.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    rad_lat = np.radians(lat)
    magic = 1 - ee * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((a * (1 - ee)) / (magic * sqrt_magic) * math.pi)
    d_lon = (d_lon * 180.0) / (a / sqrt_magic * np.cos(rad_lat) * math.pi)
    return lon + d_lon, lat + d_lat


@pytest.fixture(scope="module")
def districts() -> gpd.GeoDataFrame:
    return load_districts()


def test_bundled_districts_are_16_valid_wgs84_multipolygons(districts: gpd.GeoDataFrame) -> None:
    assert len(districts) == 16
    assert list(districts.columns) == [
        "adcode",
        "name",
        "province",
        "city",
        "population",
        "city_adcode",
        "province_adcode",
        "geometry",
    ]
    assert districts.crs.to_epsg() == 4326
    assert districts["adcode"].str.fullmatch(r"31\d{4}").all()
    assert districts["adcode"].is_unique
    assert districts.is_valid.all()
    assert (districts.geom_type == "MultiPolygon").all()
    assert set(districts["province"]) == {"上海市"}
    assert "静安区" in set(districts["name"])


def test_total_geodesic_area_is_about_8012_km2(districts: gpd.GeoDataFrame) -> None:
    areas_km2 = [abs(GEOD.geometry_area_perimeter(g)[0]) / 1e6 for g in districts.geometry]
    assert sum(areas_km2) == pytest.approx(8012.0, rel=0.01)
    huangpu = districts.index[districts["adcode"] == "310101"][0]
    assert areas_km2[huangpu] == pytest.approx(20.4, rel=0.03)


def test_population_is_2020_census(districts: gpd.GeoDataFrame) -> None:
    assert int(districts["population"].sum()) == 24_870_895
    jingan = district_by_adcode(districts, "310106")
    assert int(jingan["population"]) == 975_707


def test_gcj02_shift_moved_vertices_300_to_700_m(districts: gpd.GeoDataFrame) -> None:
    source = gpd.read_file(SOURCE_GCJ02).sort_values("adcode").reset_index(drop=True)
    assert list(source["adcode"]) == list(districts["adcode"])
    for src, dst in zip(source.geometry, districts.geometry, strict=True):
        src_xy = shapely.get_coordinates(src)
        dst_xy = shapely.get_coordinates(dst)
        assert src_xy.shape == dst_xy.shape
        _, _, shift_m = GEOD.inv(src_xy[:, 0], src_xy[:, 1], dst_xy[:, 0], dst_xy[:, 1])
        assert shift_m.min() > 300.0
        assert shift_m.max() < 700.0
        # forward GCJ-02 of every bundled vertex lands back on the source vertex (1e-7° rounding)
        fwd_lon, fwd_lat = _wgs84_to_gcj02(dst_xy[:, 0], dst_xy[:, 1])
        _, _, back_m = GEOD.inv(fwd_lon, fwd_lat, src_xy[:, 0], src_xy[:, 1])
        assert back_m.max() < 0.05


def test_bundled_file_equals_regeneration(tmp_path: Path) -> None:
    out = tmp_path / "districts.geojson"
    assert main(["--from", str(SOURCE_GCJ02), "--index", str(INDEX_CSV), "--out", str(out)]) == 0
    assert out.read_bytes() == SHANGHAI_DISTRICTS.read_bytes()


def test_load_districts_converts_gcj02_when_told(
    tmp_path: Path, districts: gpd.GeoDataFrame
) -> None:
    source = json.loads(SOURCE_GCJ02.read_text(encoding="utf-8"))
    source["features"] = [f for f in source["features"] if f["properties"]["adcode"] == "310106"]
    path = tmp_path / "jingan_gcj02.geojson"
    path.write_text(json.dumps(source, ensure_ascii=False), encoding="utf-8")
    loaded = load_districts(path, crs="gcj02")
    assert list(loaded["adcode"]) == ["310106"]
    assert loaded["province"].isna().all()
    expected = district_by_adcode(districts, "310106").geometry
    assert shapely.equals_exact(loaded.geometry.iloc[0], expected, tolerance=1e-9)
    as_is = load_districts(path)  # read as WGS-84: no shift
    assert as_is.geometry.iloc[0].centroid.distance(expected.centroid) > 0.003


def test_build_rejects_adcode_missing_from_index(tmp_path: Path) -> None:
    index = tmp_path / "index.csv"
    index.write_text("国家,省/直辖市,市,区/县,文件名,级别,来源,类型\n", encoding="utf-8")
    with pytest.raises(UnknownDistrict):
        build_districts_geojson(SOURCE_GCJ02, index, tmp_path / "out.geojson")


@pytest.mark.parametrize(
    ("name", "lon", "lat", "adcode", "district"),
    [
        ("People's Square", 121.4737, 31.2304, "310101", "黄浦区"),
        ("Lujiazui", 121.4998, 31.2397, "310115", "浦东新区"),
        ("Xujiahui", 121.4365, 31.1880, "310104", "徐汇区"),
        ("Jing'an Temple", 121.4453, 31.2235, "310106", "静安区"),
    ],
)
def test_known_points_land_in_known_districts(
    districts: gpd.GeoDataFrame, name: str, lon: float, lat: float, adcode: str, district: str
) -> None:
    found = assign_adcode(np.array([lon]), np.array([lat]), districts)
    assert list(found) == [adcode], name
    assert list(district_names(found, districts)) == [district]


@pytest.mark.parametrize(
    ("lon", "lat"),
    [(123.0, 31.0), (122.5, 30.5), (116.4, 39.9), (120.5, 31.0)],  # sea, sea, Beijing, Jiangsu
)
def test_points_outside_get_none(districts: gpd.GeoDataFrame, lon: float, lat: float) -> None:
    found = assign_adcode(np.array([lon]), np.array([lat]), districts)
    assert found[0] is None
    assert district_names(found, districts)[0] is None


def _brute_force(lon: np.ndarray, lat: np.ndarray, districts: gpd.GeoDataFrame) -> list[str | None]:
    result: list[str | None] = []
    for x, y in zip(lon, lat, strict=True):
        point = shapely.Point(x, y)
        hit = None
        for adcode, geometry in zip(districts["adcode"], districts.geometry, strict=True):
            if geometry.intersects(point):
                hit = adcode
                break
        result.append(hit)
    return result


def test_assign_adcode_equals_brute_force_on_random_points(districts: gpd.GeoDataFrame) -> None:
    rng = np.random.default_rng(20200701)
    lon = rng.uniform(120.8, 122.3, 1500)
    lat = rng.uniform(30.6, 31.9, 1500)
    found = assign_adcode(lon, lat, districts)
    assert list(found) == _brute_force(lon, lat, districts)
    assert 0 < sum(a is None for a in found) < len(found)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(121.3, 121.6), st.floats(31.1, 31.35)),
        min_size=1,
        max_size=20,
    )
)
def test_assign_adcode_property(
    districts: gpd.GeoDataFrame, points: list[tuple[float, float]]
) -> None:
    lon = np.array([p[0] for p in points])
    lat = np.array([p[1] for p in points])
    assert list(assign_adcode(lon, lat, districts)) == _brute_force(lon, lat, districts)


def test_assign_adcode_empty_and_mismatched(districts: gpd.GeoDataFrame) -> None:
    assert assign_adcode(np.array([]), np.array([]), districts).shape == (0,)
    with pytest.raises(InvalidInput):
        assign_adcode(np.array([121.0, 121.1]), np.array([31.0]), districts)


def test_unknown_adcode(districts: gpd.GeoDataFrame, tmp_path: Path) -> None:
    with pytest.raises(UnknownDistrict):
        district_by_adcode(districts, "999999")
    square = shapely.box(121.0, 31.0, 121.01, 31.01)
    path = tmp_path / "custom.geojson"
    gpd.GeoDataFrame(
        {"adcode": ["990001"], "name": ["试验区"]}, geometry=[square], crs="EPSG:4326"
    ).to_file(path)
    custom = load_districts(path)
    assert custom["population"].isna().all()
    assert custom.geom_type.iloc[0] == "MultiPolygon"
    with pytest.raises(InvalidInput):
        load_districts(path, crs="bd09")  # type: ignore[arg-type]
