"""The DB edge of partitioning: load units from PostGIS, store proposals, dissolve, code, commit.

Every function takes a synchronous SQLAlchemy ``Connection`` (the CLI's engine, a job
thread's engine, or an API transaction through ``AsyncConnection.run_sync``), so one
implementation serves all three. Geometry assembly is PostGIS: blocks are polygonized from
the community boundary and the barrier lines, grids are dissolved from their units with a
1 cm snap-rounding union in the Gauss-Krüger zone and transformed back to SRID 4490.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import shapely
from sqlalchemy import Connection, select, text

from gis_service.crs import gk_zone_epsg
from gis_service.db.models import BARRIER_KINDS, LOCATED_TABLES, AdminDivision
from gis_service.domain.scope import Principal, in_scope
from gis_service.errors import Conflict, FieldProblem, InvalidInput, NotFound
from gis_service.grids.partition import Params, Plan, UnitGraph, choose_k, partition_many
from gis_service.grids.units import MAJOR_KINDS, CommunityUnits, adjacency, build_units

__all__ = [
    "DEFAULT_BARRIERS",
    "ProposalRequest",
    "commit_proposal",
    "communities_for",
    "create_proposal",
    "load_units",
    "run_proposal",
]

DEFAULT_BARRIERS: tuple[str, ...] = ("road_major", "road_minor", "river", "rail", "wall")
WEIGHT_RED_ORANGE = 40
WEIGHT_GEOHAZARD = 20
Progress = Callable[[str, int, int], None]


def _bad(field: str, message: str) -> InvalidInput:
    """A 422 naming the field at fault."""
    return InvalidInput(detail=f"{field}: {message}", fields=[FieldProblem(field, message)])


def _quiet(_msg: str, _done: int, _total: int) -> None:
    return None


@dataclass(frozen=True)
class ProposalRequest:
    """What a planner asks for (validated before anything runs)."""

    community_codes: tuple[str, ...]
    admin_code: str
    target: int = 400
    tolerance: float = 0.10
    barriers: tuple[str, ...] = DEFAULT_BARRIERS
    seed: int = 0
    warm: bool = True
    #: Balance workload instead of households: each red/orange enterprise counts as
    #: ``WEIGHT_RED_ORANGE`` households and each open geohazard point as ``WEIGHT_GEOHAZARD``.
    weight: bool = False

    def check(self) -> None:
        """Refuse out-of-range values, naming the field."""
        if not 50 <= self.target <= 5000:
            raise _bad("target", "target must be 50..5000 households")
        if not 0.01 <= self.tolerance <= 0.5:
            raise _bad("tolerance", "tolerance must be 0.01..0.5")
        bad = [b for b in self.barriers if b not in BARRIER_KINDS]
        if bad:
            raise _bad(
                "barriers", f"unknown barrier kind {bad[0]!r}; use {', '.join(BARRIER_KINDS)}"
            )
        if not 0 <= self.seed < 2**31:
            raise _bad("seed", "seed must be 0..2^31-1")


# ----------------------------------------------------------------------------- reading


def communities_for(conn: Connection, principal: Principal, codes: Sequence[str]) -> list[str]:
    """The current villages (社区/村) named by ``codes`` or lying under them, in the caller's area.

    A code outside the caller's area is reported as not found (no existence oracle).
    """
    out: list[str] = []
    for code in codes:
        rows = conn.execute(
            select(AdminDivision.code)
            .where(
                AdminDivision.level == "village",
                AdminDivision.valid_to.is_(None),
                AdminDivision.ancestors.contains([code]),
                in_scope(AdminDivision.code, principal),
            )
            .order_by(AdminDivision.code)
        ).scalars()
        found = list(rows)
        if not found:
            raise NotFound(
                detail=f"no community under {code} in your area",
                detail_zh=f"{code} 下没有可划分的社区/村",
                extra={"field": "admin"},
            )
        out.extend(c for c in found if c not in out)
    return out


_COMMUNITY = text(
    """SELECT ST_X(ST_Centroid(boundary)) AS lon FROM admin_division
       WHERE code = :code AND level = 'village' AND valid_to IS NULL AND boundary IS NOT NULL"""
)

_BLOCKS = text(
    """WITH c AS (
           SELECT boundary AS b, ST_Transform(boundary, :srid) AS g FROM admin_division
           WHERE code = :code AND level = 'village' AND valid_to IS NULL
       ), l AS (
           SELECT ST_CollectionExtract(ST_Intersection(ST_Transform(bl.geom, :srid), c.g), 2) AS g,
                  bl.id
           FROM barrier_line bl, c
           WHERE bl.geom && c.b AND bl.kind = ANY(:kinds) AND ST_Intersects(bl.geom, c.b)
       ), edges AS (
           SELECT ST_UnaryUnion(ST_Collect(g ORDER BY id)) AS g
           FROM (SELECT ST_Boundary(g) AS g, 0::bigint AS id FROM c
                 UNION ALL SELECT g, id FROM l) x
       ), faces AS (
           SELECT (ST_Dump(ST_Polygonize(e.g))).geom AS g FROM edges e
       )
       SELECT ST_AsBinary(f.g) AS wkb FROM faces f, c
       WHERE ST_Area(f.g) > 0.0001 AND ST_Intersects(c.g, ST_PointOnSurface(f.g))
       ORDER BY ST_XMin(f.g), ST_YMin(f.g), ST_Area(f.g)"""
)

_LINES = text(
    """SELECT ST_AsBinary(ST_Transform(bl.geom, :srid)) AS wkb, bl.kind
       FROM barrier_line bl JOIN admin_division c ON c.code = :code
       WHERE bl.geom && c.boundary AND bl.kind = ANY(:kinds)
       ORDER BY bl.id"""
)

_BUILDINGS = text(
    """SELECT b.id, b.households, b.population, ST_X(q.p) AS x, ST_Y(q.p) AS y, b.grid_code
       FROM building b
       CROSS JOIN LATERAL (SELECT ST_Transform(ST_PointOnSurface(b.geom), :srid) AS p) q
       WHERE b.admin_code = :code ORDER BY b.id"""
)


def community_srid(conn: Connection, code: str) -> int:
    """The Gauss-Krüger zone (EPSG) a community is measured in."""
    lon = conn.execute(_COMMUNITY, {"code": code}).scalar_one_or_none()
    if lon is None:
        raise NotFound(detail=f"community {code} has no boundary", extra={"field": "admin"})
    return gk_zone_epsg(float(lon))


_WORKLOAD = text(
    """SELECT ST_X(q.p) AS x, ST_Y(q.p) AS y, q.w FROM (
           SELECT ST_Transform(geom, :srid) AS p, :wro AS w FROM enterprise
           WHERE admin_code = :code AND risk_level IN ('red', 'orange')
           UNION ALL
           SELECT ST_Transform(geom, :srid), :wgh FROM geohazard_point
           WHERE admin_code = :code AND NOT closed) q"""
)


def load_units(
    conn: Connection,
    code: str,
    barriers: Sequence[str] = DEFAULT_BARRIERS,
    *,
    weight: bool = False,
) -> tuple[CommunityUnits, int, list[str | None]]:
    """Blocks (PostGIS) → building cells and adjacency (shapely) for one community.

    Returns:
        The units, the GK SRID used, and each building's current grid code (unit order).
    """
    srid = community_srid(conn, code)
    kinds = list(barriers)
    blocks = [
        shapely.from_wkb(bytes(r.wkb))
        for r in conn.execute(_BLOCKS, {"code": code, "srid": srid, "kinds": kinds})
    ]
    lines_rows = conn.execute(_LINES, {"code": code, "srid": srid, "kinds": kinds}).all()
    lines = np.asarray([shapely.from_wkb(bytes(r.wkb)) for r in lines_rows], dtype=object)
    major = np.asarray([r.kind in MAJOR_KINDS for r in lines_rows], dtype=bool)
    rows = conn.execute(_BUILDINGS, {"code": code, "srid": srid}).all()
    ids = np.asarray([r.id for r in rows], dtype=np.int64)
    xy = np.asarray([(r.x, r.y) for r in rows], dtype=np.float64).reshape(-1, 2)
    hh = np.asarray([r.households for r in rows], dtype=np.int64)
    pop = np.asarray([r.population for r in rows], dtype=np.int64)
    units = build_units(code, np.asarray(blocks, dtype=object), ids, xy, hh, pop, lines, major)
    if weight:
        extra = conn.execute(
            _WORKLOAD,
            {"code": code, "srid": srid, "wro": WEIGHT_RED_ORANGE, "wgh": WEIGHT_GEOHAZARD},
        ).all()
        load = units.graph.households.astype(np.float64)
        if extra:
            pts = shapely.points(np.asarray([(r.x, r.y) for r in extra], dtype=np.float64))
            pi, ui = shapely.STRtree(units.geoms).query(pts, predicate="intersects")
            first = np.unique(pi, return_index=True)[1]
            np.add.at(load, ui[first], np.asarray([extra[i].w for i in pi[first]], dtype=float))
        units.graph = replace(units.graph, weight=load)
    grid_of = {int(r.id): r.grid_code for r in rows}
    unit_grid: list[str | None] = []
    for members in units.building_ids:
        codes = [grid_of[b] for b in members if grid_of.get(b)]
        unit_grid.append(max(set(codes), key=codes.count) if codes else None)
    return units, srid, unit_grid


def _anchor(unit_grid: list[str | None], k: int) -> np.ndarray[Any, np.dtype[np.int64]] | None:
    """Current grid of each unit as labels 0..k−1 (None when the grid count changes)."""
    codes = sorted({c for c in unit_grid if c})
    if len(codes) != k:
        return None
    index = {c: i for i, c in enumerate(codes)}
    return np.asarray([index[c] if c else -1 for c in unit_grid], dtype=np.int64)


# ----------------------------------------------------------------------------- proposals


def create_proposal(conn: Connection, req: ProposalRequest, principal: Principal) -> int:
    """Insert a ``running`` proposal row and return its id."""
    req.check()
    return int(
        conn.execute(
            text(
                """INSERT INTO grid_proposal (admin_code, community_codes, status, params, actor,
                                             scope_code, source)
                   VALUES (:admin, :codes, 'running', CAST(:params AS jsonb), :actor, :scope,
                           :source)
                   RETURNING id"""
            ),
            {
                "admin": req.admin_code,
                "codes": list(req.community_codes),
                "params": _json(asdict(req)),
                "actor": principal.login,
                "scope": principal.scope_code,
                "source": f"user:{principal.login}",
            },
        ).scalar_one()
    )


def _json(value: Any) -> str:
    import orjson

    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def run_proposal(
    conn: Connection,
    proposal_id: int,
    req: ProposalRequest,
    *,
    progress: Progress = _quiet,
    workers: int = 2,
) -> dict[str, Any]:
    """Build units, partition every community, store units and dissolved, coded grids.

    Returns:
        The quality report (also stored on the proposal).
    """
    t0 = time.perf_counter()
    loaded: list[tuple[CommunityUnits, int, list[str | None]]] = []
    n = len(req.community_codes)
    for i, code in enumerate(req.community_codes):
        progress("units", i, n)
        loaded.append(load_units(conn, code, req.barriers, weight=req.weight))
    progress("units", n, n)
    t_units = time.perf_counter() - t0
    params = Params(target=float(req.target), tolerance=req.tolerance, seed=req.seed)
    anchors = []
    for units, _, unit_grid in loaded:
        k = choose_k(float(units.graph.load.sum()), params.target)
        anchors.append(_anchor(unit_grid, k) if req.warm else None)
    progress("partition", 0, 1)
    t1 = time.perf_counter()
    plans = partition_many([u.graph for u, _, _ in loaded], params, anchors, workers=workers)
    t_part = time.perf_counter() - t1
    progress("partition", 1, 1)
    t2 = time.perf_counter()
    per_comm = []
    for i, ((units, srid, _), plan) in enumerate(zip(loaded, plans, strict=True)):
        progress("grids", i, n)
        _write_units(conn, proposal_id, units, srid, plan.labels)
        dissolve(conn, proposal_id, units.code, srid)
        plan.labels = _geometric_repair(conn, proposal_id, units, srid, plan.labels)
        pieces = conn.execute(
            text(
                """SELECT pieces FROM grid_proposal_grid
                   WHERE proposal_id = :p AND community_code = :c"""
            ),
            {"p": proposal_id, "c": units.code},
        ).scalars()
        per_comm.append(_community_quality(units, plan, params, list(pieces)))
    progress("grids", n, n)
    quality = _summary(per_comm, params)
    quality["timings_s"] = {
        "units": round(t_units, 3),
        "partition": round(t_part, 3),
        "store_and_dissolve": round(time.perf_counter() - t2, 3),
    }
    quality["per_community"] = per_comm
    conn.execute(
        text(
            """UPDATE grid_proposal SET status = 'ready', quality = CAST(:q AS jsonb),
               finished_at = now() WHERE id = :id"""
        ),
        {"q": _json(quality), "id": proposal_id},
    )
    return quality


def _write_units(
    conn: Connection,
    proposal_id: int,
    units: CommunityUnits,
    srid: int,
    labels: np.ndarray[Any, np.dtype[np.int64]],
) -> None:
    g = units.graph
    conn.execute(
        text("DELETE FROM grid_proposal_unit WHERE proposal_id = :p AND community_code = :c"),
        {"p": proposal_id, "c": units.code},
    )
    conn.execute(
        text(
            """INSERT INTO grid_proposal_unit (proposal_id, community_code, idx, block, label,
                   building_ids, households, population, area_m2, x, y, geom)
               SELECT :p, :c, u.idx, u.block, u.label,
                      CASE WHEN u.bids = '' THEN '{}'::bigint[]
                           ELSE string_to_array(u.bids, ',')::bigint[] END,
                      u.hh, u.pop, u.area, u.x, u.y,
                      ST_Multi(ST_CollectionExtract(ST_MakeValid(
                          ST_Transform(ST_GeomFromWKB(u.wkb, :srid), 4490)), 3))
               FROM unnest(CAST(:idx AS int[]), CAST(:block AS int[]), CAST(:label AS int[]),
                           CAST(:bids AS text[]), CAST(:hh AS int[]), CAST(:pop AS int[]),
                           CAST(:area AS float8[]), CAST(:x AS float8[]), CAST(:y AS float8[]),
                           CAST(:wkb AS bytea[]))
                    AS u(idx, block, label, bids, hh, pop, area, x, y, wkb)"""
        ),
        {
            "p": proposal_id,
            "c": units.code,
            "srid": srid,
            "idx": list(range(g.n)),
            "block": units.block.tolist(),
            "label": labels.tolist(),
            "bids": [",".join(map(str, b)) for b in units.building_ids],
            "hh": g.households.tolist(),
            "pop": g.population.tolist(),
            "area": g.area.tolist(),
            "x": g.xy[:, 0].tolist(),
            "y": g.xy[:, 1].tolist(),
            "wkb": [bytes(w) for w in shapely.to_wkb(units.geoms)],
        },
    )


_STRAYS = text(
    """WITH g AS (
           SELECT label, (ST_Dump(ST_Transform(geom, :srid))).geom AS part
           FROM grid_proposal_grid
           WHERE proposal_id = :p AND community_code = :c AND pieces > 1
       ), main AS (
           SELECT DISTINCT ON (label) label, part FROM g ORDER BY label, ST_Area(part) DESC
       )
       SELECT u.idx FROM grid_proposal_unit u JOIN main m ON m.label = u.label
       WHERE u.proposal_id = :p AND u.community_code = :c
         AND NOT ST_Intersects(m.part, ST_PointOnSurface(ST_Transform(u.geom, :srid)))"""
)


def _geometric_repair(
    conn: Connection,
    proposal_id: int,
    units: CommunityUnits,
    srid: int,
    labels: np.ndarray[Any, np.dtype[np.int64]],
) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Second line of defence: units in a stray piece of a dissolved grid join a neighbour.

    The graph can call two cells adjacent when their boundaries run within millimetres
    without meeting (two sides of a street digitised apart); the dissolved polygon is the
    truth, so strays move to the bordering grid they share most boundary with.
    """
    g = units.graph
    labels = labels.copy()
    for _ in range(5):
        strays = [
            r.idx for r in conn.execute(_STRAYS, {"p": proposal_id, "c": units.code, "srid": srid})
        ]
        if not strays:
            break
        stray = np.zeros(g.n, dtype=bool)
        stray[strays] = True
        for u in strays:
            m = (g.edge_a == u) | (g.edge_b == u)
            other = np.where(g.edge_a[m] == u, g.edge_b[m], g.edge_a[m])
            ok = (labels[other] != labels[u]) & ~stray[other]
            if ok.any():
                share = np.bincount(labels[other][ok], weights=g.edge_len[m][ok])
                labels[u] = int(np.argmax(share))
        conn.execute(
            text(
                """UPDATE grid_proposal_unit u SET label = s.label
                   FROM unnest(CAST(:idx AS int[]), CAST(:label AS int[])) AS s(idx, label)
                   WHERE u.proposal_id = :p AND u.community_code = :c AND u.idx = s.idx"""
            ),
            {"p": proposal_id, "c": units.code, "idx": strays, "label": labels[strays].tolist()},
        )
        dissolve(conn, proposal_id, units.code, srid)
    return labels


_DISSOLVE = text(
    """WITH u AS (
           SELECT label, ST_Transform(geom, :srid) AS g, households, population
           FROM grid_proposal_unit WHERE proposal_id = :p AND community_code = :c
       ), c AS (
           SELECT (p).path AS path, (p).geom AS part FROM (
               SELECT ST_Dump(ST_Transform(boundary, :srid)) AS p FROM admin_division
               WHERE code = :c AND level = 'village' AND valid_to IS NULL) x
       ), d AS (
           SELECT label, ST_CollectionExtract(ST_UnaryUnion(ST_Collect(g), 0.01), 3) AS g,
                  sum(households) AS h, sum(population) AS pop
           FROM u GROUP BY label
       )
       INSERT INTO grid_proposal_grid (proposal_id, community_code, label, grid_code, households,
                                       population, area_m2, polsby_popper, pieces, geom)
       SELECT :p, :c, label, rpad(:c, 15, '0'), h, pop, ST_Area(g),
              CASE WHEN ST_Perimeter(g) > 0
                   THEN 4 * pi() * ST_Area(g) / (ST_Perimeter(g) ^ 2) ELSE 0 END,
              1 + (SELECT coalesce(sum(n - 1), 0) FROM (
                       SELECT count(*) AS n FROM ST_Dump(d.g) gp
                       JOIN c ON ST_Intersects(c.part, ST_PointOnSurface(gp.geom))
                       GROUP BY c.path) x),
              ST_Multi(ST_CollectionExtract(ST_MakeValid(ST_Transform(g, 4490)), 3))
       FROM d"""
)


def dissolve(conn: Connection, proposal_id: int, code: str, srid: int) -> None:
    """(Re)make a community's proposed grids from its units, then code them W→E, N→S.

    ``pieces`` counts, per part of the community, the grid's pieces in that part: an exclave
    of a multi-part community joins the nearest grid without making it "two pieces".
    """
    conn.execute(
        text("DELETE FROM grid_proposal_grid WHERE proposal_id = :p AND community_code = :c"),
        {"p": proposal_id, "c": code},
    )
    conn.execute(_DISSOLVE, {"p": proposal_id, "c": code, "srid": srid})
    rows = conn.execute(
        text(
            """SELECT label, ST_X(c) AS x, ST_Y(c) AS y, area_m2 FROM (
                   SELECT label, area_m2, ST_Transform(ST_PointOnSurface(geom), :srid) AS c
                   FROM grid_proposal_grid WHERE proposal_id = :p AND community_code = :c) s"""
        ),
        {"p": proposal_id, "c": code, "srid": srid},
    ).all()
    labels = [r.label for r in rows]
    seq = code_order(
        np.asarray([(r.x, r.y) for r in rows], dtype=np.float64).reshape(-1, 2),
        float(sum(r.area_m2 for r in rows)),
    )
    conn.execute(
        text(
            """UPDATE grid_proposal_grid g SET grid_code = :c || lpad(s.seq::text, 3, '0')
               FROM unnest(CAST(:labels AS int[]), CAST(:seq AS int[])) AS s(label, seq)
               WHERE g.proposal_id = :p AND g.community_code = :c AND g.label = s.label"""
        ),
        {"p": proposal_id, "c": code, "labels": labels, "seq": seq.tolist()},
    )


def code_order(xy: np.ndarray[Any, np.dtype[np.float64]], area: float) -> np.ndarray[Any, Any]:
    """Sequence numbers 1..k: rows of one grid's height from north to south, west→east in a row.

    A row is ``sqrt(area / k)`` high (the side of an average grid), counted from the
    northernmost label point; within a row the westernmost grid comes first.
    """
    k = len(xy)
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    band = max(math.sqrt(area / k), 1.0)
    row = np.floor((xy[:, 1].max() - xy[:, 1]) / band)
    order = np.lexsort((xy[:, 0], row))
    seq = np.empty(k, dtype=np.int64)
    seq[order] = np.arange(1, k + 1)
    return seq


def _community_quality(
    units: CommunityUnits, plan: Plan, params: Params, pieces: list[int]
) -> dict[str, Any]:
    """Figures of one community's grids (pieces from the dissolved polygons)."""
    g = units.graph
    lab = plan.labels
    cut = lab[g.edge_a] != lab[g.edge_b]
    cross = units.block[g.edge_a] != units.block[g.edge_b]
    cut_len = float(g.edge_len[cut].sum())
    hh = np.bincount(lab, weights=g.households, minlength=plan.k)
    dev = np.abs(hh - params.target) / params.target
    total = int(g.households.sum())
    return {
        "community_code": units.code,
        "units": g.n,
        "households": total,
        "grids": plan.k,
        "too_small": total < params.target * (1 - params.tolerance),
        "hh_min": int(hh.min()),
        "hh_max": int(hh.max()),
        "within_tolerance": int((dev <= params.tolerance + 1e-9).sum()),
        "beyond_20pct": int((dev > 0.2 + 1e-9).sum()),
        "one_piece": sum(1 for p in pieces if p == 1),
        "cut_len_m": round(cut_len, 1),
        "cut_on_barriers_m": round(float(g.edge_len[cut & cross].sum()), 1),
        "notes": plan.notes,
    }


def _summary(per: list[dict[str, Any]], params: Params) -> dict[str, Any]:
    grids = sum(c["grids"] for c in per)
    cut = sum(c["cut_len_m"] for c in per)
    return {
        "target": params.target,
        "tolerance": params.tolerance,
        "communities": len(per),
        "grids": grids,
        "within_tolerance_share": round(sum(c["within_tolerance"] for c in per) / max(grids, 1), 4),
        "beyond_20pct": sum(c["beyond_20pct"] for c in per),
        "one_piece_share": round(sum(c["one_piece"] for c in per) / max(grids, 1), 4),
        "boundary_on_barriers_share": round(
            sum(c["cut_on_barriers_m"] for c in per) / cut if cut else 1.0, 4
        ),
        "too_small_communities": [c["community_code"] for c in per if c["too_small"]],
    }


# ----------------------------------------------------------------------------- commit


def proposal_row(conn: Connection, proposal_id: int, principal: Principal) -> Any:
    """The proposal (in the caller's area) or NotFound."""
    row = conn.execute(
        text(
            """SELECT id, admin_code, community_codes, status, params, quality, error_detail,
                      actor, created_at, finished_at, committed_at, row_version
               FROM grid_proposal WHERE id = :id"""
        ),
        {"id": proposal_id},
    ).one_or_none()
    if row is None or not _codes_in_scope(
        conn, principal, list(row.community_codes) or [row.admin_code]
    ):
        raise NotFound(detail=f"proposal {proposal_id} not found", detail_zh="方案不存在")
    return row


def _codes_in_scope(conn: Connection, principal: Principal, codes: list[str]) -> bool:
    if principal.scope_code is None:
        return True
    n = conn.execute(
        select(AdminDivision.code).where(
            AdminDivision.code.in_(codes), in_scope(AdminDivision.code, principal)
        )
    ).all()
    return len(n) == len(set(codes))


def commit_proposal(conn: Connection, proposal_id: int, principal: Principal) -> dict[str, Any]:
    """Retire the communities' current grids, insert the proposed ones, re-stamp located rows.

    One transaction (the caller's). Open assignments move to the new grid that took most of
    the old grid's area; the others are ended and show up in the unassigned report.
    """
    conn.execute(
        text("SELECT id FROM grid_proposal WHERE id = :id FOR UPDATE"), {"id": proposal_id}
    )
    row = proposal_row(conn, proposal_id, principal)
    if row.status != "ready":
        raise Conflict(
            detail=f"proposal {proposal_id} is {row.status}; only a ready one can be committed",
            detail_zh="只能提交已就绪的方案",
        )
    today = dt.date.today()
    codes = list(row.community_codes)
    bad = conn.execute(
        text(
            """SELECT community_code, grid_code, pieces FROM grid_proposal_grid
               WHERE proposal_id = :p AND pieces <> 1"""
        ),
        {"p": proposal_id},
    ).all()
    if bad:
        raise InvalidInput(
            detail=f"grid {bad[0].grid_code} is not one piece; fix it before committing",
            detail_zh="存在不连通的网格，请先调整",
            extra={"field": "proposal"},
        )
    old = conn.execute(
        text(
            """UPDATE grid SET valid_to = :today
               WHERE community_code = ANY(:codes) AND valid_to IS NULL
               RETURNING id, grid_code"""
        ),
        {"today": today, "codes": codes},
    ).all()
    new = conn.execute(
        text(
            """INSERT INTO grid (grid_code, name, kind, community_code, geom, households,
                                 population, area_m2, version, valid_from, supersedes, source)
               SELECT p.grid_code, a.name || '第' || (substr(p.grid_code, 13, 3)::int) || '网格',
                      p.kind, p.community_code, p.geom, p.households, p.population,
                      ST_Area(p.geom::geography),
                      coalesce((SELECT max(version) FROM grid o WHERE o.grid_code = p.grid_code),
                               0) + 1,
                      :today,
                      coalesce((SELECT array_agg(o.id ORDER BY o.id) FROM grid o
                                WHERE o.id = ANY(:old) AND o.geom && p.geom
                                  AND ST_Area(ST_Intersection(o.geom, p.geom)) > 0), '{}'),
                      :source
               FROM grid_proposal_grid p JOIN admin_division a ON a.code = p.community_code
               WHERE p.proposal_id = :p
               RETURNING id, grid_code"""
        ),
        {
            "p": proposal_id,
            "today": today,
            "old": [r.id for r in old],
            "source": f"user:{principal.login}",
        },
    ).all()
    moved = _carry_assignments(conn, [r.id for r in old], [r.id for r in new], today)
    restamped = 0
    for model in LOCATED_TABLES:
        restamped += int(
            conn.execute(
                text(
                    """SELECT gis_restamp(CAST(:tbl AS regclass),
                                          (SELECT ST_Union(boundary) FROM admin_division
                                           WHERE code = ANY(:codes)))"""
                ),
                {"tbl": model.__tablename__, "codes": codes},
            ).scalar_one()
        )
    conn.execute(
        text(
            """UPDATE grid_proposal SET status = 'committed', committed_at = now()
               WHERE id = :id"""
        ),
        {"id": proposal_id},
    )
    return {
        "proposal": proposal_id,
        "retired": len(old),
        "created": len(new),
        "assignments_moved": moved,
        "rows_restamped": restamped,
        "valid_from": today.isoformat(),
    }


def _carry_assignments(conn: Connection, old: list[int], new: list[int], today: dt.date) -> int:
    """End open assignments of retired grids; re-create them on the best-overlapping new grid."""
    if not old:
        return 0
    pairs = conn.execute(
        text(
            """SELECT o.id AS old_id, n.id AS new_id,
                      ST_Area(ST_Intersection(o.geom, n.geom)) AS a
               FROM grid o JOIN grid n ON n.id = ANY(:new) AND o.geom && n.geom
               WHERE o.id = ANY(:old)
               ORDER BY a DESC, o.id, n.id"""
        ),
        {"old": old, "new": new},
    ).all()
    used_old: set[int] = set()
    used_new: set[int] = set()
    match: list[tuple[int, int]] = []
    for p in pairs:
        if p.a <= 0 or p.old_id in used_old or p.new_id in used_new:
            continue
        used_old.add(p.old_id)
        used_new.add(p.new_id)
        match.append((p.old_id, p.new_id))
    moved = 0
    if match:
        moved = conn.execute(
            text(
                """INSERT INTO grid_assignment (grid_id, person_id, role, employment, start_date,
                                                end_date, source)
                   SELECT m.new_id, a.person_id, a.role, a.employment, :today, a.end_date,
                          'grid-commit'
                   FROM grid_assignment a
                   JOIN unnest(CAST(:o AS bigint[]), CAST(:n AS bigint[])) AS m(old_id, new_id)
                     ON a.grid_id = m.old_id
                   WHERE a.end_date IS NULL OR a.end_date >= :today"""
            ),
            {"o": [m[0] for m in match], "n": [m[1] for m in match], "today": today},
        ).rowcount
    conn.execute(
        text(
            """UPDATE grid_assignment SET end_date = :today
               WHERE grid_id = ANY(:old) AND (end_date IS NULL OR end_date > :today)"""
        ),
        {"old": old, "today": today},
    )
    return int(moved or 0)


# ----------------------------------------------------------------------------- manual edits


def proposal_graph(
    conn: Connection, proposal_id: int, code: str
) -> tuple[UnitGraph, np.ndarray[Any, np.dtype[np.int64]], int]:
    """The stored units of one community of a proposal as a graph, with their labels."""
    srid = community_srid(conn, code)
    rows = conn.execute(
        text(
            """SELECT idx, block, label, households, population, area_m2, x, y,
                      ST_AsBinary(ST_Transform(geom, :srid)) AS wkb
               FROM grid_proposal_unit WHERE proposal_id = :p AND community_code = :c
               ORDER BY idx"""
        ),
        {"p": proposal_id, "c": code, "srid": srid},
    ).all()
    if not rows:
        raise NotFound(
            detail=f"community {code} is not part of proposal {proposal_id}",
            extra={"field": "community_code"},
        )
    geoms = np.asarray([shapely.from_wkb(bytes(r.wkb)) for r in rows], dtype=object)
    block = np.asarray([r.block for r in rows], dtype=np.int64)
    ea, eb, elen, ecost = adjacency(geoms, block)
    graph = UnitGraph(
        xy=np.asarray([(r.x, r.y) for r in rows], dtype=np.float64),
        area=np.asarray([r.area_m2 for r in rows], dtype=np.float64),
        households=np.asarray([r.households for r in rows], dtype=np.int64),
        population=np.asarray([r.population for r in rows], dtype=np.int64),
        edge_a=ea,
        edge_b=eb,
        edge_len=elen,
        edge_cost=ecost,
    )
    return graph, np.asarray([r.label for r in rows], dtype=np.int64), srid
