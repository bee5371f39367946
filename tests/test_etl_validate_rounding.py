"""Rounding reuses the vertices the coordinate checks read: same answer as reading again."""

from __future__ import annotations

import numpy as np
import shapely

from etl.coords import validate


def test_rounding_after_rows_were_dropped_matches_rounding_each_geometry() -> None:
    """Rows rejected between the coordinate read and the rounding (a line in a polygon
    layer, NaN, outside China) leave the others rounded exactly as np.round would."""
    rng = np.random.default_rng(7)
    geoms: list[object] = []
    for i in range(40):
        x, y = 113.0 + rng.random() * 0.5, 27.5 + rng.random() * 0.5
        d = 1e-4 * (1 + rng.random())
        if i % 7 == 3:
            geoms.append(shapely.LineString([(x, y), (x + d, y + d)]))  # wrong dimension
        elif i % 11 == 5:
            geoms.append(shapely.Polygon([(x, y), (x + d, y), (np.nan, y + d)]))
        elif i % 13 == 6:
            geoms.append(shapely.box(x - 60, y, x - 60 + d, y + d))  # outside China
        else:
            geoms.append(shapely.box(x, y, x + d, y + d * 1.37))
    arr = np.asarray(geoms, dtype=object)
    out, ok, problems, _ = validate(arr, np.arange(1, 41), expect="polygon")
    rejected = {p.row - 1 for p in problems if not p.repaired}
    assert rejected == {i for i in range(40) if i % 7 == 3 or i % 11 == 5 or i % 13 == 6}
    assert set(np.flatnonzero(~ok).tolist()) == rejected
    for i in np.flatnonzero(ok):
        want = np.round(shapely.get_coordinates(arr[i]), 7)
        assert np.array_equal(shapely.get_coordinates(out[i]), want), i
