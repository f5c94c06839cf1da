"""Distances and projections."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpskit.geo import EARTH_RADIUS_M, LocalProjection, angle_difference, centre_of, haversine_m


def test_haversine_known_distances() -> None:
    # one degree of latitude on the mean sphere
    assert haversine_m(0, 0, 1, 0) == pytest.approx(EARTH_RADIUS_M * np.pi / 180, rel=1e-12)
    # Paris (CDG) to New York (JFK): about 5,834 km on the mean sphere
    assert haversine_m(49.0097, 2.5479, 40.6413, -73.7781) / 1000 == pytest.approx(5837, abs=5)
    # 33rd & Walnut to 34th & Spruce, Philadelphia: a few hundred metres
    assert 300 < haversine_m(39.9528, -75.1898, 39.9502, -75.1932) < 450
    assert haversine_m(10, 20, 10, 20) == 0


def test_haversine_vectorised() -> None:
    d = haversine_m(np.zeros(3), np.zeros(3), np.array([0, 1, 2]), np.zeros(3))
    assert d.shape == (3,) and d[0] == 0 and d[2] == pytest.approx(2 * d[1])


@given(
    st.floats(-60, 60),
    st.floats(-179, 179),
    st.floats(-2000, 2000),
    st.floats(-2000, 2000),
)
def test_projection_round_trip_under_a_millimetre(
    lat0: float, lon0: float, x: float, y: float
) -> None:
    proj = LocalProjection(lat0, lon0)
    lat, lon = proj.inverse(x, y)
    x2, y2 = proj.forward(lat, lon)
    assert abs(x2 - x) < 1e-3 and abs(y2 - y) < 1e-3


def test_projection_distances_from_centre_are_geodesic() -> None:
    proj = LocalProjection(39.9515, -75.1915)
    lat, lon = 39.9532, -75.1925
    x, y = proj.forward(lat, lon)
    assert np.hypot(x, y) == pytest.approx(haversine_m(39.9515, -75.1915, lat, lon), rel=1e-9)
    assert x < 0 and y > 0  # north-west of the centre


def test_angle_difference_wraps() -> None:
    assert angle_difference(350, 10) == 20
    assert angle_difference(90, 270) == 180


def test_centre_across_antimeridian() -> None:
    lat, lon = centre_of([0, 0], [179, -179])
    assert abs(abs(lon) - 180) < 1e-9 and abs(lat) < 1e-9
