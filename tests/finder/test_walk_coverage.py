"""Coverage by walking time per district, beside straight-line coverage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from finder.coverage import build_sample_grid
from finder.walk import WalkNetwork, build_facility_table, walk_coverage_by_district
from geodata.sample import sample_frame
from geodata.streets import streets_from_osm

OSM = Path(__file__).resolve().parents[1] / "data" / "shanghai_jingan.osm"


@pytest.fixture(scope="module")
def setup(districts):  # type: ignore[no-untyped-def]
    network = WalkNetwork(streets_from_osm(OSM))
    frame = sample_frame(1500, districts=districts)
    table = build_facility_table(
        network, frame["lon"].to_numpy(), frame["lat"].to_numpy(), ids=list(frame["id"])
    )
    grid = build_sample_grid(
        districts[districts["adcode"].isin(["310101", "310106"])], max_cells_per_district=4000
    )
    return grid, network, table


@pytest.mark.parametrize("minutes", [3.0, 5.0, 10.0])
def test_walking_never_reaches_farther_than_the_straight_line(setup, minutes: float) -> None:  # type: ignore[no-untyped-def]
    grid, network, table = setup
    budget_m = minutes * 60 * 4.8 / 3.6
    result = walk_coverage_by_district(grid, network, table, minutes=minutes, radius_m=budget_m)
    assert set(result["adcode"]) == {"310101", "310106"}
    assert (result["points_on_network"] > 0).all()
    assert (result["points_on_network"] < result["points"]).all()  # the extract is small
    # A walk is never shorter than the straight line, so its share cannot be larger.
    assert (result["walk_share"] <= result["line_share"] + 1e-12).all()
    assert (result["walk_share"] > 0).all()


def test_walk_share_matches_the_per_point_walks(setup) -> None:  # type: ignore[no-untyped-def]
    from finder.walk import nearest_walk_many

    grid, network, table = setup
    cells = grid.district("310106")
    lon, lat = cells.to_lonlat.transform(cells.x_m, cells.y_m)
    walks = nearest_walk_many(network, table, lon, lat)
    on = walks.on_network
    expected = np.mean(walks.walk_m[on] <= 10 * 60 * 4.8 / 3.6)
    result = walk_coverage_by_district(grid, network, table, minutes=10, adcodes=["310106"])
    assert result["walk_share"].iloc[0] == pytest.approx(expected)
    assert result["points_on_network"].iloc[0] == on.sum()
