"""The national table: provinces and cities are the sums of their counties; the population basis
(census spread evenly, or a population raster read from a GeoTIFF) is used and stated."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from national_support import three_provinces
from pyproj import Geod, Transformer

from finder.coverage import SampleGrid, aggregate_coverage, build_sample_grid, coverage_table
from finder.national import (
    CENSUS_BASIS,
    NationalCoverage,
    national_coverage,
    walk_radius_m,
)
from finder.population import population_from_geotiff
from geodata.boundaries import assign_adcode, resolve_region
from geodata.errors import InvalidInput

GEOD = Geod(ellps="WGS84")
#: Two blocks of people in 浦东新区 (310115), 4.7 km apart, far from its edges.
NEAR_BLOCK = (121.600, 31.200)
FAR_BLOCK = (121.650, 31.195)
SUMMED = ["population", "area_km2", "covered_km2", "twice_km2", "walk_km2", "people"]
SUMMED += ["people_covered", "people_walk", "facilities", "n_mother_room", "counties"]


@pytest.fixture(scope="module")
def districts(tmp_path_factory: pytest.TempPathFactory) -> gpd.GeoDataFrame:
    return three_provinces(tmp_path_factory.mktemp("provinces"))


@pytest.fixture(scope="module")
def grid(districts: gpd.GeoDataFrame) -> SampleGrid:
    return build_sample_grid(districts, max_cells_per_district=1500)


@pytest.fixture(scope="module")
def facilities(districts: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """3,000 points clustered round the three city centres, with kinds."""
    rng = np.random.default_rng(15)
    centres = np.array([(121.47, 31.23), (113.65, 34.76), (120.16, 30.27)])
    pick = rng.integers(0, 3, 3000)
    lon = centres[pick, 0] + rng.normal(0, 0.15, pick.size)
    lat = centres[pick, 1] + rng.normal(0, 0.12, pick.size)
    kind = rng.choice(["mother_room", "worker_station", "rest_stop"], pick.size)
    return lon, lat, kind


@pytest.fixture(scope="module")
def national(grid: SampleGrid, facilities: tuple[np.ndarray, ...]) -> NationalCoverage:
    lon, lat, kind = facilities
    return national_coverage(grid, lon, lat, kind=kind)


def test_province_and_city_rows_are_the_sums_of_their_counties(
    national: NationalCoverage,
) -> None:
    counties = national.counties
    assert len(counties) == 41
    assert national.provinces["adcode"].tolist() == ["310000", "330000", "410000"]
    assert national.provinces["name"].tolist() == ["上海市", "浙江省", "河南省"]
    assert national.cities["adcode"].tolist() == ["310100", "330100", "410100"]
    for level, key in ((national.provinces, "province"), (national.cities, "city")):
        for row in level.to_dict(orient="records"):
            mine = counties[counties[key] == row["name"]]
            for column in SUMMED:
                assert row[column] == pytest.approx(float(mine[column].sum()), rel=1e-12), column
            area = mine["covered_km2"].sum() / mine["area_km2"].sum()
            assert row["covered_share"] == pytest.approx(area, rel=1e-12)
            per_10k = mine["facilities"].sum() / mine["population"].sum() * 1e4
            assert row["facilities_per_10k"] == pytest.approx(per_10k, rel=1e-12)
            assert row["largest_gap_m"] == mine["largest_gap_m"].max()
            assert row["gap_adcode"] in set(mine["adcode"])
    # Shanghai's 2020 census population, to the person
    assert national.provinces["population"].iloc[0] == 24_870_895
    assert national.provinces["facilities"].sum() == counties["facilities"].sum()


def test_province_and_city_rows_agree_with_the_region_aggregate(
    national: NationalCoverage,
    grid: SampleGrid,
    districts: gpd.GeoDataFrame,
    facilities: tuple[np.ndarray, ...],
) -> None:
    # the same question through the other surface (/coverage?adcode=41, finder coverage
    # --district 4101): counts, area shares and gaps agree
    lon, lat, kind = facilities
    table = coverage_table(grid, lon, lat, kind=kind).table
    for level in (national.provinces, national.cities):
        for row in level.to_dict(orient="records"):
            other = aggregate_coverage(table, resolve_region(districts, row["adcode"]))
            for column in ("facilities", "population", "counties", "n_rest_stop"):
                assert row[column] == other[column], column
            for column in ("area_km2", "covered_share", "covered_twice_share", "largest_gap_m"):
                assert row[column] == pytest.approx(other[column], rel=1e-9), column


def test_counties_ranked_by_the_15_minute_share(national: NationalCoverage) -> None:
    ranked = national.counties
    assert ranked["rank"].tolist() == list(range(1, len(ranked) + 1))
    shares = ranked["pop_walk_share"].fillna(ranked["walk_share"]).to_numpy()
    assert np.all(np.diff(shares) <= 0)
    # 临平区 and 钱塘区 (created 2021) have no 2020 census figure: ranked by their area share
    unknown = ranked[ranked["population"].isna()]
    assert sorted(unknown["name"]) == ["临平区", "钱塘区"]
    assert unknown["walk_share"].notna().all()
    assert national.walk_radius_m == pytest.approx(1200.0)
    assert walk_radius_m(15) == pytest.approx(1200.0)
    # the 15-minute circle is wider than 1 km: it covers at least as much everywhere
    assert np.all(ranked["walk_share"] >= ranked["covered_share"] - 1e-12)
    assert ranked.iloc[0]["walk_share"] > 0.9  # a central district
    assert ranked.iloc[-1]["walk_share"] < ranked.iloc[0]["walk_share"]


def test_without_a_raster_the_census_is_spread_evenly_and_the_output_says_so(
    national: NationalCoverage,
) -> None:
    assert national.population_basis == CENSUS_BASIS
    assert national.to_json()["metadata"]["population_basis"] == CENSUS_BASIS
    counties = national.counties
    census = counties[counties["population"].notna()]
    assert len(census) == 39
    assert census["pop_covered_share"].to_numpy() == pytest.approx(
        census["covered_share"].to_numpy()
    )
    assert census["people"].tolist() == census["population"].astype(float).tolist()


def test_json_and_frame_carry_every_level(national: NationalCoverage) -> None:
    document = national.to_json()
    assert [len(document[k]) for k in ("provinces", "cities", "counties")] == [3, 3, 41]
    assert document["counties"][0]["rank"] == 1
    frame = national.to_frame()
    assert frame["level"].value_counts().to_dict() == {"county": 41, "province": 3, "city": 3}


def test_bad_walk_is_refused(grid: SampleGrid) -> None:
    with pytest.raises(InvalidInput):
        national_coverage(grid, [121.5], [31.2], walk_minutes=0)


def _write_geotiff(
    path: Path, crs: str, blocks: list[tuple[tuple[float, float], float]], cell: float
) -> None:
    """A raster in ``crs`` with 3 x 3 cells of ``persons`` each centred on every block's
    (lon, lat), zero elsewhere, and a nodata margin."""
    to_crs = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    xy = [to_crs.transform(*where) for where, _ in blocks]
    west = min(x for x, _ in xy) - 10 * cell
    north = max(y for _, y in xy) + 10 * cell
    width = int((max(x for x, _ in xy) - west) / cell) + 11
    height = int((north - min(y for _, y in xy)) / cell) + 11
    values = np.zeros((height, width), dtype=np.float32)
    values[0, :] = -9999.0  # nodata row
    for (x, y), (_, persons) in zip(xy, blocks, strict=True):
        col, row = int((x - west) / cell), int((north - y) / cell)
        values[row - 1 : row + 2, col - 1 : col + 2] = persons
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 1,
        "dtype": "float32",
        "crs": crs,
        "transform": rasterio.Affine(cell, 0.0, west, 0.0, -cell, north),
        "nodata": -9999.0,
    }
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(values, 1)


@pytest.mark.parametrize(("crs", "cell"), [("EPSG:4326", 0.001), ("ESRI:54009", 100.0)])
def test_population_raster_weights_shares_by_where_people_live(
    tmp_path: Path, districts: gpd.GeoDataFrame, crs: str, cell: float
) -> None:
    # one facility on the near block: its 900 people are within 1 km, the far block's 2,700
    # (4.7 km away) are not, so a quarter of the raster's people are covered, by construction
    assert GEOD.inv(*NEAR_BLOCK, *FAR_BLOCK)[2] > 4000
    assert assign_adcode(*zip(NEAR_BLOCK, FAR_BLOCK, strict=True), districts).tolist() == [
        "310115",
        "310115",
    ]
    path = tmp_path / "people.tif"
    _write_geotiff(path, crs, [(NEAR_BLOCK, 100.0), (FAR_BLOCK, 300.0)], cell)
    layer = population_from_geotiff(path, bounds=(121.0, 30.6, 122.2, 31.9))
    assert layer.weight.sum() == pytest.approx(3600.0)
    assert layer.name == "population raster people.tif"
    shanghai = districts[districts["adcode"].str.startswith("31")]
    grid = build_sample_grid(shanghai, max_cells_per_district=1500, population=layer)
    result = national_coverage(grid, [NEAR_BLOCK[0]], [NEAR_BLOCK[1]])
    pudong = result.counties.set_index("adcode").loc["310115"]
    assert pudong["people"] == pytest.approx(3600.0)
    assert pudong["people_covered"] == pytest.approx(900.0)
    assert pudong["pop_covered_share"] == pytest.approx(0.25)
    assert pudong["covered_share"] < 0.01  # by area, a 1 km circle is a sliver of 浦东
    assert result.population_basis == "population raster people.tif"
    province = result.provinces.iloc[0]
    assert province["people"] == pytest.approx(3600.0)
    assert province["pop_covered_share"] == pytest.approx(0.25)


def test_population_raster_window_outside_reads_nobody(tmp_path: Path) -> None:
    path = tmp_path / "people.tif"
    _write_geotiff(path, "EPSG:4326", [(NEAR_BLOCK, 100.0)], 0.001)
    assert population_from_geotiff(path, bounds=(100.0, 20.0, 101.0, 21.0)).weight.size == 0


def test_population_raster_must_be_readable(tmp_path: Path) -> None:
    path = tmp_path / "people.tif"
    path.write_text("not a raster", encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"people\.tif"):
        population_from_geotiff(path)


def test_a_citys_national_row_is_its_coverage_aggregate(
    tmp_path: Path, districts: gpd.GeoDataFrame, facilities: tuple[np.ndarray, ...]
) -> None:
    # one aggregation: the national table's row of 上海市 and the city's coverage aggregate
    # (/coverage?adcode=3101) are the same numbers when the population shares are weighted
    # by the same people (here a raster's)
    path = tmp_path / "people.tif"
    _write_geotiff(path, "EPSG:4326", [(NEAR_BLOCK, 100.0), (FAR_BLOCK, 300.0)], 0.001)
    layer = population_from_geotiff(path, bounds=(121.0, 30.6, 122.2, 31.9))
    shanghai = districts[districts["adcode"].str.startswith("31")]
    grid = build_sample_grid(shanghai, max_cells_per_district=400, population=layer)
    lon, lat, kind = facilities
    city = national_coverage(grid, lon, lat, kind=kind).cities.iloc[0].to_dict()
    table = coverage_table(grid, lon, lat, kind=kind).table
    people = [grid.district(a).pop_weight.sum() for a in table["adcode"]]
    aggregate = aggregate_coverage(table, resolve_region(districts, "310100"), people=people)
    assert (city["adcode"], aggregate["adcode"]) == ("310100", "310100")
    assert 0 < aggregate["pop_covered_share"] < 1
    assert aggregate["pop_covered_share"] != pytest.approx(aggregate["covered_share"])
    for column, value in aggregate.items():
        if column not in ("adcode", "name", "level"):
            assert city[column] == value or (pd.isna(city[column]) and pd.isna(value)), column
