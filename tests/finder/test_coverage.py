"""Coverage shares, double coverage, largest gap and gap polygons against geodesic references."""

from __future__ import annotations

import json
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod
from shapely.geometry import shape

from finder.coverage import (
    PopulationLayer,
    SampleGrid,
    build_sample_grid,
    counted_facilities,
    coverage_layers,
    coverage_table,
)
from finder.index import FacilityFilter, FacilityIndex
from geodata.boundaries import district_by_adcode, load_districts
from geodata.errors import InvalidInput, UnknownDistrict
from geodata.schema import Viewer

GEOD = Geod(ellps="WGS84")
SAMPLE = Path(__file__).resolve().parents[2] / "geodata" / "data" / "sample_shanghai.gpkg"
JINGAN, HUANGPU, PUDONG = "310106", "310101", "310115"


@pytest.fixture(scope="module")
def districts() -> gpd.GeoDataFrame:
    return load_districts()


@pytest.fixture(scope="module")
def grid(districts: gpd.GeoDataFrame) -> SampleGrid:
    return build_sample_grid(districts)


def _random_facilities(
    geometry: shapely.Geometry, n: int, seed: int, pad_deg: float = 0.01
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    west, south, east, north = geometry.bounds
    return (
        rng.uniform(west - pad_deg, east + pad_deg, n),
        rng.uniform(south - pad_deg, north + pad_deg, n),
    )


def _geodesic_reference(
    geometry: shapely.Geometry,
    lon: np.ndarray,
    lat: np.ndarray,
    radius_m: float,
    step_deg: float,
    window_deg: float | None = None,
) -> tuple[float, float, float]:
    """Shares and largest gap on a regular lon/lat grid with exact geodesic distances.

    With ``window_deg``, pairs farther apart than that in lon or lat are skipped (distance inf):
    the shares stay exact for a radius well inside the window; the gap is then meaningless.
    """
    west, south, east, north = geometry.bounds
    gx, gy = np.meshgrid(
        np.arange(west + step_deg / 2, east, step_deg),
        np.arange(south + step_deg / 2, north, step_deg),
    )
    px, py = gx.ravel(), gy.ravel()
    inside = shapely.contains_xy(geometry, px, py)
    px, py = px[inside], py[inside]
    dist = np.full((px.size, lon.size), np.inf)
    for j in range(lon.size):
        near = np.ones(px.size, dtype=bool)
        if window_deg is not None:
            near = (np.abs(px - lon[j]) < window_deg) & (np.abs(py - lat[j]) < window_deg)
        n = int(near.sum())
        dist[near, j] = GEOD.inv(px[near], py[near], np.full(n, lon[j]), np.full(n, lat[j]))[2]
    dist.sort(axis=1)
    area_weight = np.cos(np.radians(py))  # lon/lat cells shrink with latitude
    total = area_weight.sum()
    once = float(area_weight[dist[:, 0] <= radius_m].sum() / total)
    twice = float(area_weight[dist[:, 1] <= radius_m].sum() / total)
    return once, twice, float(dist[:, 0].max())


@pytest.mark.parametrize(("radius_m", "seed"), [(500.0, 1), (1000.0, 2), (1000.0, 3)])
def test_shares_agree_with_geodesic_grid(
    grid: SampleGrid, districts: gpd.GeoDataFrame, radius_m: float, seed: int
) -> None:
    geometry = district_by_adcode(districts, JINGAN).geometry
    lon, lat = _random_facilities(geometry, 25, seed)
    ref_once, ref_twice, ref_gap = _geodesic_reference(geometry, lon, lat, radius_m, 0.00025)
    row = coverage_table(grid, lon, lat, radius_m=radius_m, adcodes=[JINGAN]).table.iloc[0]
    assert 0.05 < ref_once < 0.98  # a non-trivial case
    assert row["covered_share"] == pytest.approx(ref_once, abs=0.005)
    assert row["covered_twice_share"] == pytest.approx(ref_twice, abs=0.005)
    # ours is refined to cell/16 (1.6 m), the reference grid is ~25 m apart
    assert ref_gap - 5.0 <= row["largest_gap_m"] <= ref_gap + 25.0


@pytest.mark.skipif(not SAMPLE.exists(), reason="sample_shanghai.gpkg not built yet")
def test_shares_agree_on_shanghai_sample(grid: SampleGrid, districts: gpd.GeoDataFrame) -> None:
    index = FacilityIndex.from_geodataframe(gpd.read_file(SAMPLE, layer="facilities"))
    counted = counted_facilities(index, FacilityFilter(viewer=Viewer(see_all=True)))
    lon, lat = counted.lon, counted.lat
    for adcode in (HUANGPU, JINGAN):
        geometry = district_by_adcode(districts, adcode).geometry
        west, south, east, north = geometry.bounds
        near = (
            (lon > west - 0.05) & (lon < east + 0.05) & (lat > south - 0.05) & (lat < north + 0.05)
        )
        ref_once, ref_twice, _ = _geodesic_reference(
            geometry, lon[near], lat[near], 1000.0, 0.0003, window_deg=0.015
        )
        row = coverage_table(grid, lon, lat, adcodes=[adcode]).table.iloc[0]
        assert row["covered_share"] == pytest.approx(ref_once, abs=0.005)
        assert row["covered_twice_share"] == pytest.approx(ref_twice, abs=0.005)


def _geodesic_circle_area_km2(lon: float, lat: float, radius_m: float) -> float:
    azimuths = np.linspace(0.0, 360.0, 721)[:-1]
    n = azimuths.size
    cx, cy, _ = GEOD.fwd(np.full(n, lon), np.full(n, lat), azimuths, np.full(n, radius_m))
    return abs(GEOD.polygon_area_perimeter(cx, cy)[0]) / 1e6


def test_one_circle_has_its_true_area(grid: SampleGrid, districts: gpd.GeoDataFrame) -> None:
    """No Web Mercator (-27 %) or degree (-15 %) trap: one circle covers pi r^2 of ground."""
    lon, lat = np.array([121.60]), np.array([31.20])  # well inside Pudong
    row = coverage_table(grid, lon, lat, adcodes=[PUDONG]).table.iloc[0]
    covered_km2 = row["covered_share"] * row["area_km2"]
    assert covered_km2 == pytest.approx(_geodesic_circle_area_km2(121.60, 31.20, 1000.0), rel=0.01)
    assert row["covered_twice_share"] == 0.0
    layers = coverage_layers(grid, lon, lat, adcodes=[PUDONG])
    (reach,) = layers["reach"]["features"]
    reach_km2 = abs(GEOD.geometry_area_perimeter(shape(reach["geometry"]))[0]) / 1e6
    assert reach_km2 == pytest.approx(math.pi, rel=0.002)


def test_single_far_facility_gap_is_farthest_vertex(
    grid: SampleGrid, districts: gpd.GeoDataFrame
) -> None:
    """With one facility the farthest point of a polygon is a vertex: an exact reference."""
    lon, lat = 121.30, 31.35  # ~18 km from Huangpu, beyond the first search margin
    row = coverage_table(grid, [lon], [lat], adcodes=[HUANGPU]).table.iloc[0]
    xy = shapely.get_coordinates(district_by_adcode(districts, HUANGPU).geometry)
    vertex_m = GEOD.inv(np.full(len(xy), lon), np.full(len(xy), lat), xy[:, 0], xy[:, 1])[2]
    assert row["covered_share"] == 0.0
    assert row["largest_gap_m"] == pytest.approx(vertex_m.max(), abs=15.0)
    gap_m = GEOD.inv(lon, lat, row["gap_lon"], row["gap_lat"])[2]
    assert gap_m == pytest.approx(row["largest_gap_m"], rel=1e-4)


def test_facility_outside_district_covers_it(grid: SampleGrid, districts: gpd.GeoDataFrame) -> None:
    geometry = district_by_adcode(districts, HUANGPU).geometry
    west = geometry.bounds[0]
    lon, lat = np.array([west - 0.002]), np.array([geometry.centroid.y])
    row = coverage_table(grid, lon, lat, adcodes=[HUANGPU]).table.iloc[0]
    assert row["facilities"] == 0
    assert row["covered_share"] > 0.0


def test_table_columns_counts_and_json(grid: SampleGrid, districts: gpd.GeoDataFrame) -> None:
    rng = np.random.default_rng(11)
    lon, lat = rng.uniform(121.2, 121.8, 600), rng.uniform(30.9, 31.5, 600)
    kind = rng.choice(["mother_room", "worker_station", "rest_stop"], 600)
    result = coverage_table(grid, lon, lat, kind=kind)
    table = result.table
    assert list(table["adcode"]) == list(districts["adcode"])
    for name in ("mother_room", "worker_station", "rest_stop"):
        assert table[f"n_{name}"].sum() <= (kind == name).sum()
    assert (table["n_mother_room"] + table["n_worker_station"] + table["n_rest_stop"]).equals(
        table["facilities"]
    )
    jingan = table.set_index("adcode").loc[JINGAN]
    assert jingan["facilities_per_10k"] == pytest.approx(jingan["facilities"] / 97.5707)
    assert (table["covered_twice_share"] <= table["covered_share"]).all()
    assert table["pop_covered_share"].isna().all()
    assert result.population_basis is None
    assert "water" in result.area_basis
    document = json.loads(json.dumps(result.to_json(), allow_nan=False))
    assert document["metadata"]["radius_m"] == 1000.0
    assert len(document["districts"]) == 16
    layer = json.loads(json.dumps(result.to_geojson(districts), allow_nan=False))
    assert len(layer["features"]) == 16
    assert layer["features"][0]["properties"]["covered_share"] is not None


def test_gap_polygons_match_shares(grid: SampleGrid, districts: gpd.GeoDataFrame) -> None:
    geometry = district_by_adcode(districts, JINGAN).geometry
    lon, lat = _random_facilities(geometry, 20, 5)
    row = coverage_table(grid, lon, lat, adcodes=[JINGAN]).table.iloc[0]
    layers = coverage_layers(grid, lon, lat, adcodes=[JINGAN])
    gaps = [shape(f["geometry"]) for f in layers["gaps"]["features"]]
    reach = [shape(f["geometry"]) for f in layers["reach"]["features"]]
    gap_km2 = sum(abs(GEOD.geometry_area_perimeter(g)[0]) for g in gaps) / 1e6
    reach_km2 = sum(abs(GEOD.geometry_area_perimeter(g)[0]) for g in reach) / 1e6
    assert gap_km2 + reach_km2 == pytest.approx(row["area_km2"], rel=1e-3)
    assert reach_km2 / row["area_km2"] == pytest.approx(row["covered_share"], abs=0.005)
    assert all(g.is_valid for g in gaps)
    areas = [f["properties"]["area_m2"] for f in layers["gaps"]["features"]]
    assert areas == sorted(areas, reverse=True)
    # the largest-gap point lies in a gap polygon
    gap_point = shapely.Point(row["gap_lon"], row["gap_lat"])
    assert any(g.buffer(1e-6).contains(gap_point) for g in gaps)


def test_land_mask_changes_basis_and_area(districts: gpd.GeoDataFrame) -> None:
    pudong = districts[districts["adcode"] == PUDONG]
    west, south, east, north = pudong.total_bounds
    land = shapely.box(west, south, (west + east) / 2, north)  # western half as "land"
    masked = build_sample_grid(pudong, land_mask=land, land_mask_name="test half")
    full = build_sample_grid(pudong)
    assert masked.area_basis == "land mask: test half"
    lon, lat = np.array([121.60, 121.85]), np.array([31.20, 31.10])
    a = coverage_table(masked, lon, lat).table.iloc[0]
    b = coverage_table(full, lon, lat).table.iloc[0]
    expected_km2 = abs(GEOD.geometry_area_perimeter(pudong.geometry.iloc[0] & land)[0]) / 1e6
    assert a["area_km2"] == pytest.approx(expected_km2, rel=1e-6)
    # only the western circle lies on the land half
    circle_km2 = _geodesic_circle_area_km2(121.60, 31.20, 1000.0)
    assert a["covered_share"] * a["area_km2"] == pytest.approx(circle_km2, rel=0.02)
    assert b["covered_share"] * b["area_km2"] == pytest.approx(2 * circle_km2, rel=0.02)


def test_population_weighted_shares_match_brute_force(districts: gpd.GeoDataFrame) -> None:
    rng = np.random.default_rng(3)
    geometry = district_by_adcode(districts, JINGAN).geometry
    plon, plat = _random_facilities(geometry, 3000, 4, pad_deg=0.0)
    weight = rng.integers(1, 500, plon.size).astype(float)
    layer = PopulationLayer.from_points(plon, plat, weight, name="test points")
    grid = build_sample_grid(districts[districts["adcode"] == JINGAN], population=layer)
    lon, lat = _random_facilities(geometry, 15, 6)
    row = coverage_table(grid, lon, lat).table.iloc[0]
    inside = shapely.intersects_xy(geometry, plon, plat)
    dist = np.stack(
        [
            GEOD.inv(plon, plat, np.full(plon.size, x), np.full(plon.size, y))[2]
            for x, y in zip(lon, lat, strict=True)
        ],
        axis=1,
    )
    dist.sort(axis=1)
    w = weight * inside
    assert row["pop_covered_share"] == pytest.approx(
        w[dist[:, 0] <= 1000].sum() / w.sum(), abs=1e-9
    )
    assert row["pop_covered_twice_share"] == pytest.approx(
        w[dist[:, 1] <= 1000].sum() / w.sum(), abs=1e-9
    )
    assert grid.population_basis == "test points"


def test_population_layer_from_raster() -> None:
    values = np.array([[1.0, 0.0, 3.0], [np.nan, 5.0, -9.0]])
    layer = PopulationLayer.from_raster(
        values, west_deg=121.0, north_deg=31.0, cell_deg=0.01, name="r", nodata=-9.0
    )
    np.testing.assert_allclose(layer.weight, [1.0, 3.0, 5.0])
    np.testing.assert_allclose(layer.lon, [121.005, 121.025, 121.015])
    np.testing.assert_allclose(layer.lat, [30.995, 30.995, 30.985])
    with pytest.raises(InvalidInput):
        PopulationLayer.from_points([1.0], [2.0], [-1.0], name="bad")


def test_no_facilities(grid: SampleGrid) -> None:
    row = coverage_table(grid, [], [], adcodes=[HUANGPU]).table.iloc[0]
    assert row["covered_share"] == 0.0
    assert math.isnan(row["largest_gap_m"])


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"radius_m": 0.0}, InvalidInput),
        ({"radius_m": float("nan")}, InvalidInput),
        ({"kind": ["castle"]}, InvalidInput),
        ({"adcodes": ["999999"]}, UnknownDistrict),
    ],
)
def test_bad_input(grid: SampleGrid, kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        coverage_table(grid, [121.4], [31.2], **kwargs)  # type: ignore[arg-type]


def test_degrees_in_metres_are_refused(grid: SampleGrid) -> None:
    with pytest.raises(InvalidInput):
        coverage_table(grid, [350_000.0], [3_450_000.0])
    with pytest.raises(InvalidInput):
        coverage_table(grid, [121.4, 121.5], [31.2])


def test_counted_facilities_are_the_filter_selection() -> None:
    frame = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d", "e"],
            "lon": [121.1, 121.2, 121.3, 121.4, 121.5],
            "lat": [31.1, 31.2, 31.3, 31.4, 31.5],
            "kind": ["mother_room", "worker_station", "mother_room", "rest_stop", "rest_stop"],
            "access": ["public", "public", "members", "public", "public"],
            "status": ["open", "open", "open", "closed", "temporarily_closed"],
        }
    )
    index = FacilityIndex.from_frame(frame)
    where = FacilityFilter(kinds=["mother_room", "rest_stop"])
    counted = counted_facilities(index, where)
    assert counted.lon.tolist() == [121.1] and counted.kind.tolist() == ["mother_room"]
    assert counted.summary == {
        "kinds": ["mother_room", "rest_stop"],
        "access": ["public"],
        "status": ["open"],
        "facilities": 1,
    }
    asked = counted_facilities(
        index, where.replace(statuses=["open", "temporarily_closed"], viewer=Viewer(member=True))
    )
    assert asked.lon.tolist() == [121.1, 121.3, 121.5]
    with pytest.raises(InvalidInput):
        FacilityFilter(access=["everyone"])


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.tuples(st.floats(-4000, 4000), st.floats(-4000, 4000)), min_size=1, max_size=6),
    st.floats(100.0, 1500.0),
)
def test_lattice_count_equals_brute_force(
    grid: SampleGrid, points: list[tuple[float, float]], radius_m: float
) -> None:
    cells = grid.district(JINGAN)
    fx = np.array([p[0] for p in points])
    fy = np.array([p[1] for p in points])
    counts = cells.count_within(fx, fy, radius_m)
    dist = np.hypot(cells.x_m[:, None] - fx[None, :], cells.y_m[:, None] - fy[None, :])
    np.testing.assert_array_equal(counts, (dist <= radius_m).sum(axis=1))
