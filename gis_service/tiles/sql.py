"""Tile SQL from the registry: one prepared statement per (layer, zoom, scoped).

Shape (TILE_SERVING.md, measured): the tile envelope is built by PostGIS
(``ST_TileEnvelope``), grown by the render buffer and transformed **once** into the storage
SRID for the GiST ``&&`` test; geometries are simplified in the source CRS (cheaper than
after the projection), projected to 3857 and clipped by ``ST_AsMVTGeom`` (extent 4096,
buffer 64); no ``ORDER BY`` (it would read every candidate row); ``LIMIT`` is the feature
cap and ``count(*)`` tells whether it was hit. Point layers may aggregate at low zoom into
one point per screen cell and group, carrying a count, so dense tiles stay small without
silently dropping data.

Identifiers come only from the registry and are quoted; z/x/y, the scope code and filter
values are bound parameters. The zoom-dependent constants (tolerance, cell size, cap) are
numbers computed from the registry, so one statement text exists per layer and zoom.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from gis_service.registry import LayerSpec, quote_ident
from gis_service.tiles.tilemath import pixel_degrees
from gis_service.types import STORAGE_SRID

_CASTS = {"date": "::text", "datetime": "::text"}
_NAMED = re.compile(r"%\((\w+)\)s")


def _text(value: Any) -> bytes | None:
    """A bound value in PostgreSQL's text format (the server infers its type from the SQL)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return b"t" if value else b"f"
    return str(value).encode()


@dataclass(frozen=True)
class TileQuery:
    """One statement and the extra parameters it binds besides z/x/y/scope.

    ``positional`` is the same text with ``$n`` placeholders (``order`` names them) and
    ``name`` a stable statement name: the tile service prepares it once per connection
    and executes it through libpq directly (no per-tile query parsing in Python).
    """

    sql: str
    params: dict[str, Any]
    cap: int
    positional: bytes = field(init=False, repr=False)
    order: tuple[str, ...] = field(init=False, repr=False)
    name: bytes = field(init=False, repr=False)
    #: Text-format values of ``params`` (bound after z/x/y/scope).
    extra: dict[str, bytes | None] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        order: list[str] = []

        def number(match: re.Match[str]) -> str:
            key = match.group(1)
            if key not in order:
                order.append(key)
            return f"${order.index(key) + 1}"

        text = _NAMED.sub(number, self.sql)
        digest = hashlib.blake2b(text.encode(), digest_size=10).hexdigest()
        object.__setattr__(self, "positional", text.encode())
        object.__setattr__(self, "order", tuple(order))
        object.__setattr__(self, "name", f"gis_tile_{digest}".encode())
        object.__setattr__(self, "extra", {k: _text(v) for k, v in self.params.items()})

    def values(self, z: int, x: int, y: int, scope: str | None) -> list[bytes | None]:
        """The positional parameters in text format, in ``order``."""
        given: dict[str, bytes | None] = {
            "z": str(z).encode(),
            "x": str(x).encode(),
            "y": str(y).encode(),
            "scope": None if scope is None else scope.encode(),
        }
        extra = self.extra
        return [given[k] if k in given else extra[k] for k in self.order]


def _filters(spec: LayerSpec) -> tuple[list[str], dict[str, Any]]:
    clauses: list[str] = []
    params: dict[str, Any] = {}
    for i, f in enumerate(spec.filters):
        col = f"g.{quote_ident(f.column)}"
        if f.is_null is not None:
            clauses.append(f"{col} IS {'' if f.is_null else 'NOT '}NULL")
        else:
            params[f"f{i}"] = f.equals
            clauses.append(f"{col} = %(f{i})s")
    return clauses, params


def _scope_clause(spec: LayerSpec) -> str:
    col = f"g.{quote_ident(spec.scope_column)}"
    if spec.scope_mode == "ancestors":
        return "g.ancestors @> ARRAY[%(scope)s]::text[]"
    return (
        f"{col} IN (SELECT d.code FROM admin_division d"
        " WHERE d.ancestors @> ARRAY[%(scope)s]::text[])"
    )


def _envelope(spec: LayerSpec) -> str:
    margin = spec.buffer / spec.extent
    return (
        "WITH b AS MATERIALIZED (SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS env,"
        f" ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => {margin!r}),"
        f" {STORAGE_SRID}) AS q)"
    )


def _mvt_geom(expr: str, spec: LayerSpec) -> str:
    return f"ST_AsMVTGeom(ST_Transform({expr}, 3857), b.env, {spec.extent}, {spec.buffer}, true)"


def _where(spec: LayerSpec, scoped: bool) -> tuple[str, dict[str, Any]]:
    geom = f"g.{quote_ident(spec.geometry_column)}"
    clauses, params = _filters(spec)
    where = [f"{geom} && b.q", *clauses]
    if scoped:
        where.append(_scope_clause(spec))
    return " AND ".join(where), params


def _final(spec: LayerSpec, *, with_id: bool) -> str:
    name = spec.name  # registry pattern: [a-z][a-z0-9_]*, safe inside a literal
    id_arg = ", '__id'" if with_id else ""
    return (
        f"SELECT ST_AsMVT(f.*, '{name}', {spec.extent}, '__geom'{id_arg})"
        " FILTER (WHERE f.__geom IS NOT NULL), count(*) FROM f"
    )


def _features_sql(spec: LayerSpec, z: int, scoped: bool) -> TileQuery:
    table = quote_ident(spec.table or "")
    geom = f"g.{quote_ident(spec.geometry_column)}"
    rule = spec.rule_for(z)
    cap = spec.cap_for(z)
    expr = geom
    if rule.simplify_px > 0 and not spec.geometry_type.endswith("Point"):
        tolerance = rule.simplify_px * pixel_degrees(z)
        expr = f"ST_Simplify({geom}, {tolerance!r})"
    columns = [f"g.{quote_ident(spec.id_column)} AS __id"]
    for prop in spec.properties:
        col = quote_ident(prop.column)
        columns.append(f"g.{col}{_CASTS.get(prop.type, '')} AS {col}")
    columns.append(f"{_mvt_geom(expr, spec)} AS __geom")
    where, params = _where(spec, scoped)
    sql = (
        f"{_envelope(spec)}, f AS (SELECT {', '.join(columns)}"
        f" FROM {table} g, b WHERE {where} LIMIT {cap}) {_final(spec, with_id=True)}"
    )
    return TileQuery(sql, params, cap)


def _aggregate_sql(spec: LayerSpec, z: int, scoped: bool, cell_px: int) -> TileQuery:
    assert spec.aggregate is not None
    table = quote_ident(spec.table or "")
    geom = f"g.{quote_ident(spec.geometry_column)}"
    cell = cell_px * pixel_degrees(z)
    groups = [quote_ident(c) for c in spec.aggregate.group_by]
    count = quote_ident(spec.aggregate.count_property)
    keys = [f"floor(ST_X({geom}) / {cell!r})", f"floor(ST_Y({geom}) / {cell!r})"]
    keys += [f"g.{c}" for c in groups]
    group_cols = "".join(f", g.{c} AS {c}" for c in groups)
    outer_cols = "".join(f", c.{c}" for c in groups)
    where, params = _where(spec, scoped)
    point = f"ST_SetSRID(ST_MakePoint(c.lon, c.lat), {STORAGE_SRID})"
    cap = spec.cap_for(z)
    sql = (
        f"{_envelope(spec)}, c AS (SELECT count(*)::int AS {count}{group_cols},"
        f" avg(ST_X({geom})) AS lon, avg(ST_Y({geom})) AS lat"
        f" FROM {table} g, b WHERE {where} GROUP BY {', '.join(keys)}),"
        f" f AS (SELECT c.{count}{outer_cols}, {_mvt_geom(point, spec)} AS __geom"
        f" FROM c, b LIMIT {cap}) {_final(spec, with_id=False)}"
    )
    return TileQuery(sql, params, cap)


def _function_sql(spec: LayerSpec) -> TileQuery:
    fn = quote_ident(spec.function or "")
    sql = f"SELECT {fn}(%(z)s, %(x)s, %(y)s, %(scope)s), 0"
    return TileQuery(sql, {}, spec.max_features)


def tile_query(spec: LayerSpec, z: int, scoped: bool) -> TileQuery:
    """The statement for ``spec`` at zoom ``z`` (with the area-scope predicate when scoped)."""
    if spec.function is not None:
        return _function_sql(spec)
    rule = spec.rule_for(z)
    if rule.aggregate_px and spec.aggregate is not None:
        return _aggregate_sql(spec, z, scoped, rule.aggregate_px)
    return _features_sql(spec, z, scoped)
