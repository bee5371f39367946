"""Validation of query inputs, done in Python before any SQL runs (BAD_INPUTS B, D).

Points may come in WGS84/CGCS2000 (the same numbers to well under a metre), GCJ-02 (Amap,
Tencent) or BD-09 (Baidu); they are converted to storage coordinates with the exact inverses
of :mod:`gis_service.crs` and then checked against China's bounding box, so a swapped or
foreign point is refused with the field at fault instead of silently matching nothing.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from gis_service import crs
from gis_service.errors import FieldProblem, InvalidInput, TooLarge
from gis_service.types import CHINA_BBOX

FloatArray = npt.NDArray[np.float64]

#: Largest radius of ``/query/nearby`` and of a buffer area (metres).
MAX_RADIUS_M = 20_000.0
#: Largest ``k`` of ``/query/nearest`` and page size of ``/query/nearby``.
MAX_K = 100
MAX_PAGE = 500
DEFAULT_PAGE = 50
#: Deepest offset a page may start at (deeper paging is a scraping pattern, not a use).
MAX_OFFSET = 100_000
#: Most points of one ``POST /query/locate`` batch.
MAX_BATCH = 10_000
#: Polygon limits of ``POST /query/area`` (BAD_INPUTS D6).
MAX_VERTICES = 10_000
MAX_AREA_KM2 = 5_000.0
#: Longest list per layer that an area query returns when lists are asked for.
MAX_LIST = 5_000


class InputCrs(StrEnum):
    """Coordinate systems a caller may send points and polygons in."""

    wgs84 = "wgs84"
    cgcs2000 = "cgcs2000"
    gcj02 = "gcj02"
    bd09 = "bd09"


def _refuse(field: str, message: str, zh: str) -> InvalidInput:
    return InvalidInput(
        detail=f"{field}: {message}", detail_zh=zh, fields=[FieldProblem(field, message)]
    )


def to_storage(lon: FloatArray, lat: FloatArray, system: InputCrs) -> tuple[FloatArray, FloatArray]:
    """Convert coordinate arrays to storage (CGCS2000 lon/lat)."""
    if system is InputCrs.gcj02:
        return crs.gcj02_to_wgs84(lon, lat)
    if system is InputCrs.bd09:
        return crs.bd09_to_wgs84(lon, lat)
    return lon, lat


def bad_points(lon: FloatArray, lat: FloatArray) -> npt.NDArray[np.bool_]:
    """Mask of points that are not finite or lie outside China's bounding box."""
    x0, y0, x1, y1 = CHINA_BBOX
    with np.errstate(invalid="ignore"):
        inside = (lon >= x0) & (lon <= x1) & (lat >= y0) & (lat <= y1)
    result: npt.NDArray[np.bool_] = ~(np.isfinite(lon) & np.isfinite(lat) & inside)
    return result


#: Input systems whose numbers are storage coordinates (no conversion).
_AS_STORED = frozenset({InputCrs.wgs84, InputCrs.cgcs2000})


def _inside_china(lon: float, lat: float) -> bool:
    """:func:`bad_points`' test for one finite point, on plain floats."""
    x0, y0, x1, y1 = CHINA_BBOX
    return x0 <= lon <= x1 and y0 <= lat <= y1


def storage_point(lon: float, lat: float, system: InputCrs) -> tuple[float, float]:
    """One point in storage coordinates, or InvalidInput naming ``lon``/``lat``."""
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise _refuse("query.lon", "coordinates must be finite numbers", "坐标必须是有限数值")
    if system in _AS_STORED and _inside_china(lon, lat):
        return float(lon), float(lat)  # the common case, without numpy's per-call cost
    x, y = to_storage(np.array([lon]), np.array([lat]), system)
    if bad_points(x, y)[0]:
        hint = (
            " (lon and lat swapped?)"
            if bad_points(np.array([lat]), np.array([lon]))[0] is False
            else ""
        )
        raise InvalidInput(
            detail=f"the point lies outside China{hint}",
            detail_zh="坐标不在中国范围内（经纬度是否颠倒？）",
            fields=[
                FieldProblem("query.lon", "outside China"),
                FieldProblem("query.lat", "outside China"),
            ],
        )
    return float(x[0]), float(y[0])


def degrees_for(radius_m: float, lat: float) -> tuple[float, float]:
    """(dlon, dlat) in degrees that surely cover ``radius_m`` metres around latitude ``lat``.

    Used to build an index-friendly box (``geom && ST_Expand(p, dlon, dlat)``) before the exact
    geodesic test; 1 % slack and the pole-ward edge of the box keep it a superset.
    """
    dlat = radius_m / 110_574.0 * 1.01
    edge = min(89.0, abs(lat) + dlat)
    dlon = radius_m / (111_320.0 * math.cos(math.radians(edge))) * 1.01
    return dlon, dlat


def parse_layers(
    value: str, allowed: frozenset[str], *, field: str = "query.layers", most: int | None = None
) -> list[str]:
    """A comma-separated list of layer names, each from ``allowed``; duplicates are dropped."""
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        raise _refuse(field, "name at least one layer", "请至少指定一个图层")
    if len(names) > 4 * len(allowed) or (most is not None and len(set(names)) > most):
        raise _refuse(field, "too many layers", "图层过多")
    unknown = sorted({n for n in names if n not in allowed})
    if unknown:
        shown = ", ".join(u[:40] for u in unknown[:5])
        raise InvalidInput(
            detail=f"unknown layer: {shown}; choose from {', '.join(sorted(allowed))}",
            detail_zh=f"未知图层：{shown}",
            fields=[FieldProblem(field, "unknown layer")],
        )
    return list(dict.fromkeys(names))


def _count_vertices(geom: BaseGeometry) -> int:
    return int(shapely.get_num_coordinates(geom))


def polygon_from_geojson(
    obj: Any, system: InputCrs, *, field: str = "body.geometry"
) -> BaseGeometry:
    """A valid, finite (Multi)Polygon inside China in storage coordinates.

    Refuses, before any SQL: other geometry types, empty or malformed coordinates, more than
    :data:`MAX_VERTICES` vertices (413), self-intersections (422 with the reason), points
    outside China and areas over :data:`MAX_AREA_KM2`.
    """
    if not isinstance(obj, dict) or obj.get("type") not in ("Polygon", "MultiPolygon"):
        raise _refuse(field, "must be a GeoJSON Polygon or MultiPolygon", "必须是 GeoJSON 面")
    coords = obj.get("coordinates")
    if not isinstance(coords, list) or not coords:
        raise _refuse(field, "empty coordinates", "坐标为空")
    polygons = coords if obj["type"] == "MultiPolygon" else [coords]
    for rings in polygons:
        for ring in rings if isinstance(rings, list) else [None]:
            if not isinstance(ring, list) or len(ring) < 4 or ring[0] != ring[-1]:
                raise _refuse(
                    field,
                    "each ring needs at least 4 positions and must be closed (RFC 7946)",
                    "多边形的环至少 4 个点且首尾相同",
                )
    try:
        geom = shape(obj)
    except (ValueError, TypeError, AttributeError, IndexError, shapely.errors.GEOSException):
        raise _refuse(field, "malformed coordinates", "坐标格式错误") from None
    if geom.is_empty:
        raise _refuse(field, "empty geometry", "几何为空")
    if _count_vertices(geom) > MAX_VERTICES:
        raise TooLarge(
            detail=f"the polygon has more than {MAX_VERTICES} vertices",
            detail_zh=f"多边形顶点超过 {MAX_VERTICES} 个",
            fields=[FieldProblem(field, "too many vertices")],
        )
    if shapely.has_z(geom):
        geom = shapely.force_2d(geom)
    xy = shapely.get_coordinates(geom)
    if not np.isfinite(xy).all():
        raise _refuse(field, "coordinates must be finite numbers", "坐标必须是有限数值")
    x, y = to_storage(xy[:, 0].copy(), xy[:, 1].copy(), system)
    if bad_points(x, y).any():
        raise _refuse(field, "the polygon leaves China (lon/lat swapped?)", "多边形超出中国范围")
    geom = shapely.set_coordinates(geom, np.column_stack([x, y]))
    if not geom.is_valid:
        reason = explain_validity(geom)[:120]
        raise _refuse(field, f"invalid polygon: {reason}", f"多边形无效（自相交等）：{reason}")
    area = crs.area_m2(geom) / 1e6
    if area > MAX_AREA_KM2:
        raise TooLarge(
            detail=f"the area is {area:.0f} km², over the {MAX_AREA_KM2:.0f} km² cap",
            detail_zh=f"面积 {area:.0f} 平方公里，超过上限",
            fields=[FieldProblem(field, "area too large")],
        )
    if area <= 0:
        raise _refuse(field, "the polygon has no area", "多边形面积为零")
    return geom
