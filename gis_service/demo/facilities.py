"""Public-service facilities of the 普查 (schools, hospitals, markets...) of one county.

Each kind is placed on buildings of the matching use and given the survey attributes the
bureau records for it (pupils, beds, booths...), so that impact queries have people to count.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from shapely.geometry import Point

from gis_service.demo.apportion import largest_remainder
from gis_service.demo.buildings import T_GREEN, T_RPUB, U_COMM, U_IND, U_MIX, U_PUB
from gis_service.demo.ledger_context import LedgerContext
from gis_service.demo.plans import Targets

__all__ = ["emit_facilities"]

# kind: (share, building pool, label suffixes)
_FACILITY_MIX: tuple[tuple[str, float, str], ...] = (
    ("school", 0.28, "public"),
    ("hospital", 0.08, "public"),
    ("welfare_home", 0.06, "public"),
    ("culture_venue", 0.07, "public"),
    ("stadium", 0.01, "public"),
    ("scenic_site", 0.04, "rural"),
    ("religious_site", 0.04, "rural"),
    ("hotel", 0.08, "commercial"),
    ("market", 0.1, "commercial"),
    ("gas_station", 0.08, "industrial"),
    ("depot", 0.06, "industrial"),
    ("other", 0.1, "commercial"),
)


def _facility_details(
    kind: str, rng: np.random.Generator, where: str
) -> tuple[str, int, dict[str, Any]]:
    """Name suffix, people count and survey-style attributes of one facility."""
    if kind == "school":
        level = str(rng.choice(["幼儿园", "小学", "中学"], p=[0.35, 0.45, 0.2]))
        students = int(rng.integers(120, 400) if level == "幼儿园" else rng.integers(300, 2400))
        return (
            level,
            students,
            {
                "学校类别": level,
                "在校生数": students,
                "教职工数": max(10, students // 14),
                "是否寄宿": level == "中学",
            },
        )
    if kind == "hospital":
        lvl = str(rng.choice(["卫生院", "社区卫生服务中心", "人民医院"], p=[0.45, 0.4, 0.15]))
        beds = int(rng.integers(20, 120) if lvl != "人民医院" else rng.integers(300, 1200))
        return lvl, beds, {"医疗机构类别": lvl, "床位数": beds, "医护人员数": int(beds * 1.4)}
    if kind == "welfare_home":
        beds = int(rng.integers(30, 260))
        return (
            "敬老院",
            beds,
            {
                "床位数": beds,
                "在院人数": int(beds * rng.uniform(0.5, 0.95)),
                "护理人员数": max(3, beds // 10),
            },
        )
    if kind == "culture_venue":
        cap = int(rng.integers(100, 1500))
        return str(rng.choice(["文化站", "图书馆", "文化馆"])), cap, {"设计容量": cap}
    if kind == "stadium":
        seats = int(rng.integers(3000, 30000))
        return "体育中心", seats, {"座位数": seats, "建筑面积": int(seats * 2.5)}
    if kind == "scenic_site":
        visitors = int(rng.integers(200, 5000))
        return (
            "风景区",
            visitors,
            {"景区等级": str(rng.choice(["A", "AA", "AAA"])), "日最大承载量": visitors},
        )
    if kind == "religious_site":
        return str(rng.choice(["寺", "庵", "庙"])), int(rng.integers(5, 60)), {"宗教类别": "佛教"}
    if kind == "hotel":
        rooms = int(rng.integers(20, 300))
        return "酒店", rooms * 2, {"客房数": rooms, "床位数": rooms * 2, "星级": "无"}
    if kind == "market":
        booths = int(rng.integers(40, 400))
        return "农贸市场", booths * 3, {"摊位数": booths}
    if kind == "gas_station":
        return (
            "加油站",
            int(rng.integers(4, 15)),
            {"油罐总容积（立方米）": int(rng.integers(60, 200))},
        )
    if kind == "depot":
        return (
            "物流仓库",
            int(rng.integers(10, 80)),
            {"仓储面积（平方米）": int(rng.integers(2000, 20000))},
        )
    del where
    return "综合服务中心", int(rng.integers(20, 200)), {"设计容量": int(rng.integers(50, 500))}


def emit_facilities(ctx: LedgerContext, targets: Targets) -> None:
    """Public-service facilities of the 普查, on buildings of the matching use."""
    rng, b, dv = ctx.cty.rng, ctx.b, ctx.dv
    pools = {
        "public": np.flatnonzero((b["use"] == U_PUB) & (b["typ"] != T_GREEN)),
        "commercial": np.flatnonzero((b["use"] == U_COMM) | (b["use"] == U_MIX)),
        "industrial": np.flatnonzero(b["use"] == U_IND),
        "rural": np.flatnonzero(b["typ"] == T_RPUB),
    }
    counts = largest_remainder(np.array([m[1] for m in _FACILITY_MIX]), targets.facilities)
    used: set[int] = set()
    taken_names: set[str] = set()
    for (kind, _, pool_name), cnt in zip(_FACILITY_MIX, counts, strict=True):
        pool = pools[pool_name]
        if not len(pool):
            pool = pools["public"] if len(pools["public"]) else np.arange(len(b["cx"]))
        free = np.array([i for i in pool if int(i) not in used]) if len(pool) < 50_000 else pool
        if not len(free):
            free = pool
        for i in rng.choice(free, size=min(int(cnt), len(free)), replace=False):
            used.add(int(i))
            x, y = float(b["cx"][i]), float(b["cy"][i])
            c = int(ctx.b_comm[i])
            suffix, people, attrs = _facility_details(kind, rng, pool_name)
            base = dv.c_name[c].removesuffix("社区").removesuffix("村")
            nme = f"{base}{suffix}"
            if nme in taken_names:
                town = dv.t_name[dv.c_township[c]].removesuffix("街道").removesuffix("镇")
                nme = f"{town}{base}{suffix}"
            if nme in taken_names:
                nme = f"{nme}（{len(taken_names)}）"
            taken_names.add(nme)
            ctx.rows["facilities"].add(
                kind=kind, name=nme, geom=Point(x, y), people=people, attributes=attrs
            )
