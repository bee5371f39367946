"""Urban fabric: arterial lattices, the blocks between streets and the buildings in each block.

Around each urban centre a warped quadrilateral lattice gives the arterial roads; every
superblock is subdivided bilinearly into blocks (the split lines are the minor streets) and
each block is filled with a lattice of rotated rectangles whose size, spacing and attributes
depend on the block's typology (residential compound, old town, urban village, industrial,
public, commercial, park). The typology mix varies with the distance to the centre.
"""

from __future__ import annotations

import numpy as np
import shapely

from gis_service.demo import buildings as bld
from gis_service.demo import names as nm
from gis_service.demo.buildings import choose, empty_buildings
from gis_service.demo.county import County
from gis_service.demo.geometry import Arr, bilinear, rects

__all__ = ["fill_blocks", "urban_fabric"]

# Per urban typology: target block side (m), footprint length/width ranges, gaps, occupancy.
_BLOCK_LEN = np.array([250.0, 130.0, 85.0, 230.0, 190.0, 140.0, 380.0])
_L_RANGE = np.array([[40, 66], [24, 44], [10, 15], [40, 110], [30, 60], [30, 70], [8, 12.0]])
_W_RANGE = np.array([[12, 15], [10, 13], [8, 11], [20, 50], [12, 18], [18, 36], [6, 8.0]])
_GU_RANGE = np.array([[14, 22], [8, 14], [2, 5], [12, 25], [25, 45], [10, 18], [80, 120.0]])
_GV_RANGE = np.array([[24, 34], [10, 16], [3, 6], [12, 25], [25, 45], [10, 18], [80, 120.0]])
_OCCUPANCY = np.array([0.93, 0.85, 0.8, 0.8, 0.7, 0.85, 0.3])
# Typology weights by distance ratio to the centre: inner, middle, outer, and small towns.
_TYPO_W = np.array(
    [
        [30, 25, 8, 3, 12, 16, 6],
        [32, 12, 16, 15, 8, 8, 9],
        [14, 5, 34, 27, 5, 5, 10],
        [8, 30, 42, 8, 6, 6, 0],
    ],
    dtype=float,
)
_BLOCK_INSET = 10.0


def _splits(rng: np.random.Generator, n: Arr) -> Arr:
    """Split parameters 0 = s0 < s1 < ... < s_n = 1 per row (jittered), padded to width 8."""
    k = np.arange(8)[None, :]
    jit = rng.uniform(-0.18, 0.18, (len(n), 8))
    nn = n[:, None].astype(float)
    inner = (k > 0) & (k < n[:, None])
    result: Arr = np.clip((k + np.where(inner, jit, 0.0)) / nn, 0.0, 1.0)
    return result


def urban_fabric(cty: County) -> tuple[Arr, Arr, Arr]:
    """Streets and blocks of every urban centre; returns block quads, geometries, typologies."""
    rng = cty.rng
    quads: list[Arr] = []
    typs: list[Arr] = []
    spots = cty.plan.industrial_spots
    spot_xy = np.array([[*cty.to_m(np.array([s[0]]), np.array([s[1]]))] for s in spots])
    street_taken: set[str] = set()
    for k, c in enumerate(cty.centres):
        cx, cy, radius, ang = c[0], c[1], c[2], c[3]
        town = c[6] > 0.5
        spacing = 260.0 if town else 520.0
        n = int(np.ceil(1.5 * radius / spacing)) + 1
        ii, jj = np.meshgrid(np.arange(-n, n + 1), np.arange(-n, n + 1), indexing="ij")
        lx, ly = ii * spacing, jj * spacing
        ph = rng.uniform(0, 2 * np.pi, 4)
        amp = 0.13 * spacing
        px = lx + amp * (
            np.sin(ly / (2.7 * spacing) + ph[0]) + 0.6 * np.sin(lx / (3.9 * spacing) + ph[1])
        )
        py = ly + amp * (
            np.sin(lx / (3.1 * spacing) + ph[2]) + 0.6 * np.sin(ly / (4.3 * spacing) + ph[3])
        )
        px = px + rng.normal(0, 0.05 * spacing, px.shape)
        py = py + rng.normal(0, 0.05 * spacing, py.shape)
        gx = cx + px * np.cos(ang) - py * np.sin(ang)
        gy = cy + px * np.sin(ang) + py * np.cos(ang)
        q = np.stack(
            [
                np.stack([gx[:-1, :-1], gy[:-1, :-1]], -1),
                np.stack([gx[1:, :-1], gy[1:, :-1]], -1),
                np.stack([gx[1:, 1:], gy[1:, 1:]], -1),
                np.stack([gx[:-1, 1:], gy[:-1, 1:]], -1),
            ],
            axis=2,
        )  # (2n, 2n, 4, 2)
        mi, mj = np.meshgrid(np.arange(2 * n), np.arange(2 * n), indexing="ij")
        q = q.reshape(-1, 4, 2)
        ci, cj = mi.ravel(), mj.ravel()
        cen = q.mean(1)
        rho, kk = cty.rho(cen[:, 0], cen[:, 1])
        keep = (rho < 1.0) & (kk == k) & shapely.intersects_xy(cty.poly, cen[:, 0], cen[:, 1])
        if not keep.any():
            continue
        q, ci, cj, cen, rho = q[keep], ci[keep], cj[keep], cen[keep], rho[keep]
        # Arterials: the lattice edges next to kept cells, named per lattice line.
        e_id = np.concatenate(
            [
                ci * 10_000 + cj,
                ci * 10_000 + cj + 1,  # horizontal edges (i..i+1, j)
                5_000_000 + ci * 10_000 + cj,
                5_000_000 + (ci + 1) * 10_000 + cj,  # vertical
            ]
        )
        e_pts = np.concatenate(
            [
                np.stack([q[:, 0], q[:, 1]], 1),
                np.stack([q[:, 3], q[:, 2]], 1),
                np.stack([q[:, 0], q[:, 3]], 1),
                np.stack([q[:, 1], q[:, 2]], 1),
            ]
        )
        uniq, first = np.unique(e_id, return_index=True)
        segs = shapely.linestrings(e_pts[first])
        line_key = np.where(
            uniq >= 5_000_000, (uniq - 5_000_000) // 10_000, 100_000 + uniq % 10_000
        )
        keys, inv = np.unique(line_key, return_inverse=True)
        srt = np.argsort(inv, kind="stable")
        merged = shapely.line_merge(shapely.multilinestrings(segs[srt], indices=inv[srt]))
        merged = shapely.intersection(merged, cty.poly)
        lengths = shapely.length(merged)
        road_names = nm.road_names(rng, len(keys), "大道" if not town else "街", street_taken)
        for g, nme, ln in zip(merged, road_names, lengths, strict=True):
            if ln > 100:
                major = (not town) or ln > 900
                cty.lines.append(("road_major" if major else "road_minor", nme, g))
        # Typology per superblock by distance band, boosted in industrial spots.
        band = np.where(rho < 0.45, 0, np.where(rho < 0.75, 1, 2))
        band = np.where(town, 3, band)
        w = _TYPO_W[band].copy()
        for s, (sx, sy) in zip(spots, spot_xy, strict=True):
            d = np.hypot(cen[:, 0] - sx[0], cen[:, 1] - sy[0]) / s[2]
            w[:, bld.T_IND] *= np.where(d < 1.0, 9.0, 1.0)
            w[:, bld.T_COMPOUND] *= np.where(d < 1.0, 0.3, 1.0)
        cum = np.cumsum(w, 1) / w.sum(1, keepdims=True)
        cell_t = (rng.random(len(q))[:, None] > cum).sum(1)
        # Subdivide each superblock into blocks; the inner split lines are minor streets.
        la = (np.hypot(*(q[:, 1] - q[:, 0]).T) + np.hypot(*(q[:, 2] - q[:, 3]).T)) / 2
        lb = (np.hypot(*(q[:, 3] - q[:, 0]).T) + np.hypot(*(q[:, 2] - q[:, 1]).T)) / 2
        na = np.clip(np.round(la / _BLOCK_LEN[cell_t]), 1, 6).astype(np.int64)
        nb = np.clip(np.round(lb / _BLOCK_LEN[cell_t]), 1, 6).astype(np.int64)
        sa, sb = _splits(rng, na), _splits(rng, nb)
        cnt = na * nb
        cidx = np.repeat(np.arange(len(q)), cnt)
        r = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        a, bb = r % na[cidx], r // na[cidx]
        s0, s1 = sa[cidx, a], sa[cidx, a + 1]
        t0, t1 = sb[cidx, bb], sb[cidx, bb + 1]
        qc = q[cidx]
        sub = np.stack(
            [
                bilinear(qc, s0, t0),
                bilinear(qc, s1, t0),
                bilinear(qc, s1, t1),
                bilinear(qc, s0, t1),
            ],
            axis=1,
        )
        sub_t = cell_t[cidx].copy()
        redraw = rng.random(len(sub_t)) < 0.22
        cum_s = cum[cidx[redraw]]
        sub_t[redraw] = (rng.random(int(redraw.sum()))[:, None] > cum_s).sum(1)
        quads.append(sub)
        typs.append(sub_t)
        # Minor streets: the interior split lines of each superblock.
        for split, nsplit, axis in ((sa, na, 0), (sb, nb, 1)):
            m = np.maximum(nsplit - 1, 0)
            ridx = np.repeat(np.arange(len(q)), m)
            kk2 = np.arange(m.sum()) - np.repeat(np.cumsum(m) - m, m) + 1
            sv = split[ridx, kk2]
            zeros, ones = np.zeros(len(sv)), np.ones(len(sv))
            if axis == 0:
                p0, p1 = bilinear(q[ridx], sv, zeros), bilinear(q[ridx], sv, ones)
            else:
                p0, p1 = bilinear(q[ridx], zeros, sv), bilinear(q[ridx], ones, sv)
            if len(sv):
                lines = shapely.intersection(shapely.linestrings(np.stack([p0, p1], 1)), cty.poly)
                lines = lines[~shapely.is_empty(lines) & (shapely.length(lines) > 30)]
                cty.lines.extend(("road_minor", None, g) for g in lines)
    if not quads:
        return np.zeros((0, 4, 2)), np.zeros(0, dtype=object), np.zeros(0, dtype=np.int64)
    allq = np.concatenate(quads)
    allt = np.concatenate(typs)
    geoms = shapely.polygons(np.concatenate([allq, allq[:, :1]], axis=1))
    geoms = shapely.buffer(geoms, -_BLOCK_INSET, join_style="mitre")
    inside = shapely.contains_properly(cty.inner, geoms)
    geoms[~inside] = shapely.intersection(geoms[~inside], cty.inner)
    wet = shapely.intersects(cty.river_mask, geoms)
    geoms[wet] = shapely.difference(geoms[wet], cty.river_mask)
    ok = ~shapely.is_empty(geoms) & (shapely.area(geoms) > 400.0)
    return allq[ok], geoms[ok], allt[ok]


def _urban_attributes(rng: np.random.Generator, typ: Arr, blk: Arr) -> dict[str, Arr]:
    """Floors, structure, use, construction period and capacity by typology.

    Compound blocks share one height (a 小区 is built at once); other typologies vary per
    building. Capacity is in households before the final scaling.
    """
    n = len(typ)
    floors = np.ones(n, dtype=np.int64)
    structure = np.full(n, bld.S_RC)
    use = np.full(n, bld.U_RES)
    year = np.full(n, 3)
    nb = int(blk.max()) + 1 if n else 0
    block_floors = choose(rng, nb, [6, 7, 11, 18, 26, 32], [22, 10, 25, 23, 14, 6])
    m = typ == bld.T_COMPOUND
    floors[m] = block_floors[blk[m]]
    year[m] = np.where(
        floors[m] <= 7,
        choose(rng, int(m.sum()), [2, 3], [5, 5]),
        np.where(
            floors[m] <= 18,
            choose(rng, int(m.sum()), [3, 4], [4, 6]),
            choose(rng, int(m.sum()), [4, 5], [6, 4]),
        ),
    )
    structure[m] = np.where(
        (floors[m] <= 6) & (rng.random(int(m.sum())) < 0.5), bld.S_MAS, bld.S_RC
    )
    m = typ == bld.T_OLD
    k = int(m.sum())
    floors[m] = rng.integers(4, 8, k)
    year[m] = choose(rng, k, [0, 1, 2], [2, 4, 4])
    structure[m] = choose(rng, k, [bld.S_MAS, bld.S_RC], [7, 3])
    use[m] = choose(rng, k, [bld.U_RES, bld.U_MIX], [85, 15])
    m = typ == bld.T_VILLAGE
    k = int(m.sum())
    floors[m] = choose(rng, k, [2, 3, 4, 5], [2, 4, 3, 1])
    year[m] = choose(rng, k, [2, 3, 4], [3, 4, 3])
    structure[m] = choose(rng, k, [bld.S_MAS, bld.S_RC], [6, 4])
    use[m] = choose(rng, k, [bld.U_RES, bld.U_MIX], [88, 12])
    m = typ == bld.T_IND
    k = int(m.sum())
    floors[m] = choose(rng, k, [1, 2, 3], [6, 3, 1])
    year[m] = choose(rng, k, [1, 2, 3, 4], [2, 3, 3, 2])
    structure[m] = choose(rng, k, [bld.S_STEEL, bld.S_RC, bld.S_MAS], [55, 30, 15])
    use[m] = choose(rng, k, [bld.U_IND, bld.U_OTHER], [9, 1])
    m = typ == bld.T_PUBLIC
    k = int(m.sum())
    floors[m] = rng.integers(2, 7, k)
    year[m] = choose(rng, k, [2, 3, 4, 5], [2, 3, 3, 2])
    use[m] = bld.U_PUB
    m = typ == bld.T_COMM
    k = int(m.sum())
    floors[m] = choose(rng, k, [3, 5, 8, 12, 20, 28], [3, 3, 2, 2, 1, 0.5])
    year[m] = choose(rng, k, [3, 4, 5], [4, 4, 2])
    structure[m] = choose(rng, k, [bld.S_RC, bld.S_STEEL], [8, 2])
    use[m] = choose(rng, k, [bld.U_COMM, bld.U_MIX], [6, 4])
    m = typ == bld.T_GREEN
    k = int(m.sum())
    year[m] = choose(rng, k, [3, 4], [5, 5])
    structure[m] = choose(rng, k, [bld.S_WOOD, bld.S_OTHER], [5, 5])
    use[m] = choose(rng, k, [bld.U_PUB, bld.U_OTHER], [5, 5])
    return {"floors": floors, "structure": structure, "use": use, "year": year}


def fill_blocks(cty: County, quads: Arr, blocks: Arr, typ: Arr) -> dict[str, Arr]:
    """Lattices of rotated rectangles in every block, kept where they fit inside it."""
    rng = cty.rng
    nb = len(blocks)
    if nb == 0:
        return empty_buildings()
    shapely.prepare(blocks)
    ea = ((quads[:, 1] - quads[:, 0]) + (quads[:, 2] - quads[:, 3])) / 2
    eb = ((quads[:, 3] - quads[:, 0]) + (quads[:, 2] - quads[:, 1])) / 2
    la, lb = np.hypot(*ea.T), np.hypot(*eb.T)
    use_a = la >= lb
    # Residential slabs face south: their long side runs along the more east-west axis.
    ew_a = np.abs(ea[:, 0]) / np.maximum(la, 1e-9) >= np.abs(eb[:, 0]) / np.maximum(lb, 1e-9)
    use_a = np.where(typ == bld.T_COMPOUND, ew_a, use_a)
    u = np.where(use_a[:, None], ea, eb)
    u = u / np.hypot(*u.T)[:, None]
    v = np.column_stack([-u[:, 1], u[:, 0]])
    cen = quads.mean(1)
    rel = quads - cen[:, None, :]
    pu = (rel * u[:, None, :]).sum(-1)
    pv = (rel * v[:, None, :]).sum(-1)
    lo_u, lo_v = pu.min(1) + _BLOCK_INSET, pv.min(1) + _BLOCK_INSET
    ext_u = pu.max(1) - pu.min(1) - 2 * _BLOCK_INSET
    ext_v = pv.max(1) - pv.min(1) - 2 * _BLOCK_INSET

    def draw(r: Arr) -> Arr:
        result: Arr = r[typ, 0] + rng.random(nb) * (r[typ, 1] - r[typ, 0])
        return result

    length, width = draw(_L_RANGE), draw(_W_RANGE)
    su, sv = length + draw(_GU_RANGE), width + draw(_GV_RANGE)
    n_u = np.clip(np.floor(ext_u / su), 0, 40).astype(np.int64)
    n_v = np.clip(np.floor(ext_v / sv), 0, 40).astype(np.int64)
    n_u = np.where((n_u == 0) & (ext_u >= length), 1, n_u)
    n_v = np.where((n_v == 0) & (ext_v >= width), 1, n_v)
    cnt = n_u * n_v
    bi = np.repeat(np.arange(nb), cnt)
    r = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    ku, kv = r % n_u[bi], r // n_u[bi]
    off_u = lo_u[bi] + (ext_u[bi] - n_u[bi] * su[bi]) / 2 + (ku + 0.5) * su[bi]
    off_v = lo_v[bi] + (ext_v[bi] - n_v[bi] * sv[bi]) / 2 + (kv + 0.5) * sv[bi]
    t = typ[bi]
    jit = np.where(t == bld.T_VILLAGE, 1.2, 0.3)
    off_u += rng.normal(0, 1, len(bi)) * jit
    off_v += rng.normal(0, 1, len(bi)) * jit
    cx = cen[bi, 0] + off_u * u[bi, 0] + off_v * v[bi, 0]
    cy = cen[bi, 1] + off_u * u[bi, 1] + off_v * v[bi, 1]
    rot = rng.normal(0, 1, len(bi)) * np.where(t == bld.T_VILLAGE, np.deg2rad(4), np.deg2rad(0.8))
    ux = u[bi, 0] * np.cos(rot) - u[bi, 1] * np.sin(rot)
    uy = u[bi, 0] * np.sin(rot) + u[bi, 1] * np.cos(rot)
    bl = length[bi] * np.where(t == bld.T_COMPOUND, 1.0, rng.uniform(0.8, 1.0, len(bi)))
    bw = width[bi] * np.where(t == bld.T_COMPOUND, 1.0, rng.uniform(0.85, 1.0, len(bi)))
    occupied = rng.random(len(bi)) < _OCCUPANCY[t]
    rect = rects(cx, cy, ux, uy, bl, bw)
    fits = shapely.contains(blocks[bi], rect) & occupied
    sel = np.flatnonzero(fits)
    attrs = _urban_attributes(rng, t[sel], bi[sel])
    res = (attrs["use"] == bld.U_RES) | (attrs["use"] == bld.U_MIX)
    unit = np.where(t[sel] == bld.T_VILLAGE, 110.0, 95.0)
    cap = np.where(res, attrs["floors"] * bl[sel] * bw[sel] * 0.78 / unit, 0.0)
    cap = np.where(attrs["use"] == bld.U_MIX, cap * 0.6, cap)
    return {
        "cx": cx[sel],
        "cy": cy[sel],
        "ux": ux[sel],
        "uy": uy[sel],
        "L": bl[sel],
        "W": bw[sel],
        "typ": t[sel],
        **attrs,
        "rural": np.zeros(len(sel), dtype=bool),
        "cap": cap,
    }
