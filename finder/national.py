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
from finder.coverage.aggregate import county_sums, sum_counties
from finder.coverage.table import _records as json_records
from finder.index import WALK_SPEED_M_S
from geodata.errors import InvalidInput

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
    provinces = _regions(counties, "province_adcode", "province")
    cities = _regions(counties, "city_adcode", "city")
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
    if grid.population_basis is None:
        # the census spread evenly over each county: its population shares are its area shares
        people = None
        near, walk = _spread_evenly(near), _spread_evenly(walk)
    else:
        people = np.array([grid.district(a).pop_weight.sum() for a in adcodes], dtype=float)
    rows = county_sums(near, people=people, walk=walk)
    rows.insert(0, "level", "county")
    hierarchy = {
        "province_adcode": names["province_adcode"].to_numpy(dtype=object),
        "province": _names(names, "province", "province_adcode"),
        "city_adcode": names["city_adcode"].to_numpy(dtype=object),
        "city": _names(names, "city", "city_adcode"),
    }
    for at, (column, values) in enumerate(hierarchy.items(), start=3):
        rows.insert(at, column, values)
    return rows


def _spread_evenly(table: pd.DataFrame) -> pd.DataFrame:
    """A coverage table whose population shares are its area shares."""
    return table.assign(
        pop_covered_share=table["covered_share"],
        pop_covered_twice_share=table["covered_twice_share"],
    )


def _names(districts: pd.DataFrame, column: str, code: str) -> NDArray[np.object_]:
    """The province or city names of the counties (the boundary file's), else their adcodes."""
    names = districts[column].to_numpy(dtype=object)
    codes = districts[code].to_numpy(dtype=object)
    return np.array(
        [str(c) if n is None or pd.isna(n) else str(n) for n, c in zip(names, codes, strict=True)],
        dtype=object,
    )


def _regions(counties: pd.DataFrame, code: str, name: str) -> pd.DataFrame:
    """The counties added up per ``code`` (:func:`finder.coverage.aggregate.sum_counties`)."""
    rows = sum_counties(counties, code)
    first = counties.groupby(code, sort=True).first()
    rows.insert(0, "level", "province" if code == "province_adcode" else "city")
    rows.insert(2, "name", first[name].to_numpy(dtype=object))
    rows.insert(3, "province", first["province"].to_numpy(dtype=object))
    return rows


def rounded_national(frame: pd.DataFrame) -> pd.DataFrame:
    """A national table rounded for people (:func:`finder.coverage.rounded_table`); persons to
    whole persons."""
    out = rounded_table(frame)
    for column in ("people", "people_sampled", "people_covered", "people_twice", "people_walk"):
        if column in out.columns:
            out[column] = out[column].round(0).astype("Int64")
    return out
