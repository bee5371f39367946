"""Emergency shelters of one county and the evacuation routes from geohazard points to them.

Outdoor shelters are the largest parks, indoor ones are public buildings and, nearest to the
geohazard points first, village halls: that is where people flee to. Each geohazard point then
gets one route, to the nearest road and on to the nearest shelter reachable inside the county.
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import LineString, Point

from gis_service.demo.buildings import T_GREEN, T_RPUB, U_PUB
from gis_service.demo.geometry import Arr, nearest, polygonal
from gis_service.demo.ledger_context import LedgerContext
from gis_service.demo.plans import Targets

__all__ = ["emit_evacuation_routes", "emit_shelters"]


def emit_shelters(ctx: LedgerContext, targets: Targets, gxy: Arr) -> tuple[Arr, list[str]]:
    """Emergency shelters: parks and squares (outdoor), schools and halls (indoor)."""
    rng, b, dv = ctx.cty.rng, ctx.b, ctx.dv
    n = targets.shelters
    green_blocks = np.flatnonzero(ctx.block_typ == T_GREEN)
    green_blocks = green_blocks[np.argsort(-shapely.area(ctx.blocks[green_blocks]), kind="stable")]
    pub = np.flatnonzero((b["use"] == U_PUB) & ~b["rural"] & (b["typ"] != T_GREEN))
    halls = np.flatnonzero(b["typ"] == T_RPUB)
    plan: list[tuple[str, str, int]] = []  # (grade, kind, index)
    n_out = min(len(green_blocks), max(2, n // 4))
    for j in range(n_out):
        plan.append(
            ("city" if j == 0 else "county" if j < 3 else "township", "park", int(green_blocks[j]))
        )
    n_pub = min(len(pub), max(0, (n - len(plan)) // 2))
    for j in rng.choice(len(pub), size=n_pub, replace=False) if n_pub else []:
        plan.append(("township" if rng.random() < 0.5 else "county", "hall", int(pub[j])))
    rest = n - len(plan)
    pool = halls if len(halls) else pub
    if rest > 0 and len(pool):
        # Village halls nearest to the geohazard points first: that is where people flee to.
        pxy = np.column_stack([b["cx"][pool], b["cy"][pool]])
        if len(gxy):
            near = np.unique(nearest(gxy, pxy))
            near = near[rng.permutation(len(near))]
        else:
            near = np.zeros(0, dtype=np.int64)
        others = np.setdiff1d(np.arange(len(pool)), near)
        order = np.r_[near, others[rng.permutation(len(others))]][:rest]
        for j in order:
            plan.append(("village", "hall", int(pool[j])))
    xy: list[tuple[float, float]] = []
    names: list[str] = []
    used: set[str] = set()
    for grade, kind, i in plan:
        if kind == "park":
            site = polygonal(np.array([ctx.blocks[i]], dtype=object))[0]
            pt = site.representative_point()
            eff = float(site.area * 0.65)
            cap = int(eff / 2.0)
            space, hz = "outdoor", ["earthquake", "fire", "hazchem"]
            label = "公园"
        else:
            site = polygonal(np.array([b["geom"][i]], dtype=object))[0]
            pt = Point(b["cx"][i], b["cy"][i])
            eff = float(b["L"][i] * b["W"][i] * b["floors"][i] * 0.6)
            cap = int(eff / 2.5)
            space, hz = "indoor", ["flood", "geohazard", "typhoon", "public_health"]
            label = "村部" if b["typ"][i] == T_RPUB else "学校体育馆"
        c, _ = ctx.where(np.array([pt.x]), np.array([pt.y]))
        ci = int(c[0]) if c[0] >= 0 else 0
        t = dv.c_township[ci]
        base = f"{dv.c_name[ci]}{label}应急避难场所"
        nme = base if base not in used else f"{dv.t_name[t]}{base}"
        nme = nme if nme not in used else f"{nme}{len(used) + 1}号"
        used.add(nme)
        duration = {
            "city": "long",
            "county": "medium",
            "township": "short",
            "village": "emergency",
        }[grade]
        ctx.rows["shelters"].add(
            name=nme,
            address=ctx.address(ci, rng),
            geom=pt,
            site=site,
            grade=grade,
            space_type=space,
            duration_class=duration,
            capacity=cap,
            effective_area=round(eff, 1),
            hazard_types=sorted(h for h in hz if rng.random() < 0.85) or [hz[0]],
            status=str(
                rng.choice(["closed", "opening", "open", "full"], p=[0.86, 0.04, 0.08, 0.02])
            ),
        )
        level = {
            "city": "county",
            "county": "county",
            "township": "township",
            "village": "village",
        }[grade]
        key = (
            ctx.comm_cadre[ci]
            if level == "village"
            else (ctx.twp_head[t] if level == "township" else ctx.county_staff["应急管理局"][1])
        )
        ctx.rows["responsibilities"].add(
            person_key=key, target_type="shelter", target_code=nme, level=level, duty="baobao"
        )
        xy.append((pt.x, pt.y))
        names.append(nme)
    return np.asarray(xy, dtype=float).reshape(-1, 2), names


def emit_evacuation_routes(
    ctx: LedgerContext, gxy: Arr, gcodes: list[str], sxy: Arr, snames: list[str]
) -> None:
    """One evacuation route per geohazard point: to the nearest road, then to the shelter."""
    if not len(gxy) or not len(sxy):
        return
    roads = np.array([g for k, _, g in ctx.cty.lines if k.startswith("road")], dtype=object)
    tree = shapely.STRtree(roads)
    pts = shapely.points(gxy)
    near = tree.nearest(pts)
    on_road = shapely.get_coordinates(shapely.get_point(shapely.shortest_line(pts, roads[near]), 1))
    d = ((on_road[:, None, :] - sxy[None]) ** 2).sum(-1)
    ranked = np.argsort(d, axis=1, kind="stable")
    for i in range(len(gxy)):
        # The nearest shelter whose route stays inside the county (outlines are concave).
        route, best = None, int(ranked[i, 0])
        for s in ranked[i, :8]:
            cand = LineString([gxy[i], on_road[i], sxy[s]])
            if ctx.cty.inner.contains(cand):
                route, best = cand, int(s)
                break
        if route is None:  # no shelter reachable inside: lead to the road, where transport waits
            route = LineString([gxy[i], on_road[i]])
        ctx.rows["evacuation_routes"].add(
            name=f"{gcodes[i]}撤离路线",
            geom=route,
            geohazard_code=gcodes[i],
            shelter_name=snames[best],
        )
