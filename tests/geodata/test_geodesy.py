"""One ``Geod`` and one lon/lat range check for the whole project (:mod:`geodata.geodesy`).

Every surface that checks WGS-84 degrees (the index and coverage inputs, import validation,
street networks, navigation links, the web map payload, the API's bbox) draws the same line
between a valid and an invalid position as :func:`geodata.geodesy.invalid_degrees`.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from api.errors import ApiProblem
from api.routes.common import parse_bbox
from finder.hours import HolidayCalendar
from geodata.errors import InvalidCoordinate, InvalidInput
from geodata.geodesy import (
    GEOD,
    check_point,
    check_points,
    degrees_check_sql,
    invalid_degrees,
    range_text,
)
from geodata.navigation import navigation_links
from geodata.streets import street_network_from_edges
from geodata.validate import validate_frame
from maps.webmap import facility_payload

ROOT = Path(__file__).parents[2]

#: (lon, lat) at and just beyond the edges of the ranges, and non-finite values.
POSITIONS = [
    (180.0, 90.0),
    (-180.0, -90.0),
    (121.47, 31.23),
    (180.000001, 31.0),
    (-180.000001, 31.0),
    (121.0, 90.000001),
    (121.0, -90.000001),
    (math.nan, 31.0),
    (121.0, math.inf),
    (-math.inf, 31.0),
]


def _valid(lon: float, lat: float) -> bool:
    return not (bool(invalid_degrees(lon, "lon")) or bool(invalid_degrees(lat, "lat")))


def _accepts(check: object, lon: float, lat: float) -> bool:
    try:
        check(lon, lat)  # type: ignore[operator]
    except (InvalidInput, ApiProblem):
        return False
    return True


def _streets(lon: float, lat: float) -> None:
    street_network_from_edges([lon, lon], [lat, 0.0 if abs(lat) > 1 else 1.0], [0], [1])


def _payload(lon: float, lat: float) -> None:
    frame = pd.DataFrame(
        {"id": ["WS-1"], "name": ["站"], "kind": ["worker_station"], "lon": [lon], "lat": [lat]}
    )
    facility_payload(
        frame,
        language="zh",
        display_crs="wgs84",
        now=dt.datetime(2026, 3, 2, 10, tzinfo=ZoneInfo("Asia/Shanghai")),
        calendar=HolidayCalendar.default(),
    )


def _bbox(lon: float, lat: float) -> None:
    parse_bbox(f"{lon},{lat},{lon},{lat}")


def _validate(lon: float, lat: float) -> None:
    """Raises when validation rejects the row for its ranges (not for the service region)."""
    raw = pd.DataFrame(
        {"name": ["站"], "kind": ["worker_station"], "lon": [str(lon)], "lat": [str(lat)]}
    )
    _, issues = validate_frame(raw, default_access="public")
    for issue in issues:
        in_region_only = "service region" in issue.reason
        if issue.level == "rejected" and issue.field in ("lon", "lat") and not in_region_only:
            raise InvalidCoordinate(issue.reason)


SURFACES = {
    "check_point": check_point,
    "check_points": lambda lon, lat: check_points([lon], [lat]),
    "navigation_links": lambda lon, lat: navigation_links(lon, lat, "站"),
    "street_network": _streets,
    "webmap_payload": _payload,
    "api_bbox": _bbox,
    "import_validation": _validate,
}


@pytest.mark.parametrize("surface", sorted(SURFACES))
@pytest.mark.parametrize(("lon", "lat"), POSITIONS)
def test_every_surface_draws_the_same_line(surface: str, lon: float, lat: float) -> None:
    """A position is refused by every surface exactly when the one check calls it invalid."""
    assert _accepts(SURFACES[surface], lon, lat) == _valid(lon, lat)


def test_check_point_messages() -> None:
    with pytest.raises(InvalidCoordinate, match=r"lon must lie in \[-180, 180\], not 181"):
        check_point(181, 0)
    with pytest.raises(InvalidCoordinate, match=r"lat must lie in \[-90, 90\]; element 1 is"):
        check_points([0, 0], [0, 91])


def test_geod_is_wgs84() -> None:
    # one degree of latitude at the equator on the WGS-84 ellipsoid: 110,574.4 m
    assert GEOD.inv(0.0, 0.0, 0.0, 1.0)[2] == pytest.approx(110_574.389, abs=0.01)


def test_one_geod_in_the_library_code() -> None:
    """Only geodata/geodesy.py makes a ``pyproj.Geod``; everything else uses its ``GEOD``."""
    makers = [
        str(path.relative_to(ROOT))
        for package in ("geodata", "finder", "maps", "api", "bench")
        for path in (ROOT / package).rglob("*.py")
        if re.search(r"\bGeod\(", path.read_text(encoding="utf-8"))
    ]
    assert makers == ["geodata/geodesy.py"]


#: How code spells the degree ranges itself: bounds of a parameter or model field, an SQL
#: CHECK, a message's range.
_SPELLED_RANGE = re.compile(
    r"\b[gl]e=-?(?:180|90)(?:\.0)?\b|BETWEEN -(?:180|90)\b|-(?:180|90)\.\.|\[-(?:180|90), "
)


def test_degree_ranges_are_spelled_in_one_place() -> None:
    """Parameters, models, the store's CHECK and messages take the ranges from
    geodata/geodesy.py (the first migration, history, keeps its own text)."""
    spelled = [
        f"{path.relative_to(ROOT)}:{n}"
        for package in ("geodata", "finder", "maps", "api")
        for path in (ROOT / package).rglob("*.py")
        if path.name != "geodesy.py" and "versions" not in path.parts
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if _SPELLED_RANGE.search(line)
    ]
    assert spelled == []
    assert degrees_check_sql() == "lon BETWEEN -180 AND 180 AND lat BETWEEN -90 AND 90"
    assert (range_text("lon"), range_text("lat")) == ("[-180, 180]", "[-90, 90]")


def test_invalid_degrees_on_arrays() -> None:
    lon = np.array([-180.0, 180.0, 180.5, np.nan])
    assert invalid_degrees(lon, "lon").tolist() == [False, False, True, True]
