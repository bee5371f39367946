"""Real county outlines of 株洲市 shipped as package data (demo and tests only)."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

import shapely
from shapely.geometry import MultiPolygon, Polygon, shape

__all__ = ["load_counties", "load_seats"]

_DATA_FILE = "zhuzhou_counties.geojson"


@lru_cache(maxsize=1)
def _features() -> tuple[tuple[str, str, MultiPolygon, tuple[float, float] | None], ...]:
    text = resources.files("gis_service.demo").joinpath("data", _DATA_FILE).read_text("utf-8")
    out = []
    for feat in json.loads(text)["features"]:
        props = feat["properties"]
        geom = shape(feat["geometry"])
        if isinstance(geom, Polygon):
            geom = MultiPolygon([geom])
        if not isinstance(geom, MultiPolygon) or not shapely.is_valid(geom):
            msg = f"outline of {props['code']} is not a valid MultiPolygon"
            raise ValueError(msg)
        seat = props.get("seat")
        out.append(
            (
                str(props["code"]),
                str(props["name"]),
                geom,
                (float(seat[0]), float(seat[1])) if seat else None,
            )
        )
    return tuple(out)


def load_counties() -> dict[str, tuple[str, MultiPolygon]]:
    """County outlines of 株洲市 in lon/lat (CGCS2000), keyed by 6-digit code.

    The file is read once per process; geometries are immutable, so sharing them is safe.

    Returns:
        ``{code: (name, MultiPolygon)}`` for the nine counties, e.g. ``"430204"`` → 石峰区.
    """
    return {code: (name, geom) for code, name, geom, _ in _features()}


def load_seats() -> dict[str, tuple[float, float]]:
    """Label point of each county (near its seat of government) in lon/lat.

    The generator centres each county's town on it, so the dense urban fabric sits where the
    real one does.

    Returns:
        ``{code: (lon, lat)}`` for the counties that have one.
    """
    return {code: seat for code, _, _, seat in _features() if seat is not None}
