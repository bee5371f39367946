"""Townships, communities and grids of one county, and the households of each building.

Townships are Voronoi cells of their seats clipped to the county; communities are Voronoi cells
of household-weighted k-means centres clipped to their township; grids are a recursive
household-weighted bisection of each community's buildings, the cut boxes intersected with the
community. Each level therefore tiles its parent exactly, and the grid targets fix the
households of every building so that the county's totals are exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely

from gis_service.demo import names as nm
from gis_service.demo.apportion import allocate, largest_remainder
from gis_service.demo.county import County
from gis_service.demo.geometry import (
    Arr,
    nearest,
    point_in,
    polygonal,
    voronoi_cells,
    weighted_kmeans,
)
from gis_service.demo.plans import HOUSEHOLDS_PER_GRID

__all__ = ["Divisions", "Grids", "build_divisions", "build_grids", "households_per_building"]


@dataclass
class Divisions:
    """Townships and communities of one county (metric geometries)."""

    t_code: list[str] = field(default_factory=list)
    t_name: list[str] = field(default_factory=list)
    t_kind: list[str] = field(default_factory=list)
    t_geom: list[Any] = field(default_factory=list)
    c_code: list[str] = field(default_factory=list)
    c_name: list[str] = field(default_factory=list)
    c_township: list[int] = field(default_factory=list)
    c_urban: list[bool] = field(default_factory=list)
    c_urc: list[str] = field(default_factory=list)
    c_geom: list[Any] = field(default_factory=list)


def build_divisions(cty: County, b: dict[str, Arr]) -> tuple[Divisions, Arr]:
    """Townships (Voronoi of their seats) and communities (Voronoi of capacity clusters).

    Communities are seeded by household-weighted k-means of the township's buildings —
    separately for urban fabric (社区 of ~2 000 households) and rural houses (村 of ~700) —
    so every community has people and a Voronoi cell tiles the township exactly.
    Returns the divisions and each building's community index.
    """
    rng = cty.rng
    dv = Divisions()
    seeds = np.array([[s[2], s[3]] for s in cty.township_seeds])
    tcells = voronoi_cells(seeds, cty.poly)
    n_sub = n_town = 0
    for (nme, kind, _, _), g in zip(cty.township_seeds, tcells, strict=True):
        if kind == "subdistrict":
            n_sub += 1
            seg = n_sub
        else:
            seg = 100 + n_town
            n_town += 1
        dv.t_code.append(f"{cty.plan.code}{seg:03d}")
        dv.t_name.append(nme)
        dv.t_kind.append(kind)
        dv.t_geom.append(g)
    pts = np.column_stack([b["cx"], b["cy"]])
    bt = point_in(np.array(dv.t_geom, dtype=object), shapely.points(pts))
    taken: set[str] = set()
    b_comm = np.full(len(pts), -1, dtype=np.int64)
    for ti, tgeom in enumerate(dv.t_geom):
        in_t = np.flatnonzero((bt == ti) & (b["cap"] > 0))
        seeds_list, urban_flags = [], []
        for urban_part, size in ((True, 2000.0), (False, 700.0)):
            sel = in_t[~b["rural"][in_t]] if urban_part else in_t[b["rural"][in_t]]
            cap = b["cap"][sel]
            if cap.sum() < 150:
                continue
            k = max(1, round(cap.sum() / size))
            cen = weighted_kmeans(pts[sel], cap, k, rng)
            lab = nearest(pts[sel], cen)
            cen = cen[np.bincount(lab, weights=cap, minlength=len(cen)) > 0]
            seeds_list.append(cen)
            urban_flags += [urban_part] * len(cen)
        if not seeds_list:
            c_seeds = np.array([[tgeom.centroid.x, tgeom.centroid.y]])
            urban_flags = [dv.t_kind[ti] == "subdistrict"]
        else:
            c_seeds = np.vstack(seeds_list)
        # Number communities north to south, west to east, like a 统计用区划代码 list.
        order = np.lexsort((c_seeds[:, 0], -np.round(c_seeds[:, 1] / 1500.0)))
        c_seeds = c_seeds[order]
        flags = np.asarray(urban_flags)[order]
        cells = voronoi_cells(c_seeds, tgeom)
        urban_names = nm.place_names(rng, int(flags.sum()), urban=True, taken=taken)
        rural_names = nm.place_names(rng, int((~flags).sum()), urban=False, taken=taken)
        rho, _ = cty.rho(c_seeds[:, 0], c_seeds[:, 1])
        n_u = n_r = 0
        first = len(dv.c_code)
        for j, (g, fl) in enumerate(zip(cells, flags, strict=True)):
            if fl:
                n_u += 1
                seg, nme = n_u, urban_names[n_u - 1] + "社区"
                town = dv.t_kind[ti] == "town"
                urc = "121" if town else ("111" if rho[j] < 0.7 else "112")
            else:
                seg, nme = 199 + n_r + 1, rural_names[n_r] + "村"
                n_r += 1
                urc = "122" if rho[j] < 1.4 else "220"
            dv.c_code.append(f"{dv.t_code[ti]}{seg:03d}")
            dv.c_name.append(nme)
            dv.c_township.append(ti)
            dv.c_urban.append(bool(fl))
            dv.c_urc.append(urc)
            dv.c_geom.append(g)
        in_all = np.flatnonzero(bt == ti)
        local = point_in(np.asarray(cells, dtype=object), shapely.points(pts[in_all]))
        b_comm[in_all] = np.where(local >= 0, first + local, -1)
    return dv, b_comm


def _bisect(
    pts: Arr, w: Arr, k: int, bounds: tuple[float, float, float, float]
) -> list[tuple[tuple[float, float, float, float], Arr]]:
    """Recursive coordinate bisection into ``k`` parts of near-equal weight.

    Each cut is along the longer side of the current box, at the weighted quantile
    ``floor(k/2)/k``, half-way between two neighbouring points, so no point lies on a cut.
    """
    out: list[tuple[tuple[float, float, float, float], Arr]] = []
    stack = [(np.arange(len(pts)), k, bounds)]
    while stack:
        idx, kk, (x0, y0, x1, y1) = stack.pop()
        if kk <= 1 or len(idx) <= 1:
            out.append(((x0, y0, x1, y1), idx))
            continue
        axis = 0 if (x1 - x0) >= (y1 - y0) else 1
        order = idx[np.argsort(pts[idx, axis], kind="stable")]
        k1 = kk // 2
        cw = np.cumsum(w[order])
        target = cw[-1] * k1 / kk
        i = int(np.argmin(np.abs(cw - target)))
        i = min(max(i, k1 - 1), len(order) - (kk - k1) - 1)
        cut = (pts[order[i], axis] + pts[order[i + 1], axis]) / 2.0
        left, right = order[: i + 1], order[i + 1 :]
        if axis == 0:
            stack.append((right, kk - k1, (cut, y0, x1, y1)))
            stack.append((left, k1, (x0, y0, cut, y1)))
        else:
            stack.append((right, kk - k1, (x0, cut, x1, y1)))
            stack.append((left, k1, (x0, y0, x1, cut)))
    return out


@dataclass
class Grids:
    """Grids of one county (metric geometries) and the households each is meant to hold."""

    code: list[str] = field(default_factory=list)
    name: list[str] = field(default_factory=list)
    community: list[int] = field(default_factory=list)
    geom: list[Any] = field(default_factory=list)
    target: Arr = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def build_grids(cty: County, dv: Divisions, b: dict[str, Arr], b_comm: Arr, n_grids: int) -> Grids:
    """Split every community into grids of ~400 households and draw each grid's household count.

    The number of grids per community is proportional to its capacity (at least one), the
    county total is exact, and the households per grid are drawn around 400 (most within
    ±10 %, a few outliers as in real plans) summing exactly to the county's households.
    """
    rng = cty.rng
    nc = len(dv.c_code)
    res = b["cap"] > 0
    ccap = np.bincount(
        b_comm[res & (b_comm >= 0)], weights=b["cap"][res & (b_comm >= 0)], minlength=nc
    )
    nres = np.bincount(b_comm[res & (b_comm >= 0)], minlength=nc)
    k = largest_remainder(ccap, n_grids, minimum=1)
    over = k > np.maximum(nres, 1)
    if over.any():
        spare = int((k[over] - np.maximum(nres[over], 1)).sum())
        k[over] = np.maximum(nres[over], 1)
        for _ in range(spare):
            k[int(np.argmax(ccap / k * (k < nres)))] += 1
    gr = Grids()
    pts = np.column_stack([b["cx"], b["cy"]])
    for c in range(nc):
        sel = np.flatnonzero((b_comm == c) & res)
        cg = dv.c_geom[c]
        minx, miny, maxx, maxy = cg.bounds
        bounds = (minx - 1.0, miny - 1.0, maxx + 1.0, maxy + 1.0)
        leaves = (
            _bisect(pts[sel], b["cap"][sel], int(k[c]), bounds) if len(sel) else [(bounds, sel)]
        )
        boxes = shapely.box(*np.array([lf[0] for lf in leaves]).T)
        polys = polygonal(shapely.intersection(boxes, cg))
        rep = shapely.get_coordinates(shapely.point_on_surface(polys))
        h = np.sqrt(cg.area / max(len(leaves), 1))
        row = np.floor((maxy - rep[:, 1]) / h)
        order = np.lexsort((rep[:, 0], row))
        cname = dv.c_name[c]
        for seq, li in enumerate(order, start=1):
            gr.code.append(f"{dv.c_code[c]}{seq:03d}")
            gr.name.append(f"{cname}第{seq}网格")
            gr.community.append(c)
            gr.geom.append(polys[li])
    n = len(gr.code)
    dev = rng.normal(0.0, 0.035, n)
    outlier = rng.random(n) < 0.025
    dev[outlier] = rng.choice([-1, 1], int(outlier.sum())) * rng.uniform(
        0.11, 0.22, int(outlier.sum())
    )
    dev = np.where(outlier, dev, np.clip(dev, -0.085, 0.085))
    target = np.round(HOUSEHOLDS_PER_GRID * (1 + dev)).astype(np.int64)
    diff = cty.plan.households - int(target.sum())
    while diff != 0:
        step = 1 if diff > 0 else -1
        cand = np.flatnonzero(~outlier)
        pick = rng.choice(cand, size=min(abs(diff), len(cand)), replace=False)
        target[pick] += step
        diff -= step * len(pick)
    gr.target = target
    return gr


def households_per_building(
    rng: np.random.Generator, b: dict[str, Arr], b_grid: Arr, gr: Grids, population: int
) -> tuple[Arr, Arr]:
    """Households and population per building from the grids' targets (exact totals)."""
    ng = len(gr.code)
    res = b["cap"] > 0
    gcap = np.bincount(b_grid[res], weights=b["cap"][res], minlength=ng)
    target = gr.target.copy()
    comm = np.asarray(gr.community)
    for g in np.flatnonzero(gcap <= 0):
        same = np.flatnonzero((comm == comm[g]) & (gcap > 0))
        if len(same):
            target[same[np.argmax(gcap[same])]] += target[g]
        target[g] = 0
    gr.target = target
    hh = np.zeros(len(b_grid), dtype=np.int64)
    idx = np.flatnonzero(res)
    hh[idx] = allocate(target, b_grid[idx], b["cap"][idx], ng)
    rate = np.where(b["rural"], rng.normal(2.3, 0.35, len(hh)), rng.normal(1.85, 0.3, len(hh)))
    extra_w = hh * np.clip(rate, 0.3, 4.0)
    extra = largest_remainder(extra_w, max(population - int(hh.sum()), 0))
    pop = np.where(hh > 0, hh + extra, 0)
    # Rounding may leave a few extra persons on buildings without households: move them.
    lost = int(population - pop.sum())
    if lost and (hh > 0).any():
        pop[np.flatnonzero(hh > 0)[0]] += lost
    return hh, pop
