"""FacilityFilter: the one question of which facilities count, compiled per snapshot.

The reference is the written rule applied row by row (``Viewer.may_see``, the vocabularies,
shapely for regions), independent of the compiled lookup tables.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finder.hours import HolidayCalendar, OpenState, state_at
from finder.index import FacilityFilter, FacilityIndex
from finder.index.filters import filter_of
from finder.lru import LRUCache
from geodata.crs import from_wgs84
from geodata.errors import InvalidCoordinate, InvalidQuery
from geodata.sample import sample_frame
from geodata.schema import ACCESS_CLASSES, AMENITIES, KINDS, STATUSES, Viewer

GEOD = pyproj.Geod(ellps="WGS84")
MOMENT = dt.datetime(2026, 10, 14, 11, 0)  # a Wednesday, naive = Asia/Shanghai


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    frame = sample_frame(400, seed=5)
    frame.loc[frame.index[::7], "organization"] = "OrgA"
    return frame


@pytest.fixture(scope="module")
def index(frame: pd.DataFrame) -> FacilityIndex:
    return FacilityIndex.from_frame(frame, calendar=HolidayCalendar.default())


def _org(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _expected(frame: pd.DataFrame, where: FacilityFilter, calendar: HolidayCalendar) -> set[str]:
    """Ids passing ``where``, row by row."""
    kept = set()
    for row in frame.itertuples(index=False):
        amenities = {a for a in str(row.amenities or "").split(";") if a}
        stars = 0 if pd.isna(row.star_rating) else int(row.star_rating)
        ok = (
            where.viewer.may_see(row.access, _org(row.organization))
            and (where.kinds is None or row.kind in where.kinds)
            and (where.access is None or row.access in where.access)
            and (where.statuses is None or row.status in where.statuses)
            and set(where.amenities or ()) <= amenities
            and (where.min_stars is None or stars >= where.min_stars)
            and (where.adcodes is None or row.adcode in where.adcodes)
        )
        if ok and where.open_at is not None:
            hours = row.opening_hours if isinstance(row.opening_hours, str) else None
            try:
                state = state_at(hours, where.open_at, calendar) if hours else None
            except ValueError:
                state = None
            ok = state is OpenState.OPEN
        if ok and (where.bbox is not None or where.polygon is not None):
            x, y = (float(v) for v in from_wgs84(row.lon, row.lat, where.crs))
            if where.bbox is not None:
                min_x, min_y, max_x, max_y = where.bbox
                ok = min_x <= x <= max_x and min_y <= y <= max_y
            if where.polygon is not None:
                ok = ok and where.polygon.intersects(shapely.Point(x, y))
        if ok:
            kept.add(row.id)
    return kept


viewers = st.builds(
    Viewer,
    member=st.booleans(),
    organizations=st.frozensets(st.sampled_from(["OrgA", "OrgB"]), max_size=2),
    see_all=st.booleans(),
)
names = st.none() | st.sets(st.sampled_from(KINDS), min_size=1)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kinds=names,
    amenities=st.sets(st.sampled_from(AMENITIES), max_size=2),
    access=st.none() | st.sets(st.sampled_from(ACCESS_CLASSES), min_size=1),
    statuses=st.none() | st.sets(st.sampled_from(STATUSES), min_size=1),
    min_stars=st.none() | st.integers(1, 5),
    viewer=viewers,
    open_at=st.none() | st.just(MOMENT),
    region=st.sampled_from(["none", "bbox", "gcj02-bbox", "polygon", "adcodes"]),
)
def test_mask_equals_the_rule_row_by_row(
    frame: pd.DataFrame,
    index: FacilityIndex,
    kinds: set[str] | None,
    amenities: set[str],
    access: set[str] | None,
    statuses: set[str] | None,
    min_stars: int | None,
    viewer: Viewer,
    open_at: dt.datetime | None,
    region: str,
) -> None:
    regions: dict[str, dict[str, object]] = {
        "none": {},
        "bbox": {"bbox": (121.40, 31.15, 121.55, 31.30)},
        "gcj02-bbox": {"bbox": (121.40, 31.15, 121.55, 31.30), "crs": "gcj02"},
        "polygon": {"polygon": shapely.Point(121.47, 31.23).buffer(0.08)},
        "adcodes": {"adcodes": ["310101", "310106"]},
    }
    where = FacilityFilter(
        kinds=kinds,
        amenities=amenities,
        access=access,
        statuses=statuses,
        min_stars=min_stars,
        viewer=viewer,
        open_at=open_at,
        **regions[region],  # type: ignore[arg-type]
    )
    expected = _expected(frame, where, index.calendar)
    assert {str(i) for i in index.ids[index.mask(where)]} == expected
    assert index.select(where).tolist() == sorted(index.position_of(i) for i in expected)


def test_the_default_question_is_open_facilities_an_anonymous_caller_may_see(
    frame: pd.DataFrame, index: FacilityIndex
) -> None:
    where = FacilityFilter()
    assert where.statuses == frozenset({"open"}) and where.viewer == Viewer()
    expected = frame[(frame["status"] == "open") & (frame["access"] == "public")]
    assert set(index.ids[index.mask(where)]) == set(expected["id"])
    assert (frame["status"] == "temporarily_closed").any()


def test_mask_is_compiled_once_per_filter_and_read_only(index: FacilityIndex) -> None:
    where = FacilityFilter(kinds=["mother_room"], viewer=Viewer(member=True))
    first = index.mask(where)
    assert index.mask(FacilityFilter(kinds=("mother_room",), viewer=Viewer(member=True))) is first
    with pytest.raises(ValueError):
        first[0] = not first[0]


def test_region_queries_are_select_with_a_region(index: FacilityIndex) -> None:
    box = (121.40, 31.15, 121.55, 31.30)
    where = FacilityFilter(kinds=["rest_stop"], statuses=None)
    assert (
        index.in_bbox(*box, where=where).tolist() == index.select(where.replace(bbox=box)).tolist()
    )
    circle = shapely.Point(121.47, 31.23).buffer(0.05)
    by_polygon = index.in_polygon(circle, kinds=["rest_stop"], statuses=None)
    assert by_polygon.tolist() == index.select(where.replace(polygon=circle)).tolist()
    city = index.in_district("310000", kinds=["rest_stop"], statuses=None)
    assert (
        city.tolist() == index.select(where.replace(adcodes=list(index.frame["adcode"]))).tolist()
    )


def test_nearest_in_a_region_is_the_nearest_of_its_mask(index: FacilityIndex) -> None:
    where = FacilityFilter(polygon=shapely.Point(121.47, 31.23).buffer(0.05), statuses=None)
    positions = index.select(where)
    lon, lat = index.lonlat(positions)
    n = positions.size
    _az, _baz, dist = GEOD.inv(np.full(n, 121.30), np.full(n, 31.10), lon, lat)
    expected = positions[np.lexsort((positions, dist))][:5].tolist()
    assert [r.position for r in index.nearest(121.30, 31.10, k=5, where=where)] == expected
    batch = index.nearest_batch([121.30], [31.10], k=5, where=where)
    assert batch.positions[0].tolist() == expected


@pytest.mark.parametrize(
    ("fields", "error", "field"),
    [
        ({"kinds": ["bakery"]}, InvalidQuery, "kinds"),
        ({"amenities": "sauna"}, InvalidQuery, "amenities"),
        ({"statuses": ["gone"]}, InvalidQuery, "statuses"),
        ({"access": ["everyone"]}, InvalidQuery, "access"),
        ({"min_stars": 6}, InvalidQuery, "min_stars"),
        ({"min_stars": True}, InvalidQuery, "min_stars"),
        ({"open_at": "now"}, InvalidQuery, "open_at"),
        ({"adcodes": ["3101"]}, InvalidQuery, "adcode"),
        ({"bbox": (121.5, 31.0, 121.4, 31.3)}, InvalidCoordinate, "bbox"),
        ({"bbox": (121.0, 31.0, 190.0, 31.3)}, InvalidCoordinate, "lon"),
    ],
)
def test_bad_questions_are_refused(
    fields: dict[str, object], error: type[Exception], field: str
) -> None:
    with pytest.raises(error) as caught:
        FacilityFilter(**fields)  # type: ignore[arg-type]
    assert caught.value.field == field  # type: ignore[attr-defined]


def test_where_and_filter_keywords_do_not_mix(index: FacilityIndex) -> None:
    with pytest.raises(InvalidQuery):
        index.nearest(121.47, 31.23, where=FacilityFilter(), kinds=["rest_stop"])


def test_lru_cache_evicts_the_least_recently_used_by_count_and_weight() -> None:
    cache: LRUCache[str, list[int]] = LRUCache(3, weight=len, max_weight=5)
    cache.put("a", [1])
    cache.put("b", [1, 2])
    assert cache.get("a") == [1]  # "b" is now the least recently used
    cache.put("c", [1, 2, 3])  # 6 > 5: "b" goes
    assert "b" not in cache and "a" in cache and "c" in cache
    cache.put("d", [1] * 9)  # heavier than the limit alone: kept, every other entry goes
    assert len(cache) == 1 and cache.get("d") == [1] * 9
    assert cache.get_or_build("e", lambda: [0]) == [0] and len(cache) == 1


def test_filter_keywords_of_equal_viewers_share_one_filter_and_others_do_not() -> None:
    """Filters from keywords are cached by the viewer's fields (not its model hash): an equal
    viewer finds the same filter, a viewer differing in any field (rights!) gets its own."""
    clerk = {
        "viewer": Viewer(member=True, organizations=frozenset({"org-1"})),
        "kinds": ["rest_stop"],
    }
    same = filter_of(
        {"viewer": Viewer(member=True, organizations=frozenset({"org-1"})), "kinds": ["rest_stop"]}
    )
    assert filter_of(clerk) is same
    others = (
        Viewer(),
        Viewer(member=True),
        Viewer(organizations=frozenset({"org-1"})),
        Viewer(member=True, organizations=frozenset({"org-2"})),
        Viewer(member=True, organizations=frozenset({"org-1"}), see_all=True),
    )
    for viewer in others:
        assert filter_of({"viewer": viewer, "kinds": ["rest_stop"]}).viewer == viewer
