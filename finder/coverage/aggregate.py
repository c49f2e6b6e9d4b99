"""Counties added up to cities and provinces: the one aggregation of coverage rows.

A county row of a coverage table becomes additive columns (:func:`county_sums`): areas
(``area_km2``, ``sampled_km2`` where the grid sampled it, ``covered_km2``, ``twice_km2``),
persons (``people``, ``people_sampled`` where a population share is known, ``people_covered``,
``people_twice``), ``population`` (census), ``facilities`` and ``n_<kind>``, ``counties``.
:func:`sum_counties` adds them up per region; every share is the ratio of two sums
(:data:`SHARES`, recomputed by :func:`with_shares` at every level), and the largest gap is the
largest of the counties' with its place. So a region's area shares are weighted by its counties'
sampled areas and its population shares by the persons given as ``people``: the census totals
(the default) or the persons a population raster places in each county.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from geodata.schema import KINDS

#: Columns that add up from counties to cities and provinces (those present are summed).
ADDITIVE = (
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
    "sampled_km2",
    "people_sampled",
    "counties",
)
#: ``(share, part, whole)``: each share is ``part / whole`` of the sums (NaN where whole is 0).
SHARES = (
    ("covered_share", "covered_km2", "sampled_km2"),
    ("covered_twice_share", "twice_km2", "sampled_km2"),
    ("walk_share", "walk_km2", "sampled_km2"),
    ("pop_covered_share", "people_covered", "people_sampled"),
    ("pop_covered_twice_share", "people_twice", "people_sampled"),
    ("pop_walk_share", "people_walk", "people_sampled"),
)
#: Where the largest gap of a region is: the worst county's.
GAP_COLUMNS = ("largest_gap_m", "gap_adcode", "gap_lon", "gap_lat")


def _column(table: pd.DataFrame, name: str) -> np.ndarray[Any, np.dtype[np.float64]]:
    return table[name].to_numpy(dtype=float)


def county_sums(
    table: pd.DataFrame,
    *,
    people: ArrayLike | None = None,
    walk: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The county rows of a coverage table as additive columns, with their shares.

    Parameters
    ----------
    table
        Rows of :func:`finder.coverage.coverage_table` (one per county).
    people
        Persons per row that the population shares weigh; default the census ``population``
        (0 where unknown).
    walk
        The same rows at a second radius (a walk): adds ``walk_km2`` and ``people_walk``.

    Returns
    -------
    pandas.DataFrame
        ``adcode``, ``name``, the additive columns of :data:`ADDITIVE` (``counties`` 1), the
        gap columns and the shares of :data:`SHARES`.
    """
    adcodes = table["adcode"].astype(str).to_numpy(dtype=object)
    area = _column(table, "area_km2")
    sampled = np.isfinite(_column(table, "covered_share"))
    census = table["population"].astype("Float64").fillna(0.0).to_numpy(dtype=float)
    weight = census if people is None else np.asarray(people, dtype=float)
    known = np.isfinite(_column(table, "pop_covered_share"))

    def km2(rows: pd.DataFrame, share: str) -> np.ndarray[Any, np.dtype[np.float64]]:
        return np.where(sampled, _column(rows, share) * area, 0.0)

    def persons(rows: pd.DataFrame, share: str) -> np.ndarray[Any, np.dtype[np.float64]]:
        return np.where(known, _column(rows, share) * weight, 0.0)

    columns: dict[str, Any] = {
        "adcode": adcodes,
        "name": table["name"].to_numpy(dtype=object),
        "counties": 1,
        "population": table["population"].astype("Int64").to_numpy(),
        "area_km2": area,
        "sampled_km2": np.where(sampled, area, 0.0),
        "covered_km2": km2(table, "covered_share"),
        "twice_km2": km2(table, "covered_twice_share"),
        "walk_km2": None if walk is None else km2(walk, "covered_share"),
        "people": weight,
        "people_sampled": np.where(known, weight, 0.0),
        "people_covered": persons(table, "pop_covered_share"),
        "people_twice": persons(table, "pop_covered_twice_share"),
        "people_walk": None if walk is None else persons(walk, "pop_covered_share"),
        "facilities": table["facilities"].to_numpy(dtype=np.int64),
        **{f"n_{k}": table[f"n_{k}"].astype("Int64").to_numpy() for k in KINDS},
        "largest_gap_m": _column(table, "largest_gap_m"),
        "gap_adcode": adcodes,
        "gap_lon": _column(table, "gap_lon"),
        "gap_lat": _column(table, "gap_lat"),
    }
    rows = pd.DataFrame({name: v for name, v in columns.items() if v is not None})
    rows["population"] = rows["population"].astype("Int64")
    return with_shares(rows)


def with_shares(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with ``facilities_per_10k`` (per 10,000 census residents) and the shares of
    :data:`SHARES` whose columns are present, from the additive columns (the same rule at
    every level)."""
    out = rows.copy()
    population = out["population"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["facilities_per_10k"] = np.where(
            population > 0, out["facilities"] / population * 1e4, np.nan
        )
        for share, part, whole in SHARES:
            if part in out.columns:
                total = _column(out, whole)
                out[share] = np.where(total > 0, _column(out, part) / total, np.nan)
    return out


def sum_counties(rows: pd.DataFrame, key: str) -> pd.DataFrame:
    """Add up county rows (of :func:`county_sums`) per value of the column ``key``.

    Returns
    -------
    pandas.DataFrame
        One row per ``key`` value, sorted, with that value as ``adcode``: the sums of the
        additive columns (``population`` and ``n_<kind>`` are ``<NA>`` where every county's
        is), the worst county's gap columns and the shares recomputed from the sums.
    """
    additive = [c for c in ADDITIVE if c in rows.columns]
    frame = rows.copy()
    frame["population"] = frame["population"].astype("Float64")
    sums = frame.groupby(key, sort=True)[additive].sum(min_count=1)
    sums["population"] = sums["population"].round().astype("Int64")
    for k in KINDS:
        sums[f"n_{k}"] = sums[f"n_{k}"].astype("Int64")
    out = sums.reset_index(drop=True)
    out.insert(0, "adcode", sums.index.to_numpy(dtype=object))
    out["facilities"] = out["facilities"].astype(np.int64)
    out["counties"] = out["counties"].astype(np.int64)
    gaps = frame.dropna(subset=["largest_gap_m"])
    worst = gaps.loc[gaps.groupby(key)["largest_gap_m"].idxmax()].set_index(key)
    for column in GAP_COLUMNS:
        out[column] = out["adcode"].map(worst[column]) if len(worst) else np.nan
    out["largest_gap_m"] = out["largest_gap_m"].astype(float)
    return with_shares(out)
