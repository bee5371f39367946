"""Rural fabric: village sites, the roads between them and the houses strung along those roads.

Villages sit in valleys; their roads are a spanning tree of a Delaunay triangulation of the
village sites plus a few loops, which is what a Hunan county road map looks like, and 县道/省道
join the urban centres. Houses line the roads near each village or cluster around its core,
with sheds behind them, a few rural works on the roads and halls next to the larger villages.
"""

from __future__ import annotations

import numpy as np
import shapely

from gis_service.demo import buildings as bld
from gis_service.demo.apportion import largest_remainder
from gis_service.demo.buildings import choose, concat_buildings
from gis_service.demo.county import County
from gis_service.demo.geometry import Arr, delaunay_edges, spanning_tree, wobbly_lines

__all__ = ["rural_fabric"]


def _road_network(cty: County, n_houses: int) -> tuple[Arr, Arr, Arr, Arr]:
    """Village sites and the rural roads between them.

    Returns node coordinates, node house counts, edges (node pairs) and the edge polylines.
    Villages sit in valleys (low relief); roads form a spanning tree with some loops, which is
    what a Hunan county road map looks like, plus a few 县道/省道 between town centres.
    """
    rng = cty.rng
    rural = shapely.difference(cty.inner, cty.river_mask)
    area = rural.area
    n_nodes = max(8, round(n_houses / 45))
    s0 = float(np.sqrt(area / (3.0 * n_nodes)))
    minx, miny, maxx, maxy = cty.poly.bounds
    gx, gy = np.meshgrid(np.arange(minx, maxx, s0), np.arange(miny, maxy, s0))
    x = gx.ravel() + rng.uniform(-0.45, 0.45, gx.size) * s0
    y = gy.ravel() + rng.uniform(-0.45, 0.45, gx.size) * s0
    rho, _ = cty.rho(x, y)
    ok = (rho > 1.12) & shapely.contains_xy(rural, x, y)
    x, y = x[ok], y[ok]
    elev = cty.elevation(x, y)
    w = (1.0 - elev) ** 4 + 0.01
    n_nodes = min(n_nodes, len(x))
    pick = rng.choice(len(x), size=n_nodes, replace=False, p=w / w.sum())
    nodes = np.column_stack([x[pick], y[pick]])
    size = rng.lognormal(0.0, 0.6, n_nodes) * (1.0 - elev[pick]) ** 2
    houses = largest_remainder(size, n_houses)
    # Gates where rural roads meet each urban centre's edge.
    gates = []
    for c in cty.centres:
        k = 4 if c[6] > 0.5 else 8
        phi = np.linspace(0, 2 * np.pi, k, endpoint=False) + rng.uniform(0, 1)
        reff = c[2] * (1.0 + 0.2 * np.sin(2 * phi + c[4]) + 0.12 * np.sin(3 * phi + c[5]))
        gates.append(
            np.column_stack([c[0] + 1.02 * reff * np.cos(phi), c[1] + 1.02 * reff * np.sin(phi)])
        )
    gate = np.vstack(gates)
    gate = gate[shapely.contains_xy(cty.inner, gate[:, 0], gate[:, 1])]
    allp = np.vstack([nodes, gate])
    houses = np.r_[houses, np.zeros(len(gate), dtype=np.int64)]
    edges = delaunay_edges(allp)
    d = allp[edges[:, 1]] - allp[edges[:, 0]]
    length = np.hypot(d[:, 0], d[:, 1])
    mid = (allp[edges[:, 0]] + allp[edges[:, 1]]) / 2
    mrho, _ = cty.rho(mid[:, 0], mid[:, 1])
    both_gates = (edges[:, 0] >= n_nodes) & (edges[:, 1] >= n_nodes)
    fine = (length < 4.0 * s0 * np.sqrt(3.0)) & (mrho > 0.95) & ~both_gates
    edges, length = edges[fine], length[fine]
    crosses = shapely.intersects(
        cty.river_mask, shapely.linestrings(np.stack([allp[edges[:, 0]], allp[edges[:, 1]]], 1))
    )
    tree = spanning_tree(len(allp), edges, length * np.where(crosses, 6.0, 1.0))
    keep = tree | ((rng.random(len(edges)) < 0.28) & ~crosses)
    edges = edges[keep]
    lines = wobbly_lines(allp[edges[:, 0]], allp[edges[:, 1]], rng, amp=0.05)
    return allp, houses, edges, lines


def _major_roads(cty: County) -> None:
    """县道/省道 between the urban centres (seat and towns), gently curving."""
    rng = cty.rng
    c = cty.centres[:, :2]
    if len(c) < 2:
        return
    edges = delaunay_edges(c) if len(c) > 2 else np.array([[0, 1]])
    d = c[edges[:, 1]] - c[edges[:, 0]]
    length = np.hypot(d[:, 0], d[:, 1])
    keep = spanning_tree(len(c), edges, length) | (rng.random(len(edges)) < 0.3)
    edges = edges[keep]
    lines = wobbly_lines(c[edges[:, 0]], c[edges[:, 1]], rng, amp=0.03, nseg=10)
    lines = shapely.difference(shapely.intersection(lines, cty.inner), cty.urban_zone)
    for i, g in enumerate(lines):
        if not g.is_empty and g.length > 300:
            nme = f"S{rng.integers(201, 340)}" if i % 3 == 0 else f"X{rng.integers(10, 99):03d}"
            cty.lines.append(("road_major", f"{nme}线", g))
            cty.major_roads.append(g)


def rural_fabric(cty: County, n_houses: int, n_industrial: int) -> dict[str, Arr]:
    """Houses strung along village roads, sheds behind them, a few rural works and halls."""
    rng = cty.rng
    allp, houses, edges, lines = _road_network(cty, n_houses)
    cty.rural_nodes = allp[houses > 0]
    clipped = shapely.intersection(lines, cty.inner)
    for g in clipped[~shapely.is_empty(clipped)]:
        cty.lines.append(("road_minor", None, g))
    _major_roads(cty)
    n_all = len(allp)
    # CSR adjacency node -> incident edges.
    ends = np.concatenate([edges[:, 0], edges[:, 1]])
    eidx = np.concatenate([np.arange(len(edges)), np.arange(len(edges))])
    order = np.argsort(ends, kind="stable")
    ends, eidx = ends[order], eidx[order]
    start = np.searchsorted(ends, np.arange(n_all))
    deg = np.searchsorted(ends, np.arange(n_all), side="right") - start
    hn = np.repeat(np.arange(n_all), houses)
    nh = len(hn)
    has_edge = deg[hn] > 0
    along = (rng.random(nh) < 0.72) & has_edge
    # Along roads.
    k = (rng.random(nh) * np.maximum(deg[hn], 1)).astype(np.int64)
    e = (
        eidx[np.minimum(start[hn] + k, len(eidx) - 1)]
        if len(eidx)
        else np.zeros(nh, dtype=np.int64)
    )
    e = np.where(has_edge, e, 0)
    elen = shapely.length(lines[e]) if len(lines) else np.ones(nh)
    spread = 35.0 + 9.0 * np.sqrt(houses[hn])
    dist = np.minimum(np.abs(rng.normal(0, 1, nh)) * spread + 15.0, 0.48 * elen)
    from_start = edges[e, 0] == hn if len(edges) else np.ones(nh, dtype=bool)
    pos = np.where(from_start, dist, elen - dist)
    p0 = (
        shapely.get_coordinates(shapely.line_interpolate_point(lines[e], pos))
        if len(lines)
        else np.zeros((nh, 2))
    )
    p1 = (
        shapely.get_coordinates(shapely.line_interpolate_point(lines[e], pos + 4.0))
        if len(lines)
        else np.ones((nh, 2))
    )
    tan = p1 - p0
    tan /= np.maximum(np.hypot(*tan.T), 1e-9)[:, None]
    length = rng.uniform(10.0, 14.0, nh)
    width = rng.uniform(8.0, 11.0, nh)
    side = np.where(rng.random(nh) < 0.5, -1.0, 1.0)
    row = choose(rng, nh, [0, 1, 2], [65, 25, 10])
    off = 4.0 + rng.uniform(3.0, 8.0, nh) + width / 2 + row * 17.0
    nx, ny = -tan[:, 1] * side, tan[:, 0] * side
    ax = p0[:, 0] + nx * off + tan[:, 0] * rng.normal(0, 3, nh)
    ay = p0[:, 1] + ny * off + tan[:, 1] * rng.normal(0, 3, nh)
    # Cluster around the village core, aligned with the first road of the node.
    sig = 18.0 + 6.0 * np.sqrt(houses[hn])
    bx = allp[hn, 0] + rng.normal(0, 1, nh) * sig
    by = allp[hn, 1] + rng.normal(0, 1, nh) * sig
    e0 = eidx[np.minimum(start[hn], len(eidx) - 1)] if len(eidx) else np.zeros(nh, dtype=np.int64)
    dv = allp[edges[e0, 1]] - allp[edges[e0, 0]] if len(edges) else np.ones((nh, 2))
    ang = np.arctan2(dv[:, 1], dv[:, 0]) + rng.normal(0, 0.15, nh)
    cx = np.where(along, ax, bx)
    cy = np.where(along, ay, by)
    ux = np.where(along, tan[:, 0], np.cos(ang))
    uy = np.where(along, tan[:, 1], np.sin(ang))
    floors = choose(rng, nh, [1, 2, 3, 4], [12, 45, 35, 8])
    house = {
        "cx": cx,
        "cy": cy,
        "ux": ux,
        "uy": uy,
        "L": length,
        "W": width,
        "typ": np.full(nh, bld.T_RHOUSE),
        "floors": floors,
        "structure": choose(
            rng, nh, [bld.S_MAS, bld.S_RC, bld.S_WOOD, bld.S_OTHER], [65, 25, 6, 4]
        ),
        "use": choose(rng, nh, [bld.U_RES, bld.U_MIX], [95, 5]),
        "year": choose(rng, nh, [0, 1, 2, 3, 4, 5], [5, 12, 22, 28, 25, 8]),
        "rural": np.ones(nh, dtype=bool),
        "cap": np.where(rng.random(nh) < 0.2, 2.0, 1.0),
    }
    # Sheds (杂物间) behind half of the houses.
    sh = np.flatnonzero(rng.random(nh) < min(cty.plan.outbuildings, 1.0))
    sl, sw = rng.uniform(4.0, 8.0, len(sh)), rng.uniform(3.0, 5.5, len(sh))
    back = width[sh] / 2 + 2.5 + sw / 2
    shed = {
        "cx": cx[sh] - uy[sh] * side[sh] * back * np.where(along[sh], 1, -1),
        "cy": cy[sh] + ux[sh] * side[sh] * back * np.where(along[sh], 1, -1),
        "ux": ux[sh],
        "uy": uy[sh],
        "L": sl,
        "W": sw,
        "typ": np.full(len(sh), bld.T_SHED),
        "floors": np.ones(len(sh), dtype=np.int64),
        "structure": choose(rng, len(sh), [bld.S_MAS, bld.S_WOOD, bld.S_OTHER], [5, 2, 3]),
        "use": np.full(len(sh), bld.U_OTHER),
        "year": choose(rng, len(sh), [1, 2, 3, 4, 5], [10, 20, 30, 30, 10]),
        "rural": np.ones(len(sh), dtype=bool),
        "cap": np.zeros(len(sh)),
    }
    # Rural works (kilns, quarries, fireworks workshops) at road midpoints between villages.
    ni = min(n_industrial, len(lines))
    ie = rng.choice(len(lines), size=ni, replace=False) if ni else np.zeros(0, dtype=np.int64)
    q0 = shapely.get_coordinates(shapely.line_interpolate_point(lines[ie], 0.5, normalized=True))
    q1 = shapely.get_coordinates(shapely.line_interpolate_point(lines[ie], 0.52, normalized=True))
    tv = q1 - q0
    tv /= np.maximum(np.hypot(*tv.T), 1e-9)[:, None]
    iw = rng.uniform(15.0, 30.0, ni)
    works = {
        "cx": q0[:, 0] - tv[:, 1] * (iw / 2 + 14),
        "cy": q0[:, 1] + tv[:, 0] * (iw / 2 + 14),
        "ux": tv[:, 0],
        "uy": tv[:, 1],
        "L": rng.uniform(30.0, 70.0, ni),
        "W": iw,
        "typ": np.full(ni, bld.T_RIND),
        "floors": choose(rng, ni, [1, 2], [7, 3]),
        "structure": choose(rng, ni, [bld.S_STEEL, bld.S_MAS, bld.S_RC], [5, 3, 2]),
        "use": np.full(ni, bld.U_IND),
        "year": choose(rng, ni, [2, 3, 4], [3, 4, 3]),
        "rural": np.ones(ni, dtype=bool),
        "cap": np.zeros(ni),
    }
    # Village halls and schools next to the bigger villages.
    big = np.flatnonzero(houses >= 25)
    nbg = len(big)
    pa = rng.uniform(0, 2 * np.pi, nbg)
    pr = rng.uniform(25.0, 60.0, nbg)
    hall = {
        "cx": allp[big, 0] + pr * np.cos(pa),
        "cy": allp[big, 1] + pr * np.sin(pa),
        "ux": np.cos(pa),
        "uy": np.sin(pa),
        "L": rng.uniform(18.0, 36.0, nbg),
        "W": rng.uniform(10.0, 14.0, nbg),
        "typ": np.full(nbg, bld.T_RPUB),
        "floors": choose(rng, nbg, [2, 3, 4], [4, 4, 2]),
        "structure": np.full(nbg, bld.S_RC),
        "use": np.full(nbg, bld.U_PUB),
        "year": choose(rng, nbg, [2, 3, 4, 5], [2, 3, 3, 2]),
        "rural": np.ones(nbg, dtype=bool),
        "cap": np.zeros(nbg),
    }
    return concat_buildings([hall, works, house, shed])
