"""Readiness checks for commanders (汛前/防灾准备): what in the plan would fail on the day.

- hazard points and risk zones whose responsibility chain is incomplete: no responsible
  person at county, township or village level, or no monitor (监测员);
- evacuation routes that cross a hazard polygon (a risk zone other than the one they start
  in, re-entering their own, or ending inside one), or that end at no shelter or at a shelter
  without remaining capacity;
- shelters whose catchment (threatened people of the hazard points routed to them) exceeds
  their capacity.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gis_service.domain.scope import Principal
from gis_service.errors import FieldProblem, NotFound
from gis_service.impact.scoping import code_scope_sql

CHAIN = ("county", "township", "village")

_UNITS = (
    "units AS MATERIALIZED (SELECT array_agg(a.code)::varchar[] AS codes FROM admin_division a"
    " WHERE a.ancestors @> ARRAY[CAST(:admin AS text)])"
)

_CHAIN_SQL = """WITH {units},
t AS (SELECT {cols} FROM {table} t
      WHERE t.admin_code = ANY(CAST((SELECT codes FROM units) AS varchar[])) AND {extra})
SELECT t.*, ST_X(ST_PointOnSurface(t.geom)) AS lon, ST_Y(ST_PointOnSurface(t.geom)) AS lat,
       coalesce(array_agg(DISTINCT r.level) FILTER (WHERE r.level IS NOT NULL), '{{}}') AS levels,
       coalesce(bool_or(r.duty = 'monitor'), false) AS has_monitor
FROM t LEFT JOIN responsibility r ON r.target_type = :tt AND r.target_id = t.id
     AND (r.valid_to IS NULL OR r.valid_to >= current_date)
GROUP BY t.id, t.code, t.name, t.grade, t.geom
ORDER BY t.code"""

_ROUTES_SQL = """WITH {units},
r AS (SELECT e.* FROM evacuation_route e
      WHERE e.admin_code = ANY(CAST((SELECT codes FROM units) AS varchar[]))
         OR e.geohazard_point_id IN (
             SELECT p.id FROM geohazard_point p
             WHERE p.admin_code = ANY(CAST((SELECT codes FROM units) AS varchar[]))))
SELECT r.id, r.name, r.geohazard_point_id, r.shelter_id, s.name AS shelter,
       s.capacity, s.current_occupancy, s.status,
       EXISTS (SELECT 1 FROM geohazard_zone z WHERE z.geom && r.geom
               AND ST_Intersects(z.geom, r.geom)
               AND (NOT ST_Intersects(z.geom, ST_StartPoint(r.geom))
                    OR ST_Intersects(z.geom, ST_EndPoint(r.geom))
                    OR ST_NumGeometries(ST_Multi(ST_Intersection(z.geom, r.geom))) > 1))
           AS crosses
FROM r LEFT JOIN shelter s ON s.id = r.shelter_id
ORDER BY r.id"""

_SHELTERS_SQL = """WITH {units},
c AS (SELECT r.shelter_id, sum(p.threatened_people) AS people
      FROM (SELECT DISTINCT shelter_id, geohazard_point_id FROM evacuation_route
            WHERE shelter_id IS NOT NULL) r
      JOIN geohazard_point p ON p.id = r.geohazard_point_id AND NOT p.closed
      GROUP BY r.shelter_id)
SELECT s.id, s.name, s.capacity, s.current_occupancy, c.people, ST_X(s.geom) AS lon,
       ST_Y(s.geom) AS lat
FROM shelter s JOIN c ON c.shelter_id = s.id
WHERE s.admin_code = ANY(CAST((SELECT codes FROM units) AS varchar[])) AND c.people > s.capacity
ORDER BY c.people - s.capacity DESC, s.id"""


async def check(conn: AsyncConnection, principal: Principal, admin: str) -> dict[str, Any]:
    """The readiness report of one admin unit inside the caller's area (404 otherwise)."""
    scope = principal.scope_code
    sp = {"scope": scope} if scope else {}
    unit = (
        await conn.execute(
            text(
                "SELECT code, name FROM admin_division a WHERE a.code = :admin"
                f" AND {code_scope_sql('a.code', scope)}"
            ),
            {"admin": admin, **sp},
        )
    ).first()
    if unit is None:
        raise NotFound(
            detail=f"admin unit {admin} not found",
            detail_zh=f"区划 {admin} 不存在",
            fields=[FieldProblem("query.admin", "not found")],
        )
    p = {"admin": admin}
    incomplete: list[dict[str, Any]] = []
    for target, cols, extra in (
        (
            "geohazard_point",
            "t.id, t.code, t.name, t.danger_grade AS grade, t.geom",
            "NOT t.closed",
        ),
        ("geohazard_zone", "t.id, t.code, t.name, t.risk_level AS grade, t.geom", "true"),
    ):
        sql = _CHAIN_SQL.format(units=_UNITS, cols=cols, table=target, extra=extra)
        for r in await conn.execute(text(sql), {**p, "tt": target}):
            missing = [lv for lv in CHAIN if lv not in set(r.levels)]
            if not r.has_monitor:
                missing.append("monitor")
            if missing:
                incomplete.append(
                    {
                        "target_type": target,
                        "id": int(r.id),
                        "code": r.code,
                        "name": r.name,
                        "grade": r.grade,
                        "missing": missing,
                        "lon": round(float(r.lon), 7),
                        "lat": round(float(r.lat), 7),
                    }
                )
    routes = []
    for r in await conn.execute(text(_ROUTES_SQL.format(units=_UNITS)), p):
        problems = []
        if r.crosses:
            problems.append("crosses_hazard")
        if r.shelter_id is None:
            problems.append("no_shelter")
        elif r.status == "full" or int(r.capacity) - int(r.current_occupancy) <= 0:
            problems.append("shelter_without_capacity")
        if problems:
            routes.append(
                {
                    "id": int(r.id),
                    "name": r.name,
                    "geohazard_point_id": r.geohazard_point_id,
                    "shelter_id": r.shelter_id,
                    "shelter": r.shelter,
                    "problems": problems,
                }
            )
    shelters = [
        {
            "id": int(r.id),
            "name": r.name,
            "capacity": int(r.capacity),
            "remaining": int(r.capacity) - int(r.current_occupancy),
            "catchment_people": int(r.people),
            "excess": int(r.people) - int(r.capacity),
            "lon": round(float(r.lon), 7),
            "lat": round(float(r.lat), 7),
        }
        for r in await conn.execute(text(_SHELTERS_SQL.format(units=_UNITS)), p)
    ]
    return {
        "admin": {"code": unit.code, "name": unit.name},
        "summary": {
            "points_incomplete": sum(
                1 for i in incomplete if i["target_type"] == "geohazard_point"
            ),
            "zones_incomplete": sum(1 for i in incomplete if i["target_type"] == "geohazard_zone"),
            "routes_crossing_hazard": sum(1 for r in routes if "crosses_hazard" in r["problems"]),
            "routes_to_shelter_without_capacity": sum(
                1 for r in routes if {"shelter_without_capacity", "no_shelter"} & set(r["problems"])
            ),
            "shelters_over_capacity": len(shelters),
        },
        "incomplete": incomplete,
        "routes": routes,
        "shelters": shelters,
    }
