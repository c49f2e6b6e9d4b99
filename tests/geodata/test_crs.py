"""Tests of geodata.crs against published reference vectors, textbook formulas and pyproj distances.

References independent of the module:
- ``tests/data/coord_vectors.csv``: WGS-84 / GCJ-02 / BD-09 pairs from eviltransform's tests and
  vendor documentation, each with a tolerance in metres (provenance beside it);
- the GCJ-02 and BD-09 formulas written out below with :mod:`math`, one point at a time, as
  published (the module computes them vectorised and rearranged);
- distances in metres from ``pyproj.Geod(ellps="WGS84").inv``;
- named places whose side of the Hong Kong / Macau / Taiwan borders is a matter of geography.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import shapely
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pyproj import Geod

from geodata.crs import (
    CRS_NAMES,
    from_wgs84,
    in_mainland_china,
    parse_crs,
    to_wgs84,
    transform,
)
from geodata.errors import InvalidInput, UnknownCRS

DATA = Path(__file__).resolve().parents[1] / "data"
GEOD = Geod(ellps="WGS84")

with (DATA / "coord_vectors.csv").open(encoding="utf-8", newline="") as _file:
    VECTORS = list(csv.DictReader(_file))


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Geodesic distance in metres between two WGS-84-like lon/lat points."""
    return float(GEOD.inv(lon1, lat1, lon2, lat2)[2])


# --- textbook formulas, one point at a time (eviltransform / coordTransform layout) -------------

_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = math.pi * 3000.0 / 180.0


def _reference_transform_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _reference_transform_lon(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2 / 3
    return ret


def reference_wgs_to_gcj(lon: float, lat: float) -> tuple[float, float]:
    """The published WGS-84 -> GCJ-02 formula, without any out-of-China test."""
    dlat = _reference_transform_lat(lon - 105.0, lat - 35.0)
    dlon = _reference_transform_lon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(radlat) ** 2
    sqrtmagic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * math.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * math.cos(radlat) * math.pi)
    return lon + dlon, lat + dlat


def reference_gcj_to_bd(lon: float, lat: float) -> tuple[float, float]:
    """The published GCJ-02 -> BD-09 formula."""
    z = math.sqrt(lon * lon + lat * lat) + 0.00002 * math.sin(lat * _X_PI)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * _X_PI)
    return z * math.cos(theta) + 0.0065, z * math.sin(theta) + 0.006


# --- strategies ------------------------------------------------------------------------------

# A box around mainland China; points the module puts outside mainland China are assumed away.
lons = st.floats(min_value=73.5, max_value=135.0, allow_nan=False)
lats = st.floats(min_value=18.0, max_value=53.5, allow_nan=False)


def mainland_point(lon: float, lat: float, crs: str) -> bool:
    """Whether the point and its image in ``crs`` are both inside mainland China."""
    image = from_wgs84(lon, lat, crs)
    return in_mainland_china(lon, lat) and in_mainland_china(*image)


# --- reference vectors -----------------------------------------------------------------------


@pytest.mark.parametrize("row", VECTORS, ids=[row["id"] for row in VECTORS])
def test_reference_vector_is_matched_within_its_tolerance(row: dict[str, str]) -> None:
    lon, lat = transform(float(row["in_lng"]), float(row["in_lat"]), row["from_crs"], row["to_crs"])
    error_m = distance_m(lon, lat, float(row["out_lng"]), float(row["out_lat"]))
    assert error_m <= float(row["tolerance_m"])


@pytest.mark.parametrize("row", VECTORS, ids=[row["id"] for row in VECTORS])
def test_reference_vector_is_matched_in_reverse(row: dict[str, str]) -> None:
    lon, lat = transform(
        float(row["out_lng"]), float(row["out_lat"]), row["to_crs"], row["from_crs"]
    )
    error_m = distance_m(lon, lat, float(row["in_lng"]), float(row["in_lat"]))
    assert error_m <= float(row["tolerance_m"])


def test_reference_vectors_match_as_one_array_per_direction() -> None:
    for (src, dst), rows in _group_by_direction(VECTORS).items():
        lon, lat = transform(
            np.array([float(r["in_lng"]) for r in rows]),
            np.array([float(r["in_lat"]) for r in rows]),
            src,
            dst,
        )
        _, _, error_m = GEOD.inv(
            lon, lat, [float(r["out_lng"]) for r in rows], [float(r["out_lat"]) for r in rows]
        )
        assert np.all(error_m <= [float(r["tolerance_m"]) for r in rows])


def _group_by_direction(rows: list[dict[str, str]]) -> dict[tuple[str, str], list[dict[str, str]]]:
    groups: dict[tuple[str, str], list[dict[str, str]]] = {}
    for row in rows:
        groups.setdefault((row["from_crs"], row["to_crs"]), []).append(row)
    return groups


# --- agreement with the published formulas ---------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(lon=lons, lat=lats)
def test_forward_transforms_equal_the_published_formulas(lon: float, lat: float) -> None:
    assume(in_mainland_china(lon, lat))
    gcj = reference_wgs_to_gcj(lon, lat)
    assert from_wgs84(lon, lat, "gcj02") == pytest.approx(gcj, abs=1e-12, rel=0)
    assert from_wgs84(lon, lat, "bd09") == pytest.approx(reference_gcj_to_bd(*gcj), abs=1e-12)


# --- round trips and exact inverses ----------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(lon=lons, lat=lats)
def test_gcj02_round_trip_is_within_a_centimetre(lon: float, lat: float) -> None:
    assume(mainland_point(lon, lat, "gcj02"))
    back = to_wgs84(*from_wgs84(lon, lat, "gcj02"), "gcj02")
    assert distance_m(lon, lat, *back) < 0.01


@settings(max_examples=150, deadline=None)
@given(lon=lons, lat=lats)
def test_bd09_round_trip_is_within_a_centimetre(lon: float, lat: float) -> None:
    assume(mainland_point(lon, lat, "bd09"))
    back = to_wgs84(*from_wgs84(lon, lat, "bd09"), "bd09")
    assert distance_m(lon, lat, *back) < 0.01


@settings(max_examples=100, deadline=None)
@given(lon=lons, lat=lats, crs=st.sampled_from(["gcj02", "bd09"]))
def test_inverse_is_exact_forward_of_result_matches_input(lon: float, lat: float, crs: str) -> None:
    """to_wgs84 solves from_wgs84(result) == input to 1e-9 degree (a one-step inverse: 1e-5)."""
    assume(in_mainland_china(lon, lat))
    wgs = to_wgs84(lon, lat, crs)
    # A GCJ-02 point that no mainland point shifts onto (a band along the outer border) has no
    # preimage and comes back unchanged; everywhere else the inverse is exact.
    assume(in_mainland_china(*wgs) and wgs != (lon, lat))
    again = from_wgs84(*wgs, crs)
    assert abs(again[0] - lon) < 1e-9
    assert abs(again[1] - lat) < 1e-9


@settings(max_examples=100, deadline=None)
@given(lon=lons, lat=lats)
def test_gcj02_to_bd09_directly_equals_going_through_wgs84(lon: float, lat: float) -> None:
    assume(mainland_point(lon, lat, "bd09"))
    gcj = from_wgs84(lon, lat, "gcj02")
    assume(in_mainland_china(*gcj))
    direct = transform(*gcj, "gcj02", "bd09")
    assert direct == pytest.approx(from_wgs84(lon, lat, "bd09"), abs=1e-9, rel=0)
    assert transform(*direct, "bd09", "gcj02") == pytest.approx(gcj, abs=1e-9, rel=0)


# --- vectorised and scalar forms -------------------------------------------------------------

points = st.lists(st.tuples(lons, lats), min_size=1, max_size=30)
# Mix in points of the other systems' images, far-away points and Hong Kong / Macau.
mixed_points = st.lists(
    st.one_of(
        st.tuples(lons, lats),
        st.tuples(
            st.floats(min_value=113.8, max_value=114.5), st.floats(min_value=22.1, max_value=22.6)
        ),
        st.tuples(st.floats(min_value=-180, max_value=180), st.floats(min_value=-90, max_value=90)),
    ),
    min_size=1,
    max_size=30,
)
pairs = st.tuples(st.sampled_from(CRS_NAMES), st.sampled_from(CRS_NAMES))


@settings(max_examples=150, deadline=None)
@given(pts=mixed_points, systems=pairs)
def test_array_and_scalar_conversions_agree(
    pts: list[tuple[float, float]], systems: tuple[str, str]
) -> None:
    src, dst = systems
    lon = np.array([p[0] for p in pts])
    lat = np.array([p[1] for p in pts])
    out_lon, out_lat = transform(lon, lat, src, dst)
    assert isinstance(out_lon, np.ndarray)
    assert out_lon.shape == lon.shape
    assert out_lon.dtype == np.float64
    singles = np.array([transform(float(x), float(y), src, dst) for x, y in pts])
    np.testing.assert_allclose(out_lon, singles[:, 0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(out_lat, singles[:, 1], rtol=0, atol=1e-12)
    inside = in_mainland_china(lon, lat)
    assert list(inside) == [in_mainland_china(float(x), float(y)) for x, y in pts]


def test_scalars_give_floats_and_shapes_are_kept() -> None:
    lon, lat = from_wgs84(121.4737, 31.2304, "gcj02")
    assert type(lon) is float and type(lat) is float
    lon0, lat0 = from_wgs84(np.float64(121.4737), np.array(31.2304), "gcj02")
    assert isinstance(lon0, float) and not isinstance(lon0, np.floating)
    assert (lon0, lat0) == (lon, lat)
    grid_lon, grid_lat = np.meshgrid([121.4, 121.5, 121.6], [31.1, 31.2])
    out_lon, out_lat = from_wgs84(grid_lon, grid_lat, "bd09")
    assert out_lon.shape == out_lat.shape == (2, 3)
    assert out_lon[1, 2] == from_wgs84(121.6, 31.2, "bd09")[0]
    list_lon, _ = from_wgs84([121.4737, 114.17], [31.2304, 22.28], "gcj02")
    assert list_lon[0] == lon and list_lon[1] == 114.17
    # A scalar latitude is broadcast against an array of longitudes.
    row_lon, row_lat = from_wgs84(np.array([121.4, 121.5]), 31.2, "gcj02")
    assert row_lon.shape == row_lat.shape == (2,)


def test_input_arrays_are_not_modified() -> None:
    lon = np.array([121.4737, np.nan])
    lat = np.array([31.2304, 31.0])
    to_wgs84(lon, lat, "bd09")
    assert lon[0] == 121.4737 and np.isnan(lon[1]) and lat.tolist() == [31.2304, 31.0]


# --- where the shift applies -----------------------------------------------------------------

UNSHIFTED = {
    "Hong Kong, Central": (114.17, 22.28),
    "Hong Kong, Lantau": (113.94, 22.28),
    "Hong Kong, Chek Lap Kok airport": (113.915, 22.31),
    "Hong Kong, Tuen Mun": (113.97, 22.39),
    "Hong Kong, Yuen Long": (114.03, 22.44),
    "Hong Kong, Sheung Shui": (114.128, 22.503),
    "Hong Kong, Sai Kung": (114.27, 22.38),
    "Macau, peninsula": (113.54, 22.19),
    "Macau, Taipa": (113.555, 22.16),
    "Macau, Coloane": (113.56, 22.12),
    "Taipei": (121.56, 25.03),
    "Kaohsiung": (120.3, 22.62),
    "Penghu, Magong": (119.57, 23.57),
    "Kinmen": (118.32, 24.44),
    "Matsu, Nangan": (119.95, 26.16),
    "Paris": (2.35, 48.85),
    "Seoul": (126.98, 37.57),
    "Osaka": (135.5, 34.69),
    "Hanoi": (105.85, 21.03),
    "Ulaanbaatar": (106.9, 47.9),
    "Kathmandu": (85.32, 27.72),
    "New York": (-74.0, 40.71),
    "Sydney": (151.21, -33.87),
}

SHIFTED = {
    "Shenzhen, Futian": (114.05, 22.55),
    "Shenzhen, Luohu": (114.118, 22.545),
    "Shenzhen, Shekou": (113.91, 22.48),
    "Shenzhen, Dapeng": (114.48, 22.59),
    "Zhuhai": (113.57, 22.27),
    "Zhuhai, Gongbei": (113.55, 22.225),
    "Xiamen": (118.09, 24.48),
    "Pingtan": (119.79, 25.5),
    "Shanghai": (121.47, 31.23),
    "Shanghai, Chongming": (121.5, 31.6),
    "Zhoushan, Shengsi": (122.45, 30.72),
    "Beijing": (116.4, 39.9),
    "Sanya": (109.51, 18.25),
    "Urumqi": (87.6, 43.8),
    "Lhasa": (91.1, 29.65),
    "Harbin": (126.63, 45.75),
    "Dandong": (124.39, 40.13),
    "Hekou": (103.94, 22.51),
}


@pytest.mark.parametrize("name", UNSHIFTED)
@pytest.mark.parametrize("systems", [("wgs84", "gcj02"), ("wgs84", "bd09"), ("gcj02", "bd09")])
def test_points_outside_mainland_china_are_unchanged(name: str, systems: tuple[str, str]) -> None:
    lon, lat = UNSHIFTED[name]
    assert not in_mainland_china(lon, lat)
    src, dst = systems
    assert transform(lon, lat, src, dst) == (lon, lat)
    assert transform(lon, lat, dst, src) == (lon, lat)


@pytest.mark.parametrize("name", SHIFTED)
def test_points_in_mainland_china_are_shifted(name: str) -> None:
    lon, lat = SHIFTED[name]
    assert in_mainland_china(lon, lat)
    assert 100.0 < distance_m(lon, lat, *from_wgs84(lon, lat, "gcj02")) < 1000.0
    assert 100.0 < distance_m(lon, lat, *from_wgs84(lon, lat, "bd09")) < 2000.0
    # A mainland point given in GCJ-02 is shifted back the other way.
    assert 100.0 < distance_m(lon, lat, *to_wgs84(lon, lat, "gcj02")) < 1000.0


def test_shift_in_shanghai_is_300_to_700_metres() -> None:
    lon, lat = np.meshgrid(np.linspace(120.9, 121.95, 22), np.linspace(30.7, 31.85, 24))
    gcj_lon, gcj_lat = from_wgs84(lon, lat, "gcj02")
    _, _, shift_m = GEOD.inv(lon, lat, gcj_lon, gcj_lat)
    assert shift_m.min() > 300.0
    assert shift_m.max() < 700.0


@pytest.mark.parametrize(
    ("lon", "lat_hong_kong", "lat_shenzhen"),
    [(114.03, 22.48, 22.53), (114.07, 22.49, 22.54), (114.12, 22.51, 22.55), (114.2, 22.53, 22.57)],
)
def test_shenzhen_river_transect(lon: float, lat_hong_kong: float, lat_shenzhen: float) -> None:
    """Walking north across the border: unshifted in Hong Kong, shifted in Shenzhen.

    The inverse decides on its solution: a GCJ-02 point whose preimage lies in mainland China
    goes back to that preimage, so every Shenzhen point round-trips exactly even where its
    GCJ-02 image lies south of the border; otherwise the point is returned unchanged.
    """
    transect = np.linspace(lat_hong_kong, lat_shenzhen, 101)
    inside = in_mainland_china(np.full_like(transect, lon), transect)
    assert not inside[0] and inside[-1]
    assert np.count_nonzero(np.diff(inside.astype(int))) == 1  # one crossing only
    gcj_lon, gcj_lat = from_wgs84(lon, transect, "gcj02")
    moved = (gcj_lon != lon) | (gcj_lat != transect)
    np.testing.assert_array_equal(moved, inside)
    back_lon, back_lat = to_wgs84(gcj_lon, gcj_lat, "gcj02")
    _, _, err_m = GEOD.inv(
        back_lon[inside], back_lat[inside], np.full(inside.sum(), lon), transect[inside]
    )
    assert np.max(err_m) < 0.001
    unchanged = ~in_mainland_china(back_lon, back_lat)
    np.testing.assert_array_equal(back_lon[unchanged], gcj_lon[unchanged])
    np.testing.assert_array_equal(back_lat[unchanged], gcj_lat[unchanged])


def test_cgcs2000_is_treated_as_wgs84() -> None:
    lon = np.array([121.4737, 114.17, 2.35])
    lat = np.array([31.2304, 22.28, 48.85])
    same_lon, same_lat = transform(lon, lat, "cgcs2000", "wgs84")
    np.testing.assert_array_equal(same_lon, lon)
    np.testing.assert_array_equal(same_lat, lat)
    for crs in ("gcj02", "bd09"):
        np.testing.assert_array_equal(
            np.array(transform(lon, lat, "cgcs2000", crs)), np.array(from_wgs84(lon, lat, crs))
        )
        np.testing.assert_array_equal(
            np.array(to_wgs84(lon, lat, crs)), np.array(transform(lon, lat, crs, "EPSG:4490"))
        )


# --- missing values and bad input ------------------------------------------------------------


@pytest.mark.parametrize("systems", [("wgs84", "gcj02"), ("gcj02", "wgs84"), ("bd09", "wgs84")])
def test_nan_propagates_without_error(systems: tuple[str, str]) -> None:
    lon = np.array([121.47, np.nan, 121.47, np.nan])
    lat = np.array([31.23, 31.23, np.nan, np.nan])
    out_lon, out_lat = transform(lon, lat, *systems)
    assert np.isfinite(out_lon[0]) and np.isfinite(out_lat[0])
    assert np.isnan(out_lon[1:]).all() and np.isnan(out_lat[1:]).all()
    assert all(math.isnan(v) for v in transform(math.nan, 31.23, *systems))
    assert not in_mainland_china(math.nan, 31.23)


def test_mismatched_shapes_and_non_numbers_are_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="shape"):
        from_wgs84(np.zeros(3), np.zeros(2), "gcj02")
    with pytest.raises(InvalidInput, match="numbers"):
        from_wgs84(["east"], [31.0], "gcj02")


# --- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("wgs84", "wgs84"),
        ("WGS84", "wgs84"),
        ("WGS-84", "wgs84"),
        ("wgs 84", "wgs84"),
        ("EPSG:4326", "wgs84"),
        ("epsg:4326", "wgs84"),
        ("4326", "wgs84"),
        ("CRS84", "wgs84"),
        ("OGC:CRS84", "wgs84"),
        ("gps", "wgs84"),
        ("http://www.opengis.net/def/crs/OGC/1.3/CRS84", "wgs84"),
        ("urn:ogc:def:crs:EPSG::4326", "wgs84"),
        ("cgcs2000", "cgcs2000"),
        ("CGCS2000", "cgcs2000"),
        ("EPSG:4490", "cgcs2000"),
        ("4490", "cgcs2000"),
        ("http://www.opengis.net/def/crs/EPSG/0/4490", "cgcs2000"),
        ("gcj02", "gcj02"),
        ("GCJ-02", "gcj02"),
        ("gcj_02", "gcj02"),
        (" GCJ02 ", "gcj02"),
        ("amap", "gcj02"),
        ("Gaode", "gcj02"),
        ("tencent", "gcj02"),
        ("bd09", "bd09"),
        ("BD-09", "bd09"),
        ("bd09ll", "bd09"),
        ("baidu", "bd09"),
        ("Baidu", "bd09"),
    ],
)
def test_parse_crs_accepts_aliases(alias: str, expected: str) -> None:
    assert parse_crs(alias) == expected


@pytest.mark.parametrize("name", ["", "utm", "EPSG:3857", "gcj03", "bd-10", "4327"])
def test_unknown_crs_lists_the_accepted_names(name: str) -> None:
    with pytest.raises(UnknownCRS) as caught:
        parse_crs(name)
    assert isinstance(caught.value, ValueError)
    assert caught.value.field == "crs"
    for accepted in CRS_NAMES:
        assert accepted in str(caught.value)


def test_unknown_crs_from_the_conversion_functions() -> None:
    with pytest.raises(UnknownCRS):
        to_wgs84(121.0, 31.0, "mercator")
    with pytest.raises(UnknownCRS):
        transform(121.0, 31.0, "wgs84", "gcj-2")


def test_parse_crs_round_trips_every_canonical_name() -> None:
    assert [parse_crs(name) for name in CRS_NAMES] == list(CRS_NAMES)


def test_parse_crs_refuses_non_strings() -> None:
    with pytest.raises(UnknownCRS):
        parse_crs(4326)  # type: ignore[arg-type]
    with pytest.raises(UnknownCRS):
        parse_crs(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["_mainland_region", "_service_region"])
def test_region_grid_classified_on_use_equals_the_whole_grid(name: str) -> None:
    """A region's grid cells are classified when first hit (a first query classifies one
    cell, not the 38,000 of the grid), and each as the whole grid built at once classifies it:
    inside when the polygon properly contains the cell, mixed when it only touches it."""
    from geodata import crs

    region = crs._Region.gridded(getattr(crs, name)().polygon)
    assert region.contains_point(121.4737, 31.2304) is True
    assert int((region.cells != crs._UNKNOWN).sum()) == 1
    rows, cols = region.cells.shape
    col, row = np.meshgrid(np.arange(cols), np.arange(rows))
    step = crs._GRID_DEG
    west, south = region.west + col * step, region.south + row * step
    boxes = shapely.box(west, south, west + step, south + step)
    inside = shapely.contains_properly(region.polygon, boxes)
    mixed = shapely.intersects(region.polygon, boxes) & ~inside
    region.contains((west + step / 2).ravel(), (south + step / 2).ravel())  # every cell, once
    assert (region.cells != crs._UNKNOWN).all()
    assert np.array_equal(region.cells == crs._INSIDE, inside)
    assert np.array_equal(region.cells == crs._MIXED, mixed)
