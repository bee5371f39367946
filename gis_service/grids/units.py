"""Units (the atoms grids are made of) and their adjacency, from blocks and buildings.

A *block* is a face of the community cut by the barrier lines (streets, rivers, rail, walls);
PostGIS makes them (``store.load_blocks``). Inside each block every building gets its
Voronoi cell, so units tile the community and carry the building's households; blocks with
no building are zero-household units. Two units are adjacent when they share a boundary
longer than ``MIN_SHARED_M`` (corners do not count). Cutting an edge that lies on a barrier
is cheap (``STREET_FACTOR``, ``MAJOR_FACTOR``), so grid boundaries follow streets and rivers.

All geometry here is in the community's Gauss-Krüger zone (metres); shapely, vectorised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray

from gis_service.grids.partition import BRIDGE_COST, UnitGraph, induced

__all__ = [
    "MAJOR_KINDS",
    "CommunityUnits",
    "adjacency",
    "build_units",
    "pin_special",
    "subgraph",
]

MIN_SHARED_M = 0.5
SNAP_M = 0.004
STREET_FACTOR = 0.1
MAJOR_FACTOR = 0.05
#: Barrier kinds that make the cheapest cuts (a grid boundary there costs least); they are
#: also the *hard* barriers: with a crossing layer, only a crossing joins their two sides.
MAJOR_KINDS = ("road_major", "river", "rail")
#: A crossing joins the units whose shared edge passes within this distance of it.
CROSSING_M = 30.0
#: A 专属网格 takes its whole street block when the block is at most this big (a compound) …
SPECIAL_BLOCK_M2 = 40_000.0
#: … and otherwise the units of its block within this distance of the feature.
SPECIAL_RADIUS_M = 80.0

ObjArr = NDArray[np.object_]
I64 = NDArray[np.int64]
F64 = NDArray[np.float64]


@dataclass
class CommunityUnits:
    """One community's units: geometry (GK metres), block, buildings and the graph."""

    code: str
    geoms: ObjArr
    block: I64
    building_ids: list[list[int]]
    graph: UnitGraph


def build_units(  # noqa: PLR0917
    code: str,
    blocks: ObjArr,
    bld_ids: I64,
    bld_xy: F64,
    bld_hh: I64,
    bld_pop: I64,
    lines: ObjArr | None = None,
    line_major: NDArray[np.bool_] | None = None,
    crossings: ObjArr | None = None,
) -> CommunityUnits:
    """Voronoi cells of the buildings inside each block, plus empty blocks, with adjacency.

    ``crossings`` (points, possibly none) switches the major lines to hard barriers.
    """
    blocks = np.asarray(blocks, dtype=object)
    pts = shapely.points(bld_xy) if len(bld_ids) else np.empty(0, dtype=object)
    # building -> block (a point exactly on a street goes to the nearest block)
    bblock = np.full(len(bld_ids), -1, dtype=np.int64)
    if len(bld_ids):
        tree = shapely.STRtree(blocks)
        pi, bj = tree.query(pts, predicate="intersects")
        bblock[pi[::-1]] = bj[::-1]  # first hit wins
        miss = np.nonzero(bblock < 0)[0]
        if miss.size:
            mi, mj = tree.query_nearest(pts[miss], all_matches=False)
            bblock[miss[mi]] = mj
    # merge buildings sharing one location (Voronoi needs distinct sites)
    key = np.round(bld_xy / 0.01).astype(np.int64) if len(bld_ids) else np.zeros((0, 2), np.int64)
    site_key = np.c_[bblock, key] if len(bld_ids) else np.zeros((0, 3), np.int64)
    uniq, site_of = np.unique(site_key, axis=0, return_inverse=True)
    site_of = site_of.ravel()
    n_sites = len(uniq)
    site_xy = np.zeros((n_sites, 2))
    if n_sites:
        site_xy[site_of] = bld_xy
    site_block = uniq[:, 0].astype(np.int64) if n_sites else np.zeros(0, np.int64)
    site_hh = np.bincount(site_of, weights=bld_hh, minlength=n_sites).astype(np.int64)
    site_pop = np.bincount(site_of, weights=bld_pop, minlength=n_sites).astype(np.int64)
    members: list[list[int]] = [[] for _ in range(n_sites)]
    for b, s in zip(bld_ids.tolist(), site_of.tolist(), strict=True):
        members[s].append(int(b))

    cells: list[object] = []
    cell_block: list[int] = []
    owners: list[int] = []
    order = np.argsort(site_block, kind="stable")
    starts = np.searchsorted(site_block[order], np.arange(len(blocks)))
    ends = np.searchsorted(site_block[order], np.arange(len(blocks)), side="right")
    for b, blk in enumerate(blocks):
        sites = order[starts[b] : ends[b]]
        if sites.size <= 1:
            cells.append(blk)
            owners.append(int(sites[0]) if sites.size else -1)
            cell_block.append(b)
            continue
        vor = shapely.voronoi_polygons(
            shapely.multipoints(site_xy[sites]), extend_to=blk, ordered=True
        )
        raw = np.asarray(shapely.get_parts(vor), dtype=object)
        shapely.prepare(blk)
        inside = shapely.contains_properly(blk, raw)
        raw[~inside] = shapely.intersection(raw[~inside], blk)
        cells.extend(raw)
        owners.extend(sites.tolist())
        cell_block.extend([b] * sites.size)
    carr = np.asarray(cells, dtype=object)
    simple = (shapely.get_type_id(carr) == 3) & (shapely.area(carr) > 1e-4)
    geoms: list[object] = []
    ublock: list[int] = []
    uhh: list[int] = []
    upop: list[int] = []
    ubld: list[list[int]] = []
    for i, cell in enumerate(carr):
        s = owners[i]
        pieces = [cell] if simple[i] else _pieces(cell, site_xy[s] if s >= 0 else None)
        for j, piece in enumerate(pieces):
            geoms.append(piece)
            ublock.append(cell_block[i])
            own = s >= 0 and j == 0
            uhh.append(int(site_hh[s]) if own else 0)
            upop.append(int(site_pop[s]) if own else 0)
            ubld.append(members[s] if own else [])
    garr = np.asarray(geoms, dtype=object)
    block_arr = np.asarray(ublock, dtype=np.int64)
    ea, eb, elen, ecost = adjacency(garr, block_arr, lines, line_major, crossings)
    cent = shapely.centroid(garr)
    graph = UnitGraph(
        xy=np.c_[shapely.get_x(cent), shapely.get_y(cent)],
        area=shapely.area(garr).astype(np.float64),
        households=np.asarray(uhh, dtype=np.int64),
        population=np.asarray(upop, dtype=np.int64),
        edge_a=ea,
        edge_b=eb,
        edge_len=elen,
        edge_cost=ecost,
        block=block_arr,
    )
    return CommunityUnits(code, garr, block_arr, ubld, graph)


def _pieces(cell: object, site: F64 | None) -> list[object]:
    """Polygon parts of a cell, the one holding the building first (others become empty units)."""
    parts = [
        p for p in shapely.get_parts(np.asarray([cell], dtype=object)) if shapely.area(p) > 1e-4
    ]
    parts = [p for p in parts if p.geom_type == "Polygon"]
    if len(parts) <= 1 or site is None:
        return parts
    d = shapely.distance(np.asarray(parts, dtype=object), shapely.points(site))
    first = int(np.argmin(d))
    return [parts[first], *(p for i, p in enumerate(parts) if i != first)]


def adjacency(
    geoms: ObjArr,
    block: I64,
    lines: ObjArr | None = None,
    line_major: NDArray[np.bool_] | None = None,
    crossings: ObjArr | None = None,
) -> tuple[I64, I64, F64, F64]:
    """Rook adjacency (shared boundary ≥ 0.5 m) with cut costs discounted on barriers.

    With ``crossings`` (a crossing layer exists, even if none lies here), two units whose
    shared edge lies on a major line (river, rail, major road) are adjacent only when a
    crossing is within ``CROSSING_M`` of that edge.

    Returns:
        (edge_a, edge_b, shared length m, cut cost); units that would be cut off from the
        rest (islands of a multi-part community) are joined to the nearest unit by a short
        costly edge so every community graph is connected.
    """
    n = len(geoms)
    if n < 2:
        z = np.zeros(0, dtype=np.int64)
        return z, z, np.zeros(0), np.zeros(0)
    sa, sb, slen_same, border = _same_block_edges(geoms, block)
    # across a street the two sides have different vertices: compare with a tolerance, and
    # only for cells on their block's outline (the others have no neighbour across a street)
    cand = np.nonzero(border)[0]
    tree = shapely.STRtree(geoms[cand])
    qa, qb = tree.query(geoms[cand], predicate="dwithin", distance=SNAP_M)
    a, b = cand[qa], cand[qb]
    keep = (a < b) & (block[a] != block[b])
    a, b = a[keep], b[keep]
    # the dissolve unions on a 1 cm grid: judge cross-street contact on that same grid, so
    # cells the union would leave apart (a sliver gap) are not called adjacent
    touched = np.unique(np.r_[a, b])
    snapped = shapely.boundary(shapely.set_precision(geoms[touched], 0.01))
    pos = np.full(n, -1, dtype=np.int64)
    pos[touched] = np.arange(len(touched))
    cross_shared = shapely.intersection(snapped[pos[a]], snapped[pos[b]])
    shared = np.concatenate([np.full(sa.size, None, dtype=object), cross_shared])
    a = np.r_[sa, a]
    b = np.r_[sb, b]
    slen = np.r_[slen_same, shapely.length(cross_shared)]
    keep = slen > MIN_SHARED_M
    a, b, slen, shared = a[keep], b[keep], slen[keep] / 1.0, shared[keep]
    cost = slen.copy()
    cross = block[a] != block[b]
    cost[cross] *= STREET_FACTOR
    if lines is not None and len(lines) and cross.any():
        major = np.zeros(len(lines), dtype=bool) if line_major is None else np.asarray(line_major)
        if major.any():
            mids = shapely.point_on_surface(shared[cross])
            mtree = shapely.STRtree(np.asarray(lines, dtype=object)[major])
            qi, _ = mtree.query(mids, predicate="dwithin", distance=1.0)
            idx = np.nonzero(cross)[0][np.unique(qi)]
            cost[idx] = slen[idx] * MAJOR_FACTOR
            if crossings is not None:
                joined = np.zeros(len(idx), dtype=bool)
                if len(crossings):
                    ci, _ = shapely.STRtree(np.asarray(crossings, dtype=object)).query(
                        shared[idx], predicate="dwithin", distance=CROSSING_M
                    )
                    joined[ci] = True
                drop = np.zeros(len(a), dtype=bool)
                drop[idx[~joined]] = True
                a, b, slen, cost = a[~drop], b[~drop], slen[~drop], cost[~drop]
    a, b = a.astype(np.int64), b.astype(np.int64)
    a, b, slen, cost = _bridge(geoms, a, b, slen, cost)
    return a, b, slen, cost


def pin_special(units: CommunityUnits, xy: F64, refs: list[str]) -> list[tuple[I64, list[str]]]:
    """The units of each 专属网格 (special grid), pinned around its feature.

    A feature takes its whole block when the block is a compound (≤ ``SPECIAL_BLOCK_M2``),
    else the units of its block within ``SPECIAL_RADIUS_M`` connected to the feature's unit.
    Regions that overlap are merged into one grid (two features of one compound).

    Returns:
        One (unit indices, feature refs) per special grid, in feature order.
    """
    g = units.graph
    if not len(refs) or g.n == 0:
        return []
    pts = shapely.points(np.asarray(xy, dtype=np.float64).reshape(-1, 2))
    tree = shapely.STRtree(units.geoms)
    pi, ui = tree.query(pts, predicate="intersects")
    seed = np.full(len(refs), -1, dtype=np.int64)
    seed[pi[::-1]] = ui[::-1]
    miss = np.nonzero(seed < 0)[0]
    if miss.size:
        mi, mj = tree.query_nearest(pts[miss], all_matches=False)
        seed[miss[mi]] = mj
    indptr, indices, _, _ = g.csr()
    block_area = np.bincount(units.block, weights=g.area)
    owner = np.full(g.n, -1, dtype=np.int64)
    regions: list[tuple[set[int], list[str]]] = []
    for f, u in enumerate(seed.tolist()):
        blk = units.block[u]
        same = units.block == blk
        if block_area[blk] > SPECIAL_BLOCK_M2:
            near = np.hypot(*(g.xy - np.asarray(xy[f])).T) <= SPECIAL_RADIUS_M
            same &= near
            same[u] = True
        region = _reach(indptr, indices, same, u)
        hit = {int(o) for o in owner[list(region)] if o >= 0}
        if hit:
            keep = min(hit)
            for other in sorted(hit - {keep}, reverse=True):
                regions[keep][0].update(regions[other][0])
                regions[keep][1].extend(regions[other][1])
                regions[other] = (set(), [])
            regions[keep][0].update(region)
            regions[keep][1].append(refs[f])
            owner[list(regions[keep][0])] = keep
        else:
            regions.append((region, [refs[f]]))
            owner[list(region)] = len(regions) - 1
    return [(np.asarray(sorted(r), dtype=np.int64), names) for r, names in regions if r]


def _reach(indptr: I64, indices: I64, allowed: NDArray[np.bool_], start: int) -> set[int]:
    """Units reachable from ``start`` through ``allowed`` units."""
    seen = {start}
    todo = [start]
    while todo:
        v = todo.pop()
        for w in indices[indptr[v] : indptr[v + 1]].tolist():
            if allowed[w] and w not in seen:
                seen.add(w)
                todo.append(w)
    return seen


def subgraph(units: CommunityUnits, keep: I64) -> UnitGraph:
    """The graph of the ``keep`` units (pins removed), re-joined where removal split it."""
    sub = induced(units.graph, keep)
    a, b, ln, cost = _bridge(units.geoms[keep], sub.edge_a, sub.edge_b, sub.edge_len, sub.edge_cost)
    return UnitGraph(
        xy=sub.xy,
        area=sub.area,
        households=sub.households,
        population=sub.population,
        edge_a=a,
        edge_b=b,
        edge_len=ln,
        edge_cost=cost,
        weight=sub.weight,
        block=sub.block,
    )


def _same_block_edges(geoms: ObjArr, block: I64) -> tuple[I64, I64, F64, NDArray[np.bool_]]:
    """Shared edges of cells of one block, by matching identical boundary segments.

    Cells of a block come from one Voronoi diagram clipped to the block, so two neighbours
    hold the very same ridge segments (matched on a 1 mm key). A segment nobody else holds,
    or one held by a cell of another block, lies on the block's outline.

    Returns:
        (edge_a, edge_b, shared length, border) with edge_a < edge_b, one row per pair;
        ``border`` marks the cells with a piece of the block's outline.
    """
    n = len(geoms)
    parts, part_of = shapely.get_parts(geoms, return_index=True)  # (multi)polygons stored
    rings, poly = shapely.get_rings(parts, return_index=True)
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    seg = np.nonzero(ring[1:] == ring[:-1])[0]
    cell = part_of[poly[ring[seg]]]
    p, q = xy[seg], xy[seg + 1]
    length = np.hypot(*(q - p).T)
    ok = length > 0
    seg, cell, p, q, length = seg[ok], cell[ok], p[ok], q[ok], length[ok]
    kp = np.round(p / 0.001).astype(np.int64)
    kq = np.round(q / 0.001).astype(np.int64)
    flip = (kp[:, 0] > kq[:, 0]) | ((kp[:, 0] == kq[:, 0]) & (kp[:, 1] > kq[:, 1]))
    lo = np.where(flip[:, None], kq, kp)
    hi = np.where(flip[:, None], kp, kq)
    _, key, count = np.unique(np.c_[lo, hi], axis=0, return_inverse=True, return_counts=True)
    key = key.ravel()
    on_outline = count[key] != 2  # (three or more holders: degenerate, kept as outline)
    twin = np.nonzero(count[key] == 2)[0]
    order = twin[np.argsort(key[twin], kind="stable")]
    first, second = order[0::2], order[1::2]
    ca, cb = cell[first], cell[second]
    other = block[ca] != block[cb]  # an exact match across a street: both on the outline
    on_outline[first[other]] = True
    on_outline[second[other]] = True
    keep = (ca != cb) & ~other
    ca, cb, ln = ca[keep], cb[keep], length[first][keep]
    lo_c, hi_c = np.minimum(ca, cb), np.maximum(ca, cb)
    pair, inv = np.unique(lo_c * n + hi_c, return_inverse=True)
    total = np.bincount(inv.ravel(), weights=ln, minlength=pair.size).astype(np.float64)
    border = np.zeros(n, dtype=bool)
    border[cell[on_outline & (length > 1e-3)]] = True
    return (pair // n).astype(np.int64), (pair % n).astype(np.int64), total, border


def _bridge(geoms: ObjArr, a: I64, b: I64, slen: F64, cost: F64) -> tuple[I64, I64, F64, F64]:
    """Join disconnected pieces of the graph to their nearest unit outside the piece."""
    n = len(geoms)
    from gis_service.grids.partition import components

    for _ in range(n):
        g = UnitGraph(
            xy=np.zeros((n, 2)),
            area=np.ones(n),
            households=np.zeros(n, np.int64),
            population=np.zeros(n, np.int64),
            edge_a=a,
            edge_b=b,
            edge_len=slen,
            edge_cost=cost,
        )
        indptr, indices, _, _ = g.csr()
        comp, nc = components(indptr, indices, np.zeros(n, dtype=np.int64))
        if nc <= 1:
            break
        sizes = np.bincount(comp)
        small = int(np.argmin(sizes))
        inside = np.nonzero(comp == small)[0]
        outside = np.nonzero(comp != small)[0]
        tree = shapely.STRtree(geoms[outside])
        qi, qj = tree.query_nearest(geoms[inside], all_matches=False)
        d = shapely.distance(geoms[inside[qi]], geoms[outside[qj]])
        best = int(np.argmin(d))
        a = np.append(a, inside[qi[best]])
        b = np.append(b, outside[qj[best]])
        slen = np.append(slen, 1.0)
        cost = np.append(cost, BRIDGE_COST)
    return a, b, slen, cost
