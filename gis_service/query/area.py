"""What and who is inside an area: per-layer counts by grid and village, the staff to call.

The commander's question after drawing a warning polygon (or naming a village, a grid, or
"1 km around hazard point X"). Each exposure layer is aggregated in one statement grouped by
(grid, village, class), the GiST index doing the spatial part; Python only rolls those groups
up into totals and the per-grid/per-village tables. Counts are limited to the caller's area
like every other read, so an aggregate never reveals rows the caller could not list.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal

import shapely
from pydantic import BaseModel, ConfigDict, Field, model_validator
from shapely.geometry.base import BaseGeometry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gis_service import crs
from gis_service.db.models import (
    DANGER_GRADES,
    FACILITY_KINDS,
    HAZARD_STATUSES,
    RISK_COLORS,
    SHELTER_STATUSES,
    STRUCTURES,
    ZONE_RISK_LEVELS,
)
from gis_service.domain.pii import mask_name, mask_phone
from gis_service.domain.scope import Principal
from gis_service.errors import NotFound
from gis_service.query import params as qp
from gis_service.query.layers import LAYERS, scope_sql
from gis_service.query.nearby import plain
from gis_service.types import AdminCode, GridCode


@dataclass(frozen=True)
class Aggregate:
    """How one layer is summed inside an area."""

    layer: str
    category: str
    classes: tuple[str, ...]
    sums: tuple[str, ...] = ()
    flags: dict[str, str] = field(default_factory=dict)


AGGREGATES: tuple[Aggregate, ...] = (
    Aggregate("buildings", "structure", STRUCTURES, ("households", "population")),
    Aggregate("enterprises", "risk_level", RISK_COLORS),
    Aggregate(
        "safety_hazards",
        "status",
        HAZARD_STATUSES,
        flags={
            "open": "t.status <> 'closed'",
            "overdue": "t.status <> 'closed' AND t.deadline < current_date",
            "major": "t.level = 'major'",
        },
    ),
    Aggregate(
        "geohazard_points",
        "danger_grade",
        DANGER_GRADES,
        ("threatened_households", "threatened_people"),
    ),
    Aggregate("geohazard_zones", "risk_level", ZONE_RISK_LEVELS, ("households", "people")),
    Aggregate("shelters", "status", SHELTER_STATUSES, ("capacity", "current_occupancy")),
    Aggregate("facilities", "kind", FACILITY_KINDS, ("people",)),
)
UNKNOWN = "unknown"

LABELS_ZH = {
    "buildings": "房屋",
    "buildings_households": "户数",
    "buildings_population": "人口",
    "enterprises": "企业",
    "safety_hazards": "隐患",
    "safety_hazards_open": "未销号隐患",
    "safety_hazards_overdue": "逾期隐患",
    "safety_hazards_major": "重大隐患",
    "geohazard_points": "地灾隐患点",
    "geohazard_points_threatened_people": "受威胁人数",
    "geohazard_points_threatened_households": "受威胁户数",
    "geohazard_zones": "风险区",
    "geohazard_zones_people": "风险区人数",
    "shelters": "避难场所",
    "shelters_capacity": "避难容量",
    "facilities": "公共服务设施",
}


class Around(BaseModel):
    """A buffer around one feature: "1 km around hazard point X"."""

    model_config = ConfigDict(extra="forbid")

    layer: Literal[
        "geohazard_points", "enterprises", "shelters", "facilities", "safety_hazards", "fire_points"
    ]
    id: int = Field(ge=1, le=2**62)
    radius_m: float = Field(gt=0, le=qp.MAX_RADIUS_M, allow_inf_nan=False)


class AreaRequest(BaseModel):
    """Exactly one of ``geometry``, ``admin_code``, ``grid_code``, ``around``."""

    model_config = ConfigDict(extra="forbid")

    geometry: dict[str, Any] | None = Field(
        default=None, description="GeoJSON Polygon or MultiPolygon"
    )
    admin_code: AdminCode | None = None
    grid_code: GridCode | None = None
    around: Around | None = None
    crs: qp.InputCrs = Field(default=qp.InputCrs.wgs84, description="CRS of `geometry`")
    lists: list[str] = Field(
        default_factory=list, max_length=len(LAYERS), description="layers to list row by row"
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> AreaRequest:
        given = [n for n in ("geometry", "admin_code", "grid_code", "around") if getattr(self, n)]
        if len(given) != 1:
            raise ValueError("give exactly one of geometry, admin_code, grid_code, around")
        unknown = sorted(set(self.lists) - set(LAYERS))
        if unknown:
            raise ValueError(f"unknown layer in lists: {', '.join(u[:40] for u in unknown[:5])}")
        return self


@dataclass(frozen=True)
class Area:
    """A resolved area: the SQL predicate on ``t`` and its bound parameters."""

    kind: str
    predicate: str
    cte: str
    params: dict[str, Any]
    description: dict[str, Any]


def _geometry_area(geom: BaseGeometry, description: dict[str, Any]) -> Area:
    return Area(
        "geometry",
        "t.{g} && area.g AND ST_Intersects(t.{g}, area.g)",
        "area AS MATERIALIZED (SELECT ST_GeomFromWKB(:wkb, 4490) AS g)",
        {"wkb": shapely.to_wkb(geom)},
        {**description, "area_km2": round(crs.area_m2(geom) / 1e6, 4)},
    )


async def resolve_area(conn: AsyncConnection, principal: Principal, req: AreaRequest) -> Area:
    """Turn the request into an :class:`Area`; 404 for a code or feature outside the scope."""
    scope_p = {"scope": principal.scope_code} if principal.scope_code else {}
    if req.geometry is not None:
        geom = qp.polygon_from_geojson(req.geometry, req.crs)
        return _geometry_area(geom, {"geometry": "polygon", "crs": req.crs.value})
    if req.around is not None:
        layer = LAYERS[req.around.layer]
        sql = f"""SELECT ST_AsBinary(ST_Buffer(t.geom::geography, :r)::geometry)
            FROM {layer.table} t WHERE t.id = :id AND t.geom IS NOT NULL AND {layer.where}
              AND {scope_sql("t." + layer.scope_column, principal.scope_code)}"""
        wkb = (
            await conn.execute(
                text(sql), {"id": req.around.id, "r": req.around.radius_m, **scope_p}
            )
        ).scalar_one_or_none()
        if wkb is None:
            raise NotFound(detail=f"{req.around.layer} {req.around.id} not found")
        return _geometry_area(
            shapely.from_wkb(bytes(wkb)),
            {"around": req.around.model_dump()},
        )
    if req.grid_code is not None:
        sql = f"""SELECT 1 FROM grid t WHERE t.grid_code = :code AND t.valid_to IS NULL
              AND {scope_sql("t.community_code", principal.scope_code)}"""
        if (await conn.execute(text(sql), {"code": req.grid_code, **scope_p})).first() is None:
            raise NotFound(detail=f"grid {req.grid_code} not found")
        return Area(
            "grid", "t.grid_code = :code", "", {"code": req.grid_code}, {"grid_code": req.grid_code}
        )
    assert req.admin_code is not None
    sql = f"""SELECT name FROM admin_division t WHERE t.code = :code
          AND {scope_sql("t.code", principal.scope_code)}"""
    name = (await conn.execute(text(sql), {"code": req.admin_code, **scope_p})).scalar_one_or_none()
    if name is None:
        raise NotFound(detail=f"admin unit {req.admin_code} not found")
    return Area(
        "admin",
        "t.admin_code = ANY(CAST((SELECT au.codes FROM area_units au) AS varchar[]))",
        "area_units AS MATERIALIZED (SELECT array_agg(a.code) AS codes FROM admin_division a"
        " WHERE a.ancestors @> ARRAY[CAST(:code AS text)])",
        {"code": req.admin_code},
        {"admin_code": req.admin_code, "name": name},
    )


def _with(area: Area) -> str:
    return f"WITH {area.cte}" if area.cte else ""


def _from(area: Area) -> str:
    return ", area" if area.kind == "geometry" else ""


def _agg_sql(agg: Aggregate, area: Area, scope: str | None) -> str:
    layer = LAYERS[agg.layer]
    sums = "".join(f", sum(t.{s}) AS {s}" for s in agg.sums)
    flags = "".join(f", count(*) FILTER (WHERE {cond}) AS {n}" for n, cond in agg.flags.items())
    pred = area.predicate.format(g=layer.geometry)
    return f"""{_with(area)}
SELECT t.grid_code, t.admin_code, coalesce(t.{agg.category}::text, '{UNKNOWN}') AS cat,
       count(*) AS n{sums}{flags}
FROM {layer.table} t{_from(area)}
WHERE {layer.where} AND {scope_sql("t." + layer.scope_column, scope)} AND {pred}
GROUP BY 1, 2, 3"""


def _grids_sql(area: Area, scope: str | None) -> str:
    if area.kind == "geometry":
        pred = "g.geom && area.g AND ST_Intersects(g.geom, area.g)"
    elif area.kind == "grid":
        pred = "g.grid_code = :code"
    else:
        pred = "g.community_code = ANY(CAST((SELECT au.codes FROM area_units au) AS varchar[]))"
    return f"""{_with(area)}
SELECT g.grid_code, g.name, g.community_code, v.name AS village, g.households, g.population,
  (SELECT coalesce(json_agg(json_build_object('role', ga.role, 'name', p.name,
          'phone', p.phone) ORDER BY ga.role, p.name), '[]'::json)
   FROM grid_assignment ga JOIN person p ON p.id = ga.person_id
   WHERE ga.grid_id = g.id AND ga.end_date IS NULL
     AND ga.role IN ('grid_worker', 'grid_leader')) AS staff
FROM grid g JOIN admin_division v ON v.code = g.community_code{_from(area)}
WHERE g.valid_to IS NULL AND {scope_sql("g.community_code", scope)} AND {pred}
ORDER BY g.grid_code"""


def _list_sql(name: str, area: Area, scope: str | None) -> str:
    layer = LAYERS[name]
    cols = ", ".join(f"t.{c}" for c in layer.columns)
    pred = area.predicate.format(g=layer.geometry)
    return f"""{_with(area)}
SELECT t.id, ST_X(ST_PointOnSurface(t.{layer.geometry})) AS x,
       ST_Y(ST_PointOnSurface(t.{layer.geometry})) AS y, {cols}
FROM {layer.table} t{_from(area)}
WHERE {layer.where} AND {scope_sql("t." + layer.scope_column, scope)} AND {pred}
ORDER BY t.id LIMIT :cap"""


def _empty() -> dict[str, Any]:
    return defaultdict(int)


def _add(into: dict[str, Any], agg: Aggregate, row: Any) -> None:
    m = row._mapping
    key = agg.layer
    into[key] += int(m["n"])
    into[f"{key}_{m['cat']}"] += int(m["n"])
    for s in agg.sums:
        into[f"{key}_{s}"] += int(m[s] or 0)
    for f in agg.flags:
        into[f"{key}_{f}"] += int(m[f])


def unit_columns() -> list[str]:
    """Column keys of the per-grid / per-village tables, in a stable order."""
    cols: list[str] = []
    for agg in AGGREGATES:
        cols.append(agg.layer)
        cols.extend(f"{agg.layer}_{s}" for s in agg.sums)
        cols.extend(f"{agg.layer}_{f}" for f in agg.flags)
        cols.extend(f"{agg.layer}_{c}" for c in agg.classes)
    return cols


def _as_row(counts: dict[str, Any]) -> dict[str, int]:
    return {c: int(counts.get(c, 0)) for c in unit_columns()}


@dataclass
class AreaSummary:
    """The answer: totals, per-grid and per-village rows, grids touched, optional lists."""

    area: dict[str, Any]
    totals: dict[str, int]
    by_grid: list[dict[str, Any]]
    by_village: list[dict[str, Any]]
    grids: list[dict[str, Any]]
    lists: dict[str, dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        """JSON answer."""
        return {
            "area": self.area,
            "totals": self.totals,
            "by_grid": self.by_grid,
            "by_village": self.by_village,
            "grids": self.grids,
            "lists": self.lists,
        }


async def summarize(conn: AsyncConnection, principal: Principal, req: AreaRequest) -> AreaSummary:
    """Counts and lists inside the requested area, within the caller's scope."""
    area = await resolve_area(conn, principal, req)
    scope = principal.scope_code
    params = {**area.params, **({"scope": scope} if scope else {})}
    totals: dict[str, Any] = _empty()
    per_grid: dict[str | None, dict[str, Any]] = defaultdict(_empty)
    per_village: dict[str | None, dict[str, Any]] = defaultdict(_empty)
    for agg in AGGREGATES:
        for row in await conn.execute(text(_agg_sql(agg, area, scope)), params):
            _add(totals, agg, row)
            _add(per_grid[row.grid_code], agg, row)
            _add(per_village[row.admin_code], agg, row)
    grids = [dict(r._mapping) for r in await conn.execute(text(_grids_sql(area, scope)), params)]
    for g in grids:
        if not principal.sees_pii:
            g["staff"] = [
                {**s, "name": mask_name(s["name"]), "phone": mask_phone(s["phone"])}
                for s in g["staff"]
            ]
    grid_info = {g["grid_code"]: g for g in grids}
    codes = sorted(c for c in per_village if c)
    names: dict[str, str] = {}
    if codes:
        names = dict(
            (
                await conn.execute(
                    text("SELECT code, name FROM admin_division WHERE code = ANY(:c)"), {"c": codes}
                )
            ).all()
        )
    by_grid = []
    for code in sorted({*per_grid, *grid_info}, key=lambda c: (c is None, c or "")):
        info = grid_info.get(code or "", {})
        by_grid.append(
            {
                "grid_code": code,
                "grid_name": info.get("name"),
                "village_code": info.get("community_code"),
                "village": info.get("village"),
                **_as_row(per_grid[code]),
            }
        )
    by_village = [
        {"village_code": code, "village": names.get(code or ""), **_as_row(per_village[code])}
        for code in sorted(per_village, key=lambda c: (c is None, c or ""))
    ]
    lists: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(req.lists):
        rows = (
            await conn.execute(
                text(_list_sql(name, area, scope)), {**params, "cap": qp.MAX_LIST + 1}
            )
        ).all()
        layer = LAYERS[name]
        lists[name] = {
            "truncated": len(rows) > qp.MAX_LIST,
            "features": [
                {
                    "id": int(r.id),
                    "lon": round(float(r.x), 7),
                    "lat": round(float(r.y), 7),
                    **{c: plain(r._mapping[c]) for c in layer.columns},
                }
                for r in rows[: qp.MAX_LIST]
            ],
        }
    return AreaSummary(area.description, _as_row(totals), by_grid, by_village, grids, lists)
