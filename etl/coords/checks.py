"""Row-by-row geometry checks after conversion to storage (CGCS2000 lon/lat).

Everything a file can contain that PostGIS would accept but later breaks tiles, areas or
point-in-grid tests is caught here (BAD_INPUTS D1–D9): missing, empty, NaN/Inf, out-of-range
and swapped coordinates, points outside China, Z/M values, GeometryCollections, the wrong
dimension for the layer, invalid rings, and huge geometries. Checks are vectorised over the
whole array; only the rare rows needing repair are handled one by one.
"""

from __future__ import annotations

import operator
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

from etl import parallel
from etl.model import RowProblem
from gis_service.crs import out_of_china

__all__ = ["MAX_VERTICES", "validate"]

GeomArray = npt.NDArray[np.object_]
BoolArray = npt.NDArray[np.bool_]
Expect = Literal["point", "line", "polygon"]

#: Largest geometry accepted (vertices); bigger ones would stall tiles and queries (D6).
MAX_VERTICES = 1_000_000
#: Stored coordinates are rounded to this many decimals of a degree (1e-7° ≈ 1 cm, D6).
DECIMALS = 7

_DIMENSION: dict[str, int] = {"point": 0, "line": 1, "polygon": 2}
_NAMES = ("point", "line", "polygon")
_NAMES_ZH = ("点", "线", "面")
_GC_TYPE_ID = 7
_MULTI_TYPE_IDS = (4, 5, 6, 7)

try:  # method="structure" needs shapely >= 2.1 with GEOS >= 3.10
    shapely.make_valid(shapely.Point(0, 0), method="structure")
    _MAKE_VALID_KW: dict[str, Any] = {"method": "structure", "keep_collapsed": False}
except (TypeError, ValueError, shapely.errors.GEOSException):
    _MAKE_VALID_KW = {}


class _Report:
    """Collects the first problem of each row and keeps the ``ok`` mask in step."""

    def __init__(self, rows: npt.NDArray[Any], ok: BoolArray) -> None:
        self.rows = rows
        self.ok = ok
        self.problems: list[tuple[int, RowProblem]] = []

    def reject(self, mask: BoolArray, reason: str, reason_zh: str) -> None:
        hit = np.flatnonzero(mask & self.ok)
        self.ok[hit] = False
        for i in hit:
            self.problems.append((int(i), RowProblem(int(self.rows[i]), reason, reason_zh)))

    def reject_one(self, i: int, reason: str, reason_zh: str) -> None:
        self.ok[i] = False
        self.problems.append((i, RowProblem(int(self.rows[i]), reason, reason_zh)))

    def repaired(self, i: int, reason: str, reason_zh: str) -> None:
        problem = RowProblem(int(self.rows[i]), reason, reason_zh, repaired=True)
        self.problems.append((i, problem))

    def sorted_problems(self) -> list[RowProblem]:
        return [p for _, p in sorted(self.problems, key=lambda item: item[0])]


def validate(
    geoms: npt.NDArray[Any],
    rows: npt.NDArray[Any],
    *,
    expect: str | None,
    allow_missing: bool = False,
    known_bad: npt.NDArray[np.bool_] | None = None,
    rounded: npt.NDArray[np.bool_] | None = None,
    vertices: _Read | None = None,
    valid: npt.NDArray[np.bool_] | None = None,
) -> tuple[GeomArray, BoolArray, list[RowProblem], list[str]]:
    """Check and normalise converted geometries; report each rejected or repaired row.

    In order: missing (unless ``allow_missing``) and empty geometries; more than
    :data:`MAX_VERTICES` vertices; GeometryCollections (turned into the Multi* type of the
    layer when all parts have its dimension, else rejected, since vector tiles cannot carry
    them); Z/M dropped (one note with the count); coordinates NaN/Inf, (0, 0) "Null Island",
    latitude/longitude swapped (the swapped point would be in China), outside the lon/lat
    range, outside China (the GCJ-02 rectangle of :func:`gis_service.crs.out_of_china`); a
    dimension other than ``expect``; then coordinates are rounded to 1e-7° and invalid
    geometries are repaired with ``make_valid`` (``method="structure"`` when available),
    keeping only parts of the layer's dimension and reported with ``repaired=True``.
    Multi-part geometries are kept as they are.

    Args:
        geoms: Object array of shapely geometries in CGCS2000 lon/lat (None allowed).
        rows: The file's row numbers, same length, used in the problems.
        expect: ``"point"``, ``"line"``, ``"polygon"`` or None (any dimension).
        allow_missing: Accept None geometries (nullable geometry columns) without a problem.
        known_bad: Rows already rejected upstream (e.g. unreadable coordinate cells): they
            come back not ok without a second problem.
        rounded: Rows whose coordinates were already rounded (in their WKB, ``etl.wkb``):
            not read and rebuilt again.
        vertices: ``(rows, coordinates, owners)`` of ``geoms[rows]`` as read before (for
            CRS detection), reused unless a collection or Z/M changes a geometry first.
        valid: ``is_valid`` of each of ``geoms`` as given, tested before (the read): used
            for the geometries no earlier step replaced.

    Returns:
        ``(geometries, ok, problems, notes)``: the normalised geometries (rows that are not
        ok are returned unchanged and must not be loaded), the boolean mask of rows to load,
        the problems sorted by position, and notes for the report.

    Raises:
        ValueError: If ``expect`` is not one of the names above.
    """
    if expect is not None and expect not in _DIMENSION:
        msg = f"expect must be 'point', 'line', 'polygon' or None, not {expect!r}"
        raise ValueError(msg)
    given: GeomArray = np.asarray(geoms, dtype=object)
    arr: GeomArray = given.copy()
    row_numbers = np.asarray(rows)
    ok = np.ones(len(arr), dtype=bool)
    if known_bad is not None:
        ok &= ~np.asarray(known_bad, dtype=bool)
    report = _Report(row_numbers, ok)
    notes: list[str] = []
    dim = None if expect is None else _DIMENSION[expect]

    missing = shapely.is_missing(arr)
    if not allow_missing:
        report.reject(missing, "missing geometry", "缺少几何")
    present = ~missing
    report.reject(present & _safe(shapely.is_empty, arr, present), "empty geometry", "空几何")

    active = _active(ok, present)
    counts = np.zeros(len(arr), dtype=np.int64)
    counts[active] = shapely.get_num_coordinates(arr[active])
    report.reject(
        counts > MAX_VERTICES,
        f"too many vertices (more than {MAX_VERTICES:,}); simplify or split the geometry",
        f"顶点过多（超过 {MAX_VERTICES:,} 个）；请简化或拆分",
    )

    exploded = _explode_collections(arr, _active(ok, present), dim, report)
    zm = _drop_zm(arr, _active(ok, present))
    notes += zm
    if exploded or zm:
        vertices = None  # some geometries were replaced since
    read = _check_coordinates(arr, _active(ok, present), report, vertices)
    if dim is not None:
        _check_dimension(arr, _active(ok, present), dim, report)

    active = _active(ok, present)
    if rounded is not None:
        active = active[~np.asarray(rounded, dtype=bool)[active]]
    if len(active):
        _round_coordinates(arr, active, read)
    active = _active(ok, present)
    if len(active):
        known = None if valid is None else (given, np.asarray(valid, dtype=bool))
        _repair(arr, _active(ok, present), dim, report, known)
    return arr, ok, report.sorted_problems(), notes


def _active(ok: BoolArray, present: BoolArray) -> npt.NDArray[np.intp]:
    return np.flatnonzero(ok & present)


def _safe(func: Any, arr: GeomArray, mask: BoolArray) -> BoolArray:
    out = np.zeros(len(arr), dtype=bool)
    out[mask] = func(arr[mask])
    return out


def _round(coords: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    out: npt.NDArray[np.float64] = np.round(coords, DECIMALS)
    return out


#: Rows, and their vertices with owners, as :func:`_check_coordinates` read them.
_Read = tuple[npt.NDArray[np.intp], npt.NDArray[np.float64], npt.NDArray[np.intp]]


def _vertices_of(
    arr: GeomArray, idx: npt.NDArray[np.intp], read: _Read | None
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.intp]]:
    """Vertices of ``arr[idx]`` with owners (positions in ``idx``).

    Taken from ``read`` when it covers ``idx`` (geometries unchanged since it was made),
    else read now.
    """
    if read is not None and len(read[0]):
        seen, all_coords, all_owner = read
        if len(seen) == len(idx) and (seen == idx).all():
            return all_coords, all_owner
        at = np.minimum(np.searchsorted(seen, idx), len(seen) - 1)
        if not (seen[at] != idx).any():
            kept = np.zeros(len(seen), dtype=bool)
            kept[at] = True
            vertex = kept[all_owner]
            return all_coords[vertex], (np.cumsum(kept) - 1)[all_owner[vertex]]
    return parallel.coordinates(arr[idx])


def _round_coordinates(
    arr: GeomArray, idx: npt.NDArray[np.intp], read: _Read | None = None
) -> None:
    """Round to :data:`DECIMALS`, rebuilding only the geometries that change (D6).

    ``read``: the vertices :func:`_check_coordinates` read for a superset of ``idx`` with
    the geometries unchanged since (the checks in between only drop rows), so a million
    buildings are not read a second time.
    """
    coords, owner = _vertices_of(arr, idx, read)
    rounded = _round(coords)
    moved = np.zeros(len(idx), dtype=bool)
    moved[owner[(rounded != coords).any(axis=1)]] = True
    changed = idx[moved]
    if len(changed):
        # ``owner`` ascends, so the rows of the changed geometries are their coordinates in
        # order: set them directly (``shapely.transform`` would read them all again).
        counts = np.bincount(owner, minlength=len(idx))[moved]
        arr[changed] = parallel.set_coordinates(arr[changed], rounded[moved[owner]], counts)


def _flat_parts(geom: BaseGeometry) -> GeomArray:
    """All single parts of a (possibly nested) multi geometry or collection."""
    parts: GeomArray = np.asarray([geom], dtype=object)
    while np.isin(shapely.get_type_id(parts), _MULTI_TYPE_IDS).any():
        parts = np.asarray(shapely.get_parts(parts), dtype=object)
    return parts


def _combine(parts: GeomArray, dim: int) -> BaseGeometry:
    if len(parts) == 1:
        single: BaseGeometry = parts[0]
        return single
    build = (shapely.multipoints, shapely.multilinestrings, shapely.multipolygons)[dim]
    combined: BaseGeometry = build(parts)
    return combined


def _explode_collections(
    arr: GeomArray, idx: npt.NDArray[np.intp], dim: int | None, report: _Report
) -> int:
    """Turn GeometryCollections into the layer's Multi* type, or reject them; how many."""
    if not len(idx):
        return 0
    collections = idx[shapely.get_type_id(arr[idx]) == _GC_TYPE_ID]
    for i in collections:
        parts = _flat_parts(arr[i])
        parts = parts[~shapely.is_empty(parts)]
        dims = set(shapely.get_dimensions(parts).tolist())
        wanted = dim if dim is not None else (next(iter(dims)) if len(dims) == 1 else None)
        if wanted is None or dims != {wanted}:
            kinds = ", ".join(_NAMES[d] + "s" for d in sorted(dims))
            kinds_zh = "、".join(_NAMES_ZH[d] for d in sorted(dims))
            layer = "" if dim is None else f" in a {_NAMES[dim]} layer"
            layer_zh = "" if dim is None else f"（{_NAMES_ZH[dim]}图层）"
            report.reject_one(
                int(i),
                f"GeometryCollection of {kinds}{layer}: split it into separate features",
                f"几何集合包含{kinds_zh}{layer_zh}：请拆分为单独的要素",
            )
            continue
        combined = _combine(parts, wanted)
        arr[i] = combined
        report.repaired(
            int(i),
            f"GeometryCollection converted to {combined.geom_type}",
            f"几何集合已转换为 {combined.geom_type}",
        )
    return len(collections)


def _drop_zm(arr: GeomArray, idx: npt.NDArray[np.intp]) -> list[str]:
    """Force 2D (storage is 2D; M has no meaning here) and say how many were touched."""
    if not len(idx):
        return []
    sub = arr[idx]
    has = shapely.has_z(sub)
    has_m = getattr(shapely, "has_m", None)
    if has_m is not None:
        has |= has_m(sub)
    count = int(has.sum())
    if not count:
        return []
    touched = idx[has]
    arr[touched] = shapely.force_2d(arr[touched])
    noun = "geometry" if count == 1 else "geometries"
    return [f"dropped Z/M values from {count} {noun} (stored in 2D)"]


def _check_coordinates(
    arr: GeomArray, idx: npt.NDArray[np.intp], report: _Report, vertices: _Read | None = None
) -> _Read | None:
    """Reject rows with non-finite, swapped, out-of-range or outside-China coordinates.

    A geometry whose vertices are all finite and whose bounding box lies inside the China
    rectangle passes every test below, so only the others are checked vertex by vertex
    (on a million buildings: 0.5 s instead of 1.4 s). Returns what it read, for rounding.
    """
    if not len(idx):
        return None
    sub = arr[idx]
    coords, owner = _vertices_of(arr, idx, vertices)
    not_finite = ~(np.isfinite(coords[:, 0]) & np.isfinite(coords[:, 1]))  # not .all(axis=1): 6x
    finite = np.bincount(owner, weights=not_finite.astype(np.float64), minlength=len(idx)) == 0
    box = parallel.split_map(shapely.bounds, sub)
    inside = finite & ~out_of_china(box[:, 0], box[:, 1]) & ~out_of_china(box[:, 2], box[:, 3])
    _check_vertices(arr, idx[~inside], report)
    return idx, coords, owner


def _check_vertices(arr: GeomArray, idx: npt.NDArray[np.intp], report: _Report) -> None:
    """The vertex-by-vertex tests of :func:`_check_coordinates`."""
    if not len(idx):
        return
    coords, owner = shapely.get_coordinates(arr[idx], return_index=True)
    n = len(idx)
    x, y = coords[:, 0], coords[:, 1]
    finite = np.isfinite(x) & np.isfinite(y)
    xs, ys = np.where(finite, x, 0.0), np.where(finite, y, 0.0)
    outside = out_of_china(xs, ys)
    swapped_inside = ~out_of_china(ys, xs)

    total = np.bincount(owner, minlength=n)

    def any_vertex(mask: BoolArray) -> BoolArray:
        hits: BoolArray = np.bincount(owner, weights=mask.astype(np.float64), minlength=n) > 0
        return hits

    def all_vertices(mask: BoolArray) -> BoolArray:
        hits: BoolArray = np.bincount(owner, weights=mask.astype(np.float64), minlength=n) == total
        return hits

    def full(mask: BoolArray) -> BoolArray:
        out = np.zeros(len(arr), dtype=bool)
        out[idx] = mask
        return out

    report.reject(
        full(any_vertex(~finite)),
        "coordinates are not finite numbers (NaN or Inf)",
        "坐标不是有限数值（NaN 或 Inf）",
    )
    report.reject(
        full(any_vertex(finite & (x == 0.0) & (y == 0.0))),
        "coordinates (0, 0) ('Null Island'): a missing position written as zeros",
        "坐标为 (0, 0)：缺失的位置被写成了 0",
    )
    report.reject(
        full(any_vertex(outside) & all_vertices(swapped_inside)),
        "latitude/longitude swapped? (the point is in China with x and y exchanged)",
        "经纬度颠倒？（交换 X、Y 后位于中国境内）",
    )
    report.reject(
        full(any_vertex((np.abs(xs) > 180.0) | (np.abs(ys) > 90.0))),
        "longitude/latitude out of range (|lon| ≤ 180, |lat| ≤ 90); wrong CRS?",
        "经纬度超出范围（经度 ±180、纬度 ±90）；坐标系是否有误？",
    )
    report.reject(
        full(any_vertex(outside)),
        "outside China (about 72–138°E, 1–56°N)",
        "位于中国范围之外（约东经 72–138°、北纬 1–56°）",
    )


def _check_dimension(arr: GeomArray, idx: npt.NDArray[np.intp], dim: int, report: _Report) -> None:
    if not len(idx):
        return
    dims = shapely.get_dimensions(arr[idx])
    for d in range(3):
        if d == dim:
            continue
        mask = np.zeros(len(arr), dtype=bool)
        mask[idx[dims == d]] = True
        report.reject(
            mask,
            f"a {_NAMES[d]} in a {_NAMES[dim]} layer",
            f"{_NAMES_ZH[dim]}图层中出现{_NAMES_ZH[d]}",
        )


_IS = np.frompyfunc(operator.is_, 2, 1)


def same_objects(a: GeomArray, b: GeomArray) -> BoolArray:
    """Per row, whether ``a`` and ``b`` hold the very same object (a step left it alone)."""
    return np.asarray(_IS(a, b), dtype=bool)


def _validity(geoms: GeomArray, known: tuple[GeomArray, BoolArray] | None) -> BoolArray:
    """``is_valid`` of ``geoms``.

    Taken from ``known`` (tested objects, their answers) for the geometries that are those
    very objects; tested here for the others.
    """
    if known is None:
        return np.asarray(parallel.split_map(shapely.is_valid, geoms), dtype=bool)
    tested, answers = known
    same = same_objects(geoms, tested)
    out = np.zeros(len(geoms), dtype=bool)
    out[same] = answers[same]
    if not same.all():
        out[~same] = parallel.split_map(shapely.is_valid, geoms[~same])
    return out


def _keep_dimension(geom: BaseGeometry, dim: int) -> BaseGeometry | None:
    """The parts of ``geom`` with dimension ``dim`` (make_valid may add lower-dimension bits)."""
    parts = _flat_parts(geom)
    parts = parts[(shapely.get_dimensions(parts) == dim) & ~shapely.is_empty(parts)]
    if not len(parts):
        return None
    return _combine(parts, dim)


def _repair(
    arr: GeomArray,
    idx: npt.NDArray[np.intp],
    dim: int | None,
    report: _Report,
    known: tuple[GeomArray, BoolArray] | None = None,
) -> None:
    """Repair invalid geometries (after rounding, so what is stored is valid).

    ``known``: geometries tested before and their ``is_valid``; a row still holding that
    very object needs no second test.
    """
    if not len(idx):
        return
    invalid = idx[~_validity(arr[idx], None if known is None else (known[0][idx], known[1][idx]))]
    for i in invalid:
        before: BaseGeometry = arr[i]
        why = str(shapely.is_valid_reason(before))
        fixed: BaseGeometry | None = shapely.make_valid(before, **_MAKE_VALID_KW)
        want = dim if dim is not None else int(shapely.get_dimensions(before))
        if fixed is not None:
            fixed = _keep_dimension(fixed, want)
        if fixed is not None:
            snapped = shapely.set_precision(fixed, 10.0**-DECIMALS)
            if shapely.is_valid(snapped) and not shapely.is_empty(snapped):
                fixed = _keep_dimension(snapped, want)
        if fixed is None or shapely.is_empty(fixed) or not shapely.is_valid(fixed):
            report.reject_one(
                int(i),
                f"invalid geometry that cannot be repaired ({why})",
                f"几何无效且无法修复（{why}）",
            )
            continue
        arr[i] = fixed
        report.repaired(
            int(i), f"invalid geometry repaired ({why})", f"几何无效，已自动修复（{why}）"
        )
