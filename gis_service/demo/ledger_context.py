"""What the ledger builders of one county share, and the officials who hold duties in it.

Enterprises, hazards, geohazards, shelters, forests and facilities are all placed on the same
buildings, divisions and grids and assigned to the same officials; ``LedgerContext`` carries
those so that each builder takes one argument. ``appoint_staff`` creates the officials first,
because every ledger row names the people responsible for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import shapely

from gis_service.demo.county import County
from gis_service.demo.divisions import Divisions, Grids
from gis_service.demo.geometry import Arr, point_in
from gis_service.demo.tables import People, Rows

__all__ = ["LedgerContext", "appoint_staff", "inside_footprint"]


@dataclass
class LedgerContext:
    """Everything the ledger builders of one county need.

    The staff fields (person keys per grid, community, township and county office) start empty
    and are filled by :func:`appoint_staff` before any ledger is built.
    """

    cty: County
    dv: Divisions
    gr: Grids
    b: dict[str, Arr]
    b_grid: Arr
    b_comm: Arr
    hh: Arr
    pop: Arr
    ll: Callable[[Arr], Arr]
    rows: dict[str, Rows]
    people: People
    grid_ll: Arr
    building_ll: Arr
    blocks: Arr
    block_typ: Arr
    grid_worker: list[int] = field(default_factory=list)
    comm_leader: list[int] = field(default_factory=list)
    comm_cadre: list[int] = field(default_factory=list)
    comm_baobao: list[int] = field(default_factory=list)
    twp_head: list[int] = field(default_factory=list)
    twp_safety: list[int] = field(default_factory=list)
    county_staff: dict[str, list[int]] = field(default_factory=dict)

    def where(self, x: Arr, y: Arr) -> tuple[Arr, Arr]:
        """Community and township index of points (−1 outside the county)."""
        pts = shapely.points(np.column_stack([x, y]))
        c = point_in(np.array(self.dv.c_geom, dtype=object), pts)
        t = np.where(c >= 0, np.asarray(self.dv.c_township)[np.maximum(c, 0)], -1)
        return c, t

    def address(self, c: int, rng: np.random.Generator) -> str:
        """A postal address in community ``c``: a street number in towns, a 组 in villages."""
        t = self.dv.c_township[c]
        tail = f"{rng.integers(1, 400)}号" if self.dv.c_urban[c] else f"{rng.integers(1, 15)}组"
        return f"湖南省株洲市{self.cty.name}{self.dv.t_name[t]}{self.dv.c_name[c]}{tail}"


def inside_footprint(ctx: LedgerContext, i: Arr, rng: np.random.Generator) -> tuple[Arr, Arr]:
    """Random points well inside the footprints of buildings ``i``."""
    b = ctx.b
    a = rng.uniform(-0.3, 0.3, len(i)) * b["L"][i]
    c = rng.uniform(-0.3, 0.3, len(i)) * b["W"][i]
    x = b["cx"][i] + a * b["ux"][i] - c * b["uy"][i]
    y = b["cy"][i] + a * b["uy"][i] + c * b["ux"][i]
    return x, y


def appoint_staff(ctx: LedgerContext) -> None:
    """Officials, grid leaders and grid workers of the county."""
    cty, dv, p = ctx.cty, ctx.dv, ctx.people
    code = cty.plan.code
    ctx.county_staff = {
        "应急管理局": [
            p.add(f"{cty.name}应急管理局", pos, code)
            for pos in (
                "局长",
                "副局长",
                "安全生产监管股股长",
                "执法大队队长",
                "执法大队队员",
                "执法大队队员",
            )
        ],
        "自然资源局": [
            p.add(f"{cty.name}自然资源局", pos, code)
            for pos in ("副局长", "地质灾害防治股股长", "地质环境监测员")
        ],
        "林业局": [p.add(f"{cty.name}林业局", pos, code) for pos in ("副局长", "防火办主任")],
    }
    for t, tname in enumerate(dv.t_name):
        org = tname.replace("街道", "街道办事处") if tname.endswith("街道") else f"{tname}人民政府"
        head = "主任" if tname.endswith("街道") else "镇长"
        ctx.twp_head.append(p.add(org, head, dv.t_code[t]))
        ctx.twp_safety.append(p.add(org, "安全生产监督管理站站长", dv.t_code[t]))
    for c, cname in enumerate(dv.c_name):
        org = cname + ("居民委员会" if dv.c_urban[c] else "村民委员会")
        t = dv.c_township[c]
        tname = dv.t_name[t]
        torg = tname.replace("街道", "街道办事处") if tname.endswith("街道") else f"{tname}人民政府"
        ctx.comm_leader.append(p.add(org, "党总支书记（网格长）", dv.c_code[c]))
        ctx.comm_cadre.append(p.add(org, "主任" if dv.c_urban[c] else "村主任", dv.c_code[c]))
        ctx.comm_baobao.append(p.add(torg, "包保干部", dv.t_code[t]))
    for g, gcode in enumerate(ctx.gr.code):
        c = ctx.gr.community[g]
        org = dv.c_name[c] + ("居民委员会" if dv.c_urban[c] else "村民委员会")
        ctx.grid_worker.append(p.add(org, "专职网格员", gcode[:12]))
