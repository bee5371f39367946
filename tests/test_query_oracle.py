"""An independent oracle for the query tests: the same rows read plainly, computed in shapely.

Nothing here uses the service's SQL: scope is recomputed from ``admin_division.ancestors``
in Python, containment by shapely, distances on the CGCS2000 ellipsoid by pyproj's geodesic
(points) or in the Gauss-Krüger zone (polygons). Other ``test_query*`` modules import it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
import pyproj
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import event

GEOD = pyproj.Geod(ellps="GRS80")  # CGCS2000's ellipsoid differs from GRS80 by 0.1 mm in b
_GK = pyproj.Transformer.from_crs(4490, 4547, always_xy=True)


@dataclass
class Rows:
    """A table's rows: ids, shapely geometries and the other columns by name."""

    ids: np.ndarray[Any, Any]
    geoms: np.ndarray[Any, Any]
    cols: dict[str, list[Any]]

    def where(self, mask: np.ndarray[Any, Any]) -> Rows:
        return Rows(
            self.ids[mask],
            self.geoms[mask],
            {k: [v for v, m in zip(vals, mask, strict=True) if m] for k, vals in self.cols.items()},
        )


def read(
    conn: psycopg.Connection[Any],
    table: str,
    cols: tuple[str, ...],
    where: str = "TRUE",
    geom: str = "geom",
) -> Rows:
    extra = "".join(f", {c}" for c in cols)
    data = conn.execute(
        f"SELECT id, ST_AsBinary({geom}){extra} FROM {table} WHERE {where} AND {geom} IS NOT NULL ORDER BY id"
    ).fetchall()
    ids = np.array([r[0] for r in data], dtype=np.int64)
    geoms = shapely.from_wkb([bytes(r[1]) for r in data]) if data else np.array([], dtype=object)
    return Rows(ids, np.asarray(geoms), {c: [r[2 + i] for r in data] for i, c in enumerate(cols)})


def scope_villages(conn: psycopg.Connection[Any], scope: str | None) -> set[str]:
    """Admin codes inside ``scope`` (all codes when None), from the ancestors arrays."""
    rows = conn.execute("SELECT code, ancestors FROM admin_division").fetchall()
    return {code for code, anc in rows if scope is None or scope in anc}


def in_scope(rows: Rows, codes: set[str], column: str = "admin_code") -> Rows:
    return rows.where(np.array([c in codes for c in rows.cols[column]], dtype=bool))


def metres(lon: float, lat: float, geoms: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Geodesic metres from a point to points; GK-zone metres to other geometries."""
    out = np.empty(len(geoms))
    for i, g in enumerate(geoms):
        if g.geom_type == "Point":
            out[i] = GEOD.inv(lon, lat, g.x, g.y)[2]
        else:
            p = shapely.transform(shapely.Point(lon, lat), _gk)
            out[i] = shapely.distance(p, shapely.transform(g, _gk))
    return out


def _gk(xy: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    x, y = _GK.transform(xy[:, 0], xy[:, 1])
    return np.column_stack([x, y])


def area_gk(geom: BaseGeometry) -> float:
    return float(shapely.transform(geom, _gk).area)


def test_oracle_distances_agree_with_each_other() -> None:
    # Geodesic vs Gauss-Krüger for a 1 km pair near 113°E: the projection's scale error is tiny.
    pt = shapely.Point(113.1, 27.9)
    d_geod = metres(113.11, 27.9, np.array([pt]))[0]
    d_gk = shapely.distance(
        shapely.transform(shapely.Point(113.11, 27.9), _gk), shapely.transform(pt, _gk)
    )
    assert abs(d_geod - d_gk) / d_geod < 2e-3


@contextmanager
def counting_sql(client: Any) -> Iterator[list[str]]:
    """Statements the app runs meanwhile, except authentication's (token lookup, SET LOCAL)."""
    engine = client.app.state.engine.sync_engine
    seen: list[str] = []

    def hook(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "app_user" in statement or "set_config" in statement:
            return
        seen.append(statement[:120])

    event.listen(engine, "before_cursor_execute", hook)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", hook)
