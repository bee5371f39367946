"""Pure, vectorised geometry helpers of the demo generator (metric plane, numpy + shapely 2).

They take and return arrays, hold no county state and draw randomness only from the generator
passed in, so every caller stays deterministic for a seed and each helper can be tested alone.
``Arr`` is the array type used throughout the generator.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import LineString, MultiPolygon

__all__ = [
    "Arr",
    "bilinear",
    "delaunay_edges",
    "nearest",
    "point_in",
    "polygonal",
    "rects",
    "smooth_path",
    "spanning_tree",
    "voronoi_cells",
    "weighted_kmeans",
    "wobbly_lines",
]

Arr = npt.NDArray[Any]


def polygonal(geoms: Arr) -> Arr:
    """Keep only the polygonal parts of each geometry, as MultiPolygons (empty if none)."""
    geoms = np.asarray(geoms, dtype=object)
    parts, idx = shapely.get_parts(geoms, return_index=True)
    keep = (shapely.get_type_id(parts) == 3) & (shapely.area(parts) > 1e-3)
    out = np.full(len(geoms), MultiPolygon(), dtype=object)
    if keep.any():
        uniq, first = np.unique(idx[keep], return_index=True)
        mp = shapely.multipolygons(parts[keep], indices=np.searchsorted(uniq, idx[keep]))
        out[uniq] = mp
        del first
    return out


def rects(cx: Arr, cy: Arr, ux: Arr, uy: Arr, length: Arr, width: Arr) -> Arr:  # noqa: PLR0917
    """Rotated rectangles (long side along unit vector u) as a polygon array."""
    hl, hw = length / 2.0, width / 2.0
    vx, vy = -uy, ux
    sx = np.array([1.0, -1.0, -1.0, 1.0, 1.0])
    sy = np.array([1.0, 1.0, -1.0, -1.0, 1.0])
    x = cx[:, None] + sx[None] * (hl * ux)[:, None] + sy[None] * (hw * vx)[:, None]
    y = cy[:, None] + sx[None] * (hl * uy)[:, None] + sy[None] * (hw * vy)[:, None]
    result: Arr = shapely.polygons(np.stack([x, y], axis=-1))
    return result


def wobbly_lines(p0: Arr, p1: Arr, rng: np.random.Generator, amp: float, nseg: int = 6) -> Arr:
    """Straight segments bent by a smooth perpendicular offset (roads, rivers)."""
    t = np.linspace(0.0, 1.0, nseg + 1)
    d = p1 - p0
    length = np.hypot(d[:, 0], d[:, 1])
    nx, ny = -d[:, 1] / np.maximum(length, 1e-9), d[:, 0] / np.maximum(length, 1e-9)
    a1 = rng.normal(0.0, amp, len(p0))[:, None] * length[:, None]
    a2 = rng.normal(0.0, amp * 0.5, len(p0))[:, None] * length[:, None]
    off = a1 * np.sin(np.pi * t)[None] + a2 * np.sin(2 * np.pi * t)[None]
    x = p0[:, 0:1] + d[:, 0:1] * t[None] + nx[:, None] * off
    y = p0[:, 1:2] + d[:, 1:2] * t[None] + ny[:, None] * off
    result: Arr = shapely.linestrings(np.stack([x, y], axis=-1))
    return result


def smooth_path(pts: Arr, rng: np.random.Generator, amp: float, step: float) -> LineString:
    """A densified polyline through control points with gentle meanders."""
    segs = np.hypot(*np.diff(pts, axis=0).T)
    s = np.r_[0.0, np.cumsum(segs)]
    n = max(int(s[-1] / step), 4)
    ss = np.linspace(0.0, s[-1], n)
    x = np.interp(ss, s, pts[:, 0])
    y = np.interp(ss, s, pts[:, 1])
    k = 9
    kernel = np.ones(k) / k
    xs = np.convolve(np.pad(x, k // 2, mode="edge"), kernel, mode="valid")
    ys = np.convolve(np.pad(y, k // 2, mode="edge"), kernel, mode="valid")
    dx, dy = np.gradient(xs), np.gradient(ys)
    norm = np.maximum(np.hypot(dx, dy), 1e-9)
    phase = rng.uniform(0, 2 * np.pi, 3)
    w = amp * (
        np.sin(ss / 2300.0 + phase[0])
        + 0.5 * np.sin(ss / 900.0 + phase[1])
        + 0.25 * np.sin(ss / 400.0 + phase[2])
    )
    w[:k] *= np.linspace(0, 1, k)
    w[-k:] *= np.linspace(1, 0, k)
    return LineString(np.column_stack([xs - dy / norm * w, ys + dx / norm * w]))


def bilinear(q: Arr, s: Arr, t: Arr) -> Arr:
    """Point at parameters (s, t) of quads ``q`` (n, 4, 2), corners in ring order."""
    s, t = s[:, None], t[:, None]
    result: Arr = (
        (1 - s) * (1 - t) * q[:, 0]
        + s * (1 - t) * q[:, 1]
        + s * t * q[:, 2]
        + (1 - s) * t * q[:, 3]
    )
    return result


def weighted_kmeans(pts: Arr, w: Arr, k: int, rng: np.random.Generator, iters: int = 12) -> Arr:
    """Lloyd's algorithm on weighted points; seeds drawn by weight (deterministic per rng)."""
    k = min(k, len(pts))
    p = w / w.sum()
    centres = pts[rng.choice(len(pts), size=k, replace=False, p=p)].astype(float)
    for _ in range(iters):
        lab = nearest(pts, centres)
        sw = np.bincount(lab, weights=w, minlength=k)
        sx = np.bincount(lab, weights=w * pts[:, 0], minlength=k)
        sy = np.bincount(lab, weights=w * pts[:, 1], minlength=k)
        ok = sw > 0
        centres[ok, 0] = sx[ok] / sw[ok]
        centres[ok, 1] = sy[ok] / sw[ok]
    return centres


def nearest(pts: Arr, centres: Arr) -> Arr:
    """Index of the nearest centre of each point (chunked to bound memory)."""
    out = np.empty(len(pts), dtype=np.int64)
    step = max(1, 4_000_000 // max(len(centres), 1))
    for s in range(0, len(pts), step):
        d = ((pts[s : s + step, None, :] - centres[None]) ** 2).sum(-1)
        out[s : s + step] = d.argmin(1)
    return out


def voronoi_cells(seeds: Arr, clip: Any) -> Arr:
    """Voronoi cells of seed points clipped to ``clip``, in seed order, as MultiPolygons."""
    if len(seeds) == 1:
        return polygonal(np.array([clip], dtype=object))
    mp = shapely.multipoints(seeds)
    cells = shapely.get_parts(shapely.voronoi_polygons(mp, extend_to=clip, ordered=True))
    return polygonal(shapely.intersection(cells, clip))


def point_in(polys: Arr, pts: Arr) -> Arr:
    """Index of the polygon containing each point (-1 if none), via an STRtree."""
    tree = shapely.STRtree(polys)
    pi, gi = tree.query(pts, predicate="within")
    out = np.full(len(pts), -1, dtype=np.int64)
    out[pi] = gi
    return out


def delaunay_edges(points: Arr) -> Arr:
    """Delaunay edges of points as an (m, 2) array of point indexes."""
    tri = shapely.delaunay_triangles(shapely.multipoints(points), only_edges=True)
    coords = shapely.get_coordinates(shapely.get_parts(tri)).reshape(-1, 2, 2)
    lookup = {(float(x), float(y)): i for i, (x, y) in enumerate(points)}
    flat = coords.reshape(-1, 2)
    idx = np.fromiter(
        (lookup.get((float(x), float(y)), -1) for x, y in flat), dtype=np.int64, count=len(flat)
    ).reshape(-1, 2)
    idx = idx[(idx >= 0).all(1)]
    idx.sort(1)
    result: Arr = np.unique(idx, axis=0)
    return result


def spanning_tree(n: int, edges: Arr, weight: Arr) -> Arr:
    """Kruskal's minimum spanning forest; returns a boolean mask over ``edges``."""
    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    in_tree = np.zeros(len(edges), dtype=bool)
    for e in np.argsort(weight, kind="stable"):
        ra, rb = find(int(edges[e, 0])), find(int(edges[e, 1]))
        if ra != rb:
            parent[ra] = rb
            in_tree[e] = True
    return in_tree
