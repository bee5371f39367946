"""Golden tests of the coordinate conversions (pure, no database)."""

from __future__ import annotations

import numpy as np
import pytest
from shapely.geometry import box

from gis_service.crs import (
    area_m2,
    bd09_to_gcj02,
    bd09_to_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    gk_zone_epsg,
    out_of_china,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

EARTH_RADIUS_M = 6_371_008.8


def metres(lon1, lat1, lon2, lat2):
    """Haversine distance in metres (enough for millimetre-level differences)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dlat = p2 - p1
    dlon = np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dlat / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(a))


@pytest.fixture(scope="module")
def china_points():
    rng = np.random.default_rng(42)
    return rng.uniform(74.0, 134.0, 5000), rng.uniform(18.5, 53.0, 5000)


def test_gcj02_round_trip_is_millimetric(china_points):
    lon, lat = china_points
    g = wgs84_to_gcj02(lon, lat)
    w = gcj02_to_wgs84(*g)
    assert metres(lon, lat, *w).max() < 0.01


def test_gcj02_inverse_beats_the_one_step_formula(china_points):
    lon, lat = china_points
    glon, glat = wgs84_to_gcj02(lon, lat)
    # One-step inverse: subtract the offset evaluated at the shifted point.
    flon, flat = wgs84_to_gcj02(glon, glat)
    one_step = metres(lon, lat, 2 * glon - flon, 2 * glat - flat)
    assert one_step.max() > 0.5  # the approximation is visibly off
    assert metres(lon, lat, *gcj02_to_wgs84(glon, glat)).max() < 0.01


def test_bd09_round_trips(china_points):
    lon, lat = china_points
    assert metres(lon, lat, *bd09_to_wgs84(*wgs84_to_bd09(lon, lat))).max() < 0.01
    assert metres(lon, lat, *bd09_to_gcj02(*gcj02_to_bd09(lon, lat))).max() < 0.01


@pytest.mark.parametrize(
    ("func", "inp", "expected"),
    [
        # Published coordtransform / hutool test vectors (116.404, 39.915).
        (wgs84_to_gcj02, (116.404, 39.915), (116.41024449916938, 39.91640428150164)),
        (gcj02_to_bd09, (116.404, 39.915), (116.41036949371029, 39.92133699351021)),
        (wgs84_to_bd09, (116.404, 39.915), (116.41662724378733, 39.922699552216216)),
        # Tiananmen: GCJ-02 (116.397555, 39.906961) is WGS84 (116.391314, 39.905560).
        (gcj02_to_wgs84, (116.397555, 39.906961), (116.391314, 39.905560)),
    ],
)
def test_reference_values(func, inp, expected):
    lon, lat = func(*inp)
    assert isinstance(lon, float)
    assert metres(lon, lat, *expected) < 1.0


def test_scalar_and_array_inputs_agree():
    lon, lat = wgs84_to_gcj02(113.13, 27.87)
    alon, alat = wgs84_to_gcj02(np.array([113.13]), np.array([27.87]))
    assert isinstance(alon, np.ndarray)
    assert alon[0] == lon
    assert alat[0] == lat


def test_points_outside_china_are_unchanged():
    assert out_of_china(2.35, 48.85)
    assert not out_of_china(113.13, 27.87)
    for func in (wgs84_to_gcj02, gcj02_to_wgs84, wgs84_to_bd09, bd09_to_wgs84):
        assert func(2.35, 48.85) == (2.35, 48.85)
    lon, lat = gcj02_to_wgs84(np.array([2.35, 113.13]), np.array([48.85, 27.87]))
    assert (lon[0], lat[0]) == (2.35, 48.85)
    assert lon[1] != 113.13


@pytest.mark.parametrize(
    ("lon", "epsg"),
    [(113.2, 4547), (112.4, 4546), (75.0, 4534), (135.0, 4554), (116.39, 4548)],
)
def test_gk_zone_epsg(lon, epsg):
    assert gk_zone_epsg(lon) == epsg


def test_gk_zone_outside_range():
    with pytest.raises(ValueError, match="no CGCS2000"):
        gk_zone_epsg(10.0)


def test_area_m2_of_a_known_cell():
    # 0.01 x 0.01 degree at 27 N: 1113.2 m x ~991.9 m ≈ 1.10 km² (ellipsoidal).
    cell = box(113.0, 27.0, 113.01, 27.01)
    assert area_m2(cell) == pytest.approx(1.1e6, rel=0.01)
    arr = area_m2([cell, None, box(116.0, 40.0, 116.01, 40.01)])
    assert arr.shape == (3,)
    assert arr[1] == 0.0
    assert arr[2] < arr[0]  # meridians converge northwards
