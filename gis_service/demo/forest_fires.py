"""Forest patches on the hills of one county and the fire points detected in and near them.

Forest is where the relief is high, minus the cleared land around villages, split into
compartments (林班) by Voronoi cells. Fire points fall in forests, near villages (field burning)
or on industrial buildings (heat sources), with statuses and verdicts that fit their origin.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import shapely
from shapely.geometry import Point

from gis_service.demo.buildings import T_RHOUSE, U_IND
from gis_service.demo.geometry import polygonal
from gis_service.demo.ledger_context import LedgerContext
from gis_service.demo.plans import AS_OF, Targets

__all__ = ["emit_forests_and_fires"]

_FOREST_TYPES = ("马尾松林", "杉木林", "樟树阔叶林", "毛竹林", "油茶林", "针阔混交林", "湿地松林")


def emit_forests_and_fires(ctx: LedgerContext, targets: Targets) -> None:
    """Forest patches on the hills (relief above a threshold) and fire points in and near them."""
    rng, cty = ctx.cty.rng, ctx.cty
    minx, miny, maxx, maxy = cty.poly.bounds
    step = 250.0
    gx, gy = np.meshgrid(np.arange(minx, maxx, step), np.arange(miny, maxy, step))
    x, y = gx.ravel(), gy.ravel()
    e = cty.elevation(x, y)
    hill = np.zeros(0, dtype=object)
    for thr in (0.3, 0.22, 0.15, 0.1, 0.06):
        m = e > thr
        if m.sum() >= 4 * targets.forests:
            break
    if m.sum():
        cells = shapely.box(x[m] - step / 2, y[m] - step / 2, x[m] + step / 2, y[m] + step / 2)
        hill = shapely.union_all(cells).buffer(120.0).buffer(-180.0).simplify(30.0)
        # Villages and their fields are cleared land; forest compartments (林班) split the rest.
        clear = shapely.union_all(
            shapely.buffer(shapely.points(cty.rural_nodes), 220.0, quad_segs=4)
        )
        hill = shapely.intersection(shapely.difference(hill, clear), cty.inner)
        hx0, hy0, hx1, hy1 = hill.bounds
        k = max(targets.forests * 3, 8)
        seeds = np.column_stack([rng.uniform(hx0, hx1, k), rng.uniform(hy0, hy1, k)])
        cells_v = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds)))
        pieces = shapely.intersection(cells_v, hill)
        hill = shapely.get_parts(polygonal(pieces))
    patches = hill[shapely.area(hill) > 150_000] if len(hill) else hill
    patches = patches[np.argsort(-shapely.area(patches), kind="stable")][: targets.forests]
    patches = polygonal(patches)
    codes: list[str] = []
    for j, pg in enumerate(patches):
        rp = pg.representative_point()
        c, _ = ctx.where(np.array([rp.x]), np.array([rp.y]))
        ci = int(c[0]) if c[0] >= 0 else 0
        code = f"{cty.plan.code}LQ{j + 1:03d}"
        codes.append(code)
        ctx.rows["forest_patches"].add(
            code=code,
            name=f"{ctx.dv.t_name[ctx.dv.c_township[ci]]}{ctx.dv.c_name[ci]}林区",
            forest_type=str(rng.choice(_FOREST_TYPES)),
            fuel_load=round(float(rng.uniform(8.0, 45.0)), 1),
            area_ha=round(float(pg.area / 1e4), 2),
            geom=pg,
        )
        for r in range(1 + int(rng.random() < 0.5)):
            ranger = ctx.people.add(
                ctx.dv.c_name[ci] + "村民委员会", "生态护林员", ctx.dv.c_code[ci]
            )
            ctx.rows["responsibilities"].add(
                person_key=ranger,
                target_type="forest_patch",
                target_code=code,
                level="village" if r == 0 else "group",
                duty="ranger",
            )
    # Fire points.
    n = targets.fires
    b = ctx.b
    kinds = (
        rng.choice(4, size=n, p=[0.6, 0.2, 0.1, 0.1])
        if len(patches)
        else rng.choice([1, 2, 3], size=n, p=[0.5, 0.25, 0.25])
    )
    rural = np.flatnonzero(b["rural"] & (b["typ"] == T_RHOUSE))
    ind = np.flatnonzero(b["use"] == U_IND)
    tree = shapely.STRtree(patches) if len(patches) else None
    for i in range(n):
        k = int(kinds[i])
        if k == 0:
            pg = patches[int(rng.integers(len(patches)))]
            x0, y0, x1, y1 = pg.bounds
            for _ in range(50):
                px, py = rng.uniform(x0, x1), rng.uniform(y0, y1)
                if pg.contains(Point(px, py)):
                    break
            src = rng.choice(
                ["satellite", "tower", "video_ai", "uav", "patrol"], p=[0.4, 0.2, 0.2, 0.1, 0.1]
            )
        elif k in (1, 3) and len(rural):
            j = rural[int(rng.integers(len(rural)))]
            a = rng.uniform(0, 2 * np.pi)
            rad = rng.uniform(60, 250)
            px, py = b["cx"][j] + rad * np.cos(a), b["cy"][j] + rad * np.sin(a)
            src = rng.choice(
                ["satellite", "patrol", "public", "checkpoint"], p=[0.3, 0.3, 0.3, 0.1]
            )
        else:
            j = ind[int(rng.integers(len(ind)))] if len(ind) else int(rng.integers(len(b["cx"])))
            px, py = b["cx"][j], b["cy"][j]
            src = "satellite"
        status = str(
            rng.choice(["closed", "feedback", "dispatched", "pending"], p=[0.75, 0.1, 0.1, 0.05])
        )
        recent = status in ("pending", "dispatched")
        days = rng.uniform(0.05, 2.0) if recent else rng.uniform(3, 540)
        when = AS_OF - timedelta(days=float(days))
        if not recent and when.month in (5, 6, 7, 8, 9) and rng.random() < 0.7:
            when = when.replace(month=int(rng.choice([1, 2, 3, 4, 11, 12])), day=min(when.day, 28))
            when = min(when, AS_OF - timedelta(days=3))
        verdict = None
        if status in ("feedback", "closed"):
            verdict = str(
                rng.choice(
                    ["forest_fire", "false_alarm", "agri_burning", "other"], p=[0.4, 0.3, 0.2, 0.1]
                )
                if k == 0
                else rng.choice(["agri_burning", "false_alarm"], p=[0.8, 0.2])
                if k in (1, 3)
                else rng.choice(["industrial_heat", "false_alarm"], p=[0.9, 0.1])
            )
        if not shapely.contains_xy(cty.inner, px, py):
            px, py = float(b["cx"][rural[0]]), float(b["cy"][rural[0]])
        pt = Point(px, py)
        patch = None
        if tree is not None:
            hit = tree.query(pt, predicate="within")
            patch = codes[int(hit[0])] if len(hit) else None
        conf = int(rng.integers(40, 101)) if src == "satellite" else int(rng.integers(60, 101))
        ctx.rows["fire_points"].add(
            geom=pt,
            source_kind=str(src),
            detected_at=when,
            confidence=conf,
            verification_status=status,
            verdict=verdict,
            forest_patch_code=patch,
        )
