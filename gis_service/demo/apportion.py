"""Exact integer apportionment: split a total in proportion to weights, summing to the total.

The bureau's figures (232 grids, 92 800 households...) must come out exactly, which rounding
each share on its own cannot guarantee; the largest-remainder method does.
"""

from __future__ import annotations

import numpy as np

from gis_service.demo.geometry import Arr

__all__ = ["allocate", "largest_remainder"]


def largest_remainder(weights: Arr, total: int, minimum: int = 0) -> Arr:
    """Integers proportional to ``weights`` summing exactly to ``total`` (each ≥ minimum)."""
    w = np.asarray(weights, dtype=float)
    n = len(w)
    out = np.full(n, minimum, dtype=np.int64)
    rest = total - minimum * n
    if n == 0 or rest <= 0:
        return out
    if w.sum() <= 0:
        w = np.ones(n)
    raw = w / w.sum() * rest
    base = np.floor(raw).astype(np.int64)
    short = rest - int(base.sum())
    if short > 0:
        order = np.argsort(-(raw - base), kind="stable")
        base[order[:short]] += 1
    result: Arr = out + base
    return result


def allocate(total: Arr, group: Arr, weight: Arr, n_groups: int) -> Arr:
    """Split ``total[g]`` over the members of each group ∝ weight (largest remainder, exact)."""
    wsum = np.bincount(group, weights=weight, minlength=n_groups)
    share = np.where(wsum[group] > 0, weight / np.where(wsum[group] > 0, wsum[group], 1), 0.0)
    raw = share * total[group]
    base = np.floor(raw).astype(np.int64)
    short = total - np.bincount(group, weights=base, minlength=n_groups).astype(np.int64)
    rem = raw - base
    order = np.lexsort((-rem, group))
    g_sorted = group[order]
    first = np.searchsorted(g_sorted, np.arange(n_groups))
    rank = np.arange(len(order)) - first[g_sorted]
    bump = np.zeros(len(group), dtype=np.int64)
    bump[order] = (rank < short[g_sorted]).astype(np.int64)
    result: Arr = base + bump
    return result
