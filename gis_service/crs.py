"""Coordinate conversions that no EPSG code covers, and metric areas in the right zone.

GCJ-02 (the "Mars" datum of Amap/Tencent) and BD-09 (Baidu) are obfuscations of WGS84 defined
only by published formulas, so pyproj cannot handle them. Their forward transforms are cheap
closed formulas; their inverses have no closed form, and the widely copied one-step inverse is
off by up to several metres — enough to put a building in the wrong grid near a boundary. Here
the inverses are solved by fixed-point iteration until the residual is below a micrometre, which
gives millimetre round trips.

Storage uses CGCS2000 (EPSG:4490), which is numerically WGS84 to well under a metre, so the
WGS84 functions are also the CGCS2000 functions.

All transforms accept Python floats or numpy arrays and return the same kind, so the same code
serves a single point and a million rows.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any, overload

import numpy as np
import numpy.typing as npt
import pyproj
import shapely
from shapely.geometry.base import BaseGeometry

__all__ = [
    "area_m2",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "gk_zone_epsg",
    "gk_zone_transformer",
    "out_of_china",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Krasovsky 1940 semi-major axis and eccentricity squared, as used by the GCJ-02 formulas.
_A = 6378245.0
_EE = 0.00669342162296594323
#: BD-09 constant (pi * 3000 / 180).
_X_PI = np.pi * 3000.0 / 180.0
#: Stop iterating an inverse when the correction is below this many degrees (~1 micrometre).
_INVERSE_TOL_DEG = 1e-11
_INVERSE_MAX_ITER = 30

#: CGCS2000 geographic CRS of stored geometries.
_STORAGE_EPSG = 4490
#: EPSG codes of the CGCS2000 3-degree Gauss-Krüger zones without zone prefix (CM 75..135).
_GK3_FIRST_EPSG = 4534
_GK3_FIRST_CM = 75
_GK3_LAST_CM = 135


def _as_arrays(lon: Any, lat: Any) -> tuple[FloatArray, FloatArray, bool]:
    """Broadcast inputs to float arrays and remember whether both were scalars."""
    scalar = np.ndim(lon) == 0 and np.ndim(lat) == 0
    x, y = np.broadcast_arrays(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))
    return x.astype(np.float64, copy=True), y.astype(np.float64, copy=True), scalar


def _result(x: FloatArray, y: FloatArray, scalar: bool) -> tuple[Any, Any]:
    if scalar:
        return float(x), float(y)
    return x, y


def _out_of_china(x: FloatArray, y: FloatArray) -> BoolArray:
    result: BoolArray = (x < 72.004) | (x > 137.8347) | (y < 0.8293) | (y > 55.8271)
    return result


@overload
def out_of_china(lon: float, lat: float) -> bool: ...
@overload
def out_of_china(lon: FloatArray, lat: FloatArray) -> BoolArray: ...
def out_of_china(lon: Any, lat: Any) -> Any:
    """Whether points lie outside the rectangle where GCJ-02 applies.

    This is the rectangle of the published formulas (72.004–137.8347 E, 0.8293–55.8271 N). It
    is coarse on purpose: it is what every GCJ-02 implementation uses, so points just outside
    China's border but inside the box are shifted exactly as the map providers shift them.

    Args:
        lon: Longitude(s) in degrees.
        lat: Latitude(s) in degrees.

    Returns:
        A bool for scalar input, else a boolean array.
    """
    x, y, scalar = _as_arrays(lon, lat)
    mask = _out_of_china(x, y)
    return bool(mask) if scalar else mask


def _gcj_delta(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Offset (dlon, dlat) in degrees that GCJ-02 adds to a WGS84 point."""
    dx = x - 105.0
    dy = y - 35.0
    sqrt_abs = np.sqrt(np.abs(dx))
    common = (20.0 * np.sin(6.0 * dx * np.pi) + 20.0 * np.sin(2.0 * dx * np.pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * dx + 3.0 * dy + 0.2 * dy * dy + 0.1 * dx * dy + 0.2 * sqrt_abs
    dlat += common
    dlat += (20.0 * np.sin(dy * np.pi) + 40.0 * np.sin(dy / 3.0 * np.pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(dy / 12.0 * np.pi) + 320.0 * np.sin(dy * np.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + dx + 2.0 * dy + 0.1 * dx * dx + 0.1 * dx * dy + 0.1 * sqrt_abs
    dlon += common
    dlon += (20.0 * np.sin(dx * np.pi) + 40.0 * np.sin(dx / 3.0 * np.pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(dx / 12.0 * np.pi) + 300.0 * np.sin(dx / 30.0 * np.pi)) * 2.0 / 3.0
    radlat = y / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(radlat) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * np.cos(radlat) * np.pi)
    return dlon, dlat


def _wgs_to_gcj(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    dlon, dlat = _gcj_delta(x, y)
    return x + dlon, y + dlat


def _gcj_to_bd(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    z = np.hypot(x, y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def _bd_to_gcj_approx(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The published one-step BD-09 inverse, used only as the iteration's starting point."""
    bx = x - 0.0065
    by = y - 0.006
    z = np.hypot(bx, by) - 0.00002 * np.sin(by * _X_PI)
    theta = np.arctan2(by, bx) - 0.000003 * np.cos(bx * _X_PI)
    return z * np.cos(theta), z * np.sin(theta)


def _invert(
    forward: Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]],
    tx: FloatArray,
    ty: FloatArray,
    x0: FloatArray,
    y0: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Solve ``forward(x, y) == (tx, ty)`` by fixed-point iteration.

    Both obfuscations are a near-identity plus a slowly varying offset, so correcting the guess
    by the residual converges geometrically (about four orders of magnitude per step).
    """
    x, y = x0.copy(), y0.copy()
    for _ in range(_INVERSE_MAX_ITER):
        fx, fy = forward(x, y)
        ex, ey = tx - fx, ty - fy
        x += ex
        y += ey
        if x.size == 0 or float(np.max(np.maximum(np.abs(ex), np.abs(ey)))) < _INVERSE_TOL_DEG:
            break
    return x, y


def _inside_only(
    lon: Any,
    lat: Any,
    func: Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]],
) -> tuple[Any, Any]:
    """Apply ``func`` to points inside China and pass the others through unchanged."""
    x, y, scalar = _as_arrays(lon, lat)
    inside = ~_out_of_china(x, y)
    if inside.all():
        rx, ry = func(x, y)
    else:
        rx, ry = x.copy(), y.copy()
        if inside.any():
            rx[inside], ry[inside] = func(x[inside], y[inside])
    return _result(rx, ry, scalar)


def _gcj_to_wgs(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    dlon, dlat = _gcj_delta(x, y)
    return _invert(_wgs_to_gcj, x, y, x - dlon, y - dlat)


def _bd_to_gcj(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    gx, gy = _bd_to_gcj_approx(x, y)
    return _invert(_gcj_to_bd, x, y, gx, gy)


def _wgs_to_bd(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    return _gcj_to_bd(*_wgs_to_gcj(x, y))


def _bd_to_wgs(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    return _gcj_to_wgs(*_bd_to_gcj(x, y))


@overload
def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]: ...
@overload
def wgs84_to_gcj02(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]: ...
def wgs84_to_gcj02(lon: Any, lat: Any) -> tuple[Any, Any]:
    """Shift WGS84/CGCS2000 coordinates to GCJ-02 with the published formulas.

    Args:
        lon: Longitude(s) in degrees.
        lat: Latitude(s) in degrees.

    Returns:
        ``(lon, lat)`` in GCJ-02, floats or arrays like the input. Points outside China
        (see :func:`out_of_china`) are returned unchanged.

    Example:
        >>> lon, lat = wgs84_to_gcj02(116.391275, 39.90765)
        >>> round(lon, 4), round(lat, 4)
        (116.3975, 39.9091)
    """
    return _inside_only(lon, lat, _wgs_to_gcj)


@overload
def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]: ...
@overload
def gcj02_to_wgs84(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]: ...
def gcj02_to_wgs84(lon: Any, lat: Any) -> tuple[Any, Any]:
    """Exact (iterative) inverse of :func:`wgs84_to_gcj02`.

    The one-step inverse ``p - delta(p)`` is wrong by up to a few metres because the offset is
    evaluated at the wrong point; iterating ``w += g - forward(w)`` removes that error to
    millimetres, which matters for point-in-grid tests near boundaries.

    Args:
        lon: GCJ-02 longitude(s) in degrees.
        lat: GCJ-02 latitude(s) in degrees.

    Returns:
        ``(lon, lat)`` in WGS84/CGCS2000, floats or arrays like the input. Points outside China
        are returned unchanged.
    """
    return _inside_only(lon, lat, _gcj_to_wgs)


@overload
def gcj02_to_bd09(lon: float, lat: float) -> tuple[float, float]: ...
@overload
def gcj02_to_bd09(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]: ...
def gcj02_to_bd09(lon: Any, lat: Any) -> tuple[Any, Any]:
    """Shift GCJ-02 coordinates to Baidu's BD-09 with the published formula.

    Args:
        lon: GCJ-02 longitude(s) in degrees.
        lat: GCJ-02 latitude(s) in degrees.

    Returns:
        ``(lon, lat)`` in BD-09. Points outside China are returned unchanged, like the GCJ-02
        transforms, so that a chain of conversions never moves a foreign point.
    """
    return _inside_only(lon, lat, _gcj_to_bd)


@overload
def bd09_to_gcj02(lon: float, lat: float) -> tuple[float, float]: ...
@overload
def bd09_to_gcj02(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]: ...
def bd09_to_gcj02(lon: Any, lat: Any) -> tuple[Any, Any]:
    """Exact (iterative) inverse of :func:`gcj02_to_bd09`.

    The published inverse is itself an approximation (up to about a decimetre); it serves as
    the starting point of the same fixed-point iteration as the GCJ-02 inverse.

    Args:
        lon: BD-09 longitude(s) in degrees.
        lat: BD-09 latitude(s) in degrees.

    Returns:
        ``(lon, lat)`` in GCJ-02. Points outside China are returned unchanged.
    """
    return _inside_only(lon, lat, _bd_to_gcj)


@overload
def wgs84_to_bd09(lon: float, lat: float) -> tuple[float, float]: ...
@overload
def wgs84_to_bd09(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]: ...
def wgs84_to_bd09(lon: Any, lat: Any) -> tuple[Any, Any]:
    """WGS84/CGCS2000 to BD-09 (through GCJ-02, as Baidu defines it).

    Args:
        lon: Longitude(s) in degrees.
        lat: Latitude(s) in degrees.

    Returns:
        ``(lon, lat)`` in BD-09. Points outside China are returned unchanged.
    """
    return _inside_only(lon, lat, _wgs_to_bd)


@overload
def bd09_to_wgs84(lon: float, lat: float) -> tuple[float, float]: ...
@overload
def bd09_to_wgs84(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]: ...
def bd09_to_wgs84(lon: Any, lat: Any) -> tuple[Any, Any]:
    """Exact inverse of :func:`wgs84_to_bd09` (both iterative inverses chained).

    Args:
        lon: BD-09 longitude(s) in degrees.
        lat: BD-09 latitude(s) in degrees.

    Returns:
        ``(lon, lat)`` in WGS84/CGCS2000. Points outside China are returned unchanged.
    """
    return _inside_only(lon, lat, _bd_to_wgs)


def gk_zone_epsg(lon: float) -> int:
    """EPSG code of the CGCS2000 3-degree Gauss-Krüger zone whose meridian is nearest ``lon``.

    The zones without the zone number in the false easting (EPSG:4534–4554) are used because
    their coordinates are plain metres around 500 000 E, convenient for areas and buffers.

    Args:
        lon: Longitude in degrees.

    Returns:
        The EPSG code, e.g. 4547 for central meridian 114° E.

    Raises:
        ValueError: If the central meridian is outside 75–135° E (no CGCS2000 zone exists).

    Example:
        >>> gk_zone_epsg(113.2)
        4547
    """
    cm = 3 * round(lon / 3.0)
    if not _GK3_FIRST_CM <= cm <= _GK3_LAST_CM:
        msg = f"no CGCS2000 3-degree zone for longitude {lon}"
        raise ValueError(msg)
    return _GK3_FIRST_EPSG + (cm - _GK3_FIRST_CM) // 3


@lru_cache(maxsize=32)
def gk_zone_transformer(epsg: int, *, inverse: bool = False) -> pyproj.Transformer:
    """Cached CGCS2000 lon/lat ↔ Gauss-Krüger transformer (always x=lon/easting first).

    Args:
        epsg: Zone EPSG code from :func:`gk_zone_epsg`.
        inverse: False for lon/lat → metres, True for metres → lon/lat.

    Returns:
        A thread-safe pyproj transformer; building one costs milliseconds, hence the cache.
    """
    src, dst = (epsg, _STORAGE_EPSG) if inverse else (_STORAGE_EPSG, epsg)
    return pyproj.Transformer.from_crs(src, dst, always_xy=True)


def _project(geoms: npt.NDArray[np.object_], epsg: int) -> npt.NDArray[np.object_]:
    transformer = gk_zone_transformer(epsg)

    def _fn(coords: FloatArray) -> FloatArray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    out: npt.NDArray[np.object_] = shapely.transform(geoms, _fn)
    return out


def area_m2(geoms: Any) -> Any:
    """Area in square metres of lon/lat (EPSG:4490) geometries, each in its own GK zone.

    Gauss-Krüger is conformal with scale error below 0.03 % within a 3-degree zone, so areas
    computed there match the ellipsoidal area to well under a per mille, which is what the
    survey standards expect. Geometries are grouped by zone so each group is one vectorised
    transform.

    Args:
        geoms: A shapely geometry, or a sequence/array of them (None or empty gives 0).

    Returns:
        A float for a single geometry, else an array of floats.
    """
    single = isinstance(geoms, BaseGeometry)
    arr = np.asarray([geoms] if single else geoms, dtype=object)
    out = np.zeros(arr.shape[0], dtype=np.float64)
    present = ~shapely.is_missing(arr) & ~shapely.is_empty(arr)
    if present.any():
        idx = np.flatnonzero(present)
        bounds = shapely.bounds(arr[idx])
        mid_lon = (bounds[:, 0] + bounds[:, 2]) / 2.0
        cms = 3 * np.round(mid_lon / 3.0).astype(np.int64)
        for cm in np.unique(cms):
            sel = idx[cms == cm]
            out[sel] = shapely.area(_project(arr[sel], gk_zone_epsg(float(cm))))
    return float(out[0]) if single else out
