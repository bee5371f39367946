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
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import shapely
from sqlalchemy import Connection, select, text

from gis_service.crs import gk_zone_epsg
from gis_service.db.models import BARRIER_KINDS, FACILITY_KINDS, LOCATED_TABLES, AdminDivision
from gis_service.domain.scope import Principal, in_scope
from gis_service.errors import Conflict, FieldProblem, InvalidInput, NotFound
from gis_service.grids.partition import Params, Plan, UnitGraph, choose_k, partition_many
from gis_service.grids.units import (
    MAJOR_KINDS,
    CommunityUnits,
    adjacency,
    build_units,
    pin_special,
    subgraph,
)

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
#: Households-equivalent of each resident of a welfare home (vulnerable people need visits).
WEIGHT_VULNERABLE = 0.5
#: ``--special large_enterprise`` pins every enterprise with at least this many employees.
LARGE_ENTERPRISE = "large_enterprise"
LARGE_ENTERPRISE_EMPLOYEES = 300
_SPECIAL_ITEM = re.compile(r"^(facility|enterprise):[1-9]\d{0,17}$")
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
    #: ``WEIGHT_RED_ORANGE`` households, each open geohazard point as ``WEIGHT_GEOHAZARD``,
    #: each welfare-home resident as ``WEIGHT_VULNERABLE``.
    weight: bool = False
    #: 专属网格: features pinned as their own grid, outside the balance target: facility
    #: kinds (``school``, ``hospital``, ``market`` …), ``large_enterprise``, or
    #: ``facility:ID`` / ``enterprise:ID``.
    special: tuple[str, ...] = ()
    #: With a crossing layer, rivers, rail and major roads are crossed only at crossings.
    hard_barriers: bool = True

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
        if len(self.special) > 200:
            raise _bad("special", "at most 200 special features")
        for item in self.special:
            if not (
                item in FACILITY_KINDS or item == LARGE_ENTERPRISE or _SPECIAL_ITEM.match(item)
            ):
                raise _bad(
                    "special",
                    f"{item!r}: use a facility kind ({', '.join(FACILITY_KINDS)}), "
                    f"{LARGE_ENTERPRISE}, facility:ID or enterprise:ID",
                )


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


_SRIDS = text(
    """SELECT code, ST_X(ST_Centroid(boundary)) AS lon FROM admin_division
       WHERE code = ANY(:codes) AND level = 'village' AND valid_to IS NULL
         AND boundary IS NOT NULL"""
)

#: The communities of a request with their GK zone, as a relation the batch queries join.
_Q = "unnest(CAST(:codes AS text[]), CAST(:srids AS int[])) AS q(code, srid)"

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
    f"""SELECT q.code, ST_AsBinary(ST_Transform(bl.geom, q.srid)) AS wkb, bl.kind
        FROM {_Q}
        JOIN admin_division c ON c.code = q.code AND c.level = 'village' AND c.valid_to IS NULL
        JOIN barrier_line bl ON bl.geom && c.boundary AND bl.kind = ANY(:kinds)
        ORDER BY q.code, bl.id"""
)

_BUILDINGS = text(
    f"""SELECT q.code, b.id, b.households, b.population, ST_X(p.p) AS x, ST_Y(p.p) AS y,
               b.grid_code
        FROM {_Q} JOIN building b ON b.admin_code = q.code
        CROSS JOIN LATERAL (SELECT ST_Transform(ST_PointOnSurface(b.geom), q.srid) AS p) p
        ORDER BY q.code, b.id"""
)

#: Does the crossing layer cover these communities' county? (then major lines are hard
#: barriers everywhere in it: a river with no crossing recorded is crossed nowhere)
_HAS_CROSSINGS = text(
    """SELECT EXISTS (
           SELECT 1 FROM admin_division c JOIN barrier_crossing x ON x.geom && c.boundary
           WHERE c.code IN (SELECT DISTINCT substr(v, 1, 6) FROM unnest(CAST(:codes AS text[])) v)
             AND c.valid_to IS NULL AND ST_Intersects(x.geom, c.boundary))"""
)

_CROSSINGS = text(
    f"""SELECT q.code, ST_X(p.p) AS x, ST_Y(p.p) AS y
        FROM {_Q}
        JOIN admin_division c ON c.code = q.code AND c.level = 'village' AND c.valid_to IS NULL
        JOIN barrier_crossing x ON ST_DWithin(x.geom, c.boundary, 0.001)
        CROSS JOIN LATERAL (SELECT ST_Transform(x.geom, q.srid) AS p) p
        ORDER BY q.code, x.id"""
)

_WORKLOAD = text(
    f"""SELECT q.code, ST_X(p.p) AS x, ST_Y(p.p) AS y, w.w
        FROM {_Q} CROSS JOIN LATERAL (
            SELECT geom, CAST(:wro AS float8) AS w FROM enterprise
            WHERE admin_code = q.code AND risk_level IN ('red', 'orange')
            UNION ALL
            SELECT geom, CAST(:wgh AS float8) FROM geohazard_point
            WHERE admin_code = q.code AND NOT closed
            UNION ALL
            SELECT geom, CAST(:wvp AS float8) * coalesce(people, 0) FROM facility
            WHERE admin_code = q.code AND kind = 'welfare_home') w
        CROSS JOIN LATERAL (SELECT ST_Transform(w.geom, q.srid) AS p) p
        ORDER BY q.code"""
)

_SPECIAL = text(
    f"""SELECT q.code, f.ref, ST_X(p.p) AS x, ST_Y(p.p) AS y
        FROM {_Q} CROSS JOIN LATERAL (
            SELECT 'facility:' || id AS ref, id, geom FROM facility
            WHERE admin_code = q.code AND (kind = ANY(:fkinds) OR id = ANY(:fids))
            UNION ALL
            SELECT 'enterprise:' || id, id, geom FROM enterprise
            WHERE admin_code = q.code
              AND (id = ANY(:eids) OR (:large AND coalesce(employees, 0) >= :employees))) f
        CROSS JOIN LATERAL (SELECT ST_Transform(f.geom, q.srid) AS p) p
        ORDER BY q.code, f.ref LIKE 'enterprise:%', f.id"""
)


_SPECIAL_IDS = text(
    """SELECT 'facility:' || id FROM facility WHERE id = ANY(:fids) AND admin_code = ANY(:codes)
       UNION ALL
       SELECT 'enterprise:' || id FROM enterprise
       WHERE id = ANY(:eids) AND admin_code = ANY(:codes)"""
)


def community_srid(conn: Connection, code: str) -> int:
    """The Gauss-Krüger zone (EPSG) a community is measured in."""
    return community_srids(conn, [code])[code]


def community_srids(conn: Connection, codes: Sequence[str]) -> dict[str, int]:
    """The Gauss-Krüger zone (EPSG) of each community (one round trip)."""
    found = {
        r.code: gk_zone_epsg(float(r.lon)) for r in conn.execute(_SRIDS, {"codes": list(codes)})
    }
    for code in codes:
        if code not in found:
            raise NotFound(detail=f"community {code} has no boundary", extra={"field": "admin"})
    return found


@dataclass
class Loaded:
    """One community ready to partition: units, GK zone, current grids, pinned 专属网格."""

    units: CommunityUnits
    srid: int
    #: Each unit's current grid code (the most common one among its buildings).
    unit_grid: list[str | None]
    #: (unit indices, feature refs) of each special grid.
    pins: list[tuple[np.ndarray[Any, np.dtype[np.int64]], list[str]]] = field(default_factory=list)


def _by_code(rows: Sequence[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for r in rows:
        out.setdefault(r.code, []).append(r)
    return out


def _xy(rows: Sequence[Any]) -> np.ndarray[Any, np.dtype[np.float64]]:
    return np.asarray([(r.x, r.y) for r in rows], dtype=np.float64).reshape(-1, 2)


def special_filter(special: Sequence[str]) -> dict[str, Any]:
    """The bound parameters of the special-feature query for ``--special`` items."""
    fkinds = [s for s in special if s in FACILITY_KINDS]
    fids = [int(s.split(":")[1]) for s in special if s.startswith("facility:")]
    eids = [int(s.split(":")[1]) for s in special if s.startswith("enterprise:")]
    return {
        "fkinds": fkinds,
        "fids": fids,
        "eids": eids,
        "large": LARGE_ENTERPRISE in special,
        "employees": LARGE_ENTERPRISE_EMPLOYEES,
    }


def load_many(
    conn: Connection,
    req: ProposalRequest,
    *,
    progress: Progress = _quiet,
    workers: int = 2,
) -> list[Loaded]:
    """Units of every community of a request: batch queries, then building in threads.

    Blocks are polygonized per community in PostGIS; buildings, lines, crossings, workload
    points and special features come in one query each for all communities. Building the
    cells and their adjacency (shapely, which releases the GIL) runs ``workers`` at a time.
    """
    codes = list(req.community_codes)
    srids = community_srids(conn, codes)
    q = {"codes": codes, "srids": [srids[c] for c in codes]}
    kinds = list(req.barriers)
    n = len(codes)
    blocks: dict[str, list[Any]] = {}
    for i, code in enumerate(codes):
        progress("blocks", i, n)
        blocks[code] = [
            shapely.from_wkb(bytes(r.wkb))
            for r in conn.execute(_BLOCKS, {"code": code, "srid": srids[code], "kinds": kinds})
        ]
    progress("blocks", n, n)
    lines = _by_code(conn.execute(_LINES, {**q, "kinds": kinds}).all())
    buildings = _by_code(conn.execute(_BUILDINGS, q).all())
    hard = req.hard_barriers and bool(conn.execute(_HAS_CROSSINGS, {"codes": codes}).scalar())
    crossings = _by_code(conn.execute(_CROSSINGS, q).all()) if hard else {}
    workload: dict[str, list[Any]] = {}
    if req.weight:
        params = {"wro": WEIGHT_RED_ORANGE, "wgh": WEIGHT_GEOHAZARD, "wvp": WEIGHT_VULNERABLE}
        workload = _by_code(conn.execute(_WORKLOAD, {**q, **params}).all())
    special: dict[str, list[Any]] = {}
    if req.special:
        rows = conn.execute(_SPECIAL, {**q, **special_filter(req.special)}).all()
        _check_special(req.special, {r.ref for r in rows})
        special = _by_code(rows)

    def build(code: str) -> Loaded:
        lrows = lines.get(code, [])
        brows = buildings.get(code, [])
        units = build_units(
            code,
            np.asarray(blocks[code], dtype=object),
            np.asarray([r.id for r in brows], dtype=np.int64),
            _xy(brows),
            np.asarray([r.households for r in brows], dtype=np.int64),
            np.asarray([r.population for r in brows], dtype=np.int64),
            np.asarray([shapely.from_wkb(bytes(r.wkb)) for r in lrows], dtype=object),
            np.asarray([r.kind in MAJOR_KINDS for r in lrows], dtype=bool),
            shapely.points(_xy(crossings.get(code, []))) if hard else None,
        )
        if req.weight:
            units.graph = replace(units.graph, weight=_workload(units, workload.get(code, [])))
        grid_of = {int(r.id): r.grid_code for r in brows}
        unit_grid: list[str | None] = []
        for members in units.building_ids:
            held = [grid_of[b] for b in members if grid_of.get(b)]
            unit_grid.append(max(set(held), key=held.count) if held else None)
        srows = special.get(code, [])
        pins = pin_special(units, _xy(srows), [r.ref for r in srows]) if srows else []
        return Loaded(units, srids[code], unit_grid, pins)

    progress("units", 0, n)
    if workers <= 1 or n <= 1:
        loaded = [build(c) for c in codes]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            loaded = list(pool.map(build, codes))
    progress("units", n, n)
    return loaded


def _workload(units: CommunityUnits, rows: list[Any]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Households plus the workload of the points inside each unit."""
    load = units.graph.households.astype(np.float64)
    if rows:
        pts = shapely.points(_xy(rows))
        pi, ui = shapely.STRtree(units.geoms).query(pts, predicate="intersects")
        first = np.unique(pi, return_index=True)[1]
        np.add.at(load, ui[first], np.asarray([rows[i].w for i in pi[first]], dtype=float))
    return load


def _check_special(special: Sequence[str], found: set[str]) -> None:
    """Every feature named by id must lie in one of the communities (else 422 on ``special``)."""
    for item in special:
        if ":" in item and item not in found:
            raise _bad("special", f"{item} is not in the communities being partitioned")


def load_units(
    conn: Connection,
    code: str,
    barriers: Sequence[str] = DEFAULT_BARRIERS,
    *,
    weight: bool = False,
) -> tuple[CommunityUnits, int, list[str | None]]:
    """One community's units (see ``load_many``): units, GK SRID, each unit's current grid."""
    req = ProposalRequest((code,), code, barriers=tuple(barriers), weight=weight)
    one = load_many(conn, req, workers=1)[0]
    return one.units, one.srid, one.unit_grid


def _anchor(unit_grid: list[str | None], k: int) -> np.ndarray[Any, np.dtype[np.int64]] | None:
    """Current grid of each unit as labels 0..k−1 (None when the grid count changes)."""
    codes = sorted({c for c in unit_grid if c})
    if len(codes) != k:
        return None
    index = {c: i for i, c in enumerate(codes)}
    return np.asarray([index[c] if c else -1 for c in unit_grid], dtype=np.int64)


# ----------------------------------------------------------------------------- proposals


def create_proposal(conn: Connection, req: ProposalRequest, principal: Principal) -> int:
    """Insert a ``running`` proposal row and return its id (bad parameters: 422 first)."""
    req.check()
    if any(":" in s for s in req.special):
        ids = special_filter(req.special)
        found = conn.execute(_SPECIAL_IDS, {**ids, "codes": list(req.community_codes)}).scalars()
        _check_special(req.special, set(found))
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

    Special grids (``req.special``) are pinned first and left out of the balance: the
    other units of the community are partitioned into ``choose_k`` grids of the rest.

    Returns:
        The quality report (also stored on the proposal).
    """
    t0 = time.perf_counter()
    loaded = load_many(conn, req, progress=progress, workers=workers)
    t_units = time.perf_counter() - t0
    params = Params(target=float(req.target), tolerance=req.tolerance, seed=req.seed)
    graphs, anchors, keeps = [], [], []
    for ld in loaded:
        keep = _unpinned(ld)
        g = subgraph(ld.units, keep) if ld.pins else ld.units.graph
        k = choose_k(float(g.load.sum()), params.target)
        grid_of = [ld.unit_grid[i] for i in keep.tolist()]
        anchors.append(_anchor(grid_of, k) if req.warm else None)
        graphs.append(g)
        keeps.append(keep)
    progress("partition", 0, 1)
    t1 = time.perf_counter()
    plans = partition_many(graphs, params, anchors, workers=workers)
    t_part = time.perf_counter() - t1
    progress("partition", 1, 1)
    t2 = time.perf_counter()
    labels: list[np.ndarray[Any, np.dtype[np.int64]]] = []
    for ld, plan, keep in zip(loaded, plans, keeps, strict=True):
        lab = np.zeros(ld.units.graph.n, dtype=np.int64)
        lab[keep] = plan.labels
        for j, (idx, _) in enumerate(ld.pins):
            lab[idx] = plan.k + j
        labels.append(lab)
    progress("grids", 0, 1)
    _write_units(conn, proposal_id, loaded, labels)
    dissolve_many(conn, proposal_id, {ld.units.code: ld.srid for ld in loaded})
    labels = _geometric_repair(conn, proposal_id, loaded, labels)
    pieces = _by_code(
        conn.execute(
            text(
                """SELECT community_code AS code, label, pieces FROM grid_proposal_grid
                   WHERE proposal_id = :p ORDER BY community_code, label"""
            ),
            {"p": proposal_id},
        ).all()
    )
    per_comm = [
        _community_quality(ld, plan, lab, params, pieces.get(ld.units.code, []))
        for ld, plan, lab in zip(loaded, plans, labels, strict=True)
    ]
    progress("grids", 1, 1)
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


def _unpinned(ld: Loaded) -> np.ndarray[Any, np.dtype[np.int64]]:
    pinned = np.zeros(ld.units.graph.n, dtype=bool)
    for idx, _ in ld.pins:
        pinned[idx] = True
    return np.nonzero(~pinned)[0].astype(np.int64)


def _write_units(
    conn: Connection,
    proposal_id: int,
    loaded: list[Loaded],
    labels: list[np.ndarray[Any, np.dtype[np.int64]]],
) -> None:
    """All units of all communities in one INSERT (cells in GK metres → SRID 4490)."""
    cols: dict[str, list[Any]] = {
        k: [] for k in ("c", "srid", "idx", "block", "label", "bids", "special", "hh", "pop")
    }
    cols.update({"area": [], "x": [], "y": [], "wkb": []})
    for ld, lab in zip(loaded, labels, strict=True):
        u, g = ld.units, ld.units.graph
        refs = [""] * g.n
        for idx, names in ld.pins:
            for i in idx.tolist():
                refs[i] = ",".join(names)
        cols["c"] += [u.code] * g.n
        cols["srid"] += [ld.srid] * g.n
        cols["idx"] += list(range(g.n))
        cols["block"] += u.block.tolist()
        cols["label"] += lab.tolist()
        cols["bids"] += [",".join(map(str, b)) for b in u.building_ids]
        cols["special"] += refs
        cols["hh"] += g.households.tolist()
        cols["pop"] += g.population.tolist()
        cols["area"] += g.area.tolist()
        cols["x"] += g.xy[:, 0].tolist()
        cols["y"] += g.xy[:, 1].tolist()
        cols["wkb"] += [bytes(w) for w in shapely.to_wkb(u.geoms)]
    conn.execute(
        text("DELETE FROM grid_proposal_unit WHERE proposal_id = :p AND community_code = ANY(:cs)"),
        {"p": proposal_id, "cs": sorted(set(cols["c"]))},
    )
    conn.execute(
        text(
            """INSERT INTO grid_proposal_unit (proposal_id, community_code, idx, block, label,
                   building_ids, special, households, population, area_m2, x, y, geom)
               SELECT :p, u.c, u.idx, u.block, u.label,
                      CASE WHEN u.bids = '' THEN '{}'::bigint[]
                           ELSE string_to_array(u.bids, ',')::bigint[] END,
                      CASE WHEN u.special = '' THEN '{}'::text[]
                           ELSE string_to_array(u.special, ',') END,
                      u.hh, u.pop, u.area, u.x, u.y,
                      ST_Multi(ST_CollectionExtract(ST_MakeValid(
                          ST_Transform(ST_GeomFromWKB(u.wkb, u.srid), 4490)), 3))
               FROM unnest(CAST(:c AS text[]), CAST(:srid AS int[]), CAST(:idx AS int[]),
                           CAST(:block AS int[]), CAST(:label AS int[]), CAST(:bids AS text[]),
                           CAST(:special AS text[]), CAST(:hh AS int[]), CAST(:pop AS int[]),
                           CAST(:area AS float8[]), CAST(:x AS float8[]), CAST(:y AS float8[]),
                           CAST(:wkb AS bytea[]))
                    AS u(c, srid, idx, block, label, bids, special, hh, pop, area, x, y, wkb)"""
        ),
        {"p": proposal_id, **cols},
    )


_STRAYS = text(
    f"""WITH g AS (
            SELECT p.community_code, q.srid, p.label,
                   (ST_Dump(ST_Transform(p.geom, q.srid))).geom AS part
            FROM grid_proposal_grid p JOIN {_Q} ON q.code = p.community_code
            WHERE p.proposal_id = :p AND p.pieces > 1
        ), main AS (
            SELECT DISTINCT ON (community_code, label) community_code, srid, label, part FROM g
            ORDER BY community_code, label, ST_Area(part) DESC
        )
        SELECT u.community_code AS code, u.idx FROM grid_proposal_unit u
        JOIN main m ON m.community_code = u.community_code AND m.label = u.label
        WHERE u.proposal_id = :p
          AND NOT ST_Intersects(m.part, ST_PointOnSurface(ST_Transform(u.geom, m.srid)))
        ORDER BY u.community_code, u.idx"""
)


def _geometric_repair(
    conn: Connection,
    proposal_id: int,
    loaded: list[Loaded],
    labels: list[np.ndarray[Any, np.dtype[np.int64]]],
) -> list[np.ndarray[Any, np.dtype[np.int64]]]:
    """Second line of defence: units in a stray piece of a dissolved grid join a neighbour.

    The graph can call two cells adjacent when their boundaries run within millimetres
    without meeting (two sides of a street digitised apart); the dissolved polygon is the
    truth, so strays move to the bordering grid they share most boundary with.
    """
    srids = {ld.units.code: ld.srid for ld in loaded}
    q = {"codes": list(srids), "srids": list(srids.values())}
    pos = {ld.units.code: i for i, ld in enumerate(loaded)}
    labels = [lab.copy() for lab in labels]
    for _ in range(5):
        found = _by_code(conn.execute(_STRAYS, {"p": proposal_id, **q}).all())
        if not found:
            break
        for code, rows in found.items():
            g, lab = loaded[pos[code]].units.graph, labels[pos[code]]
            strays = [r.idx for r in rows]
            stray = np.zeros(g.n, dtype=bool)
            stray[strays] = True
            for u in strays:
                m = (g.edge_a == u) | (g.edge_b == u)
                other = np.where(g.edge_a[m] == u, g.edge_b[m], g.edge_a[m])
                ok = (lab[other] != lab[u]) & ~stray[other]
                if ok.any():
                    share = np.bincount(lab[other][ok], weights=g.edge_len[m][ok])
                    lab[u] = int(np.argmax(share))
            conn.execute(
                text(
                    """UPDATE grid_proposal_unit u SET label = s.label
                       FROM unnest(CAST(:idx AS int[]), CAST(:label AS int[])) AS s(idx, label)
                       WHERE u.proposal_id = :p AND u.community_code = :c AND u.idx = s.idx"""
                ),
                {"p": proposal_id, "c": code, "idx": strays, "label": lab[strays].tolist()},
            )
        dissolve_many(conn, proposal_id, {c: srids[c] for c in found})
    return labels


_DISSOLVE = text(
    f"""WITH u AS (
            SELECT u.community_code AS code, q.srid, u.label,
                   ST_Transform(u.geom, q.srid) AS g, u.households, u.population,
                   array_to_string(u.special, ',') AS special
            FROM grid_proposal_unit u JOIN {_Q} ON q.code = u.community_code
            WHERE u.proposal_id = :p
        ), c AS (
            SELECT q.code, (x.p).path AS path, (x.p).geom AS part FROM {_Q}
            CROSS JOIN LATERAL (
                SELECT ST_Dump(ST_Transform(boundary, q.srid)) AS p FROM admin_division
                WHERE code = q.code AND level = 'village' AND valid_to IS NULL) x
        ), d AS (
            SELECT code, label, ST_CollectionExtract(ST_UnaryUnion(ST_Collect(g), 0.01), 3) AS g,
                   sum(households) AS h, sum(population) AS pop,
                   ARRAY(SELECT DISTINCT s FROM unnest(string_to_array(
                             string_agg(special, ','), ',')) s
                         WHERE s <> '' ORDER BY s) AS special
            FROM u GROUP BY code, label
        )
        INSERT INTO grid_proposal_grid (proposal_id, community_code, label, grid_code, kind,
                                        special, households, population, area_m2,
                                        polsby_popper, pieces, geom)
        SELECT :p, d.code, label, rpad(d.code, 15, '0'),
               CASE WHEN cardinality(special) > 0 THEN 'dedicated' ELSE 'basic' END, special,
               h, pop, ST_Area(g),
               CASE WHEN ST_Perimeter(g) > 0
                    THEN 4 * pi() * ST_Area(g) / (ST_Perimeter(g) ^ 2) ELSE 0 END,
               1 + (SELECT coalesce(sum(n - 1), 0) FROM (
                        SELECT count(*) AS n FROM ST_Dump(d.g) gp
                        JOIN c ON c.code = d.code
                              AND ST_Intersects(c.part, ST_PointOnSurface(gp.geom))
                        GROUP BY c.path) x),
               ST_Multi(ST_CollectionExtract(ST_MakeValid(ST_Transform(g, 4490)), 3))
        FROM d"""
)

_LABEL_POINTS = text(
    f"""SELECT p.community_code AS code, p.label, ST_X(t.c) AS x, ST_Y(t.c) AS y, p.area_m2
        FROM grid_proposal_grid p JOIN {_Q} ON q.code = p.community_code
        CROSS JOIN LATERAL (SELECT ST_Transform(ST_PointOnSurface(p.geom), q.srid) AS c) t
        WHERE p.proposal_id = :p ORDER BY p.community_code, p.label"""
)


def dissolve(conn: Connection, proposal_id: int, code: str, srid: int) -> None:
    """(Re)make one community's proposed grids from its units (see ``dissolve_many``)."""
    dissolve_many(conn, proposal_id, {code: srid})


def dissolve_many(conn: Connection, proposal_id: int, srids: dict[str, int]) -> None:
    """(Re)make communities' proposed grids from their units, then code them W→E, N→S.

    Set-based: one statement dissolves every grid of the given communities, one query reads
    their label points, one update writes the codes. A grid with pinned units is a 专属网格
    (``kind = dedicated``) and is numbered in the same W→E, N→S sequence as the others.
    ``pieces`` counts, per part of the community, the grid's pieces in that part: an exclave
    of a multi-part community joins the nearest grid without making it "two pieces".
    """
    q = {"p": proposal_id, "codes": list(srids), "srids": list(srids.values())}
    conn.execute(
        text(
            "DELETE FROM grid_proposal_grid WHERE proposal_id = :p AND community_code = ANY(:codes)"
        ),
        q,
    )
    conn.execute(_DISSOLVE, q)
    cs: list[str] = []
    labels: list[int] = []
    seqs: list[int] = []
    for code, rows in _by_code(conn.execute(_LABEL_POINTS, q).all()).items():
        seq = code_order(_xy(rows), float(sum(r.area_m2 for r in rows)))
        cs += [code] * len(rows)
        labels += [r.label for r in rows]
        seqs += seq.tolist()
    conn.execute(
        text(
            """UPDATE grid_proposal_grid g SET grid_code = s.c || lpad(s.seq::text, 3, '0')
               FROM unnest(CAST(:cs AS text[]), CAST(:labels AS int[]), CAST(:seq AS int[]))
                    AS s(c, label, seq)
               WHERE g.proposal_id = :p AND g.community_code = s.c AND g.label = s.label"""
        ),
        {"p": proposal_id, "cs": cs, "labels": labels, "seq": seqs},
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
    ld: Loaded,
    plan: Plan,
    lab: np.ndarray[Any, np.dtype[np.int64]],
    params: Params,
    pieces: list[Any],
) -> dict[str, Any]:
    """Figures of one community's grids (pieces from the dissolved polygons).

    Balance figures cover the basic grids; special grids (labels ≥ ``plan.k``) are listed
    with their households and the features they were pinned for.
    """
    units = ld.units
    g = units.graph
    cut = lab[g.edge_a] != lab[g.edge_b]
    cross = units.block[g.edge_a] != units.block[g.edge_b]
    cut_len = float(g.edge_len[cut].sum())
    k_all = plan.k + len(ld.pins)
    hh_all = np.bincount(lab, weights=g.households, minlength=k_all)
    hh = hh_all[: plan.k]
    dev = np.abs(hh - params.target) / params.target
    basic_total = int(hh.sum())
    return {
        "community_code": units.code,
        "units": g.n,
        "households": int(g.households.sum()),
        "grids": k_all,
        "special_grids": [
            {"label": plan.k + j, "households": int(hh_all[plan.k + j]), "features": names}
            for j, (_, names) in enumerate(ld.pins)
        ],
        "too_small": basic_total < params.target * (1 - params.tolerance),
        "hh_min": int(hh.min()) if hh.size else 0,
        "hh_max": int(hh.max()) if hh.size else 0,
        "within_tolerance": int((dev <= params.tolerance + 1e-9).sum()),
        "beyond_20pct": int((dev > 0.2 + 1e-9).sum()),
        "one_piece": sum(1 for p in pieces if p.pieces == 1),
        "cut_len_m": round(cut_len, 1),
        "cut_on_barriers_m": round(float(g.edge_len[cut & cross].sum()), 1),
        "notes": plan.notes,
    }


def _summary(per: list[dict[str, Any]], params: Params) -> dict[str, Any]:
    grids = sum(c["grids"] for c in per)
    special = sum(len(c["special_grids"]) for c in per)
    basic = grids - special
    cut = sum(c["cut_len_m"] for c in per)
    return {
        "target": params.target,
        "tolerance": params.tolerance,
        "communities": len(per),
        "grids": grids,
        "special_grids": special,
        "within_tolerance_share": round(sum(c["within_tolerance"] for c in per) / max(basic, 1), 4),
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
                                 population, area_m2, version, valid_from, supersedes, source,
                                 attributes)
               SELECT p.grid_code, a.name || '第' || (substr(p.grid_code, 13, 3)::int) || '网格',
                      p.kind, p.community_code, p.geom, p.households, p.population,
                      ST_Area(p.geom::geography),
                      coalesce((SELECT max(version) FROM grid o WHERE o.grid_code = p.grid_code),
                               0) + 1,
                      :today,
                      coalesce((SELECT array_agg(o.id ORDER BY o.id) FROM grid o
                                WHERE o.id = ANY(:old) AND o.geom && p.geom
                                  AND ST_Area(ST_Intersection(o.geom, p.geom)) > 0), '{}'),
                      :source,
                      CASE WHEN cardinality(p.special) > 0
                           THEN jsonb_build_object('special', p.special) ELSE '{}'::jsonb END
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
    """The stored units of one community of a proposal as a graph, with their labels.

    Adjacency is recomputed with the proposal's barrier kinds and, when it ran with hard
    barriers and a crossing layer, with the crossings: an edit cannot join two units that
    the partition treated as apart.
    """
    srid = community_srid(conn, code)
    params = conn.execute(
        text("SELECT params FROM grid_proposal WHERE id = :p"), {"p": proposal_id}
    ).scalar_one()
    q = {"codes": [code], "srids": [srid]}
    kinds = list(params.get("barriers", DEFAULT_BARRIERS))
    lrows = conn.execute(_LINES, {**q, "kinds": kinds}).all()
    crossings = None
    if (
        params.get("hard_barriers", False)
        and conn.execute(_HAS_CROSSINGS, {"codes": [code]}).scalar()
    ):
        crossings = shapely.points(_xy(conn.execute(_CROSSINGS, q).all()))
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
    ea, eb, elen, ecost = adjacency(
        geoms,
        block,
        np.asarray([shapely.from_wkb(bytes(r.wkb)) for r in lrows], dtype=object),
        np.asarray([r.kind in MAJOR_KINDS for r in lrows], dtype=bool),
        crossings,
    )
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
