"""Impact of a hazard footprint: who and what is inside, whom to call, where to send people.

InaSAFE's hazard × exposure, aggregated by grid and village, with what a Chinese commander
needs next: the responsible persons and grid workers, shelters with capacity, the 转移清单.

Every exposure layer is aggregated in PostGIS in one statement grouped by (grid, village,
class): the footprint is cut into small pieces (``ST_Subdivide``) so each piece probes the
GiST index with a small box, and a feature touching two pieces is counted once (``DISTINCT``).
Totals and per-village rows are sums of the per-grid rows, so they reconcile exactly. Only
rows inside the caller's area are counted, like every other read.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gis_service.db.models import RISK_COLORS, STRUCTURES
from gis_service.domain.pii import mask_name, mask_phone
from gis_service.domain.scope import Principal
from gis_service.impact.footprint import Footprint
from gis_service.impact.scoping import code_scope_sql

#: Facility kinds counted one by one (the rest go to ``facilities_other``).
FACILITY_KINDS = ("school", "hospital", "welfare_home")
#: Enterprise colours listed by name (all four are counted).
LISTED_COLOURS = ("red", "orange")
UNKNOWN = "unknown"

COLUMNS: tuple[str, ...] = (
    "buildings",
    *(f"buildings_{s}" for s in (*STRUCTURES, UNKNOWN)),
    "households",
    "population",
    "vulnerable",
    "facilities",
    *(f"facilities_{k}" for k in (*FACILITY_KINDS, "other")),
    "facilities_people",
    "enterprises",
    *(f"enterprises_{c}" for c in RISK_COLORS),
    "geohazard_points",
    "geohazard_threatened_households",
    "geohazard_threatened_people",
)
LABELS_ZH = {
    "buildings": "房屋（栋）",
    "buildings_masonry": "砌体结构",
    "buildings_reinforced_concrete": "钢筋混凝土结构",
    "buildings_steel": "钢结构",
    "buildings_wood": "木结构",
    "buildings_other": "其他结构",
    "buildings_unknown": "结构不详",
    "households": "户数",
    "population": "人数",
    "vulnerable": "弱势人员",
    "facilities": "公共服务设施",
    "facilities_school": "学校",
    "facilities_hospital": "医院",
    "facilities_welfare_home": "福利院/养老院",
    "facilities_other": "其他设施",
    "facilities_people": "设施内人员",
    "enterprises": "企业",
    "enterprises_red": "重大风险（红）企业",
    "enterprises_orange": "较大风险（橙）企业",
    "enterprises_yellow": "一般风险（黄）企业",
    "enterprises_blue": "低风险（蓝）企业",
    "geohazard_points": "地灾隐患点",
    "geohazard_threatened_households": "受威胁户数",
    "geohazard_threatened_people": "受威胁人数",
}

#: The footprint's pieces (cut once per run by :func:`_pieces`), each a small GiST probe.
_FP = (
    "fp AS MATERIALIZED (SELECT ST_GeomFromWKB(w, 4490) AS g"
    " FROM unnest(CAST(:pieces AS bytea[])) AS w)"
)


async def _pieces(conn: AsyncConnection, wkb: bytes) -> list[bytes]:
    """The footprint cut into pieces of ≤ 96 vertices, once for all the run's statements."""
    rows = await conn.execute(
        text("SELECT ST_AsBinary(ST_Subdivide(ST_GeomFromWKB(:wkb, 4490), 96))"), {"wkb": wkb}
    )
    return [bytes(r[0]) for r in rows]


def _hits(table: str, scope: str | None, extra: str = "true") -> str:
    """CTE ``hit``: ids of ``table`` rows meeting the footprint, in scope, each once."""
    return f"""{_FP},
hit AS (SELECT DISTINCT t.id FROM fp JOIN {table} t ON t.geom && fp.g
        AND ST_Intersects(t.geom, fp.g)
        WHERE {code_scope_sql("t.admin_code", scope)} AND {extra})"""


def _buildings_sql(scope: str | None) -> str:
    """Buildings per (grid, village, structure) in one pass over the index probes.

    The hit rows carry their columns (no join back), each building once (``DISTINCT ON``),
    with the centre of its box for the shelter distances.
    """
    vuln = (
        "CASE WHEN t.attributes->>'vulnerable_people' ~ '^[0-9]{1,6}$'"
        " THEN (t.attributes->>'vulnerable_people')::int ELSE 0 END"
    )
    return f"""WITH {_FP},
hit AS (SELECT DISTINCT ON (t.id) t.grid_code, t.admin_code, t.structure, t.households,
               t.population, {vuln} AS vulnerable,
               (ST_XMin(t.geom) + ST_XMax(t.geom)) / 2 AS cx,
               (ST_YMin(t.geom) + ST_YMax(t.geom)) / 2 AS cy
        FROM fp JOIN building t ON t.geom && fp.g AND ST_Intersects(t.geom, fp.g)
        WHERE {code_scope_sql("t.admin_code", scope)}
        ORDER BY t.id)
SELECT grid_code, admin_code, coalesce(structure, '{UNKNOWN}') AS cat, count(*) AS n,
       sum(households) AS households, sum(population) AS population,
       sum(vulnerable) AS vulnerable,
       count(*) FILTER (WHERE population > 0) AS inhabited,
       sum(cx) FILTER (WHERE population > 0) AS sx,
       sum(cy) FILTER (WHERE population > 0) AS sy
FROM hit GROUP BY 1, 2, 3"""


def _facilities_sql(scope: str | None) -> str:
    return f"""WITH {_hits("facility", scope)}
SELECT t.grid_code, t.admin_code, t.kind AS cat, count(*) AS n,
       sum(coalesce(t.people, 0)) AS people
FROM hit JOIN facility t USING (id) GROUP BY 1, 2, 3"""


def _enterprises_sql(scope: str | None) -> str:
    return f"""WITH {_hits("enterprise", scope)}
SELECT t.grid_code, t.admin_code, t.risk_level AS cat, count(*) AS n
FROM hit JOIN enterprise t USING (id) GROUP BY 1, 2, 3"""


def _geohazards_sql(scope: str | None) -> str:
    return f"""WITH {_hits("geohazard_point", scope, "NOT t.closed")}
SELECT t.grid_code, t.admin_code, 'all' AS cat, count(*) AS n,
       sum(t.threatened_households) AS households, sum(t.threatened_people) AS people
FROM hit JOIN geohazard_point t USING (id) GROUP BY 1, 2, 3"""


def _list_sql(table: str, columns: str, scope: str | None, extra: str = "true") -> str:
    return f"""WITH {_hits(table, scope, extra)}
SELECT t.id, ST_X(t.geom) AS lon, ST_Y(t.geom) AS lat, t.grid_code, t.admin_code, {columns}
FROM hit JOIN {table} t USING (id) ORDER BY t.id"""


def _add_buildings(into: dict[str, int], m: Any) -> None:
    into["buildings"] += int(m["n"])
    into[f"buildings_{m['cat'] if m['cat'] in STRUCTURES else UNKNOWN}"] += int(m["n"])
    into["households"] += int(m["households"] or 0)
    into["population"] += int(m["population"] or 0)
    into["vulnerable"] += int(m["vulnerable"] or 0)


def _add_facilities(into: dict[str, int], m: Any) -> None:
    into["facilities"] += int(m["n"])
    into[f"facilities_{m['cat'] if m['cat'] in FACILITY_KINDS else 'other'}"] += int(m["n"])
    into["facilities_people"] += int(m["people"] or 0)


def _add_enterprises(into: dict[str, int], m: Any) -> None:
    into["enterprises"] += int(m["n"])
    into[f"enterprises_{m['cat']}"] += int(m["n"])


def _add_geohazards(into: dict[str, int], m: Any) -> None:
    into["geohazard_points"] += int(m["n"])
    into["geohazard_threatened_households"] += int(m["households"] or 0)
    into["geohazard_threatened_people"] += int(m["people"] or 0)


_AGGREGATES = (
    (_buildings_sql, _add_buildings),
    (_facilities_sql, _add_facilities),
    (_enterprises_sql, _add_enterprises),
    (_geohazards_sql, _add_geohazards),
)


def _row(counts: dict[str, int]) -> dict[str, int]:
    return {c: int(counts.get(c, 0)) for c in COLUMNS}


@dataclass
class Impact:
    """The answer of one impact run."""

    footprint: dict[str, Any]
    totals: dict[str, int]
    by_village: list[dict[str, Any]]
    by_grid: list[dict[str, Any]]
    contacts: list[dict[str, Any]]
    enterprises: list[dict[str, Any]]
    geohazard_points: list[dict[str, Any]]
    facilities: list[dict[str, Any]]
    shelters: list[dict[str, Any]]
    assignment: list[dict[str, Any]]
    unassigned: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        """JSON answer (see ``/work/helpers/IMPACT_API.md``)."""
        return {
            "footprint": self.footprint,
            "columns": list(COLUMNS),
            "labels_zh": LABELS_ZH,
            "totals": self.totals,
            "by_village": self.by_village,
            "by_grid": self.by_grid,
            "contacts": self.contacts,
            "enterprises": self.enterprises,
            "geohazard_points": self.geohazard_points,
            "facilities": self.facilities,
            "shelters": self.shelters,
            "assignment": self.assignment,
            "unassigned": self.unassigned,
        }

    def evacuation_list(self) -> list[dict[str, Any]]:
        """转移清单: one row per affected grid with its people, staff and destinations."""
        staff: dict[str, list[str]] = defaultdict(list)
        leads: dict[str, list[str]] = defaultdict(list)
        for c in self.contacts:
            who = f"{c['name'] or ''} {c['phone'] or ''}".strip()
            if c["role"] in ("grid_worker", "grid_leader") and c["grid_code"]:
                staff[c["grid_code"]].append(who)
            elif c["village_code"] and who not in leads[c["village_code"]]:
                leads[c["village_code"]].append(who)
        dest: dict[str, list[str]] = defaultdict(list)
        for a in self.assignment:
            dest[a["village_code"]].append(
                f"{a['shelter']}（{a['people']}人，{a['distance_m']}米）"
            )
        rows = []
        for g in self.by_grid:
            if not g["population"] and not g["households"]:
                continue
            v = g["village_code"] or ""
            rows.append(
                {
                    "village_code": v,
                    "village": g["village"],
                    "grid_code": g["grid_code"],
                    "grid_name": g["grid_name"],
                    "households": g["households"],
                    "population": g["population"],
                    "vulnerable": g["vulnerable"],
                    "grid_staff": "；".join(staff.get(g["grid_code"] or "", [])),
                    "responsible": "；".join(leads.get(v, [])[:6]),
                    "shelters": "；".join(dest.get(v, [])) or "未安置（容量不足）",
                }
            )
        return rows


EVACUATION_COLUMNS = (
    ("village_code", "村社区代码"),
    ("village", "村（社区）"),
    ("grid_code", "网格编码"),
    ("grid_name", "网格"),
    ("households", "应转移户数"),
    ("population", "应转移人数"),
    ("vulnerable", "弱势人员"),
    ("grid_staff", "网格员/网格长及电话"),
    ("responsible", "责任人及电话"),
    ("shelters", "安置场所（人数，距离）"),
)


async def _names(conn: AsyncConnection, codes: list[str]) -> dict[str, str]:
    if not codes:
        return {}
    rows = await conn.execute(
        text("SELECT code, name FROM admin_division WHERE code = ANY(:c)"), {"c": codes}
    )
    return {r.code: r.name for r in rows}


async def _grid_info(conn: AsyncConnection, codes: list[str]) -> dict[str, dict[str, Any]]:
    if not codes:
        return {}
    rows = await conn.execute(
        text(
            "SELECT g.id, g.grid_code, g.name, g.community_code FROM grid g"
            " WHERE g.grid_code = ANY(:c) AND g.valid_to IS NULL"
        ),
        {"c": codes},
    )
    return {r.grid_code: dict(r._mapping) for r in rows}


def _person(principal: Principal, name: str | None, phone: str | None) -> tuple[Any, Any]:
    if principal.sees_pii:
        return name, phone
    return mask_name(name), mask_phone(phone)


async def _contacts(
    conn: AsyncConnection,
    principal: Principal,
    grid_ids: list[int],
    targets: dict[str, list[int]],
    grid_of: dict[int, str],
) -> list[dict[str, Any]]:
    """Grid workers and leaders of the grids hit, then the responsible persons.

    Responsible persons of the hazard points, zones, red/orange enterprises and villages hit.
    """
    out: list[dict[str, Any]] = []
    if grid_ids:
        rows = await conn.execute(
            text(
                "SELECT ga.role, p.name, p.phone, p.org, g.id AS gid, g.grid_code, g.name AS gname,"
                " g.community_code FROM grid_assignment ga JOIN person p ON p.id = ga.person_id"
                " JOIN grid g ON g.id = ga.grid_id WHERE ga.grid_id = ANY(:ids)"
                " AND ga.end_date IS NULL AND ga.role IN ('grid_worker', 'grid_leader')"
                " ORDER BY g.grid_code, ga.role, p.name"
            ),
            {"ids": grid_ids},
        )
        for r in rows:
            name, phone = _person(principal, r.name, r.phone)
            out.append(
                {
                    "role": r.role,
                    "duty": None,
                    "level": None,
                    "name": name,
                    "phone": phone,
                    "org": r.org,
                    "target_type": "grid",
                    "target_id": int(r.gid),
                    "target_name": r.gname,
                    "grid_code": r.grid_code,
                    "village_code": r.community_code,
                }
            )
    labels = {
        "geohazard_point": "SELECT id, name, grid_code, admin_code FROM geohazard_point",
        "geohazard_zone": "SELECT id, name, grid_code, admin_code FROM geohazard_zone",
        "enterprise": "SELECT id, name, grid_code, admin_code FROM enterprise",
        "admin_division": "SELECT id, name, NULL::varchar AS grid_code, code AS admin_code"
        " FROM admin_division",
    }
    for target_type, ids in targets.items():
        if not ids:
            continue
        rows = await conn.execute(
            text(
                f"WITH t AS ({labels[target_type]} WHERE id = ANY(:ids))"
                " SELECT r.duty, r.level, p.name, p.phone, p.org, t.id, t.name AS tname,"
                " t.grid_code, t.admin_code FROM responsibility r"
                " JOIN t ON r.target_id = t.id JOIN person p ON p.id = r.person_id"
                " WHERE r.target_type = :tt AND (r.valid_to IS NULL OR r.valid_to >= current_date)"
                " ORDER BY t.id, r.level, r.duty, p.name"
            ),
            {"ids": ids, "tt": target_type},
        )
        for r in rows:
            name, phone = _person(principal, r.name, r.phone)
            out.append(
                {
                    "role": "responsible",
                    "duty": r.duty,
                    "level": r.level,
                    "name": name,
                    "phone": phone,
                    "org": r.org,
                    "target_type": target_type,
                    "target_id": int(r.id),
                    "target_name": r.tname,
                    "grid_code": r.grid_code or grid_of.get(int(r.id)),
                    "village_code": r.admin_code,
                }
            )
    return out


_SHELTERS_SQL = """WITH {fp}
SELECT s.id, s.name, s.grade, s.space_type, s.capacity, s.current_occupancy,
       ST_X(s.geom) AS lon, ST_Y(s.geom) AS lat
FROM shelter s
WHERE {scope} AND s.status <> 'full' AND s.capacity > s.current_occupancy
  AND NOT EXISTS (SELECT 1 FROM fp WHERE s.geom && fp.g AND ST_Intersects(s.geom, fp.g))
ORDER BY s.geom <-> ST_SetSRID(ST_MakePoint(:cx, :cy), 4490)
LIMIT :k"""


def great_circle_m(lon1: Any, lat1: Any, lon2: Any, lat2: Any) -> Any:
    """Haversine distance in metres (mean Earth radius; within 0.5 % of the ellipsoid).

    >>> round(float(great_circle_m(113.0, 28.0, 113.01, 28.0)))
    982
    """
    la1, la2 = np.radians(lat1), np.radians(lat2)
    dlat, dlon = la2 - la1, np.radians(lon2) - np.radians(lon1)
    a = np.sin(dlat / 2) ** 2 + np.cos(la1) * np.cos(la2) * np.sin(dlon / 2) ** 2
    return 2 * 6_371_008.8 * np.arcsin(np.sqrt(a))


def assign_shelters(
    needs: list[tuple[str, int]],
    capacity: dict[int, int],
    distance: dict[tuple[str, int], float],
) -> tuple[list[tuple[str, int, int]], dict[str, int]]:
    """Greedy capacity-respecting assignment: biggest village first, nearest shelter first.

    Args:
        needs: (village code, people to move).
        capacity: shelter id → remaining capacity.
        distance: (village, shelter) → metres.

    Returns:
        ``[(village, shelter, people)]`` and the people left without a place per village.

    >>> assign_shelters([("a", 5), ("b", 3)], {1: 4, 2: 10}, {("a", 1): 1, ("a", 2): 2,
    ...     ("b", 1): 1, ("b", 2): 5})
    ([('a', 1, 4), ('a', 2, 1), ('b', 2, 3)], {})
    """
    left = dict(capacity)
    out: list[tuple[str, int, int]] = []
    short: dict[str, int] = {}
    for village, people in sorted(needs, key=lambda n: (-n[1], n[0])):
        todo = people
        order = sorted(
            (s for s in left if (village, s) in distance), key=lambda s: (distance[village, s], s)
        )
        for s in order:
            if todo <= 0:
                break
            take = min(todo, left[s])
            if take > 0:
                out.append((village, s, take))
                left[s] -= take
                todo -= take
        if todo > 0:
            short[village] = todo
    return out, short


async def _shelters(
    conn: AsyncConnection,
    principal: Principal,
    *,
    params: dict[str, Any],
    footprint: BaseGeometry,
    needs: dict[str, tuple[int, float, float]],
    names: dict[str, str],
    listed: int,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    codes = sorted(needs)
    c = footprint.centroid
    total = sum(n[0] for n in needs.values())
    k = max(listed, min(400, 20 + total // 200))
    sql = _SHELTERS_SQL.format(fp=_FP, scope=code_scope_sql("s.admin_code", principal.scope_code))
    rows = (await conn.execute(text(sql), {**params, "cx": c.x, "cy": c.y, "k": k})).all()
    sx = np.array([float(r.lon) for r in rows])
    sy = np.array([float(r.lat) for r in rows])
    vx = np.array([needs[v][1] for v in codes] or [c.x])
    vy = np.array([needs[v][2] for v in codes] or [c.y])
    dist = great_circle_m(vx[:, None], vy[:, None], sx[None, :], sy[None, :])
    info: dict[int, dict[str, Any]] = {}
    distance: dict[tuple[str, int], float] = {}
    nearest: dict[int, float] = {}
    for j, r in enumerate(rows):
        sid = int(r.id)
        info[sid] = {
            "id": sid,
            "name": r.name,
            "grade": r.grade,
            "space_type": r.space_type,
            "capacity": int(r.capacity),
            "occupancy": int(r.current_occupancy),
            "remaining": int(r.capacity) - int(r.current_occupancy),
            "lon": round(float(r.lon), 7),
            "lat": round(float(r.lat), 7),
        }
        for i, v in enumerate(codes):
            distance[v, sid] = float(dist[i, j])
        nearest[sid] = float(dist[:, j].min())
    plan, short = assign_shelters(
        [(v, needs[v][0]) for v in codes if needs[v][0] > 0],
        {s: i["remaining"] for s, i in info.items()},
        distance,
    )
    assigned: dict[int, int] = defaultdict(int)
    for _, s, n in plan:
        assigned[s] += n
    shown = sorted(info, key=lambda s: (nearest[s], s))[:listed]
    shown += [s for s in sorted(assigned) if s not in shown]
    shelters = [
        {**info[s], "assigned": assigned.get(s, 0), "distance_m": round(nearest[s])} for s in shown
    ]
    assignment = [
        {
            "village_code": v,
            "village": names.get(v),
            "shelter_id": s,
            "shelter": info[s]["name"],
            "people": n,
            "distance_m": round(distance[v, s]),
        }
        for v, s, n in plan
    ]
    unassigned = [
        {"village_code": v, "village": names.get(v), "people": n} for v, n in sorted(short.items())
    ]
    return shelters, assignment, unassigned


async def run(
    conn: AsyncConnection, principal: Principal, footprint: Footprint, *, shelters: int = 10
) -> Impact:
    """The impact of ``footprint`` inside the caller's area."""
    scope = principal.scope_code
    wkb = shapely.to_wkb(footprint.geom)
    params: dict[str, Any] = {"pieces": await _pieces(conn, wkb)}
    if scope:
        params["scope"] = scope
    # Rows outside every grid are kept per village under the key "-<village code>".
    per_grid: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    grid_village: dict[str, str | None] = {}
    # People to move per village, and the sums of their buildings' coordinates (a centre).
    moving: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    for sql, add in _AGGREGATES:
        for r in await conn.execute(text(sql(scope)), params):
            key = r.grid_code or f"-{r.admin_code or ''}"
            add(per_grid[key], r._mapping)
            grid_village.setdefault(key, r.admin_code)
            if add is _add_buildings and r.admin_code and r.inhabited:
                m = moving[r.admin_code]
                m[0] += int(r.population or 0)
                m[1] += int(r.inhabited)
                m[2] += float(r.sx)
                m[3] += float(r.sy)
    gcodes = sorted(k for k in per_grid if k and not k.startswith("-"))
    ginfo = await _grid_info(conn, gcodes)
    village_codes = sorted(
        {(ginfo.get(g, {}).get("community_code") or v) for g, v in grid_village.items() if v}
        | {str(i["community_code"]) for i in ginfo.values()}
    )
    names = await _names(conn, village_codes)
    by_grid: list[dict[str, Any]] = []
    per_village: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for key in sorted(per_grid, key=lambda k: (k.startswith("-"), k)):
        info = ginfo.get(key, {})
        v = info.get("community_code") or grid_village.get(key)
        row = _row(per_grid[key])
        for c, n in row.items():
            per_village[v or ""][c] += n
        by_grid.append(
            {
                "grid_code": None if key.startswith("-") else key,
                "grid_name": info.get("name"),
                "village_code": v,
                "village": names.get(v or ""),
                **row,
            }
        )
    totals = _row({c: sum(int(g[c]) for g in by_grid) for c in COLUMNS})
    by_village = [
        {"village_code": v or None, "village": names.get(v), **_row(per_village[v])}
        for v in sorted(per_village)
    ]
    # Lists: red/orange enterprises, open geohazard points, key facilities.
    ent = [
        dict(r._mapping)
        for r in await conn.execute(
            text(
                _list_sql(
                    "enterprise",
                    "t.name, t.risk_level, t.sector",
                    scope,
                    "t.risk_level IN ('red', 'orange')",
                )
            ),
            params,
        )
    ]
    geo = [
        dict(r._mapping)
        for r in await conn.execute(
            text(
                _list_sql(
                    "geohazard_point",
                    "t.code, t.name, t.kind, t.danger_grade, t.threatened_households,"
                    " t.threatened_people",
                    scope,
                    "NOT t.closed",
                )
            ),
            params,
        )
    ]
    fac = [
        dict(r._mapping)
        for r in await conn.execute(
            text(
                _list_sql(
                    "facility",
                    "t.name, t.kind, t.people",
                    scope,
                    "t.kind IN ('school', 'hospital', 'welfare_home')",
                )
            ),
            params,
        )
    ]
    zones = [
        int(r.id)
        for r in await conn.execute(
            text(f"WITH {_hits('geohazard_zone', scope)} SELECT id FROM hit ORDER BY id"),
            params,
        )
    ]
    village_ids = [
        int(r.id)
        for r in await conn.execute(
            text("SELECT id FROM admin_division WHERE code = ANY(:c) AND level = 'village'"),
            {"c": [v for v in village_codes if v]},
        )
    ]
    grid_of = {int(e["id"]): e["grid_code"] for e in ent + geo}
    contacts = await _contacts(
        conn,
        principal,
        sorted(int(i["id"]) for i in ginfo.values()),
        {
            "geohazard_point": [int(g["id"]) for g in geo],
            "geohazard_zone": zones,
            "enterprise": [int(e["id"]) for e in ent],
            "admin_division": village_ids,
        },
        grid_of,
    )
    needs = {v: (int(m[0]), m[2] / m[1], m[3] / m[1]) for v, m in moving.items()}
    shel, assignment, unassigned = await _shelters(
        conn,
        principal,
        params=params,
        footprint=footprint.geom,
        needs=needs,
        names=names,
        listed=shelters,
    )
    for lst in (ent, geo, fac):
        for item in lst:
            item["id"] = int(item["id"])
            item["lon"] = round(float(item["lon"]), 7)
            item["lat"] = round(float(item["lat"]), 7)
            item["village_code"] = item.pop("admin_code")
    simplified = (
        await conn.execute(
            text(
                "WITH f AS (SELECT ST_GeomFromWKB(:wkb, 4490) AS g)"
                " SELECT ST_AsGeoJSON(ST_SimplifyPreserveTopology(f.g, greatest(0.00005,"
                " (ST_XMax(f.g) - ST_XMin(f.g) + ST_YMax(f.g) - ST_YMin(f.g)) / 4000)),"
                " 6, 0)::json AS g,"
                " ST_Area(f.g::geography) / 1e6 AS km2 FROM f"
            ),
            {"wkb": wkb},
        )
    ).one()
    return Impact(
        footprint={
            "kind": footprint.kind,
            "description": footprint.description,
            "area_km2": round(float(simplified.km2), 4),
            "geometry": simplified.g,
        },
        totals=totals,
        by_village=by_village,
        by_grid=by_grid,
        contacts=contacts,
        enterprises=ent,
        geohazard_points=geo,
        facilities=fac,
        shelters=shel,
        assignment=assignment,
        unassigned=unassigned,
    )
