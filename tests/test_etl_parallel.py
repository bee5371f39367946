"""The threaded GEOS helpers give exactly the one-call answers (order, owners, rewrites)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import shapely

from etl import parallel


@pytest.fixture
def geoms(monkeypatch: pytest.MonkeyPatch) -> np.ndarray[Any, Any]:
    """Polygons, lines, points, an empty geometry and None, split into several slices."""
    monkeypatch.setattr(parallel, "MIN_SPLIT", 7)
    monkeypatch.setattr(parallel.os, "cpu_count", lambda: 4)
    rng = np.random.default_rng(3)
    out: list[Any] = []
    for i in range(61):
        x, y = 112 + rng.random(), 27 + rng.random()
        kind = i % 5
        if kind == 0:
            out.append(shapely.box(x, y, x + 1e-4 * (1 + i % 3), y + 1e-4).buffer(1e-5 * (i % 2)))
        elif kind == 1:
            out.append(shapely.LineString([(x, y), (x + 1e-3, y), (x, y + 2e-3)]))
        elif kind == 2:
            out.append(shapely.Point(x, y))
        elif kind == 3:
            out.append(shapely.Polygon([(x, y), (x + 1, y + 1), (x + 1, y), (x, y + 1)]))  # bow tie
        else:
            out.append(None if i % 2 else shapely.Polygon())
    return np.array(out, dtype=object)


def test_split_map_equals_one_call(geoms: np.ndarray[Any, Any]) -> None:
    assert len(parallel._bounds(len(geoms))) == 4
    assert (parallel.split_map(shapely.is_valid, geoms) == shapely.is_valid(geoms)).all()
    np.testing.assert_array_equal(parallel.split_map(shapely.bounds, geoms), shapely.bounds(geoms))
    wkb = shapely.to_wkb(geoms)
    back = parallel.split_map(lambda w: shapely.from_wkb(w, on_invalid="ignore"), wkb)
    assert shapely.equals_exact(back[geoms != None], geoms[geoms != None], 0).all()  # noqa: E711
    assert (back[geoms == None] == None).all()  # noqa: E711


def test_coordinates_and_rewrite_equal_one_call(geoms: np.ndarray[Any, Any]) -> None:
    xy, owner = parallel.coordinates(geoms)
    want_xy, want_owner = shapely.get_coordinates(geoms, return_index=True)
    np.testing.assert_array_equal(xy, want_xy)
    np.testing.assert_array_equal(owner, want_owner)
    present = np.flatnonzero(~shapely.is_missing(geoms))
    sub = geoms[present]
    sub_xy, sub_owner = shapely.get_coordinates(sub, return_index=True)
    counts = np.bincount(sub_owner, minlength=len(sub))
    moved = np.round(sub_xy + 0.5, 3)
    got = parallel.set_coordinates(sub, moved, counts)
    want = shapely.set_coordinates(np.array(sub, dtype=object), moved)
    assert shapely.equals_exact(got, want, 0).all()
    assert sub[0] is geoms[present[0]]  # the input is left as it was
    assert not shapely.equals_exact(sub[0], got[0], 0)
