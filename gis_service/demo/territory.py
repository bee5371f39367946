"""Rows of the territorial tables: townships and communities, grids with their staff, buildings.

These rows are written from the metric divisions and the households fixed per building; the
geometries were already converted to lon/lat by the caller.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely

from gis_service.demo.buildings import STRUCTURES, U_IND, USES, YEARS
from gis_service.demo.ledger_context import LedgerContext

__all__ = ["emit_buildings", "emit_divisions_grids"]


def emit_divisions_grids(ctx: LedgerContext, outline_ll: Any) -> None:
    """Township, community and grid rows, each grid with its worker, leader and 包保 cadre.

    Grid households and population are summed from the buildings, so they match the buildings
    table exactly; a grid whose buildings are mostly industrial is a dedicated grid.
    ``outline_ll`` is unused.
    """
    dv, gr, rows = ctx.dv, ctx.gr, ctx.rows
    code = ctx.cty.plan.code
    t_ll = ctx.ll(np.array(dv.t_geom, dtype=object))
    for t in range(len(dv.t_code)):
        rows["divisions"].add(
            code=dv.t_code[t],
            level="township",
            parent_code=code,
            name=dv.t_name[t],
            boundary=t_ll[t],
            urban_rural_code=None,
        )
    c_ll = ctx.ll(np.array(dv.c_geom, dtype=object))
    for c in range(len(dv.c_code)):
        rows["divisions"].add(
            code=dv.c_code[c],
            level="village",
            parent_code=dv.t_code[dv.c_township[c]],
            name=dv.c_name[c],
            boundary=c_ll[c],
            urban_rural_code=dv.c_urc[c],
        )
    del outline_ll
    ng = len(gr.code)
    g_hh = np.bincount(ctx.b_grid, weights=ctx.hh, minlength=ng).astype(np.int64)
    g_pop = np.bincount(ctx.b_grid, weights=ctx.pop, minlength=ng).astype(np.int64)
    area = shapely.area(ctx.b["geom"])
    ind = np.isin(ctx.b["use"], [U_IND])
    ind_share = np.bincount(ctx.b_grid, weights=area * ind, minlength=ng) / np.maximum(
        np.bincount(ctx.b_grid, weights=area, minlength=ng), 1.0
    )
    g_ll = ctx.grid_ll
    for g in range(ng):
        rows["grids"].add(
            grid_code=gr.code[g],
            name=gr.name[g],
            kind="dedicated" if ind_share[g] > 0.6 else "basic",
            community_code=gr.code[g][:12],
            geom=g_ll[g],
            households=int(g_hh[g]),
            population=int(g_pop[g]),
        )
        rows["grid_assignments"].add(
            grid_code=gr.code[g], person_key=ctx.grid_worker[g], role="grid_worker"
        )
        rows["grid_assignments"].add(
            grid_code=gr.code[g], person_key=ctx.comm_leader[gr.community[g]], role="grid_leader"
        )
        rows["responsibilities"].add(
            person_key=ctx.comm_baobao[gr.community[g]],
            target_type="grid",
            target_code=gr.code[g],
            level="township",
            duty="baobao",
        )


def emit_buildings(ctx: LedgerContext) -> None:
    """Building rows, attribute codes turned into the labels the schema stores."""
    b = ctx.b
    r = ctx.rows["buildings"]
    r.extend(
        geom=ctx.building_ll,
        households=ctx.hh,
        population=ctx.pop,
        structure=np.asarray(STRUCTURES)[b["structure"]],
        floors=b["floors"],
        use=np.asarray(USES)[b["use"]],
        year_band=np.asarray(YEARS)[b["year"]],
        urban_rural=np.where(b["rural"], "rural", "urban"),
    )
