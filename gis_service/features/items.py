"""Reading features of a published layer: the SQL of OGC API Features items and item.

Statements are built with SQLAlchemy Core from registry identifiers only (quoted by
SQLAlchemy), every value bound; the area scope is the domain's :func:`in_scope`. Geometries
come out of PostGIS already as GeoJSON text in the requested CRS (CRS84 lon/lat, EPSG:4490
lat/lon as the EPSG axis order says, or EPSG:3857) and are embedded as-is in the answer.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    and_,
    column,
    func,
    literal_column,
    select,
    table,
    true,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnClause

from gis_service.domain.scope import Principal, in_scope
from gis_service.errors import NotFound
from gis_service.features.params import EPSG3857, EPSG4490, ItemsQuery, prop_column
from gis_service.registry import LayerSpec
from gis_service.types import STORAGE_SRID

#: numberMatched is counted up to this many rows; beyond it the field is left out (allowed).
COUNT_CAP = 100_000


@dataclass(frozen=True)
class Page:
    """One page of features, as (id, geometry GeoJSON text, properties)."""

    features: list[tuple[int, str | None, dict[str, Any]]]
    matched: int | None


def _geometry(spec: LayerSpec, crs: str) -> ColumnElement[Any]:
    geom: ColumnElement[Any] = column(spec.geometry_column)
    if crs == EPSG3857:
        return func.ST_AsGeoJSON(func.ST_Transform(geom, 3857), 2)
    if crs == EPSG4490:
        return func.ST_AsGeoJSON(func.ST_FlipCoordinates(geom), 7)
    return func.ST_AsGeoJSON(geom, 7)


def _where(spec: LayerSpec, principal: Principal) -> list[ColumnElement[bool]]:
    """The layer's fixed filters and the caller's area scope."""
    conds: list[ColumnElement[bool]] = [in_scope(column(spec.scope_column), principal)]
    for f in spec.filters:
        col: ColumnClause[Any] = column(f.column)
        if f.is_null is not None:
            conds.append(col.is_(None) if f.is_null else col.is_not(None))
        else:
            conds.append(col == f.equals)
    return conds


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def _statement(spec: LayerSpec, q: ItemsQuery, principal: Principal) -> Select[Any]:
    assert spec.table is not None
    idc = column(spec.id_column, BigInteger())
    cols = [prop_column(p).label(p.column) for p in q.properties]
    conds = _where(spec, principal)
    geom: ColumnElement[Any] = column(spec.geometry_column)
    if q.bbox is not None:
        env = func.ST_MakeEnvelope(*q.bbox, STORAGE_SRID)
        conds.append(and_(geom.op("&&")(env), func.ST_Intersects(geom, env)))
    if q.time is not None:
        start, end, instant = q.time
        assert spec.time_column is not None
        tcol: ColumnClause[Any] = column(spec.time_column)
        if instant:
            conds.append(tcol == start)
        else:
            if start is not None:
                conds.append(tcol >= start)
            if end is not None:
                conds.append(tcol < end if end != start else tcol <= end)
    conds.extend(prop_column(p) == v for p, v in q.equals)
    if q.filter is not None:
        conds.append(q.filter)
    return (
        select(idc.label("fid"), _geometry(spec, q.crs).label("geojson"), *cols)
        .select_from(table(spec.table))
        .where(and_(true(), *conds))
    )


async def read_items(
    conn: AsyncConnection, principal: Principal, spec: LayerSpec, q: ItemsQuery
) -> Page:
    """A page of ``spec``'s features matching ``q`` inside the caller's area."""
    stmt = _statement(spec, q, principal)
    order: list[ColumnElement[Any]] = [
        (column(name).desc() if desc else column(name).asc()).nulls_last() for name, desc in q.sort
    ]
    page = stmt.order_by(*order, column(spec.id_column)).limit(q.limit).offset(q.offset)
    rows = (await conn.execute(page)).all()
    features = [
        (
            int(r.fid),
            r.geojson,
            {p.column: _plain(r._mapping[p.column]) for p in q.properties},
        )
        for r in rows
    ]
    matched: int | None
    if q.offset == 0 and len(rows) < q.limit:
        matched = len(rows)
    else:
        capped = stmt.with_only_columns(literal_column("1")).limit(COUNT_CAP + 1).subquery()
        n = int((await conn.execute(select(func.count()).select_from(capped))).scalar_one())
        matched = n if n <= COUNT_CAP else None
    return Page(features, matched)


async def read_item(
    conn: AsyncConnection, principal: Principal, spec: LayerSpec, fid: int, q: ItemsQuery
) -> tuple[int, str | None, dict[str, Any]]:
    """One feature by id, or NotFound (also when outside the caller's area)."""
    stmt = _statement(spec, q, principal).where(column(spec.id_column) == fid)
    row = (await conn.execute(stmt)).one_or_none()
    if row is None:
        raise NotFound(detail="feature not found", detail_zh="要素不存在")
    return (
        int(row.fid),
        row.geojson,
        {p.column: _plain(row._mapping[p.column]) for p in q.properties},
    )


async def scope_extent(
    conn: AsyncConnection, principal: Principal
) -> tuple[float, float, float, float] | None:
    """Bounding box of the caller's area (the spatial extent every collection announces)."""
    if principal.scope_code is None:
        return None
    row = (
        await conn.execute(
            select(
                func.ST_XMin(column("boundary")),
                func.ST_YMin(column("boundary")),
                func.ST_XMax(column("boundary")),
                func.ST_YMax(column("boundary")),
            )
            .select_from(table("admin_division"))
            .where(column("code") == principal.scope_code)
        )
    ).one_or_none()
    if row is None or row[0] is None:
        return None
    return float(row[0]), float(row[1]), float(row[2]), float(row[3])
