"""The chord bounds behind the index's exactness, checked against pyproj geodesics worldwide."""

from __future__ import annotations

import numpy as np
import pyproj
from hypothesis import given, settings
from hypothesis import strategies as st

from finder import geodesy

GEOD = pyproj.Geod(ellps="WGS84")

lons = st.floats(-180.0, 180.0)
lats = st.floats(-90.0, 90.0)


def _chord(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    a = geodesy.ecef_from_lonlat([lon1], [lat1])[0]
    b = geodesy.ecef_from_lonlat([lon2], [lat2])[0]
    return float(np.linalg.norm(a - b))


@settings(max_examples=500, deadline=None)
@given(lon1=lons, lat1=lats, d_lon=st.floats(-5, 5), d_lat=st.floats(-5, 5), far=st.booleans())
def test_geodesic_lies_between_chord_and_its_upper_bound(
    lon1: float, lat1: float, d_lon: float, d_lat: float, far: bool
) -> None:
    scale = 30.0 if far else 0.01
    lon2 = float(np.clip(lon1 + d_lon * scale, -180, 180))
    lat2 = float(np.clip(lat1 + d_lat * scale, -90, 90))
    _az, _baz, s = GEOD.inv(lon1, lat1, lon2, lat2)
    c = _chord(lon1, lat1, lon2, lat2)
    assert c <= s + geodesy.SLACK_M
    assert s <= geodesy.geodesic_upper_bound_m(c)
    np.testing.assert_allclose(
        geodesy.geodesic_upper_bounds_m(np.array([c])),
        [geodesy.geodesic_upper_bound_m(c)],
        rtol=1e-12,
    )


def test_bound_is_tight_at_city_distances() -> None:
    """At 10 km the bounds are about a millimetre apart: few candidates need a geodesic."""
    assert 0.0 < geodesy.geodesic_upper_bound_m(10_000.0) - 10_000.0 < 1.1e-3


def test_antipodes_and_poles() -> None:
    _az, _baz, s = GEOD.inv(0.0, 0.0, 180.0, 0.0)
    c = _chord(0.0, 0.0, 180.0, 0.0)
    assert c == geodesy.MAX_CHORD_M
    assert c <= s <= geodesy.geodesic_upper_bound_m(c)
    _az, _baz, s = GEOD.inv(0.0, 90.0, 0.0, -90.0)
    assert s <= geodesy.geodesic_upper_bound_m(_chord(0.0, 90.0, 0.0, -90.0))


def test_ecef_matches_pyproj() -> None:
    rng = np.random.default_rng(0)
    lon, lat = rng.uniform(-180, 180, 1000), rng.uniform(-90, 90, 1000)
    to_ecef = pyproj.Transformer.from_crs(4979, 4978, always_xy=True)
    x, y, z = to_ecef.transform(lon, lat, np.zeros_like(lon))
    np.testing.assert_allclose(
        geodesy.ecef_from_lonlat(lon, lat), np.column_stack([x, y, z]), atol=1e-6
    )
    np.testing.assert_allclose(geodesy.ecef_point(float(lon[0]), float(lat[0])), [x[0], y[0], z[0]])


def test_spatial_order_is_a_permutation_that_groups_neighbours() -> None:
    rng = np.random.default_rng(1)
    lon, lat = rng.uniform(73, 135, 10_000), rng.uniform(18, 53, 10_000)
    order = geodesy.spatial_order(lon, lat)
    np.testing.assert_array_equal(np.sort(order), np.arange(10_000))
    step = np.hypot(np.diff(lon[order]), np.diff(lat[order]))
    shuffled = np.hypot(np.diff(lon), np.diff(lat))
    assert np.median(step) < np.median(shuffled) / 5
