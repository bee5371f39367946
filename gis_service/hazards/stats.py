"""每月一统计、一排名: monthly figures recomputed from ``hazard_event`` rows, and the ranking.

A month is judged at its end (or now, for the running month). Per hazard the events before
that instant give: when it was found, whether and when it was closed, the deadline then in
force (the latest 交办 payload, else the ledger's deadline) and whether it was 挂牌督办.
Everything is grouped in PostGIS by county, township, level and sector.

Ranking (the bureau rule chosen here, stated in every report)::

    score = 60 × 整改率 + 25 × 按期整改率 + 15 × (1 − 逾期占比) − 5 × 逾期未整改重大隐患数

    整改率     = closed / found, cumulative to the month's end
    按期整改率 = closed on or before the deadline / closed (0 when nothing was closed)
    逾期占比   = overdue open / open at month end (0 when nothing is open)

clamped at 0, rounded to 2 decimals. Equal scores share a rank (1, 2, 2, 4); units with
nothing found are listed unranked. Counties are ranked when the report covers a city or
province, townships when it covers a county.

A published month is frozen in ``hazard_monthly_report``: later edits to old hazards never
change it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gis_service.domain.scope import Principal
from gis_service.errors import Conflict, FieldProblem, Forbidden, InvalidInput, NotFound
from gis_service.types import Role

FORMULA_ZH = (
    "排名规则：得分 = 60×整改率 + 25×按期整改率 + 15×(1−逾期占比) − 5×逾期未整改重大隐患数"
    "（整改率、按期整改率按截至月末累计计算；逾期占比 = 逾期未整改数 ÷ 未整改数；"
    "得分相同者并列，当月无隐患的单位不参与排名）。"
)
PUBLISHERS = frozenset({Role.admin, Role.planner})
LEVEL_ZH = {"general": "一般事故隐患", "major": "重大事故隐患"}
SECTOR_ZH = {
    "hazchem": "危险化学品",
    "fireworks": "烟花爆竹",
    "non_coal_mine": "非煤矿山",
    "coal_mine": "煤矿",
    "industry_trade": "工贸",
    "other": "其他行业",
    "none": "非企业（公共区域）",
}
METRICS = (
    "found_month",
    "closed_month",
    "found_total",
    "closed_total",
    "closed_on_time_total",
    "open_end",
    "overdue_open",
    "major_found_month",
    "major_open",
    "major_overdue_open",
    "escalated_open",
    "escalated_total",
    "escalated_closed_on_time",
    "enforcement_found_month",
)


@dataclass(frozen=True)
class Month:
    """A calendar month (local time, Asia/Shanghai)."""

    year: int
    month: int

    @classmethod
    def parse(cls, value: str) -> Month:
        """``YYYY-MM`` → Month; anything else is a 400 naming ``month``."""
        m = re.fullmatch(r"(\d{4})-(\d{2})", value)
        if not m or not (1 <= int(m.group(2)) <= 12) or not (2000 <= int(m.group(1)) <= 2100):
            raise InvalidInput(
                detail="month must be YYYY-MM (2000-01 … 2100-12)",
                detail_zh="月份格式应为 YYYY-MM",
                fields=[FieldProblem("month", "expected YYYY-MM")],
            )
        return cls(int(m.group(1)), int(m.group(2)))

    @property
    def first(self) -> dt.date:
        """The month's first day."""
        return dt.date(self.year, self.month, 1)

    @property
    def next(self) -> Month:
        """The following month."""
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    @property
    def previous(self) -> Month:
        """The preceding month."""
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


_FACTS = """
WITH b AS (
    SELECT CAST(:m0 AS timestamp) AT TIME ZONE 'Asia/Shanghai' AS t0,
           least(CAST(:m1 AS timestamp) AT TIME ZONE 'Asia/Shanghai', now()) AS t1
), u AS (
    SELECT v.code AS village, t.code AS township, c.code AS county
    FROM admin_division v
    JOIN admin_division c ON c.code = ANY(v.ancestors) AND c.level = 'county'
    LEFT JOIN admin_division t ON t.code = ANY(v.ancestors) AND t.level = 'township'
    WHERE v.level = 'village' AND :root = ANY(v.ancestors)
), hz AS NOT MATERIALIZED (
    SELECT h.id, h.level, h.found_via, h.deadline, h.escalated, h.enterprise_id,
           u.county, u.township
    FROM safety_hazard h JOIN u ON u.village = h.admin_code
), x AS (
    -- One pass over the area's events before the instant (hash join + hash aggregate).
    SELECT e.hazard_id,
           min(e.at) FILTER (WHERE e.to_status = 'found') AS found_at,
           min(e.at) FILTER (WHERE e.to_status = 'closed') AS closed_at,
           bool_or(e.action = 'escalate') AS escalated
    FROM hazard_event e JOIN hz ON hz.id = e.hazard_id CROSS JOIN b
    WHERE e.at < b.t1
    GROUP BY e.hazard_id
), dl AS (
    -- The deadline in force: the latest 交办 before the instant (few rows).
    SELECT DISTINCT ON (e.hazard_id) e.hazard_id, (e.payload ->> 'deadline')::date AS deadline
    FROM hazard_event e CROSS JOIN b
    WHERE e.action = 'assign' AND e.at < b.t1
    ORDER BY e.hazard_id, e.at DESC, e.id DESC
), esc AS (
    -- Hazards whose 挂牌督办 is in the events (older rows only have the flag).
    SELECT DISTINCT hazard_id FROM hazard_event WHERE action = 'escalate'
), facts AS MATERIALIZED (
    SELECT hz.id, hz.level, hz.found_via, coalesce(en.sector, 'none') AS sector,
           hz.county, hz.township, b.t0, b.t1, x.found_at, x.closed_at,
           coalesce(dl.deadline, hz.deadline) AS deadline,
           CASE WHEN esc.hazard_id IS NULL THEN hz.escalated ELSE x.escalated END AS escalated,
           x.found_at >= b.t0 AS f_month,
           x.closed_at >= b.t0 AS c_month,
           x.closed_at IS NULL AS open_end,
           x.closed_at IS NULL
               AND coalesce(dl.deadline, hz.deadline) < (b.t1 AT TIME ZONE 'Asia/Shanghai')::date
               AS overdue,
           (x.closed_at AT TIME ZONE 'Asia/Shanghai')::date <= coalesce(dl.deadline, hz.deadline)
               AS on_time,
           extract(epoch FROM x.closed_at - x.found_at) / 86400.0 AS days_to_close
    FROM hz
    JOIN x ON x.hazard_id = hz.id
    LEFT JOIN dl ON dl.hazard_id = hz.id
    LEFT JOIN esc ON esc.hazard_id = hz.id
    LEFT JOIN enterprise en ON en.id = hz.enterprise_id
    CROSS JOIN b
    WHERE x.found_at IS NOT NULL
), groups AS (
    SELECT grouping(county) AS g_county, grouping(township) AS g_township,
           grouping(level) AS g_level, grouping(sector) AS g_sector,
           county, township, level, sector,
           count(*) FILTER (WHERE f_month) AS found_month,
           count(*) FILTER (WHERE c_month) AS closed_month,
           count(*) AS found_total,
           count(closed_at) AS closed_total,
           count(*) FILTER (WHERE on_time) AS closed_on_time_total,
           count(*) FILTER (WHERE open_end) AS open_end,
           count(*) FILTER (WHERE overdue) AS overdue_open,
           count(*) FILTER (WHERE f_month AND level = 'major') AS major_found_month,
           count(*) FILTER (WHERE open_end AND level = 'major') AS major_open,
           count(*) FILTER (WHERE overdue AND level = 'major') AS major_overdue_open,
           count(*) FILTER (WHERE open_end AND escalated) AS escalated_open,
           count(*) FILTER (WHERE escalated) AS escalated_total,
           count(*) FILTER (WHERE escalated AND on_time) AS escalated_closed_on_time,
           count(*) FILTER (WHERE f_month AND found_via IN ('inspection', 'covert'))
               AS enforcement_found_month,
           round(avg(days_to_close) FILTER (WHERE c_month)::numeric, 1)::float
               AS avg_days_to_close_month
    FROM facts
    GROUP BY GROUPING SETS ((), (county), (county, township), (level), (sector))
), overdue_major AS (
    SELECT h.id, h.hazard_no, h.title, coalesce(en.name, h.responsible_org) AS unit,
           h.responsible_org, f.deadline, f.escalated, h.supervision_level,
           ((f.t1 AT TIME ZONE 'Asia/Shanghai')::date - f.deadline) AS days_overdue,
           c.name AS county_name, t.name AS township_name
    FROM facts f
    JOIN safety_hazard h ON h.id = f.id
    LEFT JOIN enterprise en ON en.id = h.enterprise_id
    LEFT JOIN admin_division c ON c.code = f.county
    LEFT JOIN admin_division t ON t.code = f.township
    WHERE f.overdue AND f.level = 'major'
)
"""

#: Both results from one computation of the facts: the grouped figures, and the overdue
#: major hazards by name (as JSON rows, told apart by ``kind``).
_MONTH = text(
    _FACTS
    + """
SELECT 'group' AS kind, to_jsonb(g) AS row FROM groups g
UNION ALL
SELECT 'overdue', to_jsonb(o) FROM (
    SELECT * FROM overdue_major ORDER BY days_overdue DESC, hazard_no) o
"""
)

_UNITS = text(
    """SELECT code, name, level, parent_code FROM admin_division
       WHERE :root = ANY(ancestors) AND level IN ('county', 'township') AND valid_to IS NULL
       ORDER BY code"""
)


def closure_rate(closed: int, found: int) -> float | None:
    """整改率 in percent, one decimal (None when nothing was found)."""
    return round(100.0 * closed / found, 1) if found else None


def score(m: dict[str, Any]) -> float | None:
    """The ranking score of one unit's figures (see the module docstring)."""
    if not m["found_total"]:
        return None
    closure = m["closed_total"] / m["found_total"]
    on_time = m["closed_on_time_total"] / m["closed_total"] if m["closed_total"] else 0.0
    overdue_share = m["overdue_open"] / m["open_end"] if m["open_end"] else 0.0
    s = 60 * closure + 25 * on_time + 15 * (1 - overdue_share) - 5 * m["major_overdue_open"]
    return round(max(float(s), 0.0), 2)


def rank(units: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows sorted by score, with competition ranks (ties share; unscored last, unranked)."""
    scored = sorted(
        (u for u in units if u["score"] is not None), key=lambda u: (-u["score"], u["code"])
    )
    out: list[dict[str, Any]] = []
    for i, u in enumerate(scored):
        tied = out and out[-1]["score"] == u["score"]
        out.append({**u, "rank": out[-1]["rank"] if tied else i + 1})
    out.extend(
        {**u, "rank": None} for u in sorted(units, key=lambda u: u["code"]) if u["score"] is None
    )
    return out


def _metrics(row: Any) -> dict[str, Any]:
    m: dict[str, Any] = {k: int(getattr(row, k)) for k in METRICS}
    m["avg_days_to_close_month"] = row.avg_days_to_close_month
    m["closure_rate"] = closure_rate(m["closed_total"], m["found_total"])
    return m


def _empty() -> dict[str, Any]:
    return {**dict.fromkeys(METRICS, 0), "avg_days_to_close_month": None, "closure_rate": None}


async def resolve_root(
    conn: AsyncConnection, principal: Principal, admin: str | None
) -> dict[str, Any]:
    """The unit a report covers: ``admin`` or the caller's area; 404 outside the caller's area."""
    code = admin or principal.scope_code
    if code is None:
        raise InvalidInput(
            detail="national users must name the area (admin)",
            detail_zh="请指定统计范围（行政区划代码）",
            fields=[FieldProblem("admin", "required")],
        )
    row = (
        await conn.execute(
            text("SELECT code, name, level, ancestors FROM admin_division WHERE code = :c"),
            {"c": code},
        )
    ).one_or_none()
    if row is None or (
        principal.scope_code is not None and principal.scope_code not in row.ancestors
    ):
        raise NotFound(detail="admin unit not found", detail_zh="行政区划不存在")
    return {"code": row.code, "name": row.name, "level": row.level}


async def compute(conn: AsyncConnection, root: dict[str, Any], month: Month) -> dict[str, Any]:
    """The month's figures under ``root``, recomputed from the events (nothing frozen)."""
    params = {"m0": month.first, "m1": month.next.first, "root": root["code"]}
    rows = (await conn.execute(_MONTH, params)).all()
    groups = [SimpleNamespace(**r.row) for r in rows if r.kind == "group"]
    overdue = [r.row for r in rows if r.kind == "overdue"]
    units = {r.code: dict(r._mapping) for r in (await conn.execute(_UNITS, params)).all()}
    totals = _empty()
    by_unit: dict[str, dict[str, Any]] = {}
    by_level: list[dict[str, Any]] = []
    by_sector: list[dict[str, Any]] = []
    for g in groups:
        m = _metrics(g)
        if g.g_county and g.g_level and g.g_sector:
            totals = m
        elif not g.g_township:
            by_unit[g.township] = m
        elif not g.g_county:
            by_unit[g.county] = m
        elif not g.g_level:
            by_level.append({"level": g.level, "label_zh": LEVEL_ZH[g.level], **m})
        else:
            by_sector.append(
                {"sector": g.sector, "label_zh": SECTOR_ZH.get(g.sector, g.sector), **m}
            )
    rank_level = (
        "county"
        if root["level"] in ("province", "prefecture")
        else "township"
        if root["level"] == "county"
        else None
    )

    def row(u: dict[str, Any]) -> dict[str, Any]:
        m = by_unit.get(u["code"], _empty())
        return {"code": u["code"], "name": u["name"], **m, "score": score(m)}

    counties = []
    for u in units.values():
        if u["level"] != "county":
            continue
        townships = [row(t) for t in units.values() if t["parent_code"] == u["code"]]
        counties.append({**row(u), "townships": townships})
    ranked = (
        rank([row(u) for u in units.values() if u["level"] == rank_level]) if rank_level else []
    )
    as_of = (
        await conn.execute(
            text("SELECT least(CAST(:m1 AS timestamp) AT TIME ZONE 'Asia/Shanghai', now())"),
            params,
        )
    ).scalar_one()
    return {
        "month": str(month),
        "root": root,
        "as_of": as_of.isoformat(),
        "complete": await _ended(conn, month),
        "totals": totals,
        "counties": counties,
        "by_level": sorted(by_level, key=lambda r: r["level"] != "general"),
        "by_sector": sorted(by_sector, key=lambda r: r["sector"]),
        "rank_level": rank_level,
        "ranking": ranked,
        "formula_zh": FORMULA_ZH,
        "overdue_major": overdue,
    }


async def _published(
    conn: AsyncConnection, root: dict[str, Any], month: Month
) -> dict[str, Any] | None:
    row = (
        await conn.execute(
            text(
                "SELECT body, published_at, published_by FROM hazard_monthly_report"
                " WHERE month = :m AND root_code = :r"
            ),
            {"m": month.first, "r": root["code"]},
        )
    ).one_or_none()
    if row is None:
        return None
    body: dict[str, Any] = dict(row.body)
    return {
        **body,
        "published": True,
        "published_at": row.published_at.isoformat(),
        "published_by": row.published_by,
    }


async def _ended(conn: AsyncConnection, month: Month) -> bool:
    return bool(
        (
            await conn.execute(
                text("SELECT CAST(:m1 AS timestamp) AT TIME ZONE 'Asia/Shanghai' <= now()"),
                {"m1": month.next.first},
            )
        ).scalar_one()
    )


async def _started(conn: AsyncConnection, month: Month) -> bool:
    return bool(
        (
            await conn.execute(
                text("SELECT CAST(:m0 AS timestamp) AT TIME ZONE 'Asia/Shanghai' <= now()"),
                {"m0": month.first},
            )
        ).scalar_one()
    )


def _with_change(report: dict[str, Any], prev: dict[str, Any]) -> dict[str, Any]:
    """Month-on-month: deltas of the totals and each ranked unit's rank change."""
    cur, old = report["totals"], prev["totals"]
    change = {
        k: cur[k] - old[k]
        for k in ("found_month", "closed_month", "overdue_open", "major_open", "open_end")
    }
    change["closure_rate_pp"] = (
        round(cur["closure_rate"] - old["closure_rate"], 1)
        if cur["closure_rate"] is not None and old["closure_rate"] is not None
        else None
    )
    old_rank = {r["code"]: r["rank"] for r in prev["ranking"]}
    for r in report["ranking"]:
        before = old_rank.get(r["code"])
        r["previous_rank"] = before
        r["rank_change"] = before - r["rank"] if before and r["rank"] else None
    return {
        **report,
        "previous": {"month": prev["month"], "totals": old, "published": prev["published"]},
        "change": change,
    }


async def monthly_report(
    conn: AsyncConnection, principal: Principal, month: Month, admin: str | None = None
) -> dict[str, Any]:
    """The month's report for the caller's area (or ``admin`` inside it).

    A published month comes back exactly as published; otherwise it is computed now.
    """
    if not await _started(conn, month):
        raise InvalidInput(
            detail="the month has not begun",
            detail_zh="该月份尚未开始",
            fields=[FieldProblem("month", "in the future")],
        )
    root = await resolve_root(conn, principal, admin)
    frozen = await _published(conn, root, month)
    if frozen is not None:
        return frozen
    report = {**await compute(conn, root, month), "published": False}
    prev = await _published(conn, root, month.previous)
    if prev is None:
        prev = {**await compute(conn, root, month.previous), "published": False}
    return _with_change(report, prev)


async def publish(
    conn: AsyncConnection, principal: Principal, month: Month, admin: str | None = None
) -> dict[str, Any]:
    """Freeze an ended month's report (once); later edits never change it.

    Raises:
        Forbidden: only admins and planners publish.
        InvalidInput: the month has not ended.
        Conflict: it was already published.
    """
    root = await resolve_root(conn, principal, admin)
    if principal.role not in PUBLISHERS or principal.anonymous:
        raise Forbidden(detail="only admins and planners publish reports")
    if not await _ended(conn, month):
        raise InvalidInput(
            detail="only an ended month can be published",
            detail_zh="月份未结束，不能发布",
            fields=[FieldProblem("month", "not ended")],
        )
    report = await monthly_report(conn, principal, month, root["code"])
    if report["published"]:
        raise Conflict(
            code="already_published",
            detail="this month is already published",
            detail_zh="该月报告已发布",
        )
    body = {k: v for k, v in report.items() if k != "published"}
    try:
        async with conn.begin_nested():
            await conn.execute(
                text(
                    "INSERT INTO hazard_monthly_report (month, root_code, body, published_by,"
                    " source) VALUES (:m, :r, CAST(:b AS jsonb), :who, :src)"
                ),
                {
                    "m": month.first,
                    "r": root["code"],
                    "b": _dumps(body),
                    "who": principal.login,
                    "src": f"user:{principal.login}",
                },
            )
    except IntegrityError as exc:
        raise Conflict(
            code="already_published",
            detail="this month is already published",
            detail_zh="该月报告已发布",
        ) from exc
    frozen = await _published(conn, root, month)
    assert frozen is not None
    return frozen


def _dumps(body: dict[str, Any]) -> str:
    import orjson

    return orjson.dumps(body).decode()
