"""Who answers for each grid: assignments, the roster import (网格员花名册) and the reports.

One grid worker (网格员) per grid, one grid leader (网格长) per community, instructors
(网格指导员) per township; a temporary stand-in is an assignment with an end date. Reports:
grids with no current worker, workers holding more than one grid, stand-ins in force.
Everything is limited to the caller's area.
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, select, text

from gis_service.db.models import GRID_ROLES, AdminDivision
from gis_service.domain.pii import mask_name, mask_phone
from gis_service.domain.scope import Principal, in_scope
from gis_service.errors import FieldProblem, InvalidInput, NotFound

__all__ = [
    "METRICS",
    "Assignment",
    "import_roster",
    "list_grids",
    "put_assignments",
    "reports",
]

PHONE = re.compile(r"^[0-9+()\- ]{5,20}$")
#: Metrics ``GET /grids`` can add, each a correlated count on the grid's stamped rows.
METRICS: dict[str, str] = {
    "households": "g.households",
    "population": "g.population",
    "workers": """(SELECT count(*) FROM grid_assignment a WHERE a.grid_id = g.id
                   AND a.role = 'grid_worker' AND a.start_date <= current_date
                   AND (a.end_date IS NULL OR a.end_date >= current_date))""",
    "red_orange": """(SELECT count(*) FROM enterprise e WHERE e.grid_code = g.grid_code
                      AND e.risk_level IN ('red', 'orange'))""",
    "hazards": """(SELECT count(*) FROM safety_hazard h WHERE h.grid_code = g.grid_code
                   AND h.status <> 'closed')""",
}


class Assignment(BaseModel):
    """One person in one role on a grid; ``end_date`` makes it a temporary stand-in."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["grid_worker", "grid_leader", "grid_instructor", "grid_supervisor", "grid_admin"]
    name: str = Field(min_length=1, max_length=40)
    phone: str | None = Field(default=None, pattern=PHONE.pattern)
    org: str | None = Field(default=None, max_length=80)
    employment: Literal["fulltime", "parttime"] | None = None
    start_date: dt.date | None = None
    end_date: dt.date | None = None


def _bad(field: str, message: str) -> InvalidInput:
    return InvalidInput(detail=f"{field}: {message}", fields=[FieldProblem(field, message)])


def _grid(conn: Connection, principal: Principal, grid_code: str) -> Any:
    row = conn.execute(
        text(
            """SELECT g.id, g.grid_code, g.community_code FROM grid g
               WHERE g.grid_code = :code AND g.valid_to IS NULL"""
        ),
        {"code": grid_code},
    ).one_or_none()
    if (
        row is None
        or not conn.execute(
            select(AdminDivision.code).where(
                AdminDivision.code == row.community_code, in_scope(AdminDivision.code, principal)
            )
        ).first()
    ):
        raise NotFound(detail=f"grid {grid_code} not found", detail_zh=f"网格 {grid_code} 不存在")
    return row


def _person(conn: Connection, name: str, phone: str | None, org: str | None, admin: str) -> int:
    pid = conn.execute(
        text(
            """SELECT id FROM person WHERE name = :n AND phone IS NOT DISTINCT FROM :p
               ORDER BY id LIMIT 1"""
        ),
        {"n": name, "p": phone},
    ).scalar_one_or_none()
    if pid is not None:
        return int(pid)
    return int(
        conn.execute(
            text(
                """INSERT INTO person (name, phone, org, admin_code, source)
                   VALUES (:n, :p, :o, :a, 'grid-roster') RETURNING id"""
            ),
            {"n": name, "p": phone, "o": org, "a": admin},
        ).scalar_one()
    )


def put_assignments(
    conn: Connection, principal: Principal, grid_code: str, items: list[Assignment]
) -> dict[str, Any]:
    """Set the people of a grid: for each role given, open permanent assignments are replaced.

    A temporary stand-in (``end_date`` given) is added beside the permanent holder.
    """
    grid = _grid(conn, principal, grid_code)
    today = dt.date.today()
    roles = sorted({a.role for a in items if a.end_date is None})
    if sum(1 for a in items if a.role == "grid_worker" and a.end_date is None) > 1:
        raise _bad("role", "one grid worker per grid (add others as stand-ins with an end_date)")
    for i, a in enumerate(items):
        start = a.start_date or today
        if a.end_date is not None and a.end_date < start:
            raise _bad(f"{i}.end_date", "end_date is before start_date")
    # permanent holders of the replaced roles: ended yesterday (rows begun today are removed)
    params = {"g": grid.id, "roles": roles, "today": today}
    ended = conn.execute(
        text(
            """UPDATE grid_assignment SET end_date = CAST(:today AS date) - 1
               WHERE grid_id = :g AND role = ANY(:roles) AND end_date IS NULL
                 AND start_date < :today"""
        ),
        params,
    ).rowcount
    ended += conn.execute(
        text(
            """DELETE FROM grid_assignment
               WHERE grid_id = :g AND role = ANY(:roles) AND end_date IS NULL
                 AND start_date >= :today"""
        ),
        params,
    ).rowcount
    for a in items:
        pid = _person(conn, a.name, a.phone, a.org, grid.community_code)
        conn.execute(
            text(
                """INSERT INTO grid_assignment (grid_id, person_id, role, employment, start_date,
                                                end_date, source)
                   VALUES (:g, :p, :r, :e, :s, :end, :src)"""
            ),
            {
                "g": grid.id,
                "p": pid,
                "r": a.role,
                "e": a.employment,
                "s": a.start_date or today,
                "end": a.end_date,
                "src": f"user:{principal.login}",
            },
        )
    return {"grid_code": grid_code, "ended": int(ended or 0), "added": len(items)}


_ROSTER_COLUMNS = {
    "name": ("姓名", "name"),
    "phone": ("电话", "联系电话", "手机", "phone"),
    "grid_code": ("网格编码", "网格代码", "grid_code"),
    "grid_name": ("网格名称", "grid_name"),
    "role": ("角色", "职务", "role"),
}
_ROLE_ZH = {
    "网格员": "grid_worker",
    "专职网格员": "grid_worker",
    "兼职网格员": "grid_worker",
    "网格长": "grid_leader",
    "网格指导员": "grid_instructor",
    "网格监督员": "grid_supervisor",
    "网格管理员": "grid_admin",
}


def import_roster(conn: Connection, principal: Principal, path: Path) -> dict[str, Any]:
    """Bulk-assign from a 网格员花名册 (.xlsx: 姓名, 电话, 网格编码 or 网格名称[, 角色]).

    All rows are checked first; any bad row refuses the whole file with row numbers.
    """
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
        rows = list(wb.worksheets[0].iter_rows(values_only=True))
        wb.close()
    except (InvalidFileException, zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        raise _bad("file", "not a readable .xlsx workbook") from exc
    if not rows:
        raise _bad("file", "empty workbook")
    header = [str(h).strip() if h is not None else "" for h in rows[0]]
    col: dict[str, int] = {}
    for key, names in _ROSTER_COLUMNS.items():
        for i, h in enumerate(header):
            if h in names:
                col[key] = i
                break
    if "name" not in col or ("grid_code" not in col and "grid_name" not in col):
        raise _bad("file", "need columns 姓名 and 网格编码 (or 网格名称)")
    by_name = {
        r.name: r.grid_code
        for r in conn.execute(text("SELECT name, grid_code FROM grid WHERE valid_to IS NULL"))
    }
    known = set(by_name.values())
    problems: list[dict[str, Any]] = []
    plan: list[tuple[str, Assignment]] = []
    for n, r in enumerate(rows[1:], start=2):

        def cell(key: str, r: tuple[Any, ...] = r) -> str:
            i = col.get(key)
            v = r[i] if i is not None and i < len(r) else None
            return "" if v is None else str(v).strip()

        if not any(v is not None and str(v).strip() for v in r):
            continue
        code = cell("grid_code") or by_name.get(cell("grid_name"), "")
        role = _ROLE_ZH.get(cell("role"), cell("role") or "grid_worker")
        phone = cell("phone") or None
        if not cell("name"):
            problems.append({"row": n, "column": "姓名", "reason": "empty"})
        elif code not in known:
            problems.append({"row": n, "column": "网格编码", "reason": "unknown grid"})
        elif role not in GRID_ROLES:
            problems.append({"row": n, "column": "角色", "reason": f"unknown role {role}"})
        elif phone is not None and not PHONE.match(phone):
            problems.append({"row": n, "column": "电话", "reason": "not a phone number"})
        else:
            item = Assignment.model_validate({"role": role, "name": cell("name"), "phone": phone})
            plan.append((code, item))
    if problems:
        raise InvalidInput(
            detail=f"roster refused: {len(problems)} bad rows (first: row {problems[0]['row']})",
            detail_zh="花名册有错误行，未导入",
            fields=[
                FieldProblem("file", f"row {p['row']} {p['column']}: {p['reason']}")
                for p in problems[:20]
            ],
            extra={"problems": problems[:200]},
        )
    grids: dict[str, list[Assignment]] = {}
    for code, a in plan:
        grids.setdefault(code, []).append(a)
    for code, items in grids.items():
        try:
            put_assignments(conn, principal, code, items)
        except NotFound as exc:
            raise _bad("file", f"grid {code} not found in your area") from exc
    return {"rows": len(plan), "grids": len(grids)}


def _scope_rows(conn: Connection, principal: Principal, admin: str) -> list[str]:
    codes = list(
        conn.execute(
            select(AdminDivision.code).where(
                AdminDivision.level == "village",
                AdminDivision.ancestors.contains([admin]),
                in_scope(AdminDivision.code, principal),
            )
        ).scalars()
    )
    if not codes:
        raise NotFound(detail=f"admin {admin} not found", extra={"field": "admin"})
    return codes


def list_grids(
    conn: Connection, principal: Principal, admin: str, metrics: list[str]
) -> list[dict[str, Any]]:
    """Current grids under ``admin`` with the requested metrics (names from :data:`METRICS`)."""
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise _bad("metrics", f"unknown metric {unknown[0]!r}; use {', '.join(METRICS)}")
    codes = _scope_rows(conn, principal, admin)
    cols = "".join(f", {METRICS[m]} AS {m}" for m in metrics)  # names from the registry only
    rows = conn.execute(
        text(
            f"""SELECT g.grid_code, g.name, g.kind, g.community_code, g.version,
                       g.valid_from{cols}
                FROM grid g WHERE g.valid_to IS NULL AND g.community_code = ANY(:codes)
                ORDER BY g.grid_code"""
        ),
        {"codes": codes},
    ).all()
    out = []
    for r in rows:
        d = dict(r._mapping)
        d["valid_from"] = r.valid_from.isoformat()
        out.append(d)
    return out


def reports(conn: Connection, principal: Principal, admin: str) -> dict[str, Any]:
    """Unassigned grids, workers with more than one grid, temporary stand-ins in force."""
    codes = _scope_rows(conn, principal, admin)
    open_ = "a.start_date <= current_date AND (a.end_date IS NULL OR a.end_date >= current_date)"
    unassigned = conn.execute(
        text(
            f"""SELECT g.grid_code, g.name FROM grid g
                WHERE g.valid_to IS NULL AND g.community_code = ANY(:codes)
                  AND NOT EXISTS (SELECT 1 FROM grid_assignment a WHERE a.grid_id = g.id
                                  AND a.role = 'grid_worker' AND {open_})
                ORDER BY g.grid_code"""
        ),
        {"codes": codes},
    ).all()
    multi = conn.execute(
        text(
            f"""SELECT p.name, p.phone, array_agg(g.grid_code ORDER BY g.grid_code) AS grids
                FROM grid_assignment a JOIN grid g ON g.id = a.grid_id
                JOIN person p ON p.id = a.person_id
                WHERE g.valid_to IS NULL AND g.community_code = ANY(:codes)
                  AND a.role = 'grid_worker' AND a.end_date IS NULL AND {open_}
                GROUP BY p.id, p.name, p.phone HAVING count(DISTINCT g.id) > 1
                ORDER BY p.name"""
        ),
        {"codes": codes},
    ).all()
    standins = conn.execute(
        text(
            f"""SELECT g.grid_code, a.role, p.name, p.phone, a.start_date, a.end_date
                FROM grid_assignment a JOIN grid g ON g.id = a.grid_id
                JOIN person p ON p.id = a.person_id
                WHERE g.valid_to IS NULL AND g.community_code = ANY(:codes)
                  AND a.end_date IS NOT NULL AND a.end_date >= current_date AND {open_}
                ORDER BY g.grid_code"""
        ),
        {"codes": codes},
    ).all()

    def who(name: str, phone: str | None) -> dict[str, Any]:
        if principal.sees_pii:
            return {"name": name, "phone": phone}
        return {"name": mask_name(name), "phone": mask_phone(phone)}

    return {
        "unassigned_grids": [{"grid_code": r.grid_code, "name": r.name} for r in unassigned],
        "workers_with_several_grids": [
            {**who(r.name, r.phone), "grids": list(r.grids)} for r in multi
        ],
        "stand_ins": [
            {
                "grid_code": r.grid_code,
                "role": r.role,
                **who(r.name, r.phone),
                "start_date": r.start_date.isoformat(),
                "end_date": r.end_date.isoformat(),
            }
            for r in standins
        ],
    }
