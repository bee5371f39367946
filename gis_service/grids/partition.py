"""The partitioning core: a community's unit graph → contiguous, balanced, compact grids.

Pure numpy + numba, no database. The method (measured best in ``/work/shared/bench/grid-bench``):

1. **Seed** with a household-weighted *balanced power diagram* (capacity-constrained k-means:
   unit ``i`` goes to ``argmin_j |x_i - c_j|² - b_j``; the biases ``b_j`` are tuned until every
   cell holds about the community mean, centres move to weighted centroids), or warm-start
   from the current grids (``anchor``) so that a small data change moves few households.
2. **Repair** contiguity: every grid keeps its heaviest connected piece; stray pieces join the
   neighbouring grid they share the longest boundary with.
3. **Refine** by boundary local search: a unit moves to a neighbouring grid when that lowers
       F = balance (quadratic + a steep hinge outside the tolerance band)
         + compactness (normalised moment of inertia, 1.0 for a disc)
         + cut cost (shared boundary length, discounted along streets/rivers)
         + stickiness (households moved away from the anchor plan)
   and its old grid stays connected. The loop is compiled with numba (``nogil``), so
   communities run in parallel threads.

Several seeds may be tried; the best plan (fewest tolerance violations, then lowest F) wins.
Everything is deterministic for a given seed.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numba import njit
from numpy.typing import NDArray

__all__ = [
    "BRIDGE_COST",
    "Params",
    "Plan",
    "UnitGraph",
    "block_groups",
    "choose_k",
    "coarsen",
    "components",
    "induced",
    "partition",
    "partition_many",
]

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

#: Cut cost per metre of the edges that only keep a community graph connected (across a
#: hard barrier with no crossing, or to an exclave; their length is 1 m). The regions they
#: join are partitioned apart when each is big enough for a grid of its own; a smaller one
#: joins its bridged neighbour.
BRIDGE_COST = 1e3


@dataclass(frozen=True)
class UnitGraph:
    """The atoms of one community and their adjacency, in a metric CRS (metres).

    ``edge_cost`` is what cutting an edge costs: its shared length, discounted where the
    edge lies on a street or river (so cuts follow them).
    """

    xy: F64
    area: F64
    households: I64
    population: I64
    edge_a: I64
    edge_b: I64
    edge_len: F64
    edge_cost: F64
    weight: F64 | None = None
    #: Street block of each unit (units of one block are one connected piece), when known:
    #: small blocks are then kept whole (see ``Params.block_frac``).
    block: I64 | None = None

    @property
    def n(self) -> int:
        """Number of units."""
        return int(self.households.shape[0])

    @property
    def load(self) -> F64:
        """What grids are balanced on: households, or a workload weight when given."""
        if self.weight is not None:
            return self.weight.astype(np.float64)
        return self.households.astype(np.float64)

    def csr(self) -> tuple[I64, I64, F64, F64]:
        """Symmetric CSR adjacency: (indptr, indices, cut cost, shared length)."""
        n = self.n
        a = np.concatenate([self.edge_a, self.edge_b]).astype(np.int64)
        b = np.concatenate([self.edge_b, self.edge_a]).astype(np.int64)
        c = np.concatenate([self.edge_cost, self.edge_cost]).astype(np.float64)
        ln = np.concatenate([self.edge_len, self.edge_len]).astype(np.float64)
        order = np.lexsort((b, a))
        a, b, c, ln = a[order], b[order], c[order], ln[order]
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.add.at(indptr, a + 1, 1)
        return np.cumsum(indptr), b, c, ln


@dataclass(frozen=True)
class Params:
    """Tuning of the partitioner (defaults from the grid-bench tuning on the district)."""

    target: float = 400.0
    tolerance: float = 0.10
    #: Band around the community mean the refinement aims for (tighter than ``tolerance``).
    balance_tol: float = 0.08
    #: The absolute band (target ± abs_tol) the refinement aims for when the mean allows it.
    abs_tol: float = 0.09
    lb: float = 20.0
    hinge: float = 500.0
    li: float = 1.0
    lp: float = 2.5
    #: Stickiness to the anchor plan (warm start), per household moved / mean.
    ls: float = 5.0
    passes: int = 40
    n_starts: int = 6
    seed: int = 0
    #: Blocks holding at most this share of the target are placed whole first (a coarse
    #: partition of blocks and the units of big blocks), then every unit is refined: grid
    #: boundaries then run along the streets that bound blocks instead of through them.
    block_frac: float = 0.7


@dataclass
class Plan:
    """A community's grids: one label per unit plus per-grid figures."""

    labels: I64
    k: int
    households: I64
    population: I64
    load: F64
    pieces: I64
    score: float
    notes: list[str] = field(default_factory=list)


def choose_k(total: float, target: float) -> int:
    """Grids for a community: the k in {⌊t/T⌋, ⌈t/T⌉} whose mean is nearest ``target`` in ratio."""
    if total <= 0:
        return 1
    lo = max(1, int(total // target))
    hi = lo + 1
    r_lo = max(total / lo, target) / min(total / lo, target)
    r_hi = max(total / hi, target) / min(total / hi, target)
    return lo if r_lo <= r_hi else hi


# ----------------------------------------------------------------------------- compiled kernels


@njit(cache=True, nogil=True)
def components(indptr: Any, indices: Any, lab: Any) -> Any:  # pragma: no cover - compiled
    """Connected pieces of the graph restricted to same-label edges."""
    n = lab.shape[0]
    comp = -np.ones(n, dtype=np.int64)
    stack = np.empty(n, dtype=np.int64)
    nc = 0
    for s in range(n):
        if comp[s] >= 0:
            continue
        comp[s] = nc
        top = 0
        stack[top] = s
        top += 1
        while top > 0:
            top -= 1
            v = stack[top]
            for e in range(indptr[v], indptr[v + 1]):
                w = indices[e]
                if comp[w] < 0 and lab[w] == lab[v]:
                    comp[w] = nc
                    stack[top] = w
                    top += 1
        nc += 1
    return comp, nc


@njit(cache=True, nogil=True)
def _repair(  # noqa: PLR0917
    indptr: Any, indices: Any, elen: Any, lab: Any, w: Any, k: int
) -> Any:  # pragma: no cover
    """Keep each grid's heaviest piece; fold the others into the best-bordering neighbour."""
    n = lab.shape[0]
    lab = lab.copy()
    for _ in range(50):
        comp, nc = components(indptr, indices, lab)
        cw = np.zeros(nc)
        clab = np.zeros(nc, dtype=np.int64)
        for i in range(n):
            cw[comp[i]] += w[i] + 1e-6
            clab[comp[i]] = lab[i]
        best = -np.ones(k, dtype=np.int64)
        for c in range(nc):
            g = clab[c]
            if best[g] < 0 or cw[c] > cw[best[g]]:
                best[g] = c
        orphan = np.ones(nc, dtype=np.bool_)
        for g in range(k):
            if best[g] >= 0:
                orphan[best[g]] = False
        if not orphan.any():
            return lab
        # shared length of each orphan piece with each neighbouring grid
        score = np.zeros((nc, k))
        for v in range(n):
            cv = comp[v]
            if not orphan[cv]:
                continue
            for e in range(indptr[v], indptr[v + 1]):
                u = indices[e]
                if comp[u] != cv:
                    score[cv, lab[u]] += elen[e] + 1e-9
        target = -np.ones(nc, dtype=np.int64)
        for c in range(nc):
            if orphan[c]:
                bl, bs = -1, 0.0
                for g in range(k):
                    if g != clab[c] and score[c, g] > bs:
                        bl, bs = g, score[c, g]
                target[c] = bl
        for i in range(n):
            t = target[comp[i]]
            if t >= 0:
                lab[i] = t
    return lab


@njit(cache=True, nogil=True)
def _connected_without(  # noqa: PLR0917
    indptr: Any,
    indices: Any,
    lab: Any,
    count: Any,
    u: int,
    g: int,
    mark: Any,
    stamp: int,
    stack: Any,
) -> bool:  # pragma: no cover
    """Would grid ``g`` stay one piece without unit ``u``? (BFS inside g from a neighbour of u)."""
    if count[g] <= 1:
        return False
    start = -1
    for e in range(indptr[u], indptr[u + 1]):
        v = indices[e]
        if lab[v] == g:
            start = v
            break
    if start < 0:
        return False
    mark[u] = stamp
    mark[start] = stamp
    top = 0
    stack[top] = start
    top += 1
    seen = 1
    while top > 0:
        top -= 1
        v = stack[top]
        for e in range(indptr[v], indptr[v + 1]):
            w = indices[e]
            if mark[w] != stamp and lab[w] == g:
                mark[w] = stamp
                stack[top] = w
                top += 1
                seen += 1
    return bool(seen == count[g] - 1)


@njit(cache=True, nogil=True)
def _bal(  # noqa: PLR0917
    s: float, t: float, lo: float, hi: float, lb: float, hinge: float
) -> float:  # pragma: no cover
    d = (s - t) / t
    e = max(0.0, (s - hi) / t, (lo - s) / t)
    return lb * (d * d + hinge * e * e)


@njit(cache=True, nogil=True)
def _ni(a: float, sx: float, sy: float, sxx: float, li: float) -> float:  # pragma: no cover
    if a <= 0:
        return 0.0
    inertia = sxx - (sx * sx + sy * sy) / a
    return li * 2.0 * math.pi * inertia / (a * a)


@njit(cache=True, nogil=True)
def _refine(  # noqa: PLR0917  # pragma: no cover - compiled
    indptr: Any,
    indices: Any,
    cost: Any,
    lab: Any,
    w: Any,
    area: Any,
    x: Any,
    y: Any,
    k: int,
    t: float,
    lo: float,
    hi: float,
    lb: float,
    hinge: float,
    li: float,
    lp: float,
    l0: float,
    anchor: Any,
    ls: float,
    passes: int,
    seed: int,
) -> Any:
    n = lab.shape[0]
    lab = lab.copy()
    selfi = area * area / (2.0 * math.pi)
    s = np.zeros(k)
    a = np.zeros(k)
    sx = np.zeros(k)
    sy = np.zeros(k)
    sxx = np.zeros(k)
    count = np.zeros(k, dtype=np.int64)
    for i in range(n):
        g = lab[i]
        s[g] += w[i]
        a[g] += area[i]
        sx[g] += area[i] * x[i]
        sy[g] += area[i] * y[i]
        sxx[g] += area[i] * (x[i] * x[i] + y[i] * y[i]) + selfi[i]
        count[g] += 1
    mark = np.zeros(n, dtype=np.int64)
    stack = np.empty(n, dtype=np.int64)
    stamp = 0
    to = np.zeros(k)
    np.random.seed(seed)
    for _p in range(passes):
        moves = 0
        order = np.random.permutation(n)
        for u in order:
            g = lab[u]
            boundary = False
            for e in range(indptr[u], indptr[u + 1]):
                if lab[indices[e]] != g:
                    boundary = True
                    break
            if not boundary:
                continue
            hu = w[u]
            au = area[u]
            xu = x[u]
            yu = y[u]
            qu = au * (xu * xu + yu * yu) + selfi[u]
            d_from = (
                _bal(s[g] - hu, t, lo, hi, lb, hinge)
                - _bal(s[g], t, lo, hi, lb, hinge)
                + _ni(a[g] - au, sx[g] - au * xu, sy[g] - au * yu, sxx[g] - qu, li)
                - _ni(a[g], sx[g], sy[g], sxx[g], li)
            )
            for e in range(indptr[u], indptr[u + 1]):
                to[lab[indices[e]]] = 0.0
            for e in range(indptr[u], indptr[u + 1]):
                to[lab[indices[e]]] += cost[e]
            best = -1
            bestd = -1e-9
            for e in range(indptr[u], indptr[u + 1]):
                h = lab[indices[e]]
                if h == g:
                    continue
                dd = (
                    d_from
                    + _bal(s[h] + hu, t, lo, hi, lb, hinge)
                    - _bal(s[h], t, lo, hi, lb, hinge)
                    + _ni(a[h] + au, sx[h] + au * xu, sy[h] + au * yu, sxx[h] + qu, li)
                    - _ni(a[h], sx[h], sy[h], sxx[h], li)
                    + lp * 2.0 * (to[g] - to[h]) / l0
                )
                if ls > 0.0 and anchor[u] >= 0:
                    if anchor[u] == g:
                        dd += ls * hu / t
                    elif anchor[u] == h:
                        dd -= ls * hu / t
                if dd < bestd:
                    best = h
                    bestd = dd
            if best < 0:
                continue
            stamp += 1
            if not _connected_without(indptr, indices, lab, count, u, g, mark, stamp, stack):
                continue
            h = best
            s[g] -= hu
            a[g] -= au
            sx[g] -= au * xu
            sy[g] -= au * yu
            sxx[g] -= qu
            count[g] -= 1
            s[h] += hu
            a[h] += au
            sx[h] += au * xu
            sy[h] += au * yu
            sxx[h] += qu
            count[h] += 1
            lab[u] = h
            moves += 1
        if moves == 0:
            break
    return lab


# ----------------------------------------------------------------------------- python driver


def _power_seed(g: UnitGraph, k: int, rng: np.random.Generator, outer: int = 15) -> I64:
    """Balanced power-diagram k-means (capacity-constrained Voronoi) on the unit centroids."""
    w = g.load
    xy = g.xy - g.xy.mean(0)
    wpos = np.where(w > 0, w, 1e-3)
    # weighted k-means++ initial centres
    centres = np.empty((k, 2))
    centres[0] = xy[rng.choice(g.n, p=wpos / wpos.sum())]
    d2 = ((xy - centres[0]) ** 2).sum(1)
    for j in range(1, k):
        q = wpos * d2 + 1e-12
        centres[j] = xy[rng.choice(g.n, p=q / q.sum())]
        d2 = np.minimum(d2, ((xy - centres[j]) ** 2).sum(1))
    return np.asarray(_power_kernel(xy, w, wpos, centres, outer))


@njit(cache=True, nogil=True)
def _power_kernel(xy: Any, w: Any, wpos: Any, centres: Any, outer: int) -> Any:  # pragma: no cover
    """Lloyd iterations of the balanced power diagram; biases tuned towards equal loads."""
    n = xy.shape[0]
    k = centres.shape[0]
    bias = np.zeros(k)
    mean = w.sum() / k
    mx = xy[:, 0].mean()
    my = xy[:, 1].mean()
    scale = (((xy[:, 0] - mx) ** 2) + ((xy[:, 1] - my) ** 2)).mean() / k
    lab = np.zeros(n, dtype=np.int64)
    dist = np.empty((n, k))
    s = np.zeros(k)
    for _o in range(outer):
        for i in range(n):
            for j in range(k):
                dx = xy[i, 0] - centres[j, 0]
                dy = xy[i, 1] - centres[j, 1]
                dist[i, j] = dx * dx + dy * dy
        step = 0.5 * scale
        for _inner in range(40):
            s[:] = 0.0
            for i in range(n):
                bj = 0
                bv = dist[i, 0] - bias[0]
                for j in range(1, k):
                    v = dist[i, j] - bias[j]
                    if v < bv:
                        bv = v
                        bj = j
                lab[i] = bj
                s[bj] += w[i]
            worst = 0.0
            for j in range(k):
                err = (mean - s[j]) / max(mean, 1e-9)
                worst = max(worst, abs(err))
                bias[j] += step * err
            if worst < 0.02:
                break
            step *= 0.97
        ws = np.zeros(k)
        cx = np.zeros(k)
        cy = np.zeros(k)
        for i in range(n):
            j = lab[i]
            ws[j] += wpos[i]
            cx[j] += wpos[i] * xy[i, 0]
            cy[j] += wpos[i] * xy[i, 1]
        shift = 0.0
        for j in range(k):
            if ws[j] > 0:
                nx = cx[j] / ws[j]
                ny = cy[j] / ws[j]
                shift = max(shift, abs(nx - centres[j, 0]) + abs(ny - centres[j, 1]))
                centres[j, 0] = nx
                centres[j, 1] = ny
        if shift < 0.5:  # metres: the diagram has settled
            break
    for i in range(n):
        bj = 0
        bv = 1e300
        for j in range(k):
            dx = xy[i, 0] - centres[j, 0]
            dy = xy[i, 1] - centres[j, 1]
            v = dx * dx + dy * dy - bias[j]
            if v < bv:
                bv = v
                bj = j
        lab[i] = bj
    return lab


def _fill_empty(g: UnitGraph, lab: I64, k: int, indptr: I64, indices: I64) -> I64:
    """Give every empty label one boundary unit of the heaviest grid (refinement grows it)."""
    lab = lab.copy()
    w = g.load
    for j in range(k):
        if (lab == j).any():
            continue
        sizes = np.bincount(lab, weights=w, minlength=k)
        big = int(sizes.argmax())
        members = np.nonzero(lab == big)[0]
        if members.size < 2:
            continue
        # the member farthest from its grid's centroid
        c = g.xy[members].mean(0)
        far = members[((g.xy[members] - c) ** 2).sum(1).argsort()[::-1]]
        for u in far:
            trial = lab.copy()
            trial[u] = j
            comp, _ = components(indptr, indices, trial)
            rest = comp[trial == big]
            if rest.size and (rest == rest[0]).all():
                lab = trial
                break
    return lab


def _score(g: UnitGraph, lab: I64, k: int, t: float, tol: float) -> float:
    """Plan score for multi-start: tolerance violations first, then total inertia."""
    w = g.load
    s = np.bincount(lab, weights=w, minlength=k)
    viol = float(np.maximum(0.0, np.abs(s - t) / t - tol).sum())
    a = np.bincount(lab, weights=g.area, minlength=k)
    x, y = g.xy[:, 0] - g.xy[:, 0].mean(), g.xy[:, 1] - g.xy[:, 1].mean()
    sx = np.bincount(lab, weights=g.area * x, minlength=k)
    sy = np.bincount(lab, weights=g.area * y, minlength=k)
    sxx = np.bincount(
        lab, weights=g.area * (x * x + y * y) + g.area**2 / (2 * math.pi), minlength=k
    )
    a_safe = np.where(a > 0, a, 1.0)
    inertia = (sxx - (sx * sx + sy * sy) / a_safe) * 2 * math.pi / a_safe**2
    return viol * 1e6 + float(inertia.sum())


def partition(
    g: UnitGraph, k: int | None = None, params: Params | None = None, anchor: I64 | None = None
) -> Plan:
    """Partition one community's units into ``k`` grids (``k`` from the target when None).

    Args:
        g: The unit graph.
        k: Number of grids; ``choose_k(total, target)`` when None.
        params: Tuning; defaults when None.
        anchor: Current grid of each unit (−1 for new units): warm start + stickiness.

    Returns:
        The plan; ``labels`` are 0..k−1 (unordered: codes are given later, west→east).
    """
    p = params or Params()
    w = g.load
    total = float(w.sum())
    if k is None:
        regions = _regions(g, p.target * (1 - p.tolerance))
        if regions is not None:
            return _partition_regions(g, regions, p, anchor)
        k = choose_k(total, p.target)
    k = max(1, min(k, g.n))
    notes: list[str] = []
    if k == 1 or g.n <= 1:
        lab = np.zeros(g.n, dtype=np.int64)
        return _finish(g, lab, 1, 0.0, notes)
    indptr, indices, cost, elen = g.csr()
    t = total / k
    lo, hi = t * (1 - p.balance_tol), t * (1 + p.balance_tol)
    alo, ahi = p.target * (1 - p.abs_tol), p.target * (1 + p.abs_tol)
    if alo < t < ahi:
        lo, hi = max(lo, alo), min(hi, ahi)
    x = g.xy[:, 0] - g.xy[:, 0].mean()
    y = g.xy[:, 1] - g.xy[:, 1].mean()
    l0 = math.sqrt(4 * math.pi * float(g.area.sum()) / k)
    area = g.area.astype(np.float64)

    warm = anchor is not None and _usable_anchor(anchor, k)
    starts: list[I64] = []
    if warm:
        assert anchor is not None
        # new units (−1) join the grid of a labelled neighbour
        starts.append(_adopt_orphans(anchor.copy(), indptr, indices))
    elif g.block is not None:
        groups = block_groups(g, p.target * p.block_frac)
        if int(groups.max()) + 1 < g.n:
            coarse = partition(coarsen(g, groups), k, replace(p, block_frac=0.0))
            starts.append(coarse.labels[groups])
            notes.append("small street blocks placed whole")
    if not starts:
        for s in range(p.n_starts):
            rng = np.random.default_rng(p.seed * 1000 + s)
            starts.append(_power_seed(g, k, rng))
    anc = anchor if warm and anchor is not None else -np.ones(g.n, dtype=np.int64)
    best_lab, best_score = None, math.inf
    for i, lab0 in enumerate(starts):
        lab = _repair(indptr, indices, elen, lab0.astype(np.int64), w, k)
        lab = _fill_empty(g, lab, k, indptr, indices)
        lab = _refine(
            indptr, indices, cost, lab, w, area, x, y, k, t, lo, hi,
            p.lb, p.hinge, p.li, p.lp, l0, anc.astype(np.int64), p.ls if warm else 0.0,
            p.passes, p.seed * 1000 + i,
        )  # fmt: skip
        sc = _score(g, lab, k, t, p.tolerance)
        if sc < best_score:
            best_lab, best_score = lab, sc
    assert best_lab is not None
    if warm:
        notes.append("warm start from the current grids")
    return _finish(g, best_lab, k, best_score, notes)


def _regions(g: UnitGraph, min_load: float) -> I64 | None:
    """Regions joined only by bridge edges (small ones merged in), or None when only one."""
    bridge = g.edge_cost >= BRIDGE_COST * g.edge_len  # (a cut elsewhere costs ≤ its length)
    if not bridge.any():
        return None
    inner = replace(g, edge_a=g.edge_a[~bridge], edge_b=g.edge_b[~bridge],
                    edge_len=g.edge_len[~bridge], edge_cost=g.edge_cost[~bridge])  # fmt: skip
    indptr, indices, _, _ = inner.csr()
    comp, nc = components(indptr, indices, np.zeros(g.n, dtype=np.int64))
    if nc <= 1:
        return None
    parent = np.arange(nc)

    def root(r: int) -> int:
        while parent[r] != r:
            r = int(parent[r])
        return r

    load = np.bincount(comp, weights=g.load, minlength=nc)
    ba, bb = comp[g.edge_a[bridge]], comp[g.edge_b[bridge]]
    for r in np.argsort(load, kind="stable").tolist():
        if load[root(r)] >= min_load:
            continue
        here = root(r)
        for x, y in zip(ba.tolist(), bb.tolist(), strict=True):
            rx, ry = root(x), root(y)
            if rx != ry and here in (rx, ry):
                other = ry if rx == here else rx
                parent[here] = other
                load[other] += load[here]
                break
    roots = np.asarray([root(r) for r in range(nc)])[comp]
    _, out = np.unique(roots, return_inverse=True)
    return None if out.max() == 0 else out.astype(np.int64)


def induced(g: UnitGraph, idx: I64) -> UnitGraph:
    """The graph of the units ``idx`` (edges with both ends among them)."""
    local = np.full(g.n, -1, dtype=np.int64)
    local[idx] = np.arange(idx.size)
    m = (local[g.edge_a] >= 0) & (local[g.edge_b] >= 0)
    return UnitGraph(
        xy=g.xy[idx],
        area=g.area[idx],
        households=g.households[idx],
        population=g.population[idx],
        edge_a=local[g.edge_a[m]],
        edge_b=local[g.edge_b[m]],
        edge_len=g.edge_len[m],
        edge_cost=g.edge_cost[m],
        weight=None if g.weight is None else g.weight[idx],
        block=None if g.block is None else g.block[idx],
    )


def _partition_regions(g: UnitGraph, regions: I64, p: Params, anchor: I64 | None) -> Plan:
    """Partition each region apart (its own k) and number the grids one after the other."""
    labels = np.zeros(g.n, dtype=np.int64)
    offset, score = 0, 0.0
    for r in range(int(regions.max()) + 1):
        idx = np.nonzero(regions == r)[0]
        anc = None
        if anchor is not None:
            known = anchor[idx]
            kept, local = np.unique(known[known >= 0], return_inverse=True)
            anc = -np.ones(idx.size, dtype=np.int64)
            anc[known >= 0] = local
            anc = anc if kept.size else None
        plan = partition(induced(g, idx), None, p, anc)
        labels[idx] = plan.labels + offset
        offset += plan.k
        score += plan.score
    notes = [f"{int(regions.max()) + 1} regions apart (hard barriers without crossings)"]
    return _finish(g, labels, offset, score, notes)


def block_groups(g: UnitGraph, max_load: float) -> I64:
    """Coarse unit of each unit: its block when the block's load is at most ``max_load``."""
    assert g.block is not None
    _, blk = np.unique(g.block, return_inverse=True)
    small = np.bincount(blk, weights=g.load)[blk] <= max_load
    nb = int(blk.max()) + 1 if blk.size else 0
    grp = np.where(small, blk, nb + np.arange(g.n))
    _, grp = np.unique(grp, return_inverse=True)
    return grp.astype(np.int64)


def coarsen(g: UnitGraph, groups: I64) -> UnitGraph:
    """The graph of unit groups: sums of counts and area, area-weighted centres, summed edges."""
    m = int(groups.max()) + 1

    def total(w: F64, index: I64, size: int) -> F64:
        return np.bincount(index, weights=w, minlength=size).astype(np.float64)

    a = total(g.area, groups, m)
    safe = np.where(a > 0, a, 1.0)
    cx = np.bincount(groups, weights=g.area * g.xy[:, 0], minlength=m) / safe
    cy = np.bincount(groups, weights=g.area * g.xy[:, 1], minlength=m) / safe
    ga, gb = groups[g.edge_a], groups[g.edge_b]
    keep = ga != gb
    lo, hi = np.minimum(ga, gb)[keep], np.maximum(ga, gb)[keep]
    key, inv = np.unique(lo * m + hi, return_inverse=True)
    return UnitGraph(
        xy=np.c_[cx, cy],
        area=a,
        households=np.bincount(groups, weights=g.households, minlength=m).astype(np.int64),
        population=np.bincount(groups, weights=g.population, minlength=m).astype(np.int64),
        edge_a=(key // m).astype(np.int64),
        edge_b=(key % m).astype(np.int64),
        edge_len=total(g.edge_len[keep], inv.ravel(), key.size),
        edge_cost=total(g.edge_cost[keep], inv.ravel(), key.size),
        weight=None if g.weight is None else total(g.weight, groups, m),
    )


def _usable_anchor(anchor: I64, k: int) -> bool:
    known = anchor[anchor >= 0]
    return bool(known.size) and set(np.unique(known).tolist()) == set(range(k))


def _adopt_orphans(lab: I64, indptr: I64, indices: I64) -> I64:
    lab = lab.copy()
    for _ in range(lab.size):
        todo = np.nonzero(lab < 0)[0]
        if todo.size == 0:
            break
        changed = False
        for u in todo:
            nb = lab[indices[indptr[u] : indptr[u + 1]]]
            nb = nb[nb >= 0]
            if nb.size:
                lab[u] = np.bincount(nb).argmax()
                changed = True
        if not changed:
            lab[lab < 0] = 0
            break
    return lab


def _finish(g: UnitGraph, lab: I64, k: int, score: float, notes: list[str]) -> Plan:
    _, lab = np.unique(lab, return_inverse=True)
    lab = lab.astype(np.int64)
    k = int(lab.max()) + 1 if lab.size else 0
    indptr, indices, _, _ = g.csr()
    comp, _ = components(indptr, indices, lab)
    pieces = np.zeros(k, dtype=np.int64)
    pairs = np.unique(np.c_[lab, comp], axis=0)
    np.add.at(pieces, pairs[:, 0], 1)
    return Plan(
        labels=lab,
        k=k,
        households=np.bincount(lab, weights=g.households, minlength=k).astype(np.int64),
        population=np.bincount(lab, weights=g.population, minlength=k).astype(np.int64),
        load=np.bincount(lab, weights=g.load, minlength=k).astype(np.float64),
        pieces=pieces,
        score=score,
        notes=notes,
    )


def partition_many(
    graphs: list[UnitGraph],
    params: Params | None = None,
    anchors: list[I64 | None] | None = None,
    workers: int = 2,
) -> list[Plan]:
    """Partition several communities in parallel threads (the kernels release the GIL)."""
    anchors = anchors or [None] * len(graphs)

    def one(i: int) -> Plan:
        return partition(graphs[i], None, params, anchors[i])

    if workers <= 1 or len(graphs) <= 1:
        return [one(i) for i in range(len(graphs))]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, range(len(graphs))))
