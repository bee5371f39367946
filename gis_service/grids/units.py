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

from gis_service.grids.partition import UnitGraph

__all__ = ["MAJOR_KINDS", "CommunityUnits", "adjacency", "build_units"]

MIN_SHARED_M = 0.5
SNAP_M = 0.004
STREET_FACTOR = 0.2
MAJOR_FACTOR = 0.1
#: Barrier kinds that make the cheapest cuts (a grid boundary there costs least).
MAJOR_KINDS = ("road_major", "river", "rail")

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
) -> CommunityUnits:
    """Voronoi cells of the buildings inside each block, plus empty blocks, with adjacency."""
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
    ea, eb, elen, ecost = adjacency(garr, block_arr, lines, line_major)
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
) -> tuple[I64, I64, F64, F64]:
    """Rook adjacency (shared boundary ≥ 0.5 m) with cut costs discounted on barriers.

    Returns:
        (edge_a, edge_b, shared length m, cut cost); units that would be cut off from the
        rest (islands of a multi-part community) are joined to the nearest unit by a short
        costly edge so every community graph is connected.
    """
    n = len(geoms)
    if n < 2:
        z = np.zeros(0, dtype=np.int64)
        return z, z, np.zeros(0), np.zeros(0)
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="dwithin", distance=SNAP_M)
    keep = a < b
    a, b = a[keep], b[keep]
    bnd = shapely.boundary(geoms)
    # inside a block, cells come from one Voronoi diagram: shared edges are exact;
    # across a street the two sides have different vertices, so compare with a tolerance
    same = block[a] == block[b]
    shared = np.empty(len(a), dtype=object)
    shared[same] = shapely.intersection(bnd[a[same]], bnd[b[same]])
    other = ~same
    # the dissolve unions on a 1 cm grid: judge cross-street contact on that same grid, so
    # cells the union would leave apart (a sliver gap) are not called adjacent
    touched = np.unique(np.r_[a[other], b[other]])
    snapped = shapely.boundary(shapely.set_precision(geoms[touched], 0.01))
    pos = np.full(n, -1, dtype=np.int64)
    pos[touched] = np.arange(len(touched))
    shared[other] = shapely.intersection(snapped[pos[a[other]]], snapped[pos[b[other]]])
    slen = shapely.length(shared)
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
    a, b = a.astype(np.int64), b.astype(np.int64)
    a, b, slen, cost = _bridge(geoms, a, b, slen, cost)
    return a, b, slen, cost


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
        cost = np.append(cost, 1e3)
    return a, b, slen, cost
