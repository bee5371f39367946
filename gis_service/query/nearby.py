"""What is within a radius of a point, and the k nearest features of a layer, in true metres.

"What is within 1 km of this geological-hazard point?" and "where is the nearest shelter?".
Both use the GiST index (a degree box, or ``<->`` candidates) and then geodesic distances on
the spheroid, so the order and the metres are right at any latitude; both are limited to the
caller's area.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gis_service.db.engine import QueryConn, ReadConnection
from gis_service.domain.scope import Principal
from gis_service.query.layers import QueryLayer, scope_sql
from gis_service.query.sqlparts import (
    cached_text,
    distance_sql,
    knn_bound_geography_sql,
    knn_bound_sql,
    use_generic_plans,
    within_geography_sql,
    within_sql,
)


@dataclass(frozen=True)
class LayerPage:
    """One layer's page of a distance-sorted answer."""

    layer: str
    title: str
    total: int
    offset: int
    features: list[dict[str, Any]]

    @property
    def next_offset(self) -> int | None:
        """Offset of the next page, or None on the last one."""
        end = self.offset + len(self.features)
        return end if end < self.total and self.features else None


def plain(value: Any) -> Any:
    """A JSON-ready value (dates as ISO strings)."""
    if isinstance(value, dt.date):  # datetimes too (a subclass)
        return value.isoformat()
    return value


def _columns(layer: QueryLayer) -> str:
    return ", ".join(f"t.{c}" for c in layer.columns)


def _feature(layer: QueryLayer, row: Any) -> dict[str, Any]:
    m = row._mapping
    return {
        "id": int(m["id"]),
        "distance_m": round(float(m["d"]), 1),
        "lon": round(float(m["x"]), 7),
        "lat": round(float(m["y"]), 7),
        "properties": {c: plain(m[c]) for c in layer.columns},
    }


_POINT_CTE = (
    "q AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4490) AS p, CAST(:lat AS float8) AS lat)"
)


def _within(layer: QueryLayer, radius: str) -> str:
    """The radius test on the layer's geometry through the index it has."""
    geom = "t." + layer.geometry
    if layer.geography_index:
        return within_geography_sql(geom, "q.p", radius)
    return within_sql(geom, "q.p", "q.lat", radius)


def _nearby_sql(layer: QueryLayer, scope: str | None) -> str:
    where = f"{layer.where} AND {scope_sql('t.' + layer.scope_column, scope, per_row=True)}"
    return f"""
WITH {_POINT_CTE},
hits AS (
    SELECT t.id, {distance_sql("t." + layer.geometry, "q.p")} AS d FROM {layer.table} t, q
    WHERE {where} AND {_within(layer, ":r")}
)
SELECT c.total, pg.* FROM (SELECT count(*) AS total FROM hits) c
LEFT JOIN LATERAL (
    SELECT h.id, h.d, ST_X(ST_PointOnSurface(t.{layer.geometry})) AS x,
           ST_Y(ST_PointOnSurface(t.{layer.geometry})) AS y, {_columns(layer)}
    FROM (SELECT * FROM hits ORDER BY d, id LIMIT :limit OFFSET :offset) h
    JOIN {layer.table} t ON t.id = h.id
) pg ON TRUE
ORDER BY pg.d, pg.id
"""


def _params(principal: Principal, **values: Any) -> dict[str, Any]:
    if principal.scope_code is not None:
        values["scope"] = principal.scope_code
    return values


async def nearby(
    conn: QueryConn,
    principal: Principal,
    point: tuple[float, float],
    radius_m: float,
    layers: list[QueryLayer],
    *,
    limit: int,
    offset: int,
) -> list[LayerPage]:
    """Features of each layer within ``radius_m`` metres of ``point``, nearest first.

    Args:
        conn: a connection inside a transaction.
        principal: who asks (area scope).
        point: storage (CGCS2000) lon, lat, already validated.
        radius_m: the radius in metres (validated against the cap by the caller).
        layers: declared layers.
        limit: page size per layer.
        offset: rows to skip per layer.

    Returns:
        One page per layer with the layer's total count inside the radius.
    """
    pages = []
    await use_generic_plans(conn)
    for layer in layers:
        params = _params(
            principal, lon=point[0], lat=point[1], r=radius_m, limit=limit, offset=offset
        )
        sql = cached_text(_nearby_sql(layer, principal.scope_code))
        rows = (await conn.execute(sql, params)).all()
        total = int(rows[0].total) if rows else 0
        features = [_feature(layer, r) for r in rows if r.id is not None]
        pages.append(LayerPage(layer.name, layer.title, total, offset, features))
    return pages


@functools.lru_cache(maxsize=256)
def _nearest_sql(layer: QueryLayer, scope: str | None) -> str:
    where = f"{layer.where} AND {scope_sql('t.' + layer.scope_column, scope, per_row=True)}"
    knn_bound = knn_bound_geography_sql if layer.geography_index else knn_bound_sql
    bound = knn_bound(layer.table, where, "q.p", ":k")
    return f"""
WITH {_POINT_CTE},
b AS MATERIALIZED (SELECT {bound} AS r FROM q)
SELECT t.id, {distance_sql("t." + layer.geometry, "q.p")} AS d,
       ST_X(ST_PointOnSurface(t.{layer.geometry})) AS x,
       ST_Y(ST_PointOnSurface(t.{layer.geometry})) AS y, {_columns(layer)}
FROM {layer.table} t, q, b
WHERE {where} AND {_within(layer, "b.r")}
ORDER BY d, t.id LIMIT :k
"""


async def nearest(
    conn: QueryConn,
    principal: Principal,
    point: tuple[float, float],
    layer: QueryLayer,
    k: int,
) -> list[dict[str, Any]]:
    """The ``k`` features of ``layer`` nearest to ``point`` in geodesic metres.

    ``<->`` picks k candidates through the index in degree space; the farthest of them bounds
    the true k nearest, which are then chosen by spheroid distance inside that bound (a
    candidate found in degrees may be beaten by one just outside them in metres).
    """
    params = _params(principal, lon=point[0], lat=point[1], k=k)
    await use_generic_plans(conn)
    sql = cached_text(_nearest_sql(layer, principal.scope_code))
    rows: Sequence[Any]
    if isinstance(conn, ReadConnection):  # the GET routes: libpq directly, same rows
        rows = (await conn.execute_raw(sql, params)).all()
    else:
        rows = (await conn.execute(sql, params)).all()
    return [_feature(layer, r) for r in rows]
