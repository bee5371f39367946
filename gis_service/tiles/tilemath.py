"""Pure tile arithmetic: parse and check z/x/y (no DB), tile bounds in lon/lat.

Requests are checked here before any SQL runs (BAD_INPUTS A1, A2): only ASCII digits,
z ≤ 30 at all, x and y inside the 2^z matrix.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from gis_service.errors import BadParameter, FieldProblem, NotFound

MAX_ZOOM = 30
_DIGITS = re.compile(r"[0-9]{1,10}")


@dataclass(frozen=True, slots=True)
class Tile:
    """A Web Mercator (XYZ) tile address."""

    z: int
    x: int
    y: int

    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) in degrees."""
        n = 1 << self.z
        west = self.x / n * 360.0 - 180.0
        east = (self.x + 1) / n * 360.0 - 180.0
        north = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * self.y / n))))
        south = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * (self.y + 1) / n))))
        return west, south, east, north

    def bounds_with_margin(self, fraction: float) -> tuple[float, float, float, float]:
        """Bounds grown by ``fraction`` of the tile on every side (the render buffer)."""
        west, south, east, north = self.bounds()
        dx = (east - west) * fraction
        dy = (north - south) * fraction
        return west - dx, south - dy, east + dx, north + dy


def _number(value: str, name: str) -> int:
    if not _DIGITS.fullmatch(value):
        raise BadParameter(
            detail=f"{name} must be a non-negative integer",
            detail_zh=f"{name} 必须是非负整数",
            fields=[FieldProblem(f"path.{name}", "not a non-negative integer")],
        )
    return int(value)


def parse_tile(z: str, x: str, y: str) -> Tile:
    """A tile from path segments: 400 for junk or z > 30, 404 outside the matrix."""
    zi = _number(z, "z")
    if zi > MAX_ZOOM:
        raise BadParameter(
            detail=f"z must be at most {MAX_ZOOM}",
            detail_zh=f"缩放级别不能超过 {MAX_ZOOM}",
            fields=[FieldProblem("path.z", f"above {MAX_ZOOM}")],
        )
    xi, yi = _number(x, "x"), _number(y, "y")
    n = 1 << zi
    if xi >= n or yi >= n:
        raise NotFound(detail="tile outside the tile matrix", detail_zh="瓦片超出范围")
    return Tile(zi, xi, yi)


def intersects(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    """Whether two (west, south, east, north) boxes overlap (touching counts)."""
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def pixel_degrees(z: int) -> float:
    """Degrees of longitude per screen pixel of a 256-px tile at zoom ``z``."""
    return 360.0 / (256 * (1 << z))
