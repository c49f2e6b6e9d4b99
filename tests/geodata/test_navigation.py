"""Navigation links: each app gets the coordinate system it expects, and the name survives."""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from geodata.crs import from_wgs84
from geodata.errors import InvalidInput
from geodata.navigation import NAVIGATION_SOURCE, navigation_links, uri_component

china_lon = st.floats(min_value=73.7, max_value=134.7, allow_nan=False)
china_lat = st.floats(min_value=18.2, max_value=53.4, allow_nan=False)
names = st.text(min_size=1, max_size=40)


def _pair(text: str) -> tuple[float, float]:
    first, second = text.split(",")
    return float(first), float(second)


def _expected(lon: float, lat: float, to: str) -> tuple[float, float]:
    x, y = from_wgs84(lon, lat, to)
    return float(np.asarray(x)), float(np.asarray(y))


@given(lon=china_lon, lat=china_lat, name=names)
def test_each_link_carries_its_apps_coordinate_system(lon: float, lat: float, name: str) -> None:
    links = navigation_links(lon, lat, name)

    amap = urlsplit(links["amap"])
    assert (amap.scheme, amap.netloc, amap.path) == ("https", "uri.amap.com", "/marker")
    query = parse_qs(amap.query, keep_blank_values=True)
    assert query["coordinate"] == ["gaode"]
    assert _pair(query["position"][0]) == pytest.approx(_expected(lon, lat, "gcj02"), abs=5e-7)
    assert query["name"] == [name]
    assert query["src"] == [NAVIGATION_SOURCE]

    baidu = urlsplit(links["baidu"])
    assert (baidu.netloc, baidu.path) == ("api.map.baidu.com", "/marker")
    query = parse_qs(baidu.query, keep_blank_values=True)
    assert query["coord_type"] == ["bd09ll"]
    bd_lon, bd_lat = _expected(lon, lat, "bd09")
    assert _pair(query["location"][0]) == pytest.approx((bd_lat, bd_lon), abs=5e-7)  # lat first
    assert query["title"] == [name]

    geo = links["geo"]
    assert geo.startswith("geo:")
    path, _, label = geo[4:].partition("?q=")
    assert _pair(path) == pytest.approx((lat, lon), abs=5e-7)  # WGS-84, lat first (RFC 5870)
    assert unquote(label[label.index("(") + 1 : -1]) == name


def test_shift_is_the_gcj02_offset_in_shanghai() -> None:
    links = navigation_links(121.4737, 31.2304, "人民广场")
    amap = _pair(parse_qs(urlsplit(links["amap"]).query)["position"][0])
    shift_m = np.hypot(
        (amap[0] - 121.4737) * 111_320 * np.cos(np.radians(31.23)), (amap[1] - 31.2304) * 110_574
    )
    assert 300 < shift_m < 700


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        ("a b&c=d", "a%20b%26c%3Dd"),
        ("(x)!~*'.-_", "(x)!~*'.-_"),
        ("爱心", "%E7%88%B1%E5%BF%83"),
        ("<img src=x>", "%3Cimg%20src%3Dx%3E"),
    ],
)
def test_uri_component_matches_encode_uri_component(text: str, encoded: str) -> None:
    # expected values are what JavaScript's encodeURIComponent returns for the same text
    assert uri_component(text) == encoded


@pytest.mark.parametrize(("lon", "lat"), [(float("nan"), 31.0), (121.0, 95.0), (181.0, 0.0)])
def test_invalid_positions_raise(lon: float, lat: float) -> None:
    with pytest.raises(InvalidInput):
        navigation_links(lon, lat, "x")
