"""Siting (maximal covering) against spopt's exact MCLP and brute force."""

from __future__ import annotations

import itertools

import geopandas as gpd
import numpy as np
import pulp
import pytest
import scipy.sparse as sp
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod
from spopt.locate import MCLP

from finder.coverage import SampleGrid, build_sample_grid, coverage_table
from finder.siting import max_cover, suggest_sites
from geodata.boundaries import district_by_adcode, load_districts
from geodata.errors import InvalidInput, UnknownDistrict

JINGAN = "310106"
GEOD = Geod(ellps="WGS84")


def _instance(
    seed: int, n_demand: int = 150, n_candidates: int = 30, n_existing: int = 2
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Random demand points (weights), candidates and existing sites in a 10 km square."""
    rng = np.random.default_rng(seed)
    demand = rng.uniform(0, 10_000, (n_demand, 2))
    sites = rng.uniform(0, 10_000, (n_existing + n_candidates, 2))
    weights = rng.integers(1, 20, n_demand).astype(float)
    cost = np.linalg.norm(demand[:, None, :] - sites[None, :, :], axis=2)
    return cost, weights, sites, 1500.0


def _covered_weight(
    cost: np.ndarray, weights: np.ndarray, open_sites: np.ndarray, r: float
) -> float:
    return float(weights[(cost[:, open_sites] <= r).any(axis=1)].sum())


def _spopt_optimum(
    cost: np.ndarray, weights: np.ndarray, n_existing: int, p: int, r: float
) -> float:
    predefined = np.zeros(cost.shape[1], dtype=int)
    predefined[:n_existing] = 1
    model = MCLP.from_cost_matrix(
        cost, weights, r, p_facilities=n_existing + p, predefined_facilities_arr=predefined
    )
    model = model.solve(pulp.PULP_CBC_CMD(msg=False))
    # PuLP says "Optimal" even when CBC stops at a limit: require a proven optimal solution too
    assert pulp.LpStatus[model.problem.status] == "Optimal"
    assert model.problem.sol_status == pulp.LpSolutionOptimal
    chosen = np.array([v.value() > 0.5 for v in model.fac_vars])
    assert chosen[:n_existing].all()
    return _covered_weight(cost, weights, np.flatnonzero(chosen), r)


# spopt 0.7 builds its model with PuLP 3 calls that PuLP deprecates for 4.0
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize(("seed", "p"), list(itertools.product(range(6), (2, 4, 6))))
def test_max_cover_reaches_95_percent_of_spopt_optimum(seed: int, p: int) -> None:
    n_existing = 2
    cost, weights, _, r = _instance(seed, n_existing=n_existing)
    optimum = _spopt_optimum(cost, weights, n_existing, p, r)
    reach = sp.csr_array((cost[:, n_existing:] <= r).T)
    covered = (cost[:, :n_existing] <= r).any(axis=1)
    picks = max_cover(reach, weights, p, covered=covered)
    ours = _covered_weight(
        cost, weights, np.concatenate([np.arange(n_existing), picks + n_existing]), r
    )
    assert len(set(picks.tolist())) == len(picks) <= p
    assert ours <= optimum + 1e-9
    assert ours >= 0.95 * optimum


def test_interchange_never_loses_to_plain_greedy() -> None:
    for seed in range(10):
        cost, weights, _, r = _instance(seed, n_existing=0, n_candidates=40)
        reach = sp.csr_array((cost <= r).T)
        greedy = max_cover(reach, weights, 4, improve=False)
        improved = max_cover(reach, weights, 4)
        assert _covered_weight(cost, weights, improved, r) >= _covered_weight(
            cost, weights, greedy, r
        )


@settings(max_examples=40, deadline=None)
@given(
    st.integers(min_value=0, max_value=10_000),
    st.integers(min_value=1, max_value=3),
)
def test_max_cover_is_optimal_or_close_on_tiny_instances(seed: int, p: int) -> None:
    """Brute force over every p-subset of 8 candidates."""
    rng = np.random.default_rng(seed)
    reach = rng.random((8, 25)) < 0.25
    weights = rng.integers(0, 10, 25).astype(float)
    best = max(
        weights[reach[list(c)].any(axis=0)].sum() for c in itertools.combinations(range(8), p)
    )
    picks = max_cover(sp.csr_array(reach), weights, p)
    ours = weights[reach[picks].any(axis=0)].sum() if picks.size else 0.0
    assert ours >= 0.95 * best


def test_max_cover_validates() -> None:
    reach = sp.csr_array(np.eye(3, dtype=bool))
    with pytest.raises(InvalidInput):
        max_cover(reach, [1.0, 2.0], 1)
    with pytest.raises(InvalidInput):
        max_cover(reach, [1.0, 2.0, 3.0], -1)
    assert max_cover(reach, [0.0, 0.0, 0.0], 2).size == 0


@pytest.fixture(scope="module")
def jingan_grid() -> tuple[gpd.GeoDataFrame, SampleGrid]:
    districts = load_districts()
    return districts, build_sample_grid(districts[districts["adcode"] == JINGAN])


def _facilities(geometry: shapely.Geometry, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    west, south, east, north = geometry.bounds
    return rng.uniform(west, east, n), rng.uniform(south, north, n)


def test_suggest_sites_improves_coverage_by_what_it_reports(
    jingan_grid: tuple[gpd.GeoDataFrame, SampleGrid],
) -> None:
    districts, grid = jingan_grid
    geometry = district_by_adcode(districts, JINGAN).geometry
    lon, lat = _facilities(geometry, 6, 1)
    result = suggest_sites(grid, JINGAN, lon, lat, n_sites=3)
    before = coverage_table(grid, lon, lat).table.iloc[0]["covered_share"]
    after = coverage_table(
        grid, np.concatenate([lon, result.lon]), np.concatenate([lat, result.lat])
    ).table.iloc[0]["covered_share"]
    assert result.before_share == pytest.approx(before, abs=1e-12)
    assert result.after_share == pytest.approx(after, abs=1e-3)
    assert result.after_share > result.before_share
    assert result.lon.size == 3
    assert shapely.contains_xy(geometry, result.lon, result.lat).all()
    assert (result.gain > 0).all()
    document = result.to_geojson()
    assert [f["properties"]["rank"] for f in document["features"]] == [1, 2, 3]
    assert document["metadata"]["after_share"] == result.after_share


def test_suggest_sites_from_candidate_list(
    jingan_grid: tuple[gpd.GeoDataFrame, SampleGrid],
) -> None:
    districts, grid = jingan_grid
    geometry = district_by_adcode(districts, JINGAN).geometry
    lon, lat = _facilities(geometry, 4, 2)
    c_lon, c_lat = _facilities(geometry, 12, 3)
    result = suggest_sites(
        grid, JINGAN, lon, lat, n_sites=2, candidates_lon=c_lon, candidates_lat=c_lat
    )
    assert result.candidate_index is not None
    np.testing.assert_allclose(result.lon, c_lon[result.candidate_index], atol=1e-9)
    # brute force over all pairs of candidates with the coverage table as judge
    best = 0.0
    for pair in itertools.combinations(range(12), 2):
        idx = list(pair)
        share = coverage_table(
            grid, np.concatenate([lon, c_lon[idx]]), np.concatenate([lat, c_lat[idx]])
        ).table.iloc[0]["covered_share"]
        best = max(best, share)
    assert result.after_share >= 0.95 * best


def test_suggest_sites_errors(jingan_grid: tuple[gpd.GeoDataFrame, SampleGrid]) -> None:
    _, grid = jingan_grid
    with pytest.raises(InvalidInput):
        suggest_sites(grid, JINGAN, [], [], objective="population")
    with pytest.raises(InvalidInput):
        suggest_sites(grid, JINGAN, [], [], n_sites=0)
    with pytest.raises(UnknownDistrict):
        suggest_sites(grid, "310101", [], [])
    with pytest.raises(InvalidInput):
        suggest_sites(grid, JINGAN, [], [], candidates_lon=[121.4])
