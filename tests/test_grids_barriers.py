"""Barriers, street blocks and special grids in the partitioning core (no database).

Communities are generated in code (``make_community``: a street lattice, a river as the
major line, clustered buildings). Every check is recomputed independently with shapely:
shared boundary lengths by intersecting cell boundaries, grid boundaries by dissolving
cells, river crossings by cutting grid polygons with the river line.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, Point, box

from gis_service.grids.partition import Params, choose_k, partition
from gis_service.grids.units import (
    CROSSING_M,
    SPECIAL_RADIUS_M,
    CommunityUnits,
    adjacency,
    build_units,
    pin_special,
    subgraph,
)
from tests.test_grids_partition import TARGET, TOL, make_community


@pytest.fixture(scope="module")
def community() -> CommunityUnits:
    """About 4,000 households: 10 grids."""
    return make_community(4000, seed=21)


def _street_share(c: CommunityUnits, labels: np.ndarray[Any, Any]) -> float:
    """Share of the grid boundary length (inside the community) lying between blocks.

    Measured on shapely geometry: the dissolved grids' boundaries minus the community
    outline, and the part of them that is on a block outline (a street or the river).
    """
    grids = [shapely.union_all(c.geoms[labels == g], grid_size=0.01) for g in np.unique(labels)]
    outline = shapely.union_all(c.geoms, grid_size=0.01).boundary.buffer(0.05)
    inner = shapely.union_all([g.boundary for g in grids]).difference(outline)
    blocks = [shapely.union_all(c.geoms[c.block == b], grid_size=0.01) for b in np.unique(c.block)]
    streets = shapely.union_all([b.boundary for b in blocks]).buffer(0.05)
    return float(inner.intersection(streets).length / inner.length)


def test_block_adjacency_equals_boundary_intersection(community: CommunityUnits) -> None:
    """Shared lengths from segment matching equal shapely intersections of cell boundaries."""
    g = community.graph
    same = community.block[g.edge_a] == community.block[g.edge_b]
    a, b = g.edge_a[same], g.edge_b[same]
    bnd = shapely.boundary(community.geoms)
    expected = shapely.length(shapely.intersection(bnd[a], bnd[b]))
    assert g.edge_len[same] == pytest.approx(expected, abs=1e-6)
    # and no pair of touching cells of one block is missed
    tree = shapely.STRtree(community.geoms)
    qa, qb = tree.query(community.geoms, predicate="touches")
    keep = (qa < qb) & (community.block[qa] == community.block[qb])
    qa, qb = qa[keep], qb[keep]
    long = shapely.length(shapely.intersection(bnd[qa], bnd[qb])) > 0.5
    found = set(zip(a.tolist(), b.tolist(), strict=True))
    assert {(int(x), int(y)) for x, y in zip(qa[long], qb[long], strict=True)} <= found


def test_small_blocks_kept_whole_puts_boundaries_on_streets(community: CommunityUnits) -> None:
    """With block information the grid boundaries lie more on streets than without it."""
    with_blocks = partition(community.graph, None, Params(seed=1))
    without = partition(replace(community.graph, block=None), None, Params(seed=1))
    assert "small street blocks placed whole" in with_blocks.notes
    share_with = _street_share(community, with_blocks.labels)
    share_without = _street_share(community, without.labels)
    assert share_with >= share_without
    assert share_with >= 0.6
    sums = np.bincount(with_blocks.labels, weights=community.graph.households)
    assert (np.abs(sums - TARGET) <= TOL * TARGET).all(), sums
    assert (with_blocks.pieces == 1).all()


def _river_community(crossings: list[Point] | None) -> CommunityUnits:
    """A square cut by a straight river (major) and two streets; buildings on both sides."""
    side = 1000.0
    river = LineString([(-5, 500), (side + 5, 500)])
    streets = [LineString([(330, -5), (330, side + 5)]), LineString([(660, -5), (660, side + 5)])]
    outline = box(0, 0, side, side)
    faces = shapely.get_parts(
        shapely.polygonize(shapely.get_parts(shapely.node(
            shapely.union_all([river, *streets, outline.boundary]).intersection(outline)
        )))
    )  # fmt: skip
    rng = np.random.default_rng(5)
    xy = rng.uniform(10, side - 10, size=(300, 2))
    xy = xy[np.abs(xy[:, 1] - 500) > 8]
    hh = rng.integers(5, 15, size=len(xy)).astype(np.int64)
    lines = np.asarray([river, *streets], dtype=object)
    return build_units(
        "430204001001",
        np.asarray(faces, dtype=object),
        np.arange(1, len(xy) + 1, dtype=np.int64),
        xy,
        hh,
        hh * 3,
        lines,
        np.array([True, False, False]),
        None if crossings is None else np.asarray(crossings, dtype=object),
    )


def _river_edges(c: CommunityUnits) -> list[tuple[int, int, float]]:
    """Edges between a unit north of the river and one south of it (by centroid)."""
    g = c.graph
    north = g.xy[:, 1] > 500
    cross = north[g.edge_a] != north[g.edge_b]
    return [
        (int(a), int(b), float(cost))
        for a, b, cost in zip(g.edge_a[cross], g.edge_b[cross], g.edge_cost[cross], strict=True)
    ]


def test_hard_barrier_crossed_only_at_a_crossing() -> None:
    """Without a crossing layer the river is a cheap cut; with one, only a bridge joins."""
    soft = _river_edges(_river_community(None))
    assert len(soft) > 10, "units face each other across the river"
    assert all(cost < 1e3 for _, _, cost in soft)
    # a layer with no crossing here: the two banks are joined only by the one costly edge
    # that keeps the community graph connected
    none_here = _river_edges(_river_community([]))
    assert len(none_here) == 1
    assert none_here[0][2] >= 1e3
    bridge = Point(500, 500)
    c = _river_community([bridge])
    joined = _river_edges(c)
    assert joined
    for a, b, _ in joined:
        shared = c.geoms[a].boundary.intersection(c.geoms[b].boundary)
        assert shared.distance(bridge) <= CROSSING_M + 1e-6
    # the bridge-free pairs of the soft graph are gone
    assert len(joined) < len(soft)


def test_partition_respects_hard_barrier() -> None:
    """No grid spans the river when the layer has no crossing there."""
    c = _river_community([])
    plan = partition(c.graph, None, Params(seed=3))
    assert plan.k == choose_k(float(c.graph.households.sum()), TARGET)
    north = c.graph.xy[:, 1] > 500
    for lab in range(plan.k):
        sides = set(north[plan.labels == lab].tolist())
        assert len(sides) == 1, f"grid {lab} spans the river"


def test_adjacency_of_disconnected_pieces_is_bridged() -> None:
    """Two separate squares still form one connected graph (a costly joining edge)."""
    geoms = np.asarray([box(0, 0, 10, 10), box(10, 0, 20, 10), box(50, 0, 60, 10)], dtype=object)
    a, b, _ln, cost = adjacency(geoms, np.array([0, 1, 2]))
    pairs = {(int(x), int(y)) for x, y in zip(a, b, strict=True)}
    assert (0, 1) in pairs
    assert len(pairs) == 2
    assert cost.max() >= 1e3


def test_special_grid_pinned_and_outside_the_balance(community: CommunityUnits) -> None:
    """A pinned feature becomes its own grid; the rest is balanced without it."""
    g = community.graph
    big_block = int(np.argmax(np.bincount(community.block, weights=g.area)))
    inside = np.nonzero(community.block == big_block)[0]
    at = g.xy[inside[np.argmax(g.households[inside])]]
    pins = pin_special(community, at.reshape(1, 2), ["facility:7"])
    assert len(pins) == 1
    idx, refs = pins[0]
    assert refs == ["facility:7"]
    # a big block: the units within the radius of the feature, in its block, one piece
    assert (community.block[idx] == big_block).all()
    assert (np.hypot(*(g.xy[idx] - at).T) <= SPECIAL_RADIUS_M + 1e-9).all()
    region = shapely.union_all(community.geoms[idx], grid_size=0.01)
    assert region.geom_type == "Polygon"
    assert region.intersects(Point(at))
    keep = np.setdiff1d(np.arange(g.n), idx)
    rest = subgraph(community, keep)
    plan = partition(rest, None, Params(seed=2))
    assert plan.k == choose_k(float(g.households[keep].sum()), TARGET)
    sums = np.bincount(plan.labels, weights=rest.households)
    assert (np.abs(sums - TARGET) <= TOL * TARGET).all(), sums
    assert (plan.pieces == 1).all()


def test_two_features_of_one_compound_share_one_grid(community: CommunityUnits) -> None:
    """Features whose regions overlap make one special grid naming both."""
    g = community.graph
    u = int(np.argmax(g.households))
    p = g.xy[u]
    pins = pin_special(community, np.array([p, p + 5.0]), ["facility:1", "enterprise:2"])
    assert len(pins) == 1
    assert pins[0][1] == ["facility:1", "enterprise:2"]
    # a small block (a compound) is taken whole
    areas = np.bincount(community.block, weights=g.area)
    small = int(np.argmin(np.where(areas > 100, areas, np.inf)))
    cell = np.nonzero(community.block == small)[0][0]
    ((idx, _),) = pin_special(community, g.xy[cell].reshape(1, 2), ["facility:3"])
    assert set(idx.tolist()) == set(np.nonzero(community.block == small)[0].tolist())
