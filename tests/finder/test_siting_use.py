"""Siting weighted by observed use, from door counts kept in a store of each backend.

A synthetic district (a 17 x 6.7 km rectangle in Shanghai) has two candidate sites, A (west)
and B (east), each 1.5-1.6 km from an existing station (S_A, S_B). A's uncovered area is a
little larger (its station is a little farther), so plain siting takes A first; a heavily used
S_B must move the first site to B, as the rule of :mod:`finder.siting` says.
"""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from finder.coverage import SampleGrid, build_sample_grid
from finder.hours import local_today
from finder.siting import observed_use_near, suggest_sites
from finder.usage import use_window
from geodata.errors import InvalidInput
from geodata.events import NewEvent, event_log
from geodata.schema import Facility
from geodata.store import FacilityStore

ADCODE = "319901"
A = (121.43, 31.23)
B = (121.51, 31.23)
M_PER_DEG_LON = 111_320.0 * np.cos(np.radians(31.23))
STATIONS = {
    "s-a": (A[0] - 1600 / M_PER_DEG_LON, A[1]),  # 1.6 km west of A
    "s-b": (B[0] + 1500 / M_PER_DEG_LON, B[1]),  # 1.5 km east of B
    "s-c": (121.47, 31.255),  # far (over 4 km) from both candidate areas
}
WINDOW_DAYS = 7
#: The window is the 7 days before this "today": after the devices were registered (now).
TODAY = local_today() + dt.timedelta(days=WINDOW_DAYS + 1)
WINDOW = use_window(WINDOW_DAYS, today=TODAY)


@pytest.fixture(scope="module")
def grid() -> SampleGrid:
    district = gpd.GeoDataFrame(
        {"adcode": [ADCODE], "name": ["试验区"], "population": pd.array([None], dtype="Int64")},
        geometry=[shapely.box(121.38, 31.20, 121.56, 31.26)],
        crs="EPSG:4326",
    )
    return build_sample_grid(district)


def _stations(store: FacilityStore, visits_per_day: dict[str, int | None]) -> pd.DataFrame:
    """Create the stations; those with a number get a device and that many entries a day
    over the window; ``None`` means no device. The store's facility frame."""
    log = event_log(store)
    events: list[NewEvent] = []
    for fid, per_day in visits_per_day.items():
        lon, lat = STATIONS[fid]
        store.create(
            Facility(
                id=fid,
                name=f"驿站{fid}",
                kind="worker_station",
                lon=lon,
                lat=lat,
                adcode="310104",
                district="徐汇区",
                opening_hours="24/7",
            ),
            actor="test",
        )
        if per_day is None:
            continue
        log.add_device(f"dev-{fid}", fid, "ab" * 32)
        for day in range(1, WINDOW_DAYS + 1):
            noon = dt.datetime.combine(
                TODAY - dt.timedelta(days=day), dt.time(12), dt.timezone(dt.timedelta(hours=8))
            )
            events += [
                NewEvent(
                    fid, f"dev-{fid}", "entry", noon + dt.timedelta(seconds=i), f"{fid}{day}-{i}"
                )
                for i in range(per_day)
            ]
    log.append(events, prune_before=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    return store.frame()


def _first_site(grid: SampleGrid, frame: pd.DataFrame, store: FacilityStore | None) -> tuple:
    """The first proposed site among A and B (1 site), with use weighting when a store is
    given; and the answer's weighting."""
    use = None
    if store is not None:
        use = observed_use_near(event_log(store), frame, grid.district(ADCODE), 1000.0, WINDOW)
    result = suggest_sites(
        grid,
        ADCODE,
        frame["lon"],
        frame["lat"],
        n_sites=1,
        radius_m=1000.0,
        candidates_lon=[A[0], B[0]],
        candidates_lat=[A[1], B[1]],
        use=use,
    )
    return "AB"[int(result.candidate_index[0])], result.to_json()["weighting"]


def test_a_heavily_used_station_moves_the_first_site_next_to_it(
    store: FacilityStore, grid: SampleGrid
) -> None:
    frame = _stations(store, {"s-a": 2, "s-b": 50})
    plain, plain_weighting = _first_site(grid, frame, None)
    weighted, weighting = _first_site(grid, frame, store)
    assert plain == "A" and plain_weighting == {"weighting": "none"}
    assert weighted == "B"
    first = (TODAY - dt.timedelta(days=WINDOW_DAYS)).isoformat()
    assert {k: weighting[k] for k in ("weighting", "from", "to", "days", "catchment_m")} == {
        "weighting": "use",
        "from": first,
        "to": (TODAY - dt.timedelta(days=1)).isoformat(),
        "days": WINDOW_DAYS,
        "catchment_m": 3000.0,
    }
    assert (weighting["measured_facilities"], weighting["unmeasured_facilities"]) == (2, 0)
    assert weighting["reference_visits_per_day"] == 26.0  # (2 + 50) / 2


def test_a_station_without_a_device_counts_as_average_use_not_zero(
    store: FacilityStore, grid: SampleGrid
) -> None:
    """S_B has no device: assumed average use (20 a day: S_A 2, S_C 38), ten times S_A's, so B
    comes first; counted as zero use it would not (A's area is the larger)."""
    frame = _stations(store, {"s-a": 2, "s-b": None, "s-c": 38})
    weighted, weighting = _first_site(grid, frame, store)
    assert weighted == "B"
    assert (weighting["measured_facilities"], weighting["unmeasured_facilities"]) == (2, 1)
    assert weighting["reference_visits_per_day"] == 20.0
    use = observed_use_near(event_log(store), frame, grid.district(ADCODE), 1000.0, WINDOW)
    by_id = use.facilities.set_index("id")
    assert by_id.loc["s-b", "measured_days"] == 0 and pd.isna(by_id.loc["s-b", "visits"])
    assert by_id.loc["s-a", "visits"] == 2 * WINDOW_DAYS


def test_weighting_by_use_without_any_measured_facility_is_refused(
    store: FacilityStore, grid: SampleGrid
) -> None:
    frame = _stations(store, {"s-a": None, "s-b": None})
    with pytest.raises(InvalidInput, match="counting device"):
        _first_site(grid, frame, store)


def test_the_window_is_whole_days_before_today() -> None:
    assert use_window(28, today=dt.date(2026, 12, 6)) == (
        dt.date(2026, 11, 8),
        dt.date(2026, 12, 5),
    )
    with pytest.raises(InvalidInput):
        use_window(0)
