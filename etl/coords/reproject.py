"""Move whole geometry arrays between a file's CRS and storage (CGCS2000 lon/lat).

Every vertex of every geometry goes through one vectorised call (``shapely.transform`` hands
all coordinates to pyproj or to the GCJ-02/BD-09 formulas at once), which is what keeps a
million-row import in seconds. Z values are carried through unchanged so that validation can
count and drop them in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely

from etl.coords.choice import (
    CrsChoice,
    from_lonlat,
    is_lonlat_identity,
    parse_crs_option,
    to_lonlat,
)

__all__ = ["from_storage", "to_storage"]

FloatArray = npt.NDArray[np.float64]
GeomArray = npt.NDArray[np.object_]
_XYFunc = Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]]


def _apply_xy(geoms: npt.NDArray[Any], func: _XYFunc) -> GeomArray:
    """Apply ``func`` to the x/y of every vertex, keeping None entries and any Z as they are."""
    arr: GeomArray = np.asarray(geoms, dtype=object)
    out: GeomArray = arr.copy()
    present = ~shapely.is_missing(arr)
    if not present.any():
        return out

    def _coords(c: FloatArray) -> FloatArray:
        x, y = func(c[:, 0], c[:, 1])
        res = c.copy()
        res[:, 0] = x
        res[:, 1] = y
        return res

    idx = np.flatnonzero(present)
    has_z = shapely.has_z(arr[idx])
    # Transform 2D and 3D geometries separately so neither gains or loses a dimension.
    for with_z in (False, True):
        sel = idx[has_z == with_z]
        if len(sel):
            out[sel] = shapely.transform(arr[sel], _coords, include_z=with_z)
    return out


def to_storage(geoms: npt.NDArray[Any], choice: CrsChoice) -> GeomArray:
    """Convert geometries from ``choice`` to CGCS2000 lon/lat (EPSG:4490, x = longitude).

    CGCS2000 and WGS84 lon/lat are kept as they are (they differ by well under a metre);
    projected systems go through a cached pyproj transformer; GCJ-02 and BD-09 through the
    exact iterative inverses of :mod:`gis_service.crs`, which only apply inside China: points
    outside are left unchanged and are rejected later by :func:`etl.coords.validate`.

    Args:
        geoms: Object array of shapely geometries (None allowed) in the source CRS.
        choice: The source CRS, from :func:`etl.coords.resolve_crs`.

    Returns:
        A new object array of the same length; points PROJ cannot convert get ``inf``
        coordinates, which validation rejects. Coordinates are not rounded here.
    """
    if is_lonlat_identity(choice):
        copied: GeomArray = np.asarray(geoms, dtype=object).copy()
        return copied

    def _forward(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        return to_lonlat(choice, x, y)

    return _apply_xy(geoms, _forward)


def from_storage(geoms: npt.NDArray[Any], target: str) -> tuple[GeomArray, CrsChoice]:
    """Convert stored CGCS2000 lon/lat geometries for export to ``target``.

    Args:
        geoms: Object array of shapely geometries in EPSG:4490 (None allowed).
        target: Same vocabulary as ``--crs``: ``wgs84``, ``cgcs2000``, ``gcj02``, ``bd09`` or
            an EPSG code such as ``EPSG:4547``.

    Returns:
        ``(geometries, choice)``; the choice's ``label`` names the output system for the
        export's metadata, e.g. ``"GCJ-02 (Amap/Tencent display coordinates, not a survey
        CRS)"``.

    Raises:
        FileRejected: If ``target`` is not an accepted CRS (see
            :func:`etl.coords.parse_crs_option`).
    """
    choice = parse_crs_option(target)
    if is_lonlat_identity(choice):
        copied: GeomArray = np.asarray(geoms, dtype=object).copy()
        return copied, choice

    def _backward(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        return from_lonlat(choice, x, y)

    return _apply_xy(geoms, _backward), choice
