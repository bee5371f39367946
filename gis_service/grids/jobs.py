"""Running a proposal as a job (CLI or API background thread) and reading it back for the map."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, text

from gis_service.db.engine import make_sync_engine
from gis_service.domain.scope import Principal
from gis_service.errors import FieldProblem, InvalidInput
from gis_service.grids.store import (
    Progress,
    ProposalRequest,
    proposal_graph,
    proposal_row,
    run_proposal,
)

__all__ = ["proposal_view", "run_job", "sync_tx"]

log = logging.getLogger(__name__)

_SET_LOCAL = text(
    "SELECT set_config('gis.actor', :actor, true), set_config('gis.scope', :scope, true)"
)


@contextlib.contextmanager
def sync_tx(engine: Engine, principal: Principal) -> Iterator[Connection]:
    """One transaction acting as ``principal`` (the audit trigger reads gis.actor)."""
    with engine.begin() as conn:
        conn.execute(_SET_LOCAL, {"actor": principal.login, "scope": principal.scope_code or ""})
        yield conn


def _quiet(_m: str, _d: int, _t: int) -> None:
    return None


def run_job(  # noqa: PLR0917
    url: str,
    proposal_id: int,
    req: ProposalRequest,
    principal: Principal,
    progress: Progress = _quiet,
    workers: int = 2,
) -> dict[str, Any] | None:
    """Partition and store; on failure the proposal is marked ``failed`` with the reason."""
    engine = make_sync_engine(url)
    try:
        with sync_tx(engine, principal) as conn:
            return run_proposal(conn, proposal_id, req, progress=progress, workers=workers)
    except Exception as exc:
        log.exception("grid proposal %s failed", proposal_id)
        with sync_tx(engine, principal) as conn:
            conn.execute(
                text(
                    """UPDATE grid_proposal SET status = 'failed', error_detail = :e,
                       finished_at = now() WHERE id = :id"""
                ),
                {"e": f"{type(exc).__name__}: {str(exc)[:300]}", "id": proposal_id},
            )
        raise
    finally:
        engine.dispose()


def proposal_view(
    conn: Connection,
    proposal_id: int,
    principal: Principal,
    *,
    geometry: bool = True,
    units_of: str | None = None,
) -> dict[str, Any]:
    """The proposal with its grids as a GeoJSON FeatureCollection (CRS84) and per-grid stats.

    ``units_of`` (a community of the proposal) adds that community's units (``idx``, ``label``,
    households) as a second collection: what the map needs to offer "move a unit" edits.
    """
    row = proposal_row(conn, proposal_id, principal)
    out: dict[str, Any] = {
        "id": row.id,
        "status": row.status,
        "admin_code": row.admin_code,
        "community_codes": list(row.community_codes),
        "params": row.params,
        "quality": row.quality,
        "error": row.error_detail,
        "created_at": row.created_at.isoformat(),
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
        "committed_at": row.committed_at.isoformat() if row.committed_at else None,
    }
    if row.status in ("running", "failed"):
        return out
    geom_sql = "ST_AsGeoJSON(geom, 7)" if geometry else "NULL"
    grids = conn.execute(
        text(
            f"""SELECT community_code, label, grid_code, kind, special, households, population,
                       round(area_m2::numeric, 1) AS area_m2,
                       round(polsby_popper::numeric, 3) AS polsby_popper, pieces,
                       {geom_sql} AS gj
                FROM grid_proposal_grid WHERE proposal_id = :p
                ORDER BY grid_code"""
        ),
        {"p": proposal_id},
    ).all()
    target = float(row.params.get("target", 400))
    features = []
    for g in grids:
        props = {k: v for k, v in g._mapping.items() if k != "gj"}
        props["area_m2"] = float(props["area_m2"])
        props["polsby_popper"] = float(props["polsby_popper"])
        props["special"] = list(g.special)
        # a 专属网格 is outside the balance: no deviation from the target
        props["deviation"] = (
            None if g.kind == "dedicated" else round((g.households - target) / target, 4)
        )
        features.append(
            {
                "type": "Feature",
                "id": g.grid_code,
                "properties": props,
                "geometry": orjson.loads(g.gj) if g.gj else None,
            }
        )
    out["grids"] = {"type": "FeatureCollection", "features": features}
    if units_of is not None:
        out["units"] = _units(conn, proposal_id, units_of, list(row.community_codes))
        if row.status == "ready" and out["units"]["features"]:
            _add_borders(conn, proposal_id, units_of, out["units"]["features"])
    out["crs"] = "CRS84"  # lon/lat on CGCS2000 (SRID 4490), which GeoJSON viewers draw as WGS84
    out["bbox"] = _bbox(features)
    return out


def _units(conn: Connection, proposal_id: int, code: str, codes: list[str]) -> dict[str, Any]:
    """One community's units of a proposal as GeoJSON (CRS84)."""
    if code not in codes:
        raise InvalidInput(
            detail="units: not a community of this proposal",
            fields=[FieldProblem("units", "not a community of this proposal")],
        )
    rows = conn.execute(
        text(
            """SELECT idx, label, households, population, special,
                      ST_AsGeoJSON(geom, 7) AS gj
               FROM grid_proposal_unit WHERE proposal_id = :p AND community_code = :c
               ORDER BY idx"""
        ),
        {"p": proposal_id, "c": code},
    ).all()
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": r.idx,
                "properties": {
                    "community_code": code,
                    "idx": r.idx,
                    "label": r.label,
                    "households": r.households,
                    "population": r.population,
                    "special": list(r.special),
                },
                "geometry": orjson.loads(r.gj),
            }
            for r in rows
        ],
    }


def _add_borders(
    conn: Connection, proposal_id: int, code: str, features: list[dict[str, Any]]
) -> None:
    """Each unit's ``borders``: the other grids it may move into (its neighbours' labels).

    Read from the same unit graph a move edit is checked on, so the map offers exactly the
    grids the edit accepts as bordering (not every grid of the community).
    """
    g, labels, _ = proposal_graph(conn, proposal_id, code)
    borders: list[set[int]] = [set() for _ in range(g.n)]
    for a, b in zip(g.edge_a.tolist(), g.edge_b.tolist(), strict=True):
        borders[a].add(int(labels[b]))
        borders[b].add(int(labels[a]))
    for f in features:
        i = f["properties"]["idx"]
        f["properties"]["borders"] = sorted(borders[i] - {int(labels[i])})


def _bbox(features: list[dict[str, Any]]) -> list[float] | None:
    """[west, south, east, north] of the proposed grids, to fit the map to them."""
    xs: list[float] = []
    ys: list[float] = []
    for f in features:
        geom = f["geometry"]
        if not geom:
            continue
        for poly in geom["coordinates"]:
            for ring in poly:
                xs.extend(p[0] for p in ring)
                ys.extend(p[1] for p in ring)
    if not xs:
        return None
    return [min(xs), min(ys), max(xs), max(ys)]
