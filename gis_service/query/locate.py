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
import functools
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from sqlalchemy import TextClause
from sqlalchemy.ext.asyncio import AsyncConnection

from gis_service.db.engine import QueryConn, ReadConnection
from gis_service.domain.scope import Principal
from gis_service.query import details
from gis_service.query.layers import scope_sql
from gis_service.query.sqlparts import (
    cached_text,
    distance_sql,
    knn_bound_geography_sql,
    use_custom_plans,
    use_generic_plans,
    within_geography_sql,
)

#: Geological-hazard points within this many metres count as "there" (plus any whose risk
#: zone covers the point).
GEOHAZARD_RADIUS_M = 500.0
#: Points per statement of a batch.
CHUNK = 1000
#: Transactions (PostgreSQL backends) a batch uses at once.
BATCH_LANES = 2
#: One point's answer from the statement: input position (1-based), village code, grid id,
#: zone ids, hazard point ids and metres, nearest shelter id and metres, nearest open one.
Row = list[Any]
#: Shelter states that take people now, as opposed to standby sites (``closed``).
OPEN_SHELTER = "t.status IN ('open', 'opening') AND t.capacity > t.current_occupancy"


@functools.lru_cache(maxsize=256)
def _main_sql(scope: str | None, *, batch: bool) -> str:
    """The locate statement; ``batch`` tests the area scope against a per-statement hash."""
    s_village = scope_sql("a.code", scope, per_row=not batch, hashed=batch)
    s_grid = scope_sql("g.community_code", scope, per_row=not batch, hashed=batch)
    s_t = scope_sql("t.admin_code", scope, per_row=not batch, hashed=batch)
    # Shelters and hazard points are few (hundreds): their geography indexes (migration
    # 0018; the open shelters have their own partial one) answer a probe for a fraction
    # of the CPU of the geometry index.
    near_any = knn_bound_geography_sql("shelter", s_t, "pts.p", "1")
    near_open = knn_bound_geography_sql("shelter", f"{s_t} AND {OPEN_SHELTER}", "pts.p", "1")

    def nearest(bound: str, where: str) -> str:
        # The nearest in metres lies within the bound (the metres to the sphere-nearest
        # row): one spheroid distance per row within it.
        return (
            f"SELECT t.id, {distance_sql('t.geom', 'pts.p')} AS d FROM shelter t"
            f" WHERE {where} AND {within_geography_sql('t.geom', 'pts.p', bound)}"
            " ORDER BY d, t.id LIMIT 1"
        )

    return f"""
WITH pts AS MATERIALIZED (
    -- The caller sends the points in space-filling-curve order (neighbours in a row probe
    -- the same polygons, which PostGIS then keeps prepared) with their input positions.
    SELECT u.i, ST_SetSRID(ST_MakePoint(u.x, u.y), 4490) AS p, u.y AS lat
    FROM unnest(CAST(:xs AS float8[]), CAST(:ys AS float8[]), CAST(:ix AS int[])) AS u(x, y, i)
), m AS (
SELECT pts.i, coalesce(gr.community_code, v.code) AS village, gr.id AS grid_id,
       z.ids AS zone_ids, gh.ids AS geohazard_ids, gh.dists AS geohazard_m,
       sa.id AS shelter_id, sa.d AS shelter_m, so.id AS open_shelter_id,
       so.d AS open_shelter_m
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
            WHERE {within_geography_sql("t2.geom", "pts.p", ":gh_r")}
            UNION
            SELECT t3.id FROM geohazard_zone zz JOIN geohazard_point t3
              ON t3.geom && zz.geom AND ST_Intersects(zz.geom, t3.geom)
            WHERE zz.id = ANY(z.ids)
        )
    ) h
) gh ON TRUE
LEFT JOIN LATERAL (SELECT {near_any} AS r_any, {near_open} AS r_open) nb ON TRUE
LEFT JOIN LATERAL ({nearest("nb.r_any", s_t)}) sa ON TRUE
LEFT JOIN LATERAL ({nearest("nb.r_open", f"{s_t} AND {OPEN_SHELTER}")}) so ON TRUE
)
-- One text value: a JSON array per point, parsed by orjson (10,000 rows of arrays
-- cost more in the driver's row parsing than in the statement).
SELECT coalesce(json_agg(json_build_array(
    m.i, m.village, m.grid_id, m.zone_ids, m.geohazard_ids, m.geohazard_m,
    m.shelter_id, m.shelter_m, m.open_shelter_id, m.open_shelter_m)), '[]')::text AS rows
FROM m
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

    def flat(self, memo: dict[int, dict[str, Any]] | None = None) -> dict[str, Any]:
        """One row of a batch answer (CSV/XLSX friendly).

        ``memo`` (one per batch) keeps the columns taken from each admin chain and grid:
        those objects are shared by the points they hold.
        """
        memo = {} if memo is None else memo
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
            **_memo(memo, self.chain, _chain_columns),
            **_memo(memo, self.grid, _grid_columns),
            "geohazard_points": ";".join(h["code"] for h in self.geohazards),
            "geohazard_village_leads": ";".join(dict.fromkeys(leads)),
            "nearest_shelter": shelter.get("name"),
            "nearest_shelter_m": shelter.get("distance_m"),
            "nearest_open_shelter": open_shelter.get("name"),
            "nearest_open_shelter_m": open_shelter.get("distance_m"),
        }


def _memo(
    memo: dict[int, dict[str, Any]], obj: Any, columns: Callable[[Any], dict[str, Any]]
) -> dict[str, Any]:
    """``columns(obj)``, once per object of a batch (keyed by identity; ``obj`` outlives it)."""
    hit = memo.get(id(obj))
    if hit is None:
        hit = memo[id(obj)] = columns(obj)
    return hit


def _chain_columns(chain: list[dict[str, Any]]) -> dict[str, Any]:
    by_level = {u["level"]: u for u in chain}
    return {
        "county": by_level.get("county", {}).get("name"),
        "township": by_level.get("township", {}).get("name"),
        "village_code": by_level.get("village", {}).get("code"),
        "village": by_level.get("village", {}).get("name"),
    }


def _grid_columns(grid: dict[str, Any] | None) -> dict[str, Any]:
    grid = grid or {}
    staff = grid.get("staff", [])
    worker: dict[str, Any] = next((s for s in staff if s["role"] == "grid_worker"), {})
    leader: dict[str, Any] = next((s for s in staff if s["role"] == "grid_leader"), {})
    return {
        "grid_code": grid.get("grid_code"),
        "grid_name": grid.get("name"),
        "grid_worker": worker.get("name"),
        "grid_worker_phone": worker.get("phone"),
        "grid_leader": leader.get("name"),
        "grid_leader_phone": leader.get("phone"),
    }


def curve_order(lon: np.ndarray[Any, Any], lat: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Positions of the points along a Z-order (Morton) curve over their bounding box.

    Consecutive points of a chunk are then neighbours, and each chunk a compact patch.
    """
    if len(lon) <= 1:  # a single point (the GET route) has its order
        return np.zeros(len(lon), dtype=np.int64)

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
    into: list[Row],
) -> None:
    """Run ``statement`` once per chunk of points, collecting the per-point rows ``into``.

    Each chunk stays within the statement time budget.
    """
    for part in parts:
        params = {
            **common,
            "xs": _array_literal(lon[part].astype(float).tolist()),
            "ys": _array_literal(lat[part].astype(float).tolist()),
            "ix": _array_literal((part + 1).tolist()),
        }
        into.extend(await _rows(conn, statement, params))


async def _rows(conn: QueryConn, statement: TextClause, params: dict[str, Any]) -> list[Row]:
    """The per-point rows of one run of the statement (one JSON text)."""
    if isinstance(conn, ReadConnection):  # one point (GET): libpq directly
        raw = await conn.scalar_text(statement, params)
    else:
        raw = (await conn.execute(statement, params)).scalar_one()
    rows: list[Row] = orjson.loads(raw)
    return rows


def _array_literal(values: list[float] | list[int]) -> str:
    """A PostgreSQL array literal of numbers (``repr`` round-trips a float exactly).

    The driver's list adaptation costs ~10 µs a number in Python; this costs ~0.3 µs.
    """
    return "{" + ",".join(map(repr, values)) + "}"


def _chunks(lon: np.ndarray[Any, Any], lat: np.ndarray[Any, Any]) -> list[np.ndarray[Any, Any]]:
    order = curve_order(lon, lat)
    return [order[start : start + CHUNK] for start in range(0, len(order), CHUNK)]


def _wanted(rows: list[Row]) -> dict[details.Kind, set[Any]]:
    """The detail objects the per-point rows refer to."""
    out: dict[details.Kind, set[Any]] = {k: set() for k in details.KINDS}
    for _, village, grid, zones, points, _, shelter, _, open_shelter, _ in rows:
        if village is not None:
            out["villages"].add(village)
        if grid is not None:
            out["grids"].add(grid)
        out["geohazards"].update(points or ())
        out["zones"].update(zones or ())
        out["shelters"].update(s for s in (shelter, open_shelter) if s is not None)
    return out


async def _details(
    conn: QueryConn, rows: list[Row], cache: details.DetailCache | None, fresh: bool
) -> dict[details.Kind, details.Table]:
    wanted = _wanted(rows)
    if cache is None:
        return await details.fetch(conn, wanted)
    return await cache.resolve(conn, wanted, fresh=fresh)


async def _fresh(cache: details.DetailCache | None, after: int | None) -> bool:
    return False if cache is None else await cache.check(after)


async def locate_points(
    conn: QueryConn,
    principal: Principal,
    lon: np.ndarray[Any, Any],
    lat: np.ndarray[Any, Any],
    *,
    cache: details.DetailCache | None = None,
    after: int | None = None,
) -> list[Located]:
    """Locate storage-coordinate points (already validated) for ``principal``.

    Args:
        conn: a connection inside a transaction (or a read connection for one point).
        principal: who asks; every row comes from their area, PII masked by role.
        lon: CGCS2000 longitudes.
        lat: CGCS2000 latitudes.
        cache: the worker's ready details (None: read them with the answer).
        after: the request's change-feed ticket (its principal check's round serves here).

    Returns:
        One :class:`Located` per input point, in input order.
    """
    statement, common = _prepare(principal, len(lon))
    await (use_custom_plans(conn) if len(lon) > 1 else use_generic_plans(conn))
    rows: list[Row] = []
    parts = _chunks(lon, lat)
    run = _run_chunks(conn, statement, parts, common=common, lon=lon, lat=lat, into=rows)
    if len(lon) == 1:
        # One point: the request's principal check has nearly always taken the feed round
        # its ticket needs, so the check is free; running both at once would cost two tasks.
        await run
        fresh = await _fresh(cache, after)
    else:
        # The feed check (its own connection) runs while the statements do.
        fresh, _ = await asyncio.gather(_fresh(cache, after), run)
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
    after: int | None = None,
) -> list[Located]:
    """:func:`locate_points` for a batch, its chunks shared by ``lanes`` transactions at once.

    The statements are CPU-bound in PostgreSQL, one backend per connection: two lanes use
    both cores of the target machine. Each lane reads its own snapshot (a batch is a lookup,
    not a report); a failing lane cancels the others.
    """
    statement, common = _prepare(principal, max(len(lon), 2))
    chunks = _chunks(lon, lat)
    lanes = max(1, min(lanes, len(chunks)))
    rows: list[Row] = []
    fresh = await _fresh(cache, after)

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
    rows: list[Row],
    found: dict[details.Kind, details.Table],
    principal: Principal,
    lon: np.ndarray[Any, Any] | list[float],
    lat: np.ndarray[Any, Any] | list[float],
) -> list[Located]:
    """Per-point answers in input order, PII masked for ``principal``."""
    villages, grids = found["villages"], found["grids"]
    points, zones, shelters = found["geohazards"], found["zones"], found["shelters"]

    v = details.variant(principal)

    def shelter(sid: int | None, d: float | None) -> dict[str, Any] | None:
        if sid is None:
            return None
        return {**shelters[sid][v], "distance_m": _metres(d)}

    out: list[Located] = []
    for pos, village, grid, zone_ids, point_ids, point_m, sid, sm, oid, om in sorted(rows):
        i = pos - 1
        out.append(
            Located(
                index=i,
                lon=float(lon[i]),
                lat=float(lat[i]),
                chain=villages[village][v] if village else [],
                grid=grids[grid][v] if grid else None,
                geohazards=[
                    {**points[pid][v], "distance_m": _metres(d)}
                    for pid, d in zip(point_ids or (), point_m or (), strict=True)
                ],
                risk_zones=[zones[zid][v] for zid in zone_ids or ()],
                nearest_shelter=shelter(sid, sm),
                nearest_open_shelter=shelter(oid, om),
            )
        )
    return out


async def locate_point(
    conn: QueryConn,
    principal: Principal,
    point: tuple[float, float],
    *,
    cache: details.DetailCache | None = None,
    after: int | None = None,
) -> Located:
    """:func:`locate_points` for one storage-coordinate point (the GET routes), without numpy.

    A dozen numpy operations on one-element arrays cost more Python than the rest of this
    function. The request's principal check has nearly always taken the feed round its
    ticket needs, so the check after the statement is free.
    """
    statement, common = _prepare(principal, 1)
    await use_generic_plans(conn)
    x, y = float(point[0]), float(point[1])
    params = {**common, "xs": _array_literal([x]), "ys": _array_literal([y]), "ix": "{1}"}
    rows = await _rows(conn, statement, params)
    found = await _details(conn, rows, cache, await _fresh(cache, after))
    (hit,) = _assemble(rows, found, principal, [x], [y])
    return hit
