"""The partitioning core on generated communities, checked independently with shapely.

Each community is made in code: a square with a perturbed street lattice and a river,
clustered buildings with 1..60 households. Units and adjacency come from ``build_units``;
the checks below never use the partitioner's own bookkeeping: pieces, coverage and overlaps
are measured on the dissolved shapely polygons, counts are re-summed from the buildings.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, box
from shapely.ops import polygonize, unary_union

from gis_service.grids.partition import Params, UnitGraph, choose_k, partition
from gis_service.grids.store import code_order
from gis_service.grids.units import CommunityUnits, build_units

TARGET = 400
TOL = 0.10


def make_community(households: int, seed: int, side: float = 1600.0) -> CommunityUnits:
    """A square community with streets every ~160 m (some dropped), a river and buildings."""
    rng = np.random.default_rng(seed)
    outline = box(0, 0, side, side)
    lines = []
    for v in np.arange(160.0, side, 160.0):
        j = rng.normal(0, 12)
        lines.append(LineString([(v + j, -5), (v - j, side + 5)]))
        lines.append(LineString([(-5, v - j), (side + 5, v + j)]))
    segs = list(shapely.node(unary_union(lines)).geoms)
    segs = [s for s in segs if rng.random() > 0.25]
    xr = np.linspace(-5, side + 5, 60)
    river = LineString(np.c_[xr, side * 0.5 + side * 0.1 * np.sin(xr / side * 5)])
    work = unary_union([*segs, river, outline.boundary]).intersection(outline.buffer(1))
    faces = [
        p
        for p in polygonize(shapely.node(work).geoms)
        if p.area > 1 and outline.contains(p.representative_point())
    ]
    # clustered buildings
    centres = rng.uniform(0.15 * side, 0.85 * side, size=(4, 2))
    xy, hh = [], []
    total = 0
    while total < households:
        c = centres[rng.integers(0, 4)]
        p = rng.normal(c, side * 0.18)
        if not (5 < p[0] < side - 5 and 5 < p[1] < side - 5):
            continue
        h = int(
            min(
                rng.choice([rng.integers(1, 9), rng.integers(9, 31), rng.integers(31, 61)]),
                households - total,
            )
        )
        xy.append(p)
        hh.append(h)
        total += h
    xy_a = np.asarray(xy)
    hh_a = np.asarray(hh, dtype=np.int64)
    line_arr = np.asarray([*segs, river], dtype=object)
    major = np.zeros(len(line_arr), dtype=bool)
    major[-1] = True
    return build_units(
        "430204001001",
        np.asarray(faces, dtype=object),
        np.arange(1, len(hh_a) + 1, dtype=np.int64),
        xy_a,
        hh_a,
        hh_a * 3,
        line_arr,
        major,
    )


@pytest.fixture(scope="module")
def community() -> CommunityUnits:
    """About 3,000 households: 7 or 8 grids."""
    return make_community(3000, seed=7)


@pytest.fixture(scope="module")
def planned(community: CommunityUnits) -> Any:
    """The default plan of the community."""
    return partition(community.graph, None, Params(seed=1))


def _grid_polys(c: CommunityUnits, labels: np.ndarray[Any, Any]) -> list[Any]:
    return [
        shapely.union_all(c.geoms[labels == g], grid_size=0.01) for g in range(labels.max() + 1)
    ]


def test_units_tile_the_community(community: CommunityUnits) -> None:
    """Units cover the square without gaps or overlaps, and carry every household."""
    areas = shapely.area(community.geoms)
    union = shapely.union_all(community.geoms, grid_size=0.01)
    assert union.area == pytest.approx(1600.0**2, rel=1e-4)
    assert areas.sum() == pytest.approx(union.area, rel=1e-4)
    assert community.graph.households.sum() == 3000
    # every building belongs to exactly one unit
    ids = [b for members in community.building_ids for b in members]
    assert len(ids) == len(set(ids))


def test_each_grid_is_one_piece_and_grids_cover_without_overlap(
    community: CommunityUnits, planned: Any
) -> None:
    """Shapely on the dissolved grids: one polygon each, areas sum to the community."""
    polys = _grid_polys(community, planned.labels)
    assert len(polys) == choose_k(3000, TARGET)
    for p in polys:
        assert p.geom_type == "Polygon", "a grid is in several pieces"
        assert p.is_valid
    total = sum(p.area for p in polys)
    assert total == pytest.approx(1600.0**2, rel=1e-4)
    assert shapely.union_all(polys, grid_size=0.01).area == pytest.approx(total, rel=1e-4)


def test_household_counts_within_tolerance(community: CommunityUnits, planned: Any) -> None:
    """Re-summed from the units, every grid is within ±10 % of 400."""
    sums = np.bincount(planned.labels, weights=community.graph.households)
    assert sums.sum() == 3000
    assert (np.abs(sums - TARGET) <= TOL * TARGET).all(), sums
    assert planned.households.tolist() == sums.astype(int).tolist()


def test_grids_are_compact(community: CommunityUnits, planned: Any) -> None:
    """Mean Polsby-Popper of the dissolved polygons ≥ 0.4 (streets make edges ragged)."""
    pp = [4 * np.pi * p.area / p.length**2 for p in _grid_polys(community, planned.labels)]
    assert np.mean(pp) >= 0.4, pp


def test_boundaries_follow_streets(community: CommunityUnits, planned: Any) -> None:
    """Most cut length lies between blocks (on streets or the river), not through blocks."""
    g, lab = community.graph, planned.labels
    cut = lab[g.edge_a] != lab[g.edge_b]
    between = community.block[g.edge_a] != community.block[g.edge_b]
    assert g.edge_len[cut & between].sum() / g.edge_len[cut].sum() >= 0.6


def test_same_seed_same_grids_other_seed_other_grids(community: CommunityUnits) -> None:
    """Deterministic for a seed."""
    a = partition(community.graph, None, Params(seed=3)).labels
    b = partition(community.graph, None, Params(seed=3)).labels
    assert (a == b).all()
    c = partition(community.graph, None, Params(seed=4, n_starts=1)).labels
    d = partition(community.graph, None, Params(seed=3, n_starts=1)).labels
    assert not (c == d).all()


def _moved_share(
    hh: np.ndarray[Any, Any], old: np.ndarray[Any, Any], new: np.ndarray[Any, Any]
) -> float:
    """Households whose grid changed, after the best one-to-one matching of labels."""
    from itertools import permutations

    k = int(max(old.max(), new.max())) + 1
    m = np.zeros((k, k))
    np.add.at(m, (old, new), hh)
    if k <= 8:
        best = max(sum(m[i, p[i]] for i in range(k)) for p in permutations(range(k)))
    else:  # greedy is a lower bound on the kept share, so the test stays conservative
        best, used = 0.0, set()
        for i, j in zip(*np.unravel_index(np.argsort(-m, axis=None), m.shape), strict=True):
            if i not in used and ("c", j) not in used:
                used |= {i, ("c", j)}
                best += m[i, j]
    return float(1 - best / hh.sum())


def test_small_change_moves_few_households(community: CommunityUnits, planned: Any) -> None:
    """After 1 % of households are added, a warm start moves ≤ 1 % of households."""
    g = community.graph
    rng = np.random.default_rng(11)
    hh = g.households.copy()
    for u in rng.choice(np.nonzero(hh > 0)[0], size=30, replace=False):
        hh[u] += 1
    changed = UnitGraph(g.xy, g.area, hh, hh * 3, g.edge_a, g.edge_b, g.edge_len, g.edge_cost)
    warm = partition(changed, planned.k, Params(seed=1), anchor=planned.labels)
    cold = partition(changed, planned.k, Params(seed=2))
    assert _moved_share(hh, planned.labels, warm.labels) <= 0.01
    assert _moved_share(hh, planned.labels, cold.labels) > 0.01  # why the warm start exists
    sums = np.bincount(warm.labels, weights=hh)
    assert (np.abs(sums - TARGET) <= TOL * TARGET).all()
    assert (warm.pieces == 1).all()


def test_too_small_community_is_one_grid() -> None:
    """A village below one grid's worth stays one grid (and is reported as such upstream)."""
    c = make_community(150, seed=3, side=600.0)
    plan = partition(c.graph, None, Params())
    assert plan.k == 1
    assert plan.households.tolist() == [150]


@pytest.mark.parametrize(
    ("total", "k"), [(0, 1), (150, 1), (400, 1), (620, 2), (2900, 7), (3000, 8), (92800, 232)]
)
def test_choose_k(total: int, k: int) -> None:
    """k whose mean is nearest the target in ratio terms."""
    assert choose_k(total, 400) == k


def test_code_order_west_east_north_south() -> None:
    """Rows from the north, west→east inside a row."""
    xy = np.array([[10.0, 10.0], [200.0, 12.0], [15.0, 300.0], [220.0, 290.0]])
    seq = code_order(xy, area=4 * 200.0 * 200.0)
    assert seq.tolist() == [3, 4, 1, 2]


def test_edit_validation_refuses_a_broken_grid() -> None:
    """Moving the middle unit of a 3-unit path out of its grid leaves two pieces."""
    from gis_service.grids.edits import validate_labels

    g = UnitGraph(
        xy=np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [1.0, 1.0]]),
        area=np.ones(4),
        households=np.array([200, 10, 200, 400], dtype=np.int64),
        population=np.zeros(4, dtype=np.int64),
        edge_a=np.array([0, 1, 1], dtype=np.int64),
        edge_b=np.array([1, 2, 3], dtype=np.int64),
        edge_len=np.ones(3),
        edge_cost=np.ones(3),
    )
    ok = validate_labels(g, np.array([0, 0, 0, 1]), 400, 0.1, [0, 1])
    assert ok["ok"]
    assert not ok["warnings"]
    broken = validate_labels(g, np.array([0, 1, 0, 1]), 400, 0.1, [0, 1])
    assert not broken["ok"]
    assert broken["problems"] == [{"label": 0, "problem": "not one piece"}]
    merged = validate_labels(g, np.array([0, 0, 0, 0]), 400, 0.1, [0])
    assert merged["ok"]
    assert merged["warnings"][0]["households"] == 810


def test_workload_weight_is_what_gets_balanced(community: CommunityUnits) -> None:
    """With a weight (households + 40 per risky firm …) the grids balance the weight."""
    from dataclasses import replace

    g = community.graph
    weight = g.households.astype(np.float64)
    weight[np.argsort(-g.households)[:20]] += 40.0  # twenty units host a red/orange firm
    plan = partition(replace(g, weight=weight), None, Params(seed=2))
    assert plan.k == choose_k(float(weight.sum()), TARGET)
    sums = np.bincount(plan.labels, weights=weight)
    assert (np.abs(sums - TARGET) <= TOL * TARGET).all(), sums
    assert (plan.pieces == 1).all()
