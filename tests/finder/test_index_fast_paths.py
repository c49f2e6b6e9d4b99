"""The fast nearest paths stay exact: single queries that take the geodesics of a few facilities in
the first search ball directly, KD-trees of frequent filters, and batches split over threads.

Thousands of clustered facilities (so that search balls hold many, few or no facilities, and a
batch is large enough to be split over threads) with rare attribute values, so that drawn filters
match no facility, exactly one, a few or many, sometimes with a moment (opening hours). The
reference is a brute-force geodesic search (``pyproj.Geod.inv`` from the query to every facility)
with the filter rules written out plainly.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np
import pyproj
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finder.geodesy import ecef_point
from finder.hours import HolidayCalendar, OpenState, state_at
from finder.index import FacilityIndex
from geodata.schema import ANONYMOUS, KINDS, STATUSES, Viewer

GEOD = pyproj.Geod(ellps="WGS84")
N = 3000
#: Shanghai and a few other cities: dense clusters, and empty land between them.
CENTRES = ((121.47, 31.23), (116.40, 39.90), (113.26, 23.13), (104.07, 30.67))
AMENITY_SETS = ("fridge", "fridge;wifi", "wifi", "", "fridge;sofa;wifi")
HOURS = ("24/7", "Mo-Fr 08:30-17:30; PH off", None)
#: A working-day morning, and a Sunday evening when only the 24/7 facilities are open.
WHENS = (datetime(2025, 6, 4, 10, 0), datetime(2025, 6, 8, 21, 0))
#: Filters designed to match no facility, one, a few and many (see ``_facilities``).
DESIGNED: tuple[dict[str, Any], ...] = (
    {"min_stars": 5, "kinds": ["rest_stop"]},  # the one 5-star facility is a mother room: none
    {"min_stars": 5},  # one
    {"min_stars": 4, "amenities": ["sofa"]},  # 4 or 5 stars, all with a sofa: seven
    {"kinds": ["rest_stop"], "amenities": ["sofa"]},  # few
    {"kinds": ["mother_room"], "amenities": ["fridge"]},  # many
    {},
)


def _facilities() -> dict[str, Any]:
    rng = np.random.default_rng(12)
    centre = rng.integers(0, len(CENTRES), N)
    clustered = rng.random(N) < 0.85
    lon = np.where(
        clustered,
        np.array(CENTRES)[centre, 0] + rng.normal(0, 0.05, N),
        rng.uniform(100.0, 125.0, N),
    )
    lat = np.where(
        clustered, np.array(CENTRES)[centre, 1] + rng.normal(0, 0.05, N), rng.uniform(20, 42, N)
    )
    # Every tenth facility shares the point of the one before it: ties broken by id.
    lon[1::10], lat[1::10] = lon[0::10], lat[0::10]
    kinds = rng.choice(["mother_room", "worker_station"], N).astype(object)
    rare = rng.choice(N, 40, replace=False)
    kinds[rare] = "rest_stop"
    amenities = rng.choice(AMENITY_SETS[:4], N).astype(object)
    amenities[rare[:8]] = "fridge;sofa;wifi"
    stars = rng.choice([np.nan, 1.0, 2.0, 3.0], N)
    special = rng.choice(np.setdiff1d(np.arange(N), rare), 7, replace=False)
    stars[special[0]] = 5.0
    kinds[special[0]] = "mother_room"
    stars[special[1:]] = 4.0
    amenities[special] = "fridge;sofa;wifi"
    access = rng.choice(["public", "members"], N, p=[0.8, 0.2]).astype(object)
    access[special] = "public"
    status = rng.choice(["open", "temporarily_closed", "closed"], N, p=[0.9, 0.05, 0.05])
    status = status.astype(object)
    status[special] = "open"
    hours = rng.choice(np.array(HOURS, dtype=object), N, p=[0.02, 0.5, 0.48])
    return {
        "ids": np.array([f"f{(i * 7919) % N:05d}" for i in range(N)], dtype=object),
        "lon": lon,
        "lat": lat,
        "kinds": kinds,
        "access": access,
        "amenities": amenities,
        "star_rating": stars,
        "status": status,
        "opening_hours": hours,
    }


DATA = _facilities()


@pytest.fixture(scope="module")
def index() -> FacilityIndex:
    columns = {k: v for k, v in DATA.items() if k not in ("ids", "lon", "lat")}
    return FacilityIndex.from_arrays(DATA["ids"], DATA["lon"], DATA["lat"], **columns)


def _passing(flt: dict[str, Any]) -> np.ndarray:
    """Which facilities pass ``flt``, by the rules written out (default statuses: open)."""
    viewer: Viewer = flt.get("viewer", ANONYMOUS)
    keep = np.array(
        [viewer.may_see(access, None) for access in DATA["access"]], dtype=bool
    ) & np.isin(DATA["status"], list(flt.get("statuses", ("open",))))
    if "kinds" in flt:
        keep &= np.isin(DATA["kinds"], list(flt["kinds"]))
    for amenity in flt.get("amenities", ()):
        keep &= np.array([amenity in a.split(";") for a in DATA["amenities"]])
    if "min_stars" in flt:
        keep &= DATA["star_rating"] >= flt["min_stars"]
    if "open_at" in flt:
        calendar = HolidayCalendar.default()
        keep &= np.array(
            [
                state_at(hours, flt["open_at"], calendar) is OpenState.OPEN
                for hours in DATA["opening_hours"]
            ]
        )
    return keep


def brute_force(
    lon: float, lat: float, flt: dict[str, Any], k: int, max_distance_m: float | None = None
) -> tuple[list[str], list[float]]:
    """Ids and geodesic distances of the ``k`` nearest passing facilities, ties by id."""
    _az, _baz, dist = GEOD.inv(np.full(N, lon), np.full(N, lat), DATA["lon"], DATA["lat"])
    keep = _passing(flt)
    if max_distance_m is not None:
        keep &= dist <= max_distance_m + 1e-6
    chosen = sorted(np.flatnonzero(keep).tolist(), key=lambda i: (dist[i], DATA["ids"][i]))[:k]
    return [str(DATA["ids"][i]) for i in chosen], [float(dist[i]) for i in chosen]


@st.composite
def filters(draw: st.DrawFn) -> dict[str, Any]:
    """A designed filter (0, 1, few or many matches) or a random combination, and a viewer."""
    if draw(st.booleans()):
        out = dict(draw(st.sampled_from(DESIGNED)))
    else:
        out = {}
        if draw(st.booleans()):
            out["kinds"] = sorted(draw(st.sets(st.sampled_from(KINDS), min_size=1)))
        if draw(st.booleans()):
            out["amenities"] = sorted(draw(st.sets(st.sampled_from(("fridge", "sofa", "wifi")))))
        if draw(st.booleans()):
            out["min_stars"] = draw(st.integers(1, 5))
    if draw(st.booleans()):
        out["viewer"] = draw(st.sampled_from((Viewer(member=True), Viewer(see_all=True))))
    if draw(st.booleans()):
        out["statuses"] = ("open", "temporarily_closed")
    if draw(st.integers(0, 3)) == 0:
        out["open_at"] = draw(st.sampled_from(WHENS))
    return out


@st.composite
def points(draw: st.DrawFn) -> tuple[float, float]:
    """On a facility, near a city centre, or anywhere in eastern China (far from most)."""
    where = draw(st.integers(0, 2))
    if where == 0:
        i = draw(st.integers(0, N - 1))
        return float(DATA["lon"][i]), float(DATA["lat"][i])
    if where == 1:
        lon, lat = draw(st.sampled_from(CENTRES))
        return lon + draw(st.floats(-0.2, 0.2)), lat + draw(st.floats(-0.2, 0.2))
    return draw(st.floats(95.0, 130.0)), draw(st.floats(18.0, 50.0))


FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_designed_filters_match_none_one_few_and_many() -> None:
    assert [int(_passing(flt).sum()) for flt in DESIGNED[:3]] == [0, 1, 7]
    assert 1 < _passing(DESIGNED[3]).sum() < 20 < _passing(DESIGNED[4]).sum()


@FAST
@given(
    flt=filters(), k=st.sampled_from((1, 1, 2, 5)), at=st.lists(points(), min_size=1, max_size=8)
)
def test_single_nearest_equals_brute_force(
    index: FacilityIndex, flt: dict[str, Any], k: int, at: list[tuple[float, float]]
) -> None:
    for lon, lat in at:
        got = index.nearest(lon, lat, k=k, **flt)
        ids, dist = brute_force(lon, lat, flt, k)
        assert [r.facility_id for r in got] == ids
        assert [r.distance_m for r in got] == dist


@settings(FAST, max_examples=12)
@given(flt=filters(), k=st.sampled_from((1, 3)), seed=st.integers(0, 2**32 - 1))
def test_threaded_batch_equals_brute_force(
    index: FacilityIndex, flt: dict[str, Any], k: int, seed: int
) -> None:
    """A batch large enough for one thread per CPU; sampled rows checked against brute force."""
    rng = np.random.default_rng(seed)
    m = 10_000
    at = rng.integers(0, N, m)
    # Half the queries on a facility (ties between the two facilities of a shared point).
    jitter = np.where(np.arange(m) % 2 == 0, 0.0, 0.02)
    lon = DATA["lon"][at] + rng.normal(0, 1, m) * jitter
    lat = DATA["lat"][at] + rng.normal(0, 1, m) * jitter
    max_d = [None, 3_000.0][seed % 2]
    batch = index.nearest_batch(lon, lat, k=k, max_distance_m=max_d, **flt)
    on_shared_point = np.flatnonzero((jitter == 0) & (at % 10 < 2))
    rows = [*rng.choice(m, 12, replace=False), *rng.choice(on_shared_point, 12, replace=False)]
    for row in rows:
        ids, dist = brute_force(float(lon[row]), float(lat[row]), flt, k, max_d)
        got = batch.positions[row]
        assert [str(index.ids[p]) for p in got[got >= 0]] == ids
        assert batch.distance_m[row, : len(ids)].tolist() == dist
        assert np.isnan(batch.distance_m[row, len(ids) :]).all()


@pytest.mark.parametrize("flt", DESIGNED, ids=["none", "one", "seven", "few", "many", "all"])
def test_a_filter_asked_often_gets_its_own_tree_and_the_same_answers(
    index: FacilityIndex, flt: dict[str, Any]
) -> None:
    """Answers before and after a filter gets a KD-tree of its own facilities are the same.

    Asked 64 times, a filter gets its own tree in the background; a batch query builds it at
    once, so the second round of single queries certainly searches it.
    """
    rng = np.random.default_rng(5)
    at = list(zip(rng.uniform(100, 125, 80), rng.uniform(20, 42, 80), strict=True))
    first = [index.nearest(lon, lat, k=2, **flt) for lon, lat in at]
    index.nearest_batch([121.0], [31.0], k=2, **flt)
    second = [index.nearest(lon, lat, k=2, **flt) for lon, lat in at]
    assert second == first
    for (lon, lat), got in zip(at, first, strict=True):
        ids, dist = brute_force(lon, lat, flt, 2)
        assert [r.facility_id for r in got] == ids
        assert [r.distance_m for r in got] == dist


def test_open_at_alone_grows_the_ball_instead_of_switching_trees() -> None:
    """One facility open at the moment and ``k=2``: the ball grows past thousands of closed ones.

    Only static filters have KD-trees of their own; with the moment alone, the search keeps to
    the main tree (a switch there would search the same tree again, without end).
    """
    rng = np.random.default_rng(3)
    n = 6000
    hours = np.full(n, None, dtype=object)
    hours[rng.integers(n)] = "24/7"
    lon, lat = rng.uniform(121.0, 121.5, n), rng.uniform(31.0, 31.5, n)
    index = FacilityIndex.from_arrays(
        np.array([f"f{i:05d}" for i in range(n)], dtype=object),
        lon,
        lat,
        kinds=np.full(n, "mother_room", dtype=object),
        opening_hours=hours,
    )
    got = index.nearest(121.25, 31.25, k=2, open_at=datetime(2025, 6, 4, 10, 0))
    _az, _baz, dist = GEOD.inv(np.full(n, 121.25), np.full(n, 31.25), lon, lat)
    open_ones = np.flatnonzero(hours == "24/7")
    assert [(r.facility_id, r.distance_m) for r in got] == [
        (f"f{i:05d}", dist[i]) for i in open_ones
    ]


def test_a_facility_nearer_by_chord_can_be_farther_on_the_ellipsoid() -> None:
    """1,670 km from the query, ``a`` is 1 m nearer than ``b`` by chord but 40 m farther away.

    The first search ball (sized from the extent of ``sw`` and ``ne``) holds ``a`` alone; its
    geodesic lies beyond the ball's radius, so the search must go on and find ``b``.
    """
    query = (100.0, 43.0)
    sw, ne = (105.0, 25.0), (125.0, 40.0)
    a = (105.22803531294608, 28.530299009177497)
    b = (119.55301749882081, 39.70175435896481)
    points = {"a": a, "b": b, "ne": ne, "sw": sw}
    index = FacilityIndex.from_arrays(
        np.array(list(points), dtype=object),
        np.array([p[0] for p in points.values()]),
        np.array([p[1] for p in points.values()]),
        kinds=np.full(len(points), "mother_room", dtype=object),
    )
    chord = {name: math.dist(ecef_point(*query), ecef_point(*p)) for name, p in points.items()}
    geodesic = {name: GEOD.inv(*query, *p)[2] for name, p in points.items()}
    assert chord["a"] + 0.9 < chord["b"] and geodesic["b"] + 39 < geodesic["a"]
    assert [r.facility_id for r in index.nearest(*query, k=1)] == ["b"]
    assert [r.facility_id for r in index.nearest(*query, k=2)] == ["b", "a"]


def test_single_query_plans_keep_no_tree_the_cache_evicted() -> None:
    """A single query looks up its compiled filter and tree once (its plan); publishing a filter's
    tree drops the plans, so none keeps a tree the bounded tree cache evicted, and the answers
    stay those of brute force.

    Each filter below passes more than half of the facilities: the cache (at most as many points
    as the main tree) keeps the tree of one of them only.
    """
    columns = {k: v for k, v in DATA.items() if k not in ("ids", "lon", "lat")}
    index = FacilityIndex.from_arrays(DATA["ids"], DATA["lon"], DATA["lat"], **columns)
    common = {"kinds": ["mother_room", "worker_station"]}
    everyone = {"viewer": Viewer(see_all=True), "statuses": STATUSES}
    first, second = common, {**common, **everyone}
    assert _passing(first).sum() > N / 2 and _passing(second).sum() > N / 2
    lon, lat = CENTRES[0]
    index.nearest_batch([lon], [lat], **first)  # builds the first filter's tree at once
    before = index.nearest(lon, lat, k=3, **first)
    index.nearest_batch([lon], [lat], **second)  # its tree evicts the first one's
    kept = [index._searcher, *index._subsets._entries.values()]
    assert all(any(p.searcher is t for t in kept) for p in index._plans.values())
    after = index.nearest(lon, lat, k=3, **first)
    ids, dist = brute_force(lon, lat, first, 3)
    assert [(r.facility_id, r.distance_m) for r in after] == list(zip(ids, dist, strict=True))
    assert after == before
