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


def test_validity_tested_by_the_read_is_used_only_for_untouched_geometries() -> None:
    """The read's ``is_valid`` answers (``SourceTable.valid``) stand for the geometries no
    check replaced: the same repairs and problems as testing again, and a geometry the Z
    drop replaced is tested anew, whatever the read said of the one it replaced."""
    bowtie = shapely.Polygon([(113.0, 27.5), (113.001, 27.501), (113.001, 27.5), (113.0, 27.501)])
    bowtie_z = shapely.Polygon(
        [(113.1, 27.5, 5), (113.101, 27.501, 5), (113.101, 27.5, 5), (113.1, 27.501, 5)]
    )
    square_z = shapely.box(113.2, 27.5, 113.201, 27.501)
    square_z = shapely.force_3d(square_z, 7.0)
    geoms = np.asarray(
        [shapely.box(113.3, 27.5, 113.301, 27.501), bowtie, bowtie_z, square_z, None],
        dtype=object,
    )
    rows = np.arange(1, 6)
    plain = validate(geoms, rows, expect="polygon", allow_missing=True)
    read = np.asarray(shapely.is_valid(geoms), dtype=bool)
    reused = validate(geoms, rows, expect="polygon", allow_missing=True, valid=read)
    assert [p.as_dict() for p in reused[2]] == [p.as_dict() for p in plain[2]]
    assert reused[1].tolist() == plain[1].tolist()
    assert all(
        (a is None and b is None) or shapely.equals_exact(a, b, 0)
        for a, b in zip(reused[0], plain[0], strict=True)
    )
    assert {p.row for p in plain[2] if p.repaired} == {2, 3}  # both bow ties repaired
    # Told "valid" for every row: the untouched bow tie is trusted (not tested again), the
    # Z bow tie was replaced by its 2D copy before the test, so it is still repaired.
    told = validate(geoms, rows, expect="polygon", allow_missing=True, valid=np.ones(5, bool))
    assert {p.row for p in told[2] if p.repaired} == {3}
    assert told[0][1] is geoms[1]
