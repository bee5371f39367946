"""Coordinates on import and export: choose the CRS, read cells, convert, validate.

Storage is CGCS2000 lon/lat (EPSG:4490, x = longitude). The pipeline calls, in order:
:func:`points_from_columns` (spreadsheets) → :func:`resolve_crs` → :func:`to_storage` →
:func:`validate`; exports call :func:`from_storage`. Importing this package sets
``PROJ_NETWORK=OFF`` unless the operator set it, so no CRS can trigger a download.
"""

from etl.coords.cells import parse_coordinate, points_from_columns
from etl.coords.checks import DECIMALS, MAX_VERTICES, same_objects, validate
from etl.coords.choice import (
    STORAGE_EPSG,
    CrsChoice,
    CrsKind,
    SourceCrs,
    choice_from_crs,
    choice_from_epsg,
    is_lonlat_identity,
    parse_crs_option,
    pyproj_crs,
)
from etl.coords.detect import resolve_crs, stored_as_read
from etl.coords.reproject import from_storage, to_storage

__all__ = [
    "DECIMALS",
    "MAX_VERTICES",
    "STORAGE_EPSG",
    "CrsChoice",
    "CrsKind",
    "SourceCrs",
    "choice_from_crs",
    "choice_from_epsg",
    "from_storage",
    "is_lonlat_identity",
    "parse_coordinate",
    "parse_crs_option",
    "points_from_columns",
    "pyproj_crs",
    "resolve_crs",
    "same_objects",
    "stored_as_read",
    "to_storage",
    "validate",
]
