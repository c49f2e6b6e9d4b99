"""Boxes, polygons, districts and coordinate systems of FacilityIndex, on the bundled sample.

The sample store (1,500 synthetic Shanghai facilities in a GeoPackage) and the bundled Shanghai
district boundaries are real files; every answer is compared with a brute-force test of all
facilities (shapely for polygons, pyproj Geod for distances, geodata.crs for conversions).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finder.index import FacilityIndex
from geodata.boundaries import load_districts
from geodata.crs import from_wgs84, to_wgs84
from geodata.errors import InvalidInput
from geodata.sample import BUNDLED_SAMPLE
from geodata.schema import ANONYMOUS, Viewer
from geodata.store import GeoPackageStore

GEOD = pyproj.Geod(ellps="WGS84")
VIEWERS = (ANONYMOUS, Viewer(member=True), Viewer(see_all=True))


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    path = tmp_path_factory.mktemp("store") / "sample.gpkg"
    shutil.copy(BUNDLED_SAMPLE, path)
    store = GeoPackageStore(path)
    try:
        return store.frame()
    finally:
        store.close()


@pytest.fixture(scope="module")
def index(sample: pd.DataFrame) -> FacilityIndex:
    return FacilityIndex.from_frame(sample)


@pytest.fixture(scope="module")
def districts() -> gpd.GeoDataFrame:
    return load_districts()


def _visible(sample: pd.DataFrame, viewer: Viewer, kinds: set[str] | None) -> np.ndarray:
    org = sample["organization"].where(sample["organization"].notna(), None)
    keep = [
        viewer.may_see(a, o) and s == "open" and (kinds is None or k in kinds)
        for a, o, s, k in zip(sample["access"], org, sample["status"], sample["kind"], strict=True)
    ]
    return np.array(keep, dtype=bool)


def _ids(index: FacilityIndex, positions: np.ndarray) -> list[str]:
    return sorted(str(index.ids[p]) for p in positions)


def test_from_store_keeps_every_field(tmp_path: Path, sample: pd.DataFrame) -> None:
    path = tmp_path / "sample.gpkg"
    shutil.copy(BUNDLED_SAMPLE, path)
    store = GeoPackageStore(path)
    try:
        index = FacilityIndex.from_store(store)
        assert len(index) == len(sample)
        for facility_id in sample["id"].iloc[::97]:
            facility = index.facility(index.position_of(facility_id))
            assert facility == store.get(facility_id)
    finally:
        store.close()


def test_frame_round_trips(index: FacilityIndex, sample: pd.DataFrame) -> None:
    frame = index.frame.set_index("id").loc[sample["id"]]
    for column in ("kind", "access", "status", "amenities", "adcode", "name", "opening_hours"):
        expected = sample[column].where(sample[column].notna(), None).tolist()
        assert frame[column].where(frame[column].notna(), None).tolist() == expected, column
    np.testing.assert_array_equal(frame["lon"], sample["lon"])
    stars = sample["star_rating"].astype("Float64").fillna(0).to_numpy(dtype=float)
    np.testing.assert_array_equal(frame["star_rating"].fillna(0).to_numpy(dtype=float), stars)


@pytest.mark.parametrize("viewer", VIEWERS)
def test_district_by_adcode_and_by_polygon(
    index: FacilityIndex,
    sample: pd.DataFrame,
    districts: gpd.GeoDataFrame,
    viewer: Viewer,
) -> None:
    visible = _visible(sample, viewer, None)
    for adcode, geometry in zip(districts["adcode"], districts.geometry, strict=True):
        by_code = sample["id"][(sample["adcode"] == adcode).to_numpy() & visible]
        assert _ids(index, index.in_district(adcode, viewer=viewer)) == sorted(by_code)
        inside = shapely.intersects_xy(geometry, sample["lon"], sample["lat"])
        by_polygon = sample["id"][inside & visible]
        assert _ids(index, index.in_polygon(geometry, viewer=viewer)) == sorted(by_polygon)
    whole_city = sample["id"][sample["adcode"].str.startswith("31").to_numpy() & visible]
    assert _ids(index, index.in_district("310000", viewer=viewer)) == sorted(whole_city)


def test_polygon_in_gcj02(
    index: FacilityIndex, sample: pd.DataFrame, districts: gpd.GeoDataFrame
) -> None:
    def to_gcj(coords: np.ndarray) -> np.ndarray:
        lon, lat = from_wgs84(coords[:, 0], coords[:, 1], "gcj02")
        return np.column_stack([lon, lat])

    gcj = shapely.transform(districts.geometry.iloc[0], to_gcj)
    x, y = from_wgs84(sample["lon"].to_numpy(), sample["lat"].to_numpy(), "gcj02")
    expected = sample["id"][shapely.intersects_xy(gcj, x, y) & _visible(sample, ANONYMOUS, None)]
    assert _ids(index, index.in_polygon(gcj, crs="gcj02")) == sorted(expected)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    corner=st.tuples(st.floats(121.0, 122.0), st.floats(30.7, 31.6)),
    size=st.tuples(st.floats(0.0, 0.5), st.floats(0.0, 0.4)),
    crs=st.sampled_from(("wgs84", "cgcs2000", "gcj02", "bd09")),
    viewer=st.sampled_from(VIEWERS),
    kinds=st.sampled_from((None, {"mother_room"}, {"worker_station", "rest_stop"})),
)
def test_bbox_equals_brute_force(
    index: FacilityIndex,
    sample: pd.DataFrame,
    corner: tuple[float, float],
    size: tuple[float, float],
    crs: str,
    viewer: Viewer,
    kinds: set[str] | None,
) -> None:
    min_lon, min_lat = corner
    max_lon, max_lat = min_lon + size[0], min_lat + size[1]
    x, y = from_wgs84(sample["lon"].to_numpy(), sample["lat"].to_numpy(), crs)
    inside = (x >= min_lon) & (x <= max_lon) & (y >= min_lat) & (y <= max_lat)
    expected = sample["id"][inside & _visible(sample, viewer, kinds)]
    got = index.in_bbox(min_lon, min_lat, max_lon, max_lat, crs=crs, viewer=viewer, kinds=kinds)
    assert _ids(index, got) == sorted(expected)
    assert (np.diff(got) > 0).all()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    point=st.tuples(st.floats(121.0, 122.0), st.floats(30.7, 31.6)),
    crs=st.sampled_from(("gcj02", "bd09", "cgcs2000")),
    k=st.integers(1, 6),
)
def test_nearest_in_other_coordinate_systems(
    index: FacilityIndex,
    sample: pd.DataFrame,
    point: tuple[float, float],
    crs: str,
    k: int,
) -> None:
    q_lon, q_lat = point
    results = index.nearest(q_lon, q_lat, k=k, crs=crs, viewer=Viewer(see_all=True))
    w_lon, w_lat = to_wgs84(q_lon, q_lat, crs)
    open_rows = sample[sample["status"] == "open"]
    n = len(open_rows)
    _a, _b, dist = GEOD.inv(
        np.full(n, w_lon), np.full(n, w_lat), open_rows["lon"], open_rows["lat"]
    )
    order = np.lexsort((open_rows["id"].to_numpy(dtype=str), dist))[:k]
    assert [r.facility_id for r in results] == open_rows["id"].to_numpy()[order].tolist()
    np.testing.assert_array_equal([r.distance_m for r in results], dist[order])
    f_lon, f_lat = from_wgs84(
        open_rows["lon"].to_numpy()[order], open_rows["lat"].to_numpy()[order], crs
    )
    np.testing.assert_array_equal([r.lon for r in results], f_lon)
    np.testing.assert_array_equal([r.lat for r in results], f_lat)
    assert {r.crs for r in results} == {crs}
    got_lon, got_lat = index.lonlat([r.position for r in results], crs=crs)
    np.testing.assert_array_equal(got_lon, f_lon)
    np.testing.assert_array_equal(got_lat, f_lat)
    batch = index.nearest_batch([q_lon], [q_lat], k=k, crs=crs, viewer=Viewer(see_all=True))
    np.testing.assert_array_equal(batch.distance_m[0], dist[order])


@pytest.mark.parametrize("epsg", [4326, 4490])
def test_from_geodataframe_accepts_geographic_wgs84(sample: pd.DataFrame, epsg: int) -> None:
    gdf = gpd.GeoDataFrame(
        sample.drop(columns=["lon", "lat"]),
        geometry=gpd.points_from_xy(sample["lon"], sample["lat"]),
        crs=f"EPSG:{epsg}",
    )
    index = FacilityIndex.from_geodataframe(gdf)
    reference = FacilityIndex.from_frame(sample)
    got = index.nearest_batch([121.47, 121.6], [31.23, 31.1], k=3)
    want = reference.nearest_batch([121.47, 121.6], [31.23, 31.1], k=3)
    np.testing.assert_array_equal(got.positions, want.positions)
    np.testing.assert_array_equal(got.distance_m, want.distance_m)


@pytest.mark.parametrize("crs", ["EPSG:3857", "EPSG:32651", None])
def test_from_geodataframe_refuses_other_systems(sample: pd.DataFrame, crs: Any) -> None:
    gdf = gpd.GeoDataFrame(
        sample.drop(columns=["lon", "lat"]),
        geometry=gpd.points_from_xy(sample["lon"], sample["lat"]),
        crs=crs,
    )
    with pytest.raises(InvalidInput) as info:
        FacilityIndex.from_geodataframe(gdf)
    assert info.value.field == "crs"


def test_bad_frames_are_refused(sample: pd.DataFrame) -> None:
    with pytest.raises(InvalidInput, match="unique"):
        FacilityIndex.from_frame(pd.concat([sample.iloc[:3], sample.iloc[:1]]))
    with pytest.raises(InvalidInput) as info:
        FacilityIndex.from_frame(sample.assign(kind="sauna"))
    assert info.value.field == "kind"
    with pytest.raises(InvalidInput) as info:
        FacilityIndex.from_frame(sample.drop(columns=["kind"]))
    assert info.value.field == "kind"
