"""Siting advice: where N new facilities would cover the most of a district that is out of reach.

This is the maximal covering location problem (MCLP) with the existing facilities fixed. The
numeric core :func:`max_cover` solves it with the greedy rule (take the candidate that newly
covers the most, exactly updated after each pick) followed by a one-for-one interchange until no
swap improves (Teitz-Bart). Greedy alone guarantees only 1 - 1/e (63 %) of the optimum; with the
interchange it reached at least 95 % (usually 100 %) of the optimum that spopt's integer programme
(PuLP / CBC) finds on the small instances of ``tests/finder/test_siting.py``.

:func:`suggest_sites` is the geographic wrapper: demand is the district's sample cells (area) or
its population points, candidates are a regular grid over the district or a given list (e.g.
existing union buildings), distances are true metres in the district's local projection.

Weighting by observed use (``use=``, ``finder suggest --weight use``, ``weight=use``)
-------------------------------------------------------------------------------------
Door counts tell where outdoor workers are: a station with many entries a day has many users
around it, and those beyond its reach walk far or go without. With a :class:`UsageReport` of the
facilities near the district (visits per day over a window of whole days, :mod:`finder.usage`),
the weight of each demand point (its area or its people) is multiplied by

    1 + sum over facilities f of  u_f * max(0, 1 - d(point, f) / catchment)

where ``u_f`` is f's visits per day divided by the average visits per day of the measured
facilities of the report, and ``catchment`` is :data:`USE_CATCHMENT_RADII` (3) service radii: a
station of average use doubles the weight of the points next to it, one of five times the
average use multiplies it by six, and the effect fades to nothing at three radii. Points already
within reach count nothing, as without weighting, so sites go to the uncovered ground around
heavily used stations first.

Facilities without a counting device in the window (*unmeasured*) have no counts; they are
assumed to be used like the average measured facility (``u_f = 1``), never as zero use, and the
answer says how many were assumed. A measured facility with no entry is zero use. Without any
measured facility, or without any visit, weighting by use is refused (:class:`InvalidInput`).

Limits: entries measure use, not need (a station nobody can reach or enter counts nothing, and
unserved areas far from any station gain no weight); a door counts entries, not people; the
window's season and holidays shape it. The shares and gains reported stay in plain area or
people, so weighted and unweighted answers compare; only the choice of sites changes.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

from finder.coverage import (
    DistrictCells,
    FacilityPoints,
    NearbyFacilities,
    SampleGrid,
    check_radius,
    grid_points_in,
)
from finder.usage import UsageReport, usage_report
from geodata.errors import InvalidInput
from geodata.events import EventLog
from geodata.geodesy import check_points

Objective = Literal["area", "population"]
Weighting = Literal["none", "use"]
FloatArray = NDArray[np.float64]
#: Observed use weighs demand up to this many service radii from a facility.
USE_CATCHMENT_RADII = 3.0
#: What an unweighted answer says about its weighting.
NO_WEIGHTING: dict[str, Any] = {"weighting": "none"}


def max_cover(
    coverage: sp.spmatrix | sp.sparray,
    weight: ArrayLike,
    n_sites: int,
    *,
    covered: ArrayLike | None = None,
    improve: bool = True,
) -> NDArray[np.intp]:
    """Choose up to ``n_sites`` candidates that together cover the most uncovered weight.

    Parameters
    ----------
    coverage
        Sparse boolean matrix, candidates x demand points: ``True`` where the candidate reaches
        the demand point.
    weight
        Non-negative weight per demand point (area, persons).
    n_sites
        Number of candidates to choose.
    covered
        Boolean per demand point already covered by fixed (existing) facilities; these add
        nothing.
    improve
        Run the one-for-one interchange after the greedy picks.

    Returns
    -------
    numpy.ndarray
        Indices of the chosen candidates, in pick order (greedy order, swaps in place). Fewer
        than ``n_sites`` when no further candidate adds anything.
    """
    matrix = sp.csr_array(coverage, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64).ravel()
    n_candidates, n_demand = matrix.shape
    if w.shape != (n_demand,):
        raise InvalidInput("weight must have one entry per demand point", field="weight")
    if n_sites < 0:
        raise InvalidInput("n_sites must be non-negative", field="n_sites")
    fixed = np.zeros(n_demand, dtype=bool) if covered is None else np.asarray(covered, dtype=bool)
    by_demand = matrix.tocsc()
    value = np.where(fixed, 0.0, w)
    gains = matrix @ value
    chosen: list[int] = []
    for _ in range(min(n_sites, n_candidates)):
        best = int(np.argmax(gains))
        if gains[best] <= 0:
            break
        chosen.append(best)
        newly = matrix.indices[matrix.indptr[best] : matrix.indptr[best + 1]]
        newly = newly[value[newly] > 0]
        gains -= by_demand[:, newly] @ value[newly]
        value[newly] = 0.0
    if improve and chosen:
        chosen = _interchange(matrix, w, fixed, chosen)
        exact = _exhaustive(matrix, np.where(fixed, 0.0, w), len(chosen))
        if exact is not None and _covered(matrix, w, fixed, exact) > _covered(
            matrix, w, fixed, chosen
        ):
            chosen = exact
    return np.asarray(chosen, dtype=np.intp)


#: Small instances (combinations x demand points up to this) are solved exactly by enumeration.
EXHAUSTIVE_LIMIT = 4_000_000


def _covered(
    matrix: sp.csr_array, w: FloatArray, fixed: NDArray[np.bool_], chosen: list[int]
) -> float:
    reached = np.zeros(matrix.shape[1], dtype=bool)
    for c in chosen:
        reached[matrix.indices[matrix.indptr[c] : matrix.indptr[c + 1]]] = True
    return float(w[reached & ~fixed].sum())


def _exhaustive(matrix: sp.csr_array, value: FloatArray, n_sites: int) -> list[int] | None:
    """The optimal ``n_sites`` candidates by enumeration, or None when the instance is too big.

    Greedy with interchange is a heuristic (it reached 96-100 % of CBC's optimum on random
    instances but can fall lower on adversarial tiny ones); where enumeration is cheap it is
    exact, so small districts and small candidate lists always get the optimum.
    """
    useful = np.flatnonzero(matrix @ value > 0)
    p = min(n_sites, len(useful))
    demand = np.flatnonzero(value > 0)
    if p == 0 or math.comb(len(useful), p) * max(len(demand), 1) > EXHAUSTIVE_LIMIT:
        return None
    dense = matrix[useful][:, demand].toarray() > 0
    weights = value[demand]
    combos = np.array(list(itertools.combinations(range(len(useful)), p)), dtype=np.intp)
    reached = np.zeros((len(combos), len(demand)), dtype=bool)
    for column in range(p):
        reached |= dense[combos[:, column]]
    best = int(np.argmax(reached @ weights))
    return [int(useful[i]) for i in combos[best]]


def _interchange(
    matrix: sp.csr_array, w: FloatArray, fixed: NDArray[np.bool_], chosen: list[int]
) -> list[int]:
    """Swap one chosen candidate for a better one while that increases the covered weight."""
    counts = np.zeros(matrix.shape[1], dtype=np.int64)
    for c in chosen:
        counts[matrix.indices[matrix.indptr[c] : matrix.indptr[c + 1]]] += 1
    improved = True
    while improved:
        improved = False
        for position, site in enumerate(chosen):
            reach = matrix.indices[matrix.indptr[site] : matrix.indptr[site + 1]]
            counts[reach] -= 1
            open_value = np.where(fixed | (counts > 0), 0.0, w)
            gains = matrix @ open_value
            gains[chosen] = -1.0
            gains[site] = float(open_value[reach].sum())
            best = int(np.argmax(gains))
            # a swap must win by more than rounding noise, or the loop could cycle
            if gains[best] > gains[site] * (1 + 1e-9) + 1e-12:
                chosen[position] = best
                improved = True
            else:
                best = site
            counts[matrix.indices[matrix.indptr[best] : matrix.indptr[best + 1]]] += 1
    return chosen


@dataclass(frozen=True)
class SitingResult:
    """Proposed new sites for one district.

    Attributes
    ----------
    adcode, name
        District.
    radius_m
        Reach, geodesic metres.
    objective
        ``"area"`` (sample cells of the basis area) or ``"population"`` (population layer).
    basis
        What the shares refer to (area basis or population layer name).
    lon, lat
        Proposed sites, WGS-84 degrees, in pick order.
    candidate_index
        Index of each site in the given candidate list, or ``None`` for grid candidates.
    gain
        What each site adds, in its final position (km2 for area, persons for population),
        counted as if it were the last site added.
    before_share, after_share
        Share (0-1) of the district's area or population within reach before and after.
    n_candidates
        Candidates considered.
    candidate_spacing_m
        Spacing of the candidate grid, metres, or ``None`` for a list.
    weighting
        How demand was weighted: ``{"weighting": "none"}``, or for observed use
        ``weighting="use"`` with the window (``from``, ``to``, ``days``), ``catchment_m``,
        ``measured_facilities``, ``unmeasured_facilities`` (assumed average use),
        ``reference_visits_per_day`` (the average of the measured ones) and ``rule``.
    """

    adcode: str
    name: str
    radius_m: float
    objective: Objective
    basis: str
    lon: FloatArray
    lat: FloatArray
    candidate_index: NDArray[np.intp] | None
    gain: FloatArray
    before_share: float
    after_share: float
    n_candidates: int
    candidate_spacing_m: float | None
    weighting: dict[str, Any] = field(default_factory=lambda: dict(NO_WEIGHTING))

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-ready dict."""
        return {
            "adcode": self.adcode,
            "name": self.name,
            "radius_m": self.radius_m,
            "objective": self.objective,
            "basis": self.basis,
            "before_share": self.before_share,
            "after_share": self.after_share,
            "n_candidates": self.n_candidates,
            "candidate_spacing_m": self.candidate_spacing_m,
            "weighting": dict(self.weighting),
            "sites": [
                {
                    "rank": i + 1,
                    "lon": float(self.lon[i]),
                    "lat": float(self.lat[i]),
                    "gain": float(self.gain[i]),
                    "candidate_index": None
                    if self.candidate_index is None
                    else int(self.candidate_index[i]),
                }
                for i in range(self.lon.size)
            ],
        }

    def to_geojson(self) -> dict[str, Any]:
        """Proposed sites as a GeoJSON FeatureCollection of points (WGS-84)."""
        summary = self.to_json()
        sites = summary.pop("sites")
        features = [
            {
                "type": "Feature",
                "properties": {"adcode": self.adcode, **site},
                "geometry": {"type": "Point", "coordinates": [site["lon"], site["lat"]]},
            }
            for site in sites
        ]
        return {"type": "FeatureCollection", "metadata": summary, "features": features}


def suggest_sites(
    grid: SampleGrid,
    adcode: str,
    lon: ArrayLike,
    lat: ArrayLike,
    *,
    n_sites: int = 5,
    radius_m: float = 1000.0,
    candidates_lon: ArrayLike | None = None,
    candidates_lat: ArrayLike | None = None,
    candidate_spacing_m: float | None = None,
    objective: Objective = "area",
    use: UsageReport | None = None,
    improve: bool = True,
) -> SitingResult:
    """Propose ``n_sites`` new facility locations for a district (maximal covering).

    Parameters
    ----------
    grid
        Sample grid from :func:`finder.coverage.build_sample_grid`.
    adcode
        District to site in.
    lon, lat
        Existing facilities, WGS-84 degrees (kept fixed; those outside the district count too).
    n_sites
        Number of new sites (1-200).
    radius_m
        Reach, geodesic metres.
    candidates_lon, candidates_lat
        Candidate locations, WGS-84 degrees; default a regular grid over the district.
    candidate_spacing_m
        Spacing of the candidate grid, metres; default ``radius_m / 4`` (at least the demand
        cell size and no more than needed for about 20,000 candidates).
    objective
        ``"area"`` maximises newly covered area, ``"population"`` newly covered people (the grid
        must carry a population layer).
    use
        Observed use of the facilities near the district (:func:`observed_use_near`): weight
        demand by it (the rule of the module docstring); ``None`` weighs plain area or people.
    improve
        Run the interchange improvement after the greedy picks.

    Returns
    -------
    SitingResult

    Raises
    ------
    InvalidInput
        On bad parameters, ``objective="population"`` without a population layer, or ``use``
        without any measured facility or visit.
    UnknownDistrict
        If ``adcode`` is not in the grid.
    """
    radius = check_radius(radius_m)
    if not 1 <= n_sites <= 200:
        raise InvalidInput("n_sites must be between 1 and 200", field="n_sites")
    cells = grid.district(adcode)
    lon_arr, lat_arr = check_points(lon, lat)
    if objective == "area":
        demand_x, demand_y = cells.x_m, cells.y_m
        weight = np.full(cells.n_cells, cells.cell_m**2 / 1e6)
        basis = grid.area_basis
    elif objective == "population":
        if cells.pop_weight.sum() <= 0:
            raise InvalidInput("objective 'population' needs a population layer", field="objective")
        demand_x, demand_y, weight = cells.pop_x_m, cells.pop_y_m, cells.pop_weight
        basis = f"population: {grid.population_basis}"
    else:
        raise InvalidInput("objective must be 'area' or 'population'", field="objective")
    if demand_x.size == 0:
        raise InvalidInput(f"district {adcode} has no demand to cover", field="adcode")

    covered = np.zeros(demand_x.size, dtype=bool)
    if lon_arr.size:
        nearby = NearbyFacilities(
            cells, FacilityPoints.from_lonlat(lon_arr, lat_arr), radius * 1.01
        )
        nearest = nearby.nearest_two(demand_x, demand_y, within_m=radius, open_search=False)
        covered = nearest[:, 0] <= radius

    spacing: float | None
    if candidates_lon is None or candidates_lat is None:
        if candidates_lon is not None or candidates_lat is not None:
            raise InvalidInput("give both candidates_lon and candidates_lat", field="candidates")
        area_m2 = cells.area_km2 * 1e6
        spacing = candidate_spacing_m or max(
            radius / 4.0, cells.cell_m, math.sqrt(area_m2 / 20_000)
        )
        if not spacing > 0:
            raise InvalidInput("candidate_spacing_m must be positive", field="candidate_spacing_m")
        cand_x, cand_y = grid_points_in(cells.polygon_local, spacing)
    else:
        spacing = None
        c_lon, c_lat = check_points(candidates_lon, candidates_lat)
        px, py = cells.to_local.transform(c_lon, c_lat)
        cand_x, cand_y = np.asarray(px, dtype=np.float64), np.asarray(py, dtype=np.float64)
    if cand_x.size == 0:
        raise InvalidInput("no candidate sites", field="candidates")

    choice_weight, weighting = weight, dict(NO_WEIGHTING)
    if use is not None:
        multiplier, weighting = _use_multiplier(cells, use, demand_x, demand_y, radius)
        choice_weight = weight * multiplier
    open_demand = np.flatnonzero(~covered)
    coverage = _coverage_matrix(
        cand_x, cand_y, demand_x[open_demand], demand_y[open_demand], radius
    )
    picks = max_cover(coverage, choice_weight[open_demand], n_sites, improve=improve)

    total = float(weight.sum())
    before = float(weight[covered].sum())
    gains = _last_added_gains(coverage, weight[open_demand], picks)
    reached = np.zeros(open_demand.size, dtype=bool)
    for p in picks:
        reached[coverage.indices[coverage.indptr[p] : coverage.indptr[p + 1]]] = True
    after = before + float(weight[open_demand][reached].sum())
    site_lon, site_lat = cells.to_lonlat.transform(cand_x[picks], cand_y[picks])
    return SitingResult(
        adcode=cells.adcode,
        name=cells.name,
        radius_m=radius,
        objective=objective,
        basis=basis,
        lon=np.atleast_1d(np.asarray(site_lon, dtype=np.float64)),
        lat=np.atleast_1d(np.asarray(site_lat, dtype=np.float64)),
        candidate_index=None if spacing is not None else picks,
        gain=gains,
        before_share=before / total,
        after_share=after / total,
        n_candidates=int(cand_x.size),
        candidate_spacing_m=spacing,
        weighting=weighting,
    )


def use_multiplier(
    x_m: FloatArray,
    y_m: FloatArray,
    fx_m: FloatArray,
    fy_m: FloatArray,
    relative_use: FloatArray,
    catchment_m: float,
) -> FloatArray:
    """Demand multipliers ``1 + sum_f relative_use_f * max(0, 1 - d / catchment_m)``.

    Parameters
    ----------
    x_m, y_m
        Demand points, local metres.
    fx_m, fy_m
        Facilities, the same local metres.
    relative_use
        Each facility's use relative to the reference (1 = average), non-negative.
    catchment_m
        Distance at which a facility's use stops weighing, metres.
    """
    out = np.ones(x_m.size, dtype=np.float64)
    if fx_m.size == 0 or x_m.size == 0:
        return out
    demand = cKDTree(np.column_stack([x_m, y_m]))
    facilities = cKDTree(np.column_stack([fx_m, fy_m]))
    pairs = demand.sparse_distance_matrix(facilities, catchment_m, output_type="ndarray")
    share = np.clip(1.0 - pairs["v"] / catchment_m, 0.0, None) * relative_use[pairs["j"]]
    np.add.at(out, pairs["i"], share)
    return out


def _use_multiplier(
    cells: DistrictCells,
    use: UsageReport,
    x_m: FloatArray,
    y_m: FloatArray,
    radius_m: float,
) -> tuple[FloatArray, dict[str, Any]]:
    """The multiplier of each demand point by observed use, and what the answer says of it."""
    measured = use.measured
    per_day = use.facilities["visits_per_day"].to_numpy(dtype=np.float64)
    window = f"{use.first.isoformat()} to {use.last.isoformat()}"
    if not measured.any():
        raise InvalidInput(
            f"no facility near {cells.name} had a counting device from {window}: "
            "weighting by use needs door counts",
            field="weight",
        )
    reference = float(per_day[measured].mean())
    if not reference > 0:
        raise InvalidInput(
            f"the facilities near {cells.name} counted no visit from {window}: "
            "weighting by use needs door counts",
            field="weight",
        )
    relative = np.where(measured, per_day / reference, 1.0)
    lon = use.facilities["lon"].to_numpy(dtype=np.float64)
    lat = use.facilities["lat"].to_numpy(dtype=np.float64)
    fx, fy = cells.to_local.transform(lon, lat)
    catchment = USE_CATCHMENT_RADII * radius_m
    multiplier = use_multiplier(
        x_m,
        y_m,
        np.asarray(fx, dtype=np.float64),
        np.asarray(fy, dtype=np.float64),
        relative,
        catchment,
    )
    weighting = {
        "weighting": "use",
        "from": use.first.isoformat(),
        "to": use.last.isoformat(),
        "days": use.days,
        "catchment_m": catchment,
        "measured_facilities": int(measured.sum()),
        "unmeasured_facilities": int((~measured).sum()),
        "reference_visits_per_day": round(reference, 2),
        "rule": "demand x (1 + sum of visits per day / reference x (1 - distance / catchment));"
        " facilities without a counting device are assumed to have the reference use",
    }
    return multiplier, weighting


def observed_use_near(
    log: EventLog,
    facilities: pd.DataFrame,
    cells: DistrictCells,
    radius_m: float,
    window: tuple[dt.date, dt.date],
) -> UsageReport:
    """The observed use that can weigh a district's demand (:func:`suggest_sites`'s ``use``).

    Parameters
    ----------
    log
        The store's event log.
    facilities
        The counted facilities (a facility frame: ``id``, ``name``, ``kind``, ``access``,
        ``district``, ``adcode``, ``lon``, ``lat``); those within the catchment
        (:data:`USE_CATCHMENT_RADII` x ``radius_m``) of the district are reported.
    cells
        The district.
    radius_m
        Reach, metres.
    window
        First and last day (China time), e.g. :func:`finder.usage.use_window`.
    """
    lon = facilities["lon"].to_numpy(dtype=np.float64)
    lat = facilities["lat"].to_numpy(dtype=np.float64)
    fx, fy = cells.to_local.transform(lon, lat)
    near = shapely.dwithin(
        cells.polygon_local,
        shapely.points(np.asarray(fx), np.asarray(fy)),
        USE_CATCHMENT_RADII * check_radius(radius_m),
    )
    return usage_report(log, facilities[np.asarray(near, dtype=bool)], *window)


def _coverage_matrix(
    cand_x: FloatArray,
    cand_y: FloatArray,
    demand_x: FloatArray,
    demand_y: FloatArray,
    radius_m: float,
) -> sp.csr_array:
    """Sparse candidates x demand matrix of pairs within ``radius_m`` (local metres)."""
    shape = (cand_x.size, demand_x.size)
    if demand_x.size == 0:
        return sp.csr_array(shape, dtype=np.float64)
    demand_tree = cKDTree(np.column_stack([demand_x, demand_y]))
    cand_tree = cKDTree(np.column_stack([cand_x, cand_y]))
    pairs = cand_tree.query_ball_tree(demand_tree, radius_m)
    lengths = np.fromiter((len(p) for p in pairs), dtype=np.int64, count=len(pairs))
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    indices = (
        np.concatenate([np.asarray(p, dtype=np.int64) for p in pairs if p])
        if indptr[-1]
        else np.empty(0, dtype=np.int64)
    )
    data = np.ones(indices.size, dtype=np.float64)
    matrix = sp.csr_array((data, indices, indptr), shape=shape)
    matrix.sort_indices()
    return matrix


def _last_added_gains(
    coverage: sp.csr_array, weight: FloatArray, picks: NDArray[np.intp]
) -> FloatArray:
    """Weight each pick covers that no other pick covers."""
    counts = np.zeros(coverage.shape[1], dtype=np.int64)
    rows = [coverage.indices[coverage.indptr[p] : coverage.indptr[p + 1]] for p in picks]
    for r in rows:
        counts[r] += 1
    return np.array([float(weight[r[counts[r] == 1]].sum()) for r in rows], dtype=np.float64)
