"""The national picture: coverage per province and per city, counties ranked by a 15-minute walk.

:func:`national_coverage` runs :func:`finder.coverage.coverage_table` over every county of a
sample grid (once at the reach radius, once at the distance of a 15-minute walk) and adds the
counties up along the hierarchy of the boundaries (``province_adcode`` and ``city_adcode`` of
:func:`geodata.boundaries.load_districts`).

Every level carries the same additive columns, so a province row is exactly the sum of its
counties: ``population`` (2020 census), ``area_km2``, ``covered_km2``, ``twice_km2``, ``people``
and ``people_covered`` (persons on the population basis), ``facilities``; the shares are
ratios of those sums, and ``largest_gap_m`` is the largest of the counties' gaps.

Population basis: with a population raster in the grid (:mod:`finder.population`), ``people``
are the raster's persons located in each county and the population shares count them where
they live; without one, ``people`` is the county's 2020 census total, spread evenly over the
county (its population share equals its area share), and ``population_basis`` says so.

Example
-------
>>> result = national_coverage(grid, lon, lat)  # doctest: +SKIP
>>> result.provinces[["name", "facilities_per_10k", "pop_covered_share"]]  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from finder.coverage import SampleGrid, check_radius, coverage_table, rounded_table
from finder.coverage.table import _records as json_records
from finder.index import WALK_SPEED_M_S
from geodata.errors import InvalidInput
from geodata.schema import KINDS

#: Minutes of the walk the counties are ranked by (the national "15-minute" service circle).
WALK_MINUTES = 15.0
#: Sample cells per county for a national table (``build_sample_grid(max_cells_per_district=)``):
#: 14 million cells for the 2,848 mainland counties; shares agree with the exact geometry
#: within a few tenths of a percentage point (``bench/national.py``).
NATIONAL_MAX_CELLS = 5_000
CENSUS_BASIS = (
    "2020 census county totals, spread evenly over each county (no population raster): "
    "a county's population share equals its area share"
)
LEVELS = ("province", "city", "county")

#: Columns that add up from counties to cities and provinces.
_ADDITIVE = (
    "population",
    "area_km2",
    "covered_km2",
    "twice_km2",
    "walk_km2",
    "people",
    "people_covered",
    "people_twice",
    "people_walk",
    "facilities",
    *(f"n_{k}" for k in KINDS),
)


def walk_radius_m(minutes: float = WALK_MINUTES) -> float:
    """Straight-line distance of a walk of ``minutes`` at ``finder.index.WALK_SPEED_M_S``, m."""
    return minutes * 60.0 * WALK_SPEED_M_S


@dataclass(frozen=True)
class NationalCoverage:
    """Coverage per province, city and county.

    Attributes
    ----------
    provinces, cities
        One row per province / city, sorted by adcode: ``level``, ``adcode``, ``name``,
        ``province`` (name), ``counties`` (how many), the additive columns of the module
        docstring, ``facilities_per_10k`` (per 10,000 census residents), ``covered_share``,
        ``covered_twice_share`` and ``walk_share`` (of the area, 0-1), ``pop_covered_share``,
        ``pop_covered_twice_share`` and ``pop_walk_share`` (of ``people``), ``largest_gap_m``
        (metres) with ``gap_adcode``, ``gap_lon``, ``gap_lat`` (WGS-84) of where it is.
    counties
        The same columns per county plus ``city``, ranked by ``pop_walk_share`` (best first;
        the area share ``walk_share`` for a county without people on the basis, e.g. without a
        census figure; ties by area share, then adcode) with ``rank`` 1, 2, ...
    radius_m
        Reach of the ``covered`` columns, geodesic metres.
    walk_minutes, walk_radius_m
        The walk of the ``walk`` columns and its straight-line distance, metres.
    area_basis, population_basis
        What the area and population shares are shares of.
    facility_count
        Facilities considered.
    computed_at
        UTC time of the computation.
    """

    provinces: pd.DataFrame
    cities: pd.DataFrame
    counties: pd.DataFrame
    radius_m: float
    walk_minutes: float
    walk_radius_m: float
    area_basis: str
    population_basis: str
    facility_count: int
    computed_at: dt.datetime

    def metadata(self) -> dict[str, Any]:
        """Radii, bases, count and time as a JSON-ready dict."""
        return {
            "radius_m": self.radius_m,
            "walk_minutes": self.walk_minutes,
            "walk_radius_m": round(self.walk_radius_m, 1),
            "walk_speed_m_s": round(WALK_SPEED_M_S, 4),
            "area_basis": self.area_basis,
            "population_basis": self.population_basis,
            "facility_count": self.facility_count,
            "computed_at": self.computed_at.isoformat(),
        }

    def to_frame(self) -> pd.DataFrame:
        """Provinces, cities, then the ranked counties in one table (``level`` tells which)."""
        return pd.concat([self.provinces, self.cities, self.counties], ignore_index=True)

    def to_json(self) -> dict[str, Any]:
        """``metadata``, ``provinces``, ``cities`` and ``counties`` (ranked), rounded as
        :func:`finder.coverage.rounded_table` rounds, NaN as ``None``."""
        return {
            "metadata": self.metadata(),
            "provinces": json_records(rounded_national(self.provinces)),
            "cities": json_records(rounded_national(self.cities)),
            "counties": json_records(rounded_national(self.counties)),
        }


def national_coverage(
    grid: SampleGrid,
    lon: ArrayLike,
    lat: ArrayLike,
    *,
    radius_m: float = 1000.0,
    walk_minutes: float = WALK_MINUTES,
    kind: Sequence[str] | NDArray[Any] | None = None,
) -> NationalCoverage:
    """Coverage of every county of ``grid``, added up per city and per province.

    Parameters
    ----------
    grid
        Sample grid of county-level districts (six-digit adcodes) from
        :func:`finder.coverage.build_sample_grid`, with a population layer or without.
    lon, lat
        Facility locations, WGS-84 degrees (already filtered, e.g. by
        :func:`finder.coverage.counted_facilities`).
    radius_m
        Reach of the ``covered`` columns, geodesic metres.
    walk_minutes
        The walk the counties are ranked by, minutes at ``finder.index.WALK_SPEED_M_S``
        (straight line; 15 minutes is 1,200 m).
    kind
        Facility kind per facility, for the ``n_<kind>`` counts.

    Returns
    -------
    NationalCoverage

    Raises
    ------
    InvalidInput
        On bad coordinates, radius, walk or kinds.
    """
    radius = check_radius(radius_m)
    if not (math.isfinite(walk_minutes) and walk_minutes > 0):
        raise InvalidInput("walk_minutes must be positive", field="walk_minutes")
    walk_m = check_radius(walk_radius_m(walk_minutes))
    near = coverage_table(grid, lon, lat, radius_m=radius, kind=kind)
    walk = coverage_table(grid, lon, lat, radius_m=walk_m)
    counties = _county_rows(grid, near.table, walk.table)
    provinces = _aggregate(counties, "province_adcode", "province")
    cities = _aggregate(counties, "city_adcode", "city")
    key = counties["pop_walk_share"].fillna(counties["walk_share"])
    ranked = (
        counties.assign(_key=key)
        .sort_values(
            ["_key", "walk_share", "adcode"],
            ascending=[False, False, True],
            na_position="last",
            kind="stable",
        )
        .drop(columns="_key")
        .reset_index(drop=True)
    )
    ranked.insert(0, "rank", np.arange(1, len(ranked) + 1))
    return NationalCoverage(
        provinces=provinces,
        cities=cities,
        counties=ranked.drop(columns=["province_adcode", "city_adcode"]),
        radius_m=radius,
        walk_minutes=float(walk_minutes),
        walk_radius_m=walk_m,
        area_basis=near.area_basis,
        population_basis=grid.population_basis or CENSUS_BASIS,
        facility_count=near.facility_count,
        computed_at=near.computed_at,
    )


def _county_rows(grid: SampleGrid, near: pd.DataFrame, walk: pd.DataFrame) -> pd.DataFrame:
    """One row per county with the hierarchy, the additive columns and the shares."""
    adcodes = near["adcode"].astype(str)
    names = grid.districts.set_index("adcode").loc[adcodes]
    area = near["area_km2"].to_numpy(dtype=float)
    share = near["covered_share"].to_numpy(dtype=float)
    twice = near["covered_twice_share"].to_numpy(dtype=float)
    walk_share = walk["covered_share"].to_numpy(dtype=float)
    census = near["population"].astype("Float64").fillna(0.0).to_numpy(dtype=float)
    if grid.population_basis is None:
        people = census
        pop_share, pop_twice, pop_walk = share, twice, walk_share
    else:
        people = np.array([grid.district(a).pop_weight.sum() for a in adcodes], dtype=float)
        pop_share = near["pop_covered_share"].to_numpy(dtype=float)
        pop_twice = near["pop_covered_twice_share"].to_numpy(dtype=float)
        pop_walk = walk["pop_covered_share"].to_numpy(dtype=float)
    sampled = np.isfinite(share)
    rows = pd.DataFrame(
        {
            "level": "county",
            "adcode": adcodes.to_numpy(dtype=object),
            "name": near["name"].to_numpy(dtype=object),
            "province_adcode": names["province_adcode"].to_numpy(dtype=object),
            "province": _names(names, "province", "province_adcode"),
            "city_adcode": names["city_adcode"].to_numpy(dtype=object),
            "city": _names(names, "city", "city_adcode"),
            "counties": 1,
            "population": near["population"].astype("Int64").to_numpy(),
            "area_km2": area,
            "sampled_km2": np.where(sampled, area, 0.0),
            "covered_km2": np.where(sampled, share * area, 0.0),
            "twice_km2": np.where(sampled, twice * area, 0.0),
            "walk_km2": np.where(sampled, walk_share * area, 0.0),
            "people": people,
            "people_covered": np.nan_to_num(pop_share * people),
            "people_twice": np.nan_to_num(pop_twice * people),
            "people_walk": np.nan_to_num(pop_walk * people),
            "facilities": near["facilities"].to_numpy(dtype=np.int64),
            **{f"n_{k}": near[f"n_{k}"].astype("Int64").to_numpy() for k in KINDS},
            "largest_gap_m": near["largest_gap_m"].to_numpy(dtype=float),
            "gap_adcode": adcodes.to_numpy(dtype=object),
            "gap_lon": near["gap_lon"].to_numpy(dtype=float),
            "gap_lat": near["gap_lat"].to_numpy(dtype=float),
        }
    )
    rows["population"] = rows["population"].astype("Int64")
    return _with_shares(rows)


def _names(districts: pd.DataFrame, column: str, code: str) -> NDArray[np.object_]:
    """The province or city names of the counties (the boundary file's), else their adcodes."""
    names = districts[column].to_numpy(dtype=object)
    codes = districts[code].to_numpy(dtype=object)
    return np.array(
        [str(c) if n is None or pd.isna(n) else str(n) for n, c in zip(names, codes, strict=True)],
        dtype=object,
    )


def _with_shares(rows: pd.DataFrame) -> pd.DataFrame:
    """Add the ratio columns computed from the additive ones (the same rule at every level)."""
    out = rows.copy()
    population = out["population"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    sampled = out["sampled_km2"].to_numpy(dtype=float)
    people = out["people"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["facilities_per_10k"] = np.where(
            population > 0, out["facilities"] / population * 1e4, np.nan
        )
        for share, part in (
            ("covered_share", "covered_km2"),
            ("covered_twice_share", "twice_km2"),
            ("walk_share", "walk_km2"),
        ):
            out[share] = np.where(sampled > 0, out[part] / sampled, np.nan)
        for share, part in (
            ("pop_covered_share", "people_covered"),
            ("pop_covered_twice_share", "people_twice"),
            ("pop_walk_share", "people_walk"),
        ):
            out[share] = np.where(people > 0, out[part] / people, np.nan)
    return out


def _aggregate(counties: pd.DataFrame, code: str, name: str) -> pd.DataFrame:
    """Sum the counties' additive columns per ``code`` and recompute the shares."""
    level = "province" if code == "province_adcode" else "city"
    additive = [*_ADDITIVE, "sampled_km2", "counties"]
    frame = counties.copy()
    frame["population"] = frame["population"].astype("Float64")
    sums = frame.groupby(code, sort=True)[additive].sum(min_count=1)
    sums["population"] = sums["population"].round().astype("Int64")
    for k in KINDS:
        sums[f"n_{k}"] = sums[f"n_{k}"].astype("Int64")
    gaps = frame.dropna(subset=["largest_gap_m"])
    worst = gaps.loc[gaps.groupby(code)["largest_gap_m"].idxmax()].set_index(code)
    first = frame.groupby(code, sort=True).first()
    rows = pd.DataFrame(
        {
            "level": level,
            "adcode": sums.index.to_numpy(dtype=object),
            "name": first[name].to_numpy(dtype=object),
            "province": first["province"].to_numpy(dtype=object),
        }
    )
    body = sums.reset_index(drop=True)
    rows = pd.concat([rows, body], axis=1)
    rows["facilities"] = rows["facilities"].astype(np.int64)
    rows["counties"] = rows["counties"].astype(np.int64)
    for column in ("largest_gap_m", "gap_adcode", "gap_lon", "gap_lat"):
        rows[column] = rows["adcode"].map(worst[column]) if len(worst) else np.nan
    rows["largest_gap_m"] = rows["largest_gap_m"].astype(float)
    return _with_shares(rows)


def rounded_national(frame: pd.DataFrame) -> pd.DataFrame:
    """A national table rounded for people (:func:`finder.coverage.rounded_table`); persons to
    whole persons."""
    out = rounded_table(frame)
    for column in ("people", "people_covered", "people_twice", "people_walk"):
        if column in out.columns:
            out[column] = out[column].round(0).astype("Int64")
    return out
