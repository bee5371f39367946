"""Monthly-report tables: counts per admin unit (county → township → village) and per grid.

每月一统计: enterprises by colour, 隐患 found/closed/overdue and the closure rate, geological
hazard points by grade, households and people, shelter capacity against people. Every number
is computed from the rows (never typed in) and only from rows of the caller's area, so a
county user asking about the city gets their own county's row and nothing else.
Units are mapped to villages through ``admin_division.ancestors`` (never code prefixes).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gis_service.db.models import DANGER_GRADES, RISK_COLORS
from gis_service.domain.scope import Principal
from gis_service.errors import BadParameter, FieldProblem, NotFound
from gis_service.query.layers import scope_sql

_FOUND = "(CAST(:t0 AS timestamptz) IS NULL OR t.found_at >= :t0) AND t.found_at < :t1"
_CLOSED = (
    "t.closed_at IS NOT NULL AND (CAST(:t0 AS timestamptz) IS NULL OR t.closed_at >= :t0)"
    " AND t.closed_at < :t1"
)
_OVERDUE = (
    "t.found_at < :t1 AND t.deadline < CAST(:t1 AS date)"
    " AND (t.closed_at IS NULL OR t.closed_at >= :t1)"
)


@dataclass(frozen=True)
class Metric:
    """Aggregates of one table, keyed to a unit through ``key`` (a village or grid code)."""

    table: str
    columns: tuple[tuple[str, str, str], ...]  # (name, SQL aggregate, Chinese header)
    where: str = "TRUE"
    key: str = "admin_code"


METRICS: tuple[Metric, ...] = (
    Metric(
        "enterprise",
        (
            ("enterprises", "count(*)", "企业总数"),
            *(
                (f"enterprises_{c}", f"count(*) FILTER (WHERE t.risk_level = '{c}')", zh)
                for c, zh in zip(RISK_COLORS, ("红色", "橙色", "黄色", "蓝色"), strict=True)
            ),
        ),
    ),
    Metric(
        "safety_hazard",
        (
            ("hazards_found", f"count(*) FILTER (WHERE {_FOUND})", "隐患排查数"),
            ("hazards_closed", f"count(*) FILTER (WHERE {_CLOSED})", "已销号"),
            ("hazards_overdue", f"count(*) FILTER (WHERE {_OVERDUE})", "逾期未销号"),
            (
                "hazards_major",
                f"count(*) FILTER (WHERE t.level = 'major' AND {_FOUND})",
                "重大隐患",
            ),
        ),
    ),
    Metric(
        "geohazard_point",
        (
            ("geohazard_points", "count(*)", "地灾隐患点"),
            *(
                (f"geohazard_{g}", f"count(*) FILTER (WHERE t.danger_grade = '{g}')", f"{g}级")
                for g in DANGER_GRADES
            ),
            ("threatened_people", "coalesce(sum(t.threatened_people), 0)", "受威胁人数"),
        ),
        where="NOT t.closed",
    ),
    Metric(
        "building",
        (
            ("buildings", "count(*)", "房屋"),
            ("households", "coalesce(sum(t.households), 0)", "户数"),
            ("population", "coalesce(sum(t.population), 0)", "人口"),
        ),
    ),
    Metric(
        "shelter",
        (
            ("shelters", "count(*)", "避难场所"),
            ("shelter_capacity", "coalesce(sum(t.capacity), 0)", "避难容量（人）"),
        ),
    ),
)
GRID_METRIC = Metric(
    "grid", (("grids", "count(*)", "网格数"),), where="t.valid_to IS NULL", key="community_code"
)
DERIVED = (("closure_rate", "销号率"), ("capacity_per_person", "人均避难容量"))


def columns(*, by_grid: bool) -> list[tuple[str, str]]:
    """(key, Chinese header) of the value columns, in order."""
    metrics = METRICS if by_grid else (*METRICS, GRID_METRIC)
    return [(n, zh) for m in metrics for n, _, zh in m.columns] + list(DERIVED)


def _derive(row: dict[str, Any]) -> dict[str, Any]:
    found, people = row.get("hazards_found", 0), row.get("population", 0)
    row["closure_rate"] = round(row.get("hazards_closed", 0) / found, 4) if found else None
    row["capacity_per_person"] = (
        round(row.get("shelter_capacity", 0) / people, 4) if people else None
    )
    return row


def _joins(
    metrics: tuple[Metric, ...], scope: str | None, *, join_on: str | None = None
) -> tuple[str, str]:
    """(select list, LEFT JOINs) aggregating each metric per unit through the ``km`` map.

    Rows meet ``km.key`` on their metric's key (a village code) or on ``join_on`` (e.g.
    ``grid_code``); the scope test always reads the metric's admin key.
    """
    selects: list[str] = []
    joins: list[str] = []
    for i, m in enumerate(metrics):
        alias = f"m{i}"
        aggs = ", ".join(f'{sql} AS "{n}"' for n, sql, _ in m.columns)
        joins.append(
            f"""LEFT JOIN (
    SELECT km.unit, {aggs} FROM {m.table} t JOIN km ON km.key = t.{join_on or m.key}
    WHERE {m.where} AND {scope_sql("t." + m.key, scope)} GROUP BY km.unit
) {alias} ON {alias}.unit = u.code"""
        )
        selects.extend(f'coalesce({alias}."{n}", 0) AS "{n}"' for n, _, _ in m.columns)
    return ", ".join(selects), "\n".join(joins)


@dataclass
class StatsTable:
    """One table of the monthly report."""

    unit: dict[str, Any]
    period: dict[str, str | None]
    by_grid: bool
    rows: list[dict[str, Any]]

    def total(self) -> dict[str, Any]:
        """Sum of the rows, ratios recomputed."""
        keys = [k for k, _ in columns(by_grid=self.by_grid) if k not in dict(DERIVED)]
        return _derive({k: sum(int(r[k]) for r in self.rows) for k in keys})

    def as_dict(self) -> dict[str, Any]:
        """JSON answer."""
        return {
            "unit": self.unit,
            "period": self.period,
            "columns": [{"key": k, "title": zh} for k, zh in columns(by_grid=self.by_grid)],
            "rows": self.rows,
            "total": self.total(),
        }


def _period(month: str | None) -> tuple[dt.datetime | None, dt.datetime, dict[str, str | None]]:
    """(start, end, description) of a ``YYYY-MM`` month in China time, or everything to now."""
    tz = dt.timezone(dt.timedelta(hours=8))
    if month is None:
        now = dt.datetime.now(tz)
        return None, now, {"month": None, "as_of": now.isoformat(timespec="seconds")}
    try:
        year, mon = (int(p) for p in month.split("-"))
        start = dt.datetime(year, mon, 1, tzinfo=tz)
    except ValueError:
        raise BadParameter(
            detail="month must be YYYY-MM",
            detail_zh="月份格式应为 YYYY-MM",
            fields=[FieldProblem("query.month", "expected YYYY-MM")],
        ) from None
    end = dt.datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=tz)
    return start, end, {"month": month, "from": start.isoformat(), "to": end.isoformat()}


async def _unit(conn: AsyncConnection, principal: Principal, code: str) -> dict[str, Any]:
    """The unit if the caller may see it (inside their area, or one of its ancestors)."""
    scope = principal.scope_code
    visible = (
        "TRUE"
        if scope is None
        else f"({scope_sql('a.code', scope)} OR a.code::text = ANY(CAST((SELECT s.ancestors"
        " FROM admin_division s WHERE s.code = CAST(:scope AS text)) AS text[])))"
    )
    sql = f"SELECT a.code, a.name, a.level FROM admin_division a WHERE a.code = :code AND {visible}"
    params = {"code": code, **({"scope": scope} if scope else {})}
    row = (await conn.execute(text(sql), params)).one_or_none()
    if row is None:
        raise NotFound(detail=f"admin unit {code} not found", detail_zh=f"区划 {code} 不存在")
    return dict(row._mapping)


async def by_division(
    conn: AsyncConnection, principal: Principal, parent: str, month: str | None = None
) -> StatsTable:
    """One row per child unit of ``parent`` inside the caller's area."""
    t0, t1, period = _period(month)
    unit = await _unit(conn, principal, parent)
    scope = principal.scope_code
    metrics = (*METRICS, GRID_METRIC)
    selects, joins = _joins(metrics, scope)
    sql = f"""WITH
units AS (SELECT a.code, a.name, a.level FROM admin_division a
          WHERE a.parent_code = :parent AND {scope_sql("a.code", scope)}),
km AS MATERIALIZED (SELECT v.code AS key, u.code AS unit FROM units u
       JOIN admin_division v ON v.ancestors @> ARRAY[u.code::text])
SELECT u.code, u.name, u.level, {selects}
FROM units u
{joins}
ORDER BY u.code"""
    params = {"parent": parent, "t0": t0, "t1": t1, **({"scope": scope} if scope else {})}
    rows = [_derive(dict(r._mapping)) for r in await conn.execute(text(sql), params)]
    return StatsTable(unit, period, False, rows)


async def by_grid(
    conn: AsyncConnection, principal: Principal, code: str, month: str | None = None
) -> StatsTable:
    """One row per current grid under admin unit ``code`` inside the caller's area."""
    t0, t1, period = _period(month)
    unit = await _unit(conn, principal, code)
    scope = principal.scope_code
    selects, joins = _joins(METRICS, scope, join_on="grid_code")
    sql = f"""WITH
units AS MATERIALIZED (
    SELECT g.grid_code AS code, g.name, g.community_code, v.name AS village,
           g.households AS grid_households, g.population AS grid_population
    FROM grid g JOIN admin_division v ON v.code = g.community_code
    WHERE g.valid_to IS NULL AND v.ancestors @> ARRAY[CAST(:code AS text)]
      AND {scope_sql("g.community_code", scope)}),
km AS (SELECT code AS key, code AS unit FROM units)
SELECT u.code, u.name, u.community_code, u.village, u.grid_households, u.grid_population,
       {selects}
FROM units u
{joins}
ORDER BY u.code"""
    params = {"code": code, "t0": t0, "t1": t1, **({"scope": scope} if scope else {})}
    rows = [_derive(dict(r._mapping)) for r in await conn.execute(text(sql), params)]
    return StatsTable(unit, period, True, rows)
