"""Locate: point → village chain → grid → who to call; geological hazards there; nearest shelter.

The commander's and the hotline operator's question: "whose grid is this address in and who
do I call?". One set-based statement answers it for one point or for 10,000 (the points are
an ``unnest`` of two arrays), a second fetches the details of the distinct villages, grids,
hazard points and shelters found, so a batch costs two round trips however many points.
Everything is limited to the caller's area; names and phones are masked for roles that may
not see them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import TextClause
from sqlalchemy.ext.asyncio import AsyncConnection

from gis_service.db.engine import QueryConn
from gis_service.domain.scope import Principal
from gis_service.query import details
from gis_service.query.layers import scope_sql
from gis_service.query.sqlparts import (
    cached_text,
    distance_sql,
    knn_bound_sql,
    use_custom_plans,
    use_generic_plans,
    within_sql,
)

#: Geological-hazard points within this many metres count as "there" (plus any whose risk
#: zone covers the point).
GEOHAZARD_RADIUS_M = 500.0
#: Points per statement of a batch.
CHUNK = 500
#: Transactions (PostgreSQL backends) a batch uses at once.
BATCH_LANES = 2
#: Shelter states that take people now, as opposed to standby sites (``closed``).
OPEN_SHELTER = "t.status IN ('open', 'opening') AND t.capacity > t.current_occupancy"


def _main_sql(scope: str | None, *, batch: bool) -> str:
    """The locate statement; ``batch`` tests the area scope against a per-statement hash."""
    s_village = scope_sql("a.code", scope, per_row=not batch, hashed=batch)
    s_grid = scope_sql("g.community_code", scope, per_row=not batch, hashed=batch)
    s_t = scope_sql("t.admin_code", scope, per_row=not batch, hashed=batch)
    near_any = knn_bound_sql("shelter", s_t, "pts.p", "1")
    near_open = knn_bound_sql("shelter", f"{s_t} AND {OPEN_SHELTER}", "pts.p", "1")
    return f"""
WITH pts AS MATERIALIZED (
    -- The caller sends the points in space-filling-curve order (neighbours in a row probe
    -- the same polygons, which PostGIS then keeps prepared) with their input positions.
    SELECT u.i, ST_SetSRID(ST_MakePoint(u.x, u.y), 4490) AS p, u.y AS lat
    FROM unnest(CAST(:xs AS float8[]), CAST(:ys AS float8[]), CAST(:ix AS int[])) AS u(x, y, i)
), m AS (
SELECT pts.i, coalesce(gr.community_code, v.code) AS village, gr.id AS grid_id,
       z.ids AS zone_ids, gh.ids AS geohazard_ids, gh.dists AS geohazard_m,
       sh.id AS shelter_id, sh.d AS shelter_m, sh.open_id AS open_shelter_id,
       sh.open_d AS open_shelter_m
FROM pts
LEFT JOIN LATERAL (
    SELECT g.id, g.community_code FROM grid g
    WHERE g.valid_to IS NULL AND g.geom && pts.p AND ST_Intersects(g.geom, pts.p) AND {s_grid}
    ORDER BY g.grid_code LIMIT 1
) gr ON TRUE
LEFT JOIN LATERAL (
    -- A grid lies inside its community, so the village polygon is tested only off-grid.
    SELECT a.code FROM admin_division a
    WHERE gr.id IS NULL AND a.level = 'village' AND a.valid_to IS NULL AND a.boundary && pts.p
      AND ST_Intersects(a.boundary, pts.p) AND {s_village}
    ORDER BY a.code LIMIT 1
) v ON TRUE
LEFT JOIN LATERAL (
    SELECT array_agg(t.id ORDER BY t.id) AS ids FROM geohazard_zone t
    WHERE t.geom && pts.p AND ST_Intersects(t.geom, pts.p) AND {s_t}
) z ON TRUE
LEFT JOIN LATERAL (
    SELECT array_agg(h.id ORDER BY h.d, h.id) AS ids, array_agg(h.d ORDER BY h.d, h.id) AS dists
    FROM (
        SELECT t.id, {distance_sql("t.geom", "pts.p")} AS d FROM geohazard_point t
        WHERE NOT t.closed AND {s_t} AND t.id IN (
            SELECT t2.id FROM geohazard_point t2
            WHERE {within_sql("t2.geom", "pts.p", "pts.lat", ":gh_r")}
            UNION
            SELECT t3.id FROM geohazard_zone zz JOIN geohazard_point t3
              ON t3.geom && zz.geom AND ST_Intersects(zz.geom, t3.geom)
            WHERE zz.id = ANY(z.ids)
        )
    ) h
) gh ON TRUE
-- One radius serves both shelters: the nearest open one is no nearer than the nearest of
-- all, so the disc that surely holds the nearest open shelter holds the nearest one too
-- (COALESCE evaluates the second bound only when no open shelter exists).
LEFT JOIN LATERAL (SELECT coalesce({near_open}, {near_any}) AS r) nb ON TRUE
LEFT JOIN LATERAL (
    SELECT (array_agg(c.id ORDER BY c.d, c.id))[1] AS id, min(c.d) AS d,
           (array_agg(c.id ORDER BY c.d, c.id) FILTER (WHERE c.open))[1] AS open_id,
           min(c.d) FILTER (WHERE c.open) AS open_d
    FROM (
        SELECT t.id, {distance_sql("t.geom", "pts.p")} AS d, ({OPEN_SHELTER}) AS open
        FROM shelter t WHERE {s_t} AND {within_sql("t.geom", "pts.p", "pts.lat", "nb.r")}
    ) c
) sh ON TRUE
)
SELECT m.* FROM m
"""


@dataclass(frozen=True)
class Located:
    """The answer for one point, with PII already masked for the caller."""

    index: int
    lon: float
    lat: float
    chain: list[dict[str, Any]]
    grid: dict[str, Any] | None
    geohazards: list[dict[str, Any]]
    risk_zones: list[dict[str, Any]]
    nearest_shelter: dict[str, Any] | None
    nearest_open_shelter: dict[str, Any] | None

    @property
    def found(self) -> bool:
        """Whether a village of the caller's area holds the point."""
        return bool(self.chain)

    def as_dict(self) -> dict[str, Any]:
        """The nested JSON answer of ``GET /query/locate``."""
        village = self.chain[-1] if self.chain else None
        return {
            "point": [round(self.lon, 7), round(self.lat, 7)],
            "admin": self.chain,
            "village": village,
            "grid": self.grid,
            "geohazards": self.geohazards,
            "risk_zones": self.risk_zones,
            "nearest_shelter": self.nearest_shelter,
            "nearest_open_shelter": self.nearest_open_shelter,
        }

    def flat(self) -> dict[str, Any]:
        """One row of a batch answer (CSV/XLSX friendly)."""
        by_level = {u["level"]: u for u in self.chain}
        grid = self.grid or {}
        staff = grid.get("staff", [])
        worker: dict[str, Any] = next((s for s in staff if s["role"] == "grid_worker"), {})
        leader: dict[str, Any] = next((s for s in staff if s["role"] == "grid_leader"), {})
        shelter = self.nearest_shelter or {}
        open_shelter = self.nearest_open_shelter or {}
        leads = [
            f"{r['name']}({r['phone'] or ''})"
            for h in self.geohazards
            for r in h["responsible"]
            if r["duty"] == "prevention_lead" and r["level"] == "village"
        ]
        return {
            "found": self.found,
            "cgcs2000_lon": round(self.lon, 7),
            "cgcs2000_lat": round(self.lat, 7),
            "county": by_level.get("county", {}).get("name"),
            "township": by_level.get("township", {}).get("name"),
            "village_code": by_level.get("village", {}).get("code"),
            "village": by_level.get("village", {}).get("name"),
            "grid_code": grid.get("grid_code"),
            "grid_name": grid.get("name"),
            "grid_worker": worker.get("name"),
            "grid_worker_phone": worker.get("phone"),
            "grid_leader": leader.get("name"),
            "grid_leader_phone": leader.get("phone"),
            "geohazard_points": ";".join(h["code"] for h in self.geohazards),
            "geohazard_village_leads": ";".join(dict.fromkeys(leads)),
            "nearest_shelter": shelter.get("name"),
            "nearest_shelter_m": shelter.get("distance_m"),
            "nearest_open_shelter": open_shelter.get("name"),
            "nearest_open_shelter_m": open_shelter.get("distance_m"),
        }


def curve_order(lon: np.ndarray[Any, Any], lat: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Positions of the points along a Z-order (Morton) curve over their bounding box.

    Consecutive points of a chunk are then neighbours, and each chunk a compact patch.
    """
    if len(lon) == 0:
        return np.zeros(0, dtype=np.int64)

    def cells(v: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        lo, span = float(v.min()), float(v.max() - v.min()) or 1.0
        return ((v - lo) / span * 65535.0).astype(np.uint64)

    x, y = cells(np.asarray(lon, dtype=np.float64)), cells(np.asarray(lat, dtype=np.float64))
    key = np.zeros(len(x), dtype=np.uint64)
    one = np.uint64(1)
    for bit in range(16):
        b = np.uint64(bit)
        key |= ((x >> b) & one) << np.uint64(2 * bit)
        key |= ((y >> b) & one) << np.uint64(2 * bit + 1)
    return np.argsort(key, kind="stable")


def _metres(d: float | None) -> float | None:
    return None if d is None else round(float(d), 1)


def _prepare(principal: Principal, n: int) -> tuple[TextClause, dict[str, Any]]:
    common: dict[str, Any] = {"gh_r": GEOHAZARD_RADIUS_M}
    if principal.scope_code is not None:
        common["scope"] = principal.scope_code
    return cached_text(_main_sql(principal.scope_code, batch=n > 1)), common


async def _run_chunks(
    conn: QueryConn,
    statement: TextClause,
    parts: list[np.ndarray[Any, Any]],
    *,
    common: dict[str, Any],
    lon: np.ndarray[Any, Any],
    lat: np.ndarray[Any, Any],
    into: list[Any],
) -> None:
    """Run ``statement`` once per chunk of points, collecting the per-point rows ``into``.

    Each chunk stays within the statement time budget.
    """
    for part in parts:
        params = {
            **common,
            "xs": lon[part].astype(float).tolist(),
            "ys": lat[part].astype(float).tolist(),
            "ix": (part + 1).tolist(),
        }
        into.extend((await conn.execute(statement, params)).all())


def _chunks(lon: np.ndarray[Any, Any], lat: np.ndarray[Any, Any]) -> list[np.ndarray[Any, Any]]:
    order = curve_order(lon, lat)
    return [order[start : start + CHUNK] for start in range(0, len(order), CHUNK)]


def _wanted(rows: list[Any]) -> dict[details.Kind, set[Any]]:
    """The detail objects the per-point rows refer to."""
    out: dict[details.Kind, set[Any]] = {k: set() for k in details.KINDS}
    for r in rows:
        m = r._mapping
        if m["village"] is not None:
            out["villages"].add(m["village"])
        if m["grid_id"] is not None:
            out["grids"].add(m["grid_id"])
        out["geohazards"].update(m["geohazard_ids"] or ())
        out["zones"].update(m["zone_ids"] or ())
        for key in ("shelter_id", "open_shelter_id"):
            if m[key] is not None:
                out["shelters"].add(m[key])
    return out


async def _details(
    conn: QueryConn, rows: list[Any], cache: details.DetailCache | None, fresh: bool
) -> dict[details.Kind, details.Table]:
    wanted = _wanted(rows)
    if cache is None:
        return await details.fetch(conn, wanted)
    return await cache.resolve(conn, wanted, fresh=fresh)


async def _fresh(cache: details.DetailCache | None) -> bool:
    return False if cache is None else await cache.check()


async def locate_points(
    conn: QueryConn,
    principal: Principal,
    lon: np.ndarray[Any, Any],
    lat: np.ndarray[Any, Any],
    *,
    cache: details.DetailCache | None = None,
) -> list[Located]:
    """Locate storage-coordinate points (already validated) for ``principal``.

    Args:
        conn: a connection inside a transaction (or a read connection for one point).
        principal: who asks; every row comes from their area, PII masked by role.
        lon: CGCS2000 longitudes.
        lat: CGCS2000 latitudes.
        cache: the worker's ready details (None: read them with the answer).

    Returns:
        One :class:`Located` per input point, in input order.
    """
    statement, common = _prepare(principal, len(lon))
    await (use_custom_plans(conn) if len(lon) > 1 else use_generic_plans(conn))
    rows: list[Any] = []
    parts = _chunks(lon, lat)
    run = _run_chunks(conn, statement, parts, common=common, lon=lon, lat=lat, into=rows)
    # The feed check (its own connection) runs while the statement does.
    fresh, _ = await asyncio.gather(_fresh(cache), run)
    found = await _details(conn, rows, cache, fresh)
    return _assemble(rows, found, principal, lon, lat)


async def locate_many(
    open_tx: Callable[[], AbstractAsyncContextManager[AsyncConnection]],
    principal: Principal,
    lon: np.ndarray[Any, Any],
    lat: np.ndarray[Any, Any],
    *,
    lanes: int = BATCH_LANES,
    cache: details.DetailCache | None = None,
) -> list[Located]:
    """:func:`locate_points` for a batch, its chunks shared by ``lanes`` transactions at once.

    The statements are CPU-bound in PostgreSQL, one backend per connection: two lanes use
    both cores of the target machine. Each lane reads its own snapshot (a batch is a lookup,
    not a report); a failing lane cancels the others.
    """
    statement, common = _prepare(principal, max(len(lon), 2))
    chunks = _chunks(lon, lat)
    lanes = max(1, min(lanes, len(chunks)))
    rows: list[Any] = []
    fresh = await _fresh(cache)

    async def lane(mine: list[np.ndarray[Any, Any]]) -> None:
        async with open_tx() as conn:
            await use_custom_plans(conn)
            await _run_chunks(conn, statement, mine, common=common, lon=lon, lat=lat, into=rows)

    async with asyncio.TaskGroup() as group:
        for i in range(lanes):
            group.create_task(lane(chunks[i::lanes]))
    async with open_tx() as conn:
        found = await _details(conn, rows, cache, fresh)
    return _assemble(rows, found, principal, lon, lat)


def _assemble(
    rows: list[Any],
    found: dict[details.Kind, details.Table],
    principal: Principal,
    lon: np.ndarray[Any, Any],
    lat: np.ndarray[Any, Any],
) -> list[Located]:
    """Per-point answers in input order, PII masked for ``principal``."""
    villages, grids = found["villages"], found["grids"]
    points, zones, shelters = found["geohazards"], found["zones"], found["shelters"]

    def shelter(sid: int | None, d: float | None) -> dict[str, Any] | None:
        if sid is None:
            return None
        return {**details.pick(shelters, sid, principal), "distance_m": _metres(d)}

    out: list[Located] = []
    for row in sorted(rows, key=lambda r: int(r._mapping["i"])):
        r = row._mapping
        i = int(r["i"]) - 1
        out.append(
            Located(
                index=i,
                lon=float(lon[i]),
                lat=float(lat[i]),
                chain=details.pick(villages, r["village"], principal) if r["village"] else [],
                grid=details.pick(grids, r["grid_id"], principal) if r["grid_id"] else None,
                geohazards=[
                    {**details.pick(points, pid, principal), "distance_m": _metres(d)}
                    for pid, d in zip(r["geohazard_ids"] or (), r["geohazard_m"] or (), strict=True)
                ],
                risk_zones=[details.pick(zones, zid, principal) for zid in r["zone_ids"] or ()],
                nearest_shelter=shelter(r["shelter_id"], r["shelter_m"]),
                nearest_open_shelter=shelter(r["open_shelter_id"], r["open_shelter_m"]),
            )
        )
    return out


async def locate_point(
    conn: QueryConn,
    principal: Principal,
    point: tuple[float, float],
    *,
    cache: details.DetailCache | None = None,
) -> Located:
    """:func:`locate_points` for one storage-coordinate point."""
    (hit,) = await locate_points(
        conn, principal, np.array([point[0]]), np.array([point[1]]), cache=cache
    )
    return hit
