"""The hidden-hazard ledger (隐患台账) of one county: exact total and closed count.

Most hazards belong to enterprises (weighted towards the riskier colours); the rest are found
by grid patrols in residential and commercial buildings. Open hazards get a realistic tail of
statuses, deadlines and overdue cases relative to ``AS_OF``.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import shapely

from gis_service.demo import names as nm
from gis_service.demo.buildings import U_COMM, U_MIX, U_RES
from gis_service.demo.geometry import Arr
from gis_service.demo.ledger_context import LedgerContext
from gis_service.demo.plans import AS_OF, Targets

__all__ = ["emit_safety_hazards"]


def emit_safety_hazards(
    ctx: LedgerContext, targets: Targets, ent: tuple[list[str], Arr, Arr, list[str], list[int]]
) -> None:
    """The hidden-hazard ledger: exact total and closed count, realistic open tail."""
    rng = ctx.cty.rng
    codes, exy, colours, enames, principal = ent
    n, n_closed = targets.hazards, targets.hazards_closed
    n_open = n - n_closed
    is_ent = rng.random(n) < 0.78
    w = np.select(
        [colours == "red", colours == "orange", colours == "yellow"], [8.0, 4.0, 2.0], 1.0
    )
    e_idx = rng.choice(len(codes), size=n, p=w / w.sum())
    res_bld = np.flatnonzero(np.isin(ctx.b["use"], [U_RES, U_MIX, U_COMM]))
    b_idx = res_bld[rng.integers(0, len(res_bld), n)]
    status = np.array(
        ["closed"] * n_closed
        + list(
            rng.choice(
                ["found", "assigned", "rectifying", "closeout_requested"],
                size=n_open,
                p=[0.12, 0.18, 0.5, 0.2],
            )
        )
    )
    status = status[rng.permutation(n)]
    open_ = status != "closed"
    age = np.where(open_, rng.uniform(1, 150, n), rng.uniform(3, 720, n))
    found = [
        AS_OF - timedelta(days=float(a), hours=float(h))
        for a, h in zip(age, rng.uniform(0, 8, n), strict=True)
    ]
    order = np.argsort([f.timestamp() for f in found], kind="stable")
    month_seq: dict[str, int] = {}
    major = is_ent & (rng.random(n) < 0.025)
    overdue = open_ & (rng.random(n) < 0.3)
    b = ctx.b
    for i in order:
        f = found[i]
        ym = f"{f:%Y%m}"
        month_seq[ym] = month_seq.get(ym, 0) + 1
        hz_no = f"{ctx.cty.plan.code}-{ym}-{month_seq[ym]:04d}"
        if is_ent[i]:
            cat = "basic_management" if rng.random() < 0.3 else "site"
            pool = nm.HAZARD_TEMPLATES[cat]
            e = e_idx[i]
            x, y = exy[e, 0] + rng.normal(0, 4), exy[e, 1] + rng.normal(0, 4)
            via = rng.choice(
                [
                    "self_check",
                    "inspection",
                    "expert",
                    "covert",
                    "assigned_from_above",
                    "survey",
                    "public_report",
                    "grid_patrol",
                ],
                p=[0.35, 0.3, 0.1, 0.05, 0.05, 0.05, 0.05, 0.05],
            )
            org, person, euscc = enames[e], principal[e], codes[e]
        else:
            cat = "site"
            pool = tuple(t for t in nm.HAZARD_TEMPLATES["site"] if t[3])
            bi = b_idx[i]
            x, y = b["cx"][bi], b["cy"][bi]
            via = rng.choice(["grid_patrol", "public_report", "inspection"], p=[0.6, 0.3, 0.1])
            g = ctx.b_grid[bi]
            c = ctx.gr.community[g]
            org = ctx.dv.c_name[c] + ("居民委员会" if ctx.dv.c_urban[c] else "村民委员会")
            person, euscc = ctx.grid_worker[g], None
        title, desc, measures, _ = pool[int(rng.integers(len(pool)))]
        days = int(rng.integers(60, 150)) if major[i] else int(rng.integers(7, 60))
        deadline = f.date() + timedelta(days=days)
        if open_[i]:
            deadline = (
                AS_OF.date() - timedelta(days=int(rng.integers(1, 45)))
                if overdue[i]
                else max(deadline, AS_OF.date() + timedelta(days=int(rng.integers(3, 60))))
            )
            closed_at = None
        else:
            late = rng.random() < 0.08
            span = days + (int(rng.integers(1, 20)) if late else -int(rng.integers(0, days)))
            closed_at = min(
                f + timedelta(days=max(span, 1), hours=float(rng.uniform(0, 6))),
                AS_OF - timedelta(hours=1),
            )
        ctx.rows["safety_hazards"].add(
            hazard_no=hz_no,
            title=str(title),
            description=str(desc),
            enterprise_uscc=euscc,
            geom=shapely.Point(x, y),
            level="major" if major[i] else "general",
            category=cat,
            found_via=str(via),
            status=str(status[i]),
            escalated=bool(major[i] or (overdue[i] and rng.random() < 0.1)),
            responsible_org=org,
            responsible_person_key=int(person),
            measures=str(measures),
            deadline=deadline,
            found_at=f,
            closed_at=closed_at,
        )
