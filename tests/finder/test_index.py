"""Every query form of FacilityIndex equals a brute-force geodesic search (pyproj Geod, all pairs).

Facilities are drawn at city scale (Shanghai) and national scale (China), with duplicated
locations; filters (kind, amenities, access and viewer, stars, status, opening hours) are drawn
too. The reference evaluates every facility with ``Geod.inv`` and the plain-Python filter rules
(``Viewer.may_see``, ``finder.hours.state_at``), orders by (distance, id) and cuts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pyproj
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finder.hours import HolidayCalendar, OpenState, state_at
from finder.index import MAX_K, RADIUS_TOLERANCE_M, FacilityIndex
from geodata.errors import InvalidCoordinate, InvalidOpeningHours, InvalidQuery, UnknownCRS
from geodata.schema import ACCESS_CLASSES, AMENITIES, ANONYMOUS, KINDS, STATUSES, Viewer

GEOD = pyproj.Geod(ellps="WGS84")
SHANGHAI = (120.85, 30.67, 122.2, 31.88)
CHINA = (73.0, 18.0, 135.0, 53.0)
#: A few amenities so that amenity filters keep some facilities.
SOME_AMENITIES = AMENITIES[:4]
HOURS = ("24/7", "Mo-Fr 08:30-17:30; PH off", "Mo-Su 07:00-22:00", None, "not hours ((")
WHENS = (
    datetime(2025, 10, 2, 10, 0),  # 国庆节: a public holiday
    datetime(2025, 9, 28, 10, 0),  # a Sunday that is a working day (调休)
    datetime(2025, 6, 4, 21, 30),  # an ordinary Wednesday evening
    datetime(2041, 1, 2, 10, 0),  # a year the calendar does not cover
)
ORGS = ("org-a", "org-b")
VIEWERS = (
    ANONYMOUS,
    Viewer(member=True),
    Viewer(organizations=frozenset({"org-a"})),
    Viewer(see_all=True),
)


@dataclass
class Facilities:
    """Plain columns of a drawn facility set (WGS-84 degrees)."""

    ids: list[str]
    lon: np.ndarray
    lat: np.ndarray
    kind: list[str]
    access: list[str]
    organization: list[str | None]
    amenities: list[str]
    stars: list[float]
    status: list[str]
    hours: list[str | None]

    def index(self) -> FacilityIndex:
        return FacilityIndex.from_arrays(
            self.ids,
            self.lon,
            self.lat,
            kinds=self.kind,
            access=self.access,
            organization=self.organization,
            amenities=self.amenities,
            star_rating=self.stars,
            status=self.status,
            opening_hours=self.hours,
        )


@st.composite
def facilities(draw: st.DrawFn, box: tuple[float, float, float, float]) -> Facilities:
    n = draw(st.integers(1, 40))
    lon = np.array([draw(st.floats(box[0], box[2])) for _ in range(n)])
    lat = np.array([draw(st.floats(box[1], box[3])) for _ in range(n)])
    # Duplicated locations: some facilities share the exact point of another.
    for i in range(n):
        if i and draw(st.integers(0, 3)) == 0:
            j = draw(st.integers(0, i - 1))
            lon[i], lat[i] = lon[j], lat[j]
    access = [draw(st.sampled_from(ACCESS_CLASSES)) for _ in range(n)]
    organization = [
        draw(st.sampled_from(ORGS)) if a == "employees" else draw(st.sampled_from((None, *ORGS)))
        for a in access
    ]
    amenity_lists = [draw(st.sets(st.sampled_from(SOME_AMENITIES))) for _ in range(n)]
    return Facilities(
        # Ids drawn in random order so that id order is not the drawing order.
        ids=[f"f{draw(st.integers(0, 10**6)):07d}-{i}" for i in range(n)],
        lon=lon,
        lat=lat,
        kind=[draw(st.sampled_from(KINDS)) for _ in range(n)],
        access=access,
        organization=organization,
        amenities=[";".join(sorted(a)) for a in amenity_lists],
        stars=[draw(st.sampled_from((np.nan, 1.0, 3.0, 5.0))) for _ in range(n)],
        status=[draw(st.sampled_from(STATUSES)) for _ in range(n)],
        hours=[draw(st.sampled_from(HOURS)) for _ in range(n)],
    )


@st.composite
def filters(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if draw(st.booleans()):
        out["kinds"] = draw(st.sets(st.sampled_from(KINDS), min_size=1))
    if draw(st.booleans()):
        out["amenities"] = draw(st.sets(st.sampled_from(SOME_AMENITIES), max_size=2))
    if draw(st.booleans()):
        out["access"] = draw(st.sets(st.sampled_from(ACCESS_CLASSES), min_size=1))
    if draw(st.booleans()):
        out["min_stars"] = draw(st.sampled_from((1, 3, 5)))
    if draw(st.booleans()):
        out["statuses"] = draw(st.sets(st.sampled_from(STATUSES), min_size=1))
    if draw(st.integers(0, 3)) == 0:
        out["open_at"] = draw(st.sampled_from(WHENS))
    out["viewer"] = draw(st.sampled_from(VIEWERS))
    return out


_CALENDAR = HolidayCalendar.default()


def _passes(f: Facilities, i: int, flt: dict[str, Any]) -> bool:
    viewer: Viewer = flt.get("viewer", ANONYMOUS)
    if not viewer.may_see(f.access[i], f.organization[i]):
        return False
    if "kinds" in flt and f.kind[i] not in flt["kinds"]:
        return False
    if "access" in flt and f.access[i] not in flt["access"]:
        return False
    if not set(flt.get("amenities", ())).issubset(f.amenities[i].split(";")):
        return False
    if "min_stars" in flt and not f.stars[i] >= flt["min_stars"]:
        return False
    if f.status[i] not in flt.get("statuses", ("open",)):
        return False
    if "open_at" in flt:
        try:
            state = state_at(f.hours[i], flt["open_at"], _CALENDAR)
        except InvalidOpeningHours:
            state = OpenState.UNKNOWN
        if state is not OpenState.OPEN:
            return False
    return True


def brute_force(
    f: Facilities,
    lon: float,
    lat: float,
    flt: dict[str, Any],
    *,
    k: int | None = None,
    max_distance_m: float | None = None,
) -> tuple[list[str], np.ndarray]:
    """Ids and geodesic distances of passing facilities, nearest first, ties by id."""
    n = len(f.ids)
    _az, _baz, dist = GEOD.inv(np.full(n, lon), np.full(n, lat), f.lon, f.lat)
    keep = [i for i in range(n) if _passes(f, i, flt)]
    if max_distance_m is not None:
        keep = [i for i in keep if dist[i] <= max_distance_m + RADIUS_TOLERANCE_M]
    keep.sort(key=lambda i: (dist[i], f.ids[i]))
    keep = keep[:k] if k is not None else keep
    return [f.ids[i] for i in keep], np.array([dist[i] for i in keep])


def _query_point(draw: st.DrawFn, f: Facilities, box: tuple[float, float, float, float]) -> Any:
    if draw(st.booleans()):
        i = draw(st.integers(0, len(f.ids) - 1))
        return float(f.lon[i]), float(f.lat[i])
    return draw(st.floats(box[0], box[2])), draw(st.floats(box[1], box[3]))


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("box", [SHANGHAI, CHINA], ids=["city", "national"])
@SETTINGS
@given(data=st.data())
def test_nearest_equals_brute_force(box: tuple[float, ...], data: st.DataObject) -> None:
    f = data.draw(facilities(box))
    index = f.index()
    lon, lat = _query_point(data.draw, f, box)
    k = data.draw(st.integers(1, 8))
    flt = data.draw(filters())
    max_d = data.draw(st.sampled_from((None, 500.0, 20_000.0, 300_000.0)))
    results = index.nearest(lon, lat, k=k, max_distance_m=max_d, **flt)
    ids, dist = brute_force(f, lon, lat, flt, k=k, max_distance_m=max_d)
    assert [r.facility_id for r in results] == ids
    np.testing.assert_array_equal([r.distance_m for r in results], dist)


@pytest.mark.parametrize("box", [SHANGHAI, CHINA], ids=["city", "national"])
@SETTINGS
@given(data=st.data())
def test_nearest_batch_equals_brute_force(box: tuple[float, ...], data: st.DataObject) -> None:
    f = data.draw(facilities(box))
    index = f.index()
    points = [_query_point(data.draw, f, box) for _ in range(data.draw(st.integers(1, 6)))]
    k = data.draw(st.integers(1, 6))
    flt = data.draw(filters())
    max_d = data.draw(st.sampled_from((None, 2_000.0, 100_000.0)))
    batch = index.nearest_batch(
        [p[0] for p in points], [p[1] for p in points], k=k, max_distance_m=max_d, **flt
    )
    assert batch.positions.shape == batch.distance_m.shape == (len(points), k)
    for row, (lon, lat) in enumerate(points):
        ids, dist = brute_force(f, lon, lat, flt, k=k, max_distance_m=max_d)
        got = batch.positions[row]
        assert [str(index.ids[p]) for p in got[got >= 0]] == ids
        assert (got[len(ids) :] == -1).all()
        np.testing.assert_array_equal(batch.distance_m[row, : len(ids)], dist)
        assert np.isnan(batch.distance_m[row, len(ids) :]).all()


@pytest.mark.parametrize("box", [SHANGHAI, CHINA], ids=["city", "national"])
@SETTINGS
@given(data=st.data())
def test_within_equals_brute_force(box: tuple[float, ...], data: st.DataObject) -> None:
    f = data.draw(facilities(box))
    index = f.index()
    lon, lat = _query_point(data.draw, f, box)
    flt = data.draw(filters())
    radius = data.draw(st.sampled_from((0.0, 300.0, 5_000.0, 80_000.0, 1_500_000.0)))
    results = index.within(lon, lat, radius, **flt)
    ids, dist = brute_force(f, lon, lat, flt, max_distance_m=radius)
    assert [r.facility_id for r in results] == ids
    np.testing.assert_array_equal([r.distance_m for r in results], dist)
    batch = index.within_batch([lon, lon], [lat, lat], radius, **flt)
    np.testing.assert_array_equal(batch.counts(), [len(ids), len(ids)])
    assert [str(index.ids[p]) for p in batch.positions[: len(ids)]] == ids
    np.testing.assert_array_equal(batch.distance_m[len(ids) :], dist)


@pytest.mark.parametrize("box", [SHANGHAI, CHINA], ids=["city", "national"])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_points_exactly_on_the_radius_are_inside(
    box: tuple[float, ...], data: st.DataObject
) -> None:
    margin_lon, margin_lat = 0.2 * (box[2] - box[0]), 0.2 * (box[3] - box[1])
    lon = data.draw(st.floats(box[0] + margin_lon, box[2] - margin_lon))
    lat = data.draw(st.floats(box[1] + margin_lat, box[3] - margin_lat))
    radius = data.draw(st.floats(1.0, 50_000.0))
    azimuths = np.array(data.draw(st.lists(st.floats(-180, 180), min_size=1, max_size=6)))
    n = azimuths.size
    on_lon, on_lat, _ = GEOD.fwd(np.full(n, lon), np.full(n, lat), azimuths, np.full(n, radius))
    out_lon, out_lat, _ = GEOD.fwd(
        np.full(n, lon), np.full(n, lat), azimuths, np.full(n, radius + 0.001)
    )
    index = FacilityIndex.from_arrays(
        [f"on{i}" for i in range(n)] + [f"out{i}" for i in range(n)],
        np.concatenate([on_lon, out_lon]),
        np.concatenate([on_lat, out_lat]),
        kinds=["rest_stop"] * (2 * n),
    )
    inside = {r.facility_id for r in index.within(lon, lat, radius)}
    assert inside == {f"on{i}" for i in range(n)}
    near = index.nearest(lon, lat, k=2 * n, max_distance_m=radius)
    assert {r.facility_id for r in near} == inside


def test_ellipsoid_not_sphere_decides() -> None:
    """A facility 1,000 m north beats one 1,000.5 m east, though a sphere says otherwise."""
    lon, lat = 121.47, 31.23
    (n_lon, e_lon), (n_lat, e_lat), _ = GEOD.fwd([lon, lon], [lat, lat], [0, 90], [1000, 1000.5])
    index = FacilityIndex.from_arrays(
        ["east", "north"], [e_lon, n_lon], [e_lat, n_lat], kinds=["rest_stop"] * 2
    )
    sphere = pyproj.Geod(a=6_371_008.8, b=6_371_008.8)
    _a, _b, on_sphere = sphere.inv([lon, lon], [lat, lat], [e_lon, n_lon], [e_lat, n_lat])
    assert on_sphere[0] < on_sphere[1]  # the sphere would pick "east"
    best = index.nearest(lon, lat)[0]
    assert best.facility_id == "north"
    assert best.distance_m == pytest.approx(1000.0, abs=1e-6)
    assert best.bearing_deg == pytest.approx(0.0, abs=1e-6)
    assert best.walk_s_est == pytest.approx(1000.0 / (4.8 / 3.6))
    batch = index.nearest_batch([lon], [lat])
    assert index.ids[batch.positions[0, 0]] == "north"


def test_filters_keep_k_results_far_beyond_the_first_candidates() -> None:
    """A selective filter must still return k results: search further, never fewer."""
    rng = np.random.default_rng(7)
    n = 20_000
    lon = rng.uniform(*SHANGHAI[::2], n)
    lat = rng.uniform(*SHANGHAI[1::2], n)
    kinds = np.array(["mother_room"] * n, dtype=object)
    rare = rng.choice(n, 5, replace=False)
    kinds[rare] = "rest_stop"
    index = FacilityIndex.from_arrays([f"f{i:05d}" for i in range(n)], lon, lat, kinds=kinds)
    f_lon, f_lat = lon[rare], lat[rare]
    _a, _b, dist = GEOD.inv(np.full(5, 121.0), np.full(5, 31.0), f_lon, f_lat)
    expected = [f"f{i:05d}" for i in rare[np.argsort(dist)]]
    got = index.nearest(121.0, 31.0, k=5, kinds="rest_stop")
    assert [r.facility_id for r in got] == expected
    got = index.nearest(121.0, 31.0, k=10, kinds=["rest_stop"])
    assert [r.facility_id for r in got] == expected
    batch = index.nearest_batch([121.0, 121.0], [31.0, 31.0], k=5, kinds="rest_stop")
    assert [str(index.ids[p]) for p in batch.positions[0]] == expected


@pytest.mark.parametrize("box", [SHANGHAI, CHINA], ids=["city", "national"])
def test_repeated_filters_stay_exact(box: tuple[float, ...]) -> None:
    """Frequent filter combinations get a KD-tree of their own; answers must not change."""
    rng = np.random.default_rng(11)
    n = 3000
    f = Facilities(
        ids=[f"f{i:05d}" for i in range(n)],
        lon=rng.uniform(box[0], box[2], n),
        lat=rng.uniform(box[1], box[3], n),
        kind=list(rng.choice(KINDS, n)),
        access=list(rng.choice(["public", "members"], n)),
        organization=[None] * n,
        amenities=[";".join(rng.choice(SOME_AMENITIES, 2, replace=False)) for _ in range(n)],
        stars=list(rng.choice([np.nan, 2.0, 4.0], n)),
        status=list(rng.choice(["open", "closed"], n, p=[0.9, 0.1])),
        hours=[None] * n,
    )
    index = f.index()
    flt = {"kinds": {"mother_room"}, "amenities": {SOME_AMENITIES[0]}, "min_stars": 3}
    points = zip(rng.uniform(box[0], box[2], 150), rng.uniform(box[1], box[3], 150), strict=True)
    for lon, lat in points:
        got = index.nearest(lon, lat, k=3, **flt)
        ids, dist = brute_force(f, lon, lat, flt, k=3)
        assert [r.facility_id for r in got] == ids
        np.testing.assert_array_equal([r.distance_m for r in got], dist)


def test_open_at_outside_known_years_is_unknown_not_open() -> None:
    index = FacilityIndex.from_arrays(
        ["office", "always"],
        [121.47, 121.48],
        [31.23, 31.23],
        kinds=["mother_room", "mother_room"],
        opening_hours=["Mo-Fr 08:30-17:30; PH off", "24/7"],
    )
    office, always = index.position_of("office"), index.position_of("always")
    weekday_2041 = datetime(2041, 1, 2, 10, 0)
    assert index.open_states([office, always], weekday_2041) == [
        OpenState.UNKNOWN,
        OpenState.OPEN,
    ]
    assert [r.facility_id for r in index.nearest(121.47, 31.23, k=2, open_at=weekday_2041)] == [
        "always"
    ]
    holiday = datetime(2025, 10, 2, 10, 0)
    assert index.open_states([office], holiday) == [OpenState.CLOSED]
    workday_sunday = datetime(2025, 9, 28, 10, 0)
    assert index.open_states([office], workday_sunday) == [OpenState.OPEN]


@pytest.mark.parametrize(
    ("call", "error", "field"),
    [
        (lambda ix: ix.nearest(float("nan"), 31.0), InvalidCoordinate, "lon"),
        (lambda ix: ix.nearest(121.0, 91.0), InvalidCoordinate, "lat"),
        (lambda ix: ix.nearest(181.0, 31.0), InvalidCoordinate, "lon"),
        (lambda ix: ix.nearest(121.0, 31.0, k=0), InvalidQuery, "k"),
        (lambda ix: ix.nearest(121.0, 31.0, k=MAX_K + 1), InvalidQuery, "k"),
        (lambda ix: ix.nearest(121.0, 31.0, k=True), InvalidQuery, "k"),
        (lambda ix: ix.nearest(121.0, 31.0, k=2.0), InvalidQuery, "k"),
        (lambda ix: ix.nearest(121.0, 31.0, crs=["wgs84"]), UnknownCRS, "crs"),
        (lambda ix: ix.nearest(121.0, 31.0, max_distance_m=-1), InvalidQuery, "max_distance_m"),
        (lambda ix: ix.within(121.0, 31.0, -5.0), InvalidQuery, "radius_m"),
        (lambda ix: ix.within(121.0, 31.0, float("inf")), InvalidQuery, "radius_m"),
        (lambda ix: ix.nearest(121.0, 31.0, kinds=["spa"]), InvalidQuery, "kinds"),
        (lambda ix: ix.nearest(121.0, 31.0, amenities=["pool"]), InvalidQuery, "amenities"),
        (lambda ix: ix.nearest(121.0, 31.0, min_stars=6), InvalidQuery, "min_stars"),
        (lambda ix: ix.nearest_batch([121.0, np.inf], [31.0, 31.0]), InvalidCoordinate, "lon"),
        (lambda ix: ix.in_bbox(122.0, 31.0, 121.0, 32.0), InvalidCoordinate, "bbox"),
        (lambda ix: ix.in_district("31011"), InvalidQuery, "adcode"),
    ],
)
def test_domain_errors(call: Any, error: type[Exception], field: str) -> None:
    index = FacilityIndex.from_arrays(["a"], [121.47], [31.23], kinds=["rest_stop"])
    with pytest.raises(error) as info:
        call(index)
    assert getattr(info.value, "field", None) == field
    assert isinstance(info.value, ValueError)
