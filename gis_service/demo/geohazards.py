"""Geological hazard points of one county, their risk zones and their duty holders.

Points sit on the steepest slopes just above rural houses, at most one per 900 m cell, and
threaten the households within their radius; the most threatening ones get a risk zone. Each
point carries the six duty holders of the 群测群防 system.
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import Polygon

from gis_service.demo.geometry import Arr, polygonal
from gis_service.demo.ledger_context import LedgerContext
from gis_service.demo.plans import Targets

__all__ = ["emit_geohazards"]

_GEO_KINDS = (
    "landslide",
    "collapse",
    "debris_flow",
    "ground_collapse",
    "ground_fissure",
    "subsidence",
)
_GEO_ZH = {
    "landslide": "滑坡",
    "collapse": "崩塌",
    "debris_flow": "泥石流",
    "ground_collapse": "地面塌陷",
    "ground_fissure": "地裂缝",
    "subsidence": "地面沉降",
}


def _danger_grade(people: int) -> str:
    """险情等级 by threatened people (DZ/T 0286): Ⅰ ≥ 1000, Ⅱ 500–1000, Ⅲ 100–500, Ⅳ < 100."""
    if people >= 1000:
        return "I"
    if people >= 500:
        return "II"
    if people >= 100:
        return "III"
    return "IV"


def emit_geohazards(ctx: LedgerContext, targets: Targets) -> tuple[Arr, list[str], Arr]:
    """Geological hazard points on slopes above rural houses, their zones and duty holders."""
    rng, cty, b = ctx.cty.rng, ctx.cty, ctx.b
    cand = np.flatnonzero(b["rural"] & (ctx.hh > 0))
    if len(cand) > 20_000:  # a sample is plenty to find steep slopes, and bounds the cost
        cand = np.sort(rng.choice(cand, size=20_000, replace=False))
    if not len(cand):
        return np.zeros((0, 2)), [], np.zeros(0)
    x, y = b["cx"][cand], b["cy"][cand]
    e0 = cty.elevation(x, y)
    gx = (cty.elevation(x + 25.0, y) - e0) / 25.0
    gy = (cty.elevation(x, y + 25.0) - e0) / 25.0
    slope = np.hypot(gx, gy)
    score = slope * (e0 > 0.05) + 1e-9
    cell = np.floor(x / 900.0) * 100_000 + np.floor(y / 900.0)
    order = rng.choice(len(cand), size=len(cand), replace=False, p=score / score.sum())
    _, first = np.unique(cell[order], return_index=True)
    pick = order[np.sort(first)][: targets.geohazards]
    n = len(pick)
    up = np.column_stack([gx[pick], gy[pick]])
    up /= np.maximum(np.hypot(*up.T), 1e-12)[:, None]
    dist = rng.uniform(30.0, 80.0, n)
    px, py = x[pick] + up[:, 0] * dist, y[pick] + up[:, 1] * dist
    radius = rng.choice([80.0, 120.0, 180.0, 260.0], size=n, p=[0.4, 0.3, 0.2, 0.1])
    res = np.flatnonzero(ctx.hh > 0)
    tree = shapely.STRtree(shapely.points(np.column_stack([b["cx"][res], b["cy"][res]])))
    gpts = shapely.points(np.column_stack([px, py]))
    qi, qb = tree.query(gpts, predicate="dwithin", distance=radius)
    thh = np.bincount(qi, weights=ctx.hh[res][qb], minlength=n).astype(np.int64)
    tpp = np.bincount(qi, weights=ctx.pop[res][qb], minlength=n).astype(np.int64)
    base = cand[pick]
    thh = np.where(thh > 0, thh, ctx.hh[base])
    tpp = np.where(tpp > 0, tpp, ctx.pop[base])
    comm, twp = ctx.where(px, py)
    comm = np.where(comm >= 0, comm, ctx.b_comm[base])
    twp = np.asarray(ctx.dv.c_township)[comm]
    kinds = rng.choice(len(_GEO_KINDS), size=n, p=[0.55, 0.25, 0.08, 0.08, 0.02, 0.02])
    codes: list[str] = []
    seq: dict[int, int] = {}
    rr, p = ctx.rows["responsibilities"], ctx.people
    nr = ctx.county_staff["自然资源局"]
    #: Each point's responsibility chain; a risk zone drawn around a point shares it.
    chains: list[tuple[tuple[int, str, str], ...]] = []
    for i in range(n):
        t, c = int(twp[i]), int(comm[i])
        seq[t] = seq.get(t, 0) + 1
        code = f"{ctx.dv.t_code[t]}{seq[t]:03d}"
        codes.append(code)
        kind = _GEO_KINDS[kinds[i]]
        grp = int(rng.integers(1, 12))
        ctx.rows["geohazard_points"].add(
            code=code,
            name=f"{ctx.dv.t_name[t]}{ctx.dv.c_name[c]}{grp}组{_GEO_ZH[kind]}",
            kind=kind,
            scale=str(rng.choice(["giant", "large", "medium", "small"], p=[0.01, 0.09, 0.3, 0.6])),
            danger_grade=_danger_grade(int(tpp[i])),
            stability=str(
                rng.choice(["stable", "basically_stable", "unstable"], p=[0.2, 0.55, 0.25])
            ),
            threatened_households=int(thh[i]),
            threatened_people=int(tpp[i]),
            threatened_property=round(float(thh[i] * rng.uniform(8.0, 25.0)), 1),
            monitoring=str(
                rng.choice(
                    [
                        "群测群防（人工巡查）",
                        "简易监测（裂缝计、雨量计）",
                        "专业监测（GNSS、倾斜计）",
                    ],
                    p=[0.5, 0.35, 0.15],
                )
            ),
            two_cards_issued=bool(rng.random() < 0.92),
            geom=gpts[i],
        )
        monitor = p.add(ctx.dv.c_name[c] + "村民委员会", "地质灾害监测员", ctx.dv.c_code[c])
        chain = (
            (nr[i % len(nr)], "county", "prevention_lead"),
            (ctx.twp_head[t], "township", "prevention_lead"),
            (ctx.comm_cadre[c], "village", "prevention_lead"),
            (monitor, "village", "monitor"),
            (monitor, "group", "warner"),
            (ctx.comm_leader[c], "village", "evacuation_lead"),
        )
        chains.append(chain)
        for key, level, duty in chain:
            rr.add(
                person_key=key,
                target_type="geohazard_point",
                target_code=code,
                level=level,
                duty=duty,
            )
    # Risk zones around the most threatening points.
    nz = min(targets.zones, n)
    top = np.argsort(-tpp, kind="stable")[:nz]
    levels = np.array(
        ["very_high"] * max(1, round(nz * 0.15))
        + ["high"] * round(nz * 0.3)
        + ["medium"] * round(nz * 0.35)
        + ["low"] * nz
    )[:nz]
    for j, i in enumerate(top):
        phi = np.linspace(0, 2 * np.pi, 28, endpoint=False)
        r = rng.uniform(140.0, 320.0) * (1 + 0.25 * np.sin(2 * phi + rng.uniform(0, 6)))
        zone = Polygon(np.column_stack([px[i] + r * np.cos(phi), py[i] + r * np.sin(phi)]))
        zone = polygonal(np.array([shapely.intersection(zone, cty.inner)], dtype=object))[0]
        inside = shapely.contains_xy(zone, b["cx"][res], b["cy"][res])
        kind = _GEO_KINDS[kinds[i]]
        t, c = int(twp[i]), int(comm[i])
        zone_code = f"{cty.plan.code}FXQ{j + 1:03d}"
        for key, level, duty in chains[int(i)]:
            rr.add(
                person_key=key,
                target_type="geohazard_zone",
                target_code=zone_code,
                level=level,
                duty=duty,
            )
        ctx.rows["geohazard_zones"].add(
            code=zone_code,
            name=f"{ctx.dv.t_name[t]}{ctx.dv.c_name[c]}{_GEO_ZH[kind]}风险区",
            risk_level=str(levels[j]),
            households=int(ctx.hh[res][inside].sum()),
            people=int(ctx.pop[res][inside].sum()),
            geom=zone,
        )
    return np.column_stack([px, py]), codes, tpp
