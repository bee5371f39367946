"""The enterprise ledger of one county: exact counts per risk colour, on industrial buildings.

Sectors are drawn per colour (red and orange lean to hazchem, fireworks and mines), mines and
fireworks workshops go to rural works, hazchem to the chemical park where there is one. Each
enterprise gets a valid USCC, a principal and a regulator whose level follows its colour.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import shapely

from gis_service.demo import names as nm
from gis_service.demo.buildings import T_RIND, U_IND
from gis_service.demo.codes import uscc
from gis_service.demo.geometry import Arr
from gis_service.demo.ledger_context import LedgerContext, inside_footprint
from gis_service.demo.plans import AS_OF, SECTORS, Targets

__all__ = ["RURAL_SECTORS", "emit_enterprises"]

RURAL_SECTORS = (1, 2, 3)  # fireworks, non_coal_mine, coal_mine


def emit_enterprises(
    ctx: LedgerContext, targets: Targets, serial0: int
) -> tuple[list[str], Arr, Arr, list[str], list[int]]:
    """Enterprises of the county with exact colour counts; returns what hazards need."""
    rng, cty, b = ctx.cty.rng, ctx.cty, ctx.b
    red, orange, yellow, blue = targets.colours
    colours = np.array(["red"] * red + ["orange"] * orange + ["yellow"] * yellow + ["blue"] * blue)
    n = len(colours)
    base = np.asarray(cty.plan.sector_weights, dtype=float)
    boost = {
        "red": np.array([6, 4, 2, 2, 0.0, 0.0]),
        "orange": np.array([4, 4, 3, 3, 0.5, 0.1]),
        "yellow": np.array([1.5, 1.5, 1.5, 1.5, 1, 0.5]),
        "blue": np.array([0.2, 0.3, 0.3, 0.1, 1, 2]),
    }
    sector = np.empty(n, dtype=np.int64)
    for col, w in boost.items():
        m = colours == col
        pw = base * w
        if pw.sum() == 0:
            pw = base.copy()
        sector[m] = rng.choice(6, size=int(m.sum()), p=pw / pw.sum())
    ind_urban = np.flatnonzero((b["use"] == U_IND) & ~b["rural"])
    ind_rural = np.flatnonzero(b["typ"] == T_RIND)
    ind_any = np.flatnonzero(b["use"] == U_IND)
    spots = cty.plan.industrial_spots
    chem_xy = [(*cty.to_m(np.array([s[0]]), np.array([s[1]])), s[2]) for s in spots if s[3]]
    building = np.empty(n, dtype=np.int64)
    rural_sector = np.isin(sector, RURAL_SECTORS)
    for mask, wanted in ((rural_sector, ind_rural), (~rural_sector, ind_urban)):
        pool = wanted if len(wanted) else ind_any
        if not len(pool):
            pool = np.arange(len(b["cx"]))
        k = int(mask.sum())
        building[mask] = pool[
            rng.permutation(np.resize(np.arange(len(pool)), max(k, len(pool))))[:k]
        ]
    # Hazchem goes to the chemical park where there is one.
    if chem_xy:
        cx, cy, cr = chem_xy[0]
        d = np.hypot(b["cx"][ind_urban] - cx[0], b["cy"][ind_urban] - cy[0])
        park = ind_urban[d < cr]
        hz = np.flatnonzero(sector == 0)
        if len(park) and len(hz):
            building[hz] = park[
                rng.permutation(np.resize(np.arange(len(park)), max(len(hz), len(park))))[: len(hz)]
            ]
    x, y = inside_footprint(ctx, building, rng)
    comm, _ = ctx.where(x, y)
    comm = np.where(comm >= 0, comm, ctx.b_comm[building])
    brands = nm.brand_names(rng, n, set())
    names: list[str] = []
    codes: list[str] = []
    principal: list[int] = []
    short = cty.name.rstrip("区县市")
    for i in range(n):
        sec = SECTORS[sector[i]]
        trades = nm.ENTERPRISE_TRADES[sec]
        trade, flags = trades[int(rng.integers(len(trades)))]
        if sec == "coal_mine":
            ename = f"{short}{brands[i]}煤矿"
        elif trade == "加油站":
            ename = f"中国石化株洲{brands[i]}加油站"
        elif trade == "采石场":
            ename = f"{short}{brands[i]}采石场"
        else:
            ename = f"株洲{brands[i]}{trade}有限公司"
        fl = [f for f in flags if rng.random() < 0.75]
        if "confined_space" not in fl and rng.random() < 0.3:
            fl.append("confined_space")
        if sec == "hazchem" and colours[i] in ("red", "orange") and "major_hazard_source" not in fl:
            fl.append("major_hazard_source")
        if sec == "hazchem" and chem_xy:
            cx, cy, cr = chem_xy[0]
            if np.hypot(x[i] - cx[0], y[i] - cy[0]) < cr:
                fl.append("in_chemical_park")
        code = uscc(cty.plan.code, serial0 + i * 7919 + 1)
        emp = int(
            np.clip(rng.lognormal({"red": 5.5, "orange": 4.8}.get(colours[i], 3.6), 0.7), 5, 5000)
        )
        c = int(comm[i])
        ctx.rows["enterprises"].add(
            uscc=code,
            name=ename,
            address=ctx.address(c, rng),
            sector=sec,
            special_flags=sorted(set(fl)),
            risk_level=str(colours[i]),
            assessed_at=(AS_OF - timedelta(days=int(rng.integers(10, 365)))).date(),
            employees=emp,
            geom=shapely.Point(x[i], y[i]),
        )
        t = ctx.dv.c_township[c]
        p_key = ctx.people.add(ename, "主要负责人", ctx.dv.c_code[c])
        principal.append(p_key)
        high = colours[i] in ("red", "orange")
        level = "county" if high else "township"
        reg = ctx.county_staff["应急管理局"][2 + i % 4] if high else ctx.twp_safety[t]
        for key, duty in ((reg, "regulator"), (p_key, "enterprise_principal")):
            ctx.rows["responsibilities"].add(
                person_key=key, target_type="enterprise", target_code=code, level=level, duty=duty
            )
        names.append(ename)
        codes.append(code)
    return codes, np.column_stack([x, y]), colours, names, principal
