"""The values that flow through an import: what a reader produced, what went wrong where.

read (``etl.readers``) → SourceTable → map columns (``etl.mapping``) → coordinates
(``etl.coords``) → validate → load (``etl.load``). Each stage adds ``RowProblem``s and
``notes``; the report shows them with the file's own row numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from pyproj import CRS

from gis_service.errors import InvalidInput


@dataclass
class RowProblem:
    """One rejected (or repaired) row: the file's row number, the column, and why."""

    row: int
    reason: str
    reason_zh: str
    column: str | None = None
    #: True when the row was kept after a repair (e.g. make_valid); False when rejected.
    repaired: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form for reports."""
        return {
            "row": self.row,
            "column": self.column,
            "reason": self.reason,
            "reason_zh": self.reason_zh,
            "repaired": self.repaired,
        }


@dataclass
class SourceTable:
    """What a reader produced from one file (one layer or sheet).

    Attributes:
        frame: the attribute columns with the file's own header names (str), text already
            decoded; one row per feature or data row, in file order. Text is Python ``str``
            (object dtype), or Arrow-backed after a sandboxed read (``etl.portable``): read
            cells through :meth:`cells`, or factorise the Arrow array as
            ``etl.mapping.convert`` does.
        geometry: shapely geometries (object array, same length as ``frame``) in the
            source CRS, ``None`` entries for rows without geometry; ``None`` for tables with
            no geometry column at all (CSV/XLSX ledgers with coordinate columns).
        crs: the CRS the file declares (.prj, GeoPackage, GeoJSON ``crs``), or None.
        encoding: the text encoding used (Shapefile/CSV), None for Unicode-only formats.
        layer: the GeoPackage layer or Excel sheet read, when there was a choice.
        source_rows: 1-based row numbers as a person sees them in the file (data row for
            vector formats, physical line/row for CSV/XLSX), same length as ``frame``.
        notes: decisions the reader took, for the report (encoding source, header row …).
        fmt: short format name: ``shp``, ``gpkg``, ``geojson``, ``csv``, ``xlsx``.
        wkb: the geometries as the file's WKB (object array of bytes, None where missing),
            for vector formats; what crosses the process boundary instead of ``geometry``.
        wkb_arrow: the same WKB as the Arrow array GDAL returned, set instead of ``wkb``
            when a vector file is read without parsing (in the sandboxed child): it crosses
            the process boundary as a few buffers without a million ``bytes`` made first.
        rounded: per row, whether ``wkb`` and ``geometry`` already carry the stored
            precision (rounded in the WKB before parsing, ``etl.wkb``); None: not rounded.
        valid: per row, GEOS ``is_valid`` of ``geometry`` as read (False where missing),
            when the read already tested it (rounded reads); None: not tested.
    """

    frame: pd.DataFrame
    geometry: np.ndarray[Any, np.dtype[np.object_]] | None
    crs: CRS | None
    encoding: str | None
    layer: str | None
    source_rows: np.ndarray[Any, np.dtype[np.int64]]
    fmt: str
    notes: list[str] = field(default_factory=list)
    wkb: np.ndarray[Any, np.dtype[np.object_]] | None = None
    wkb_arrow: Any = None
    rounded: np.ndarray[Any, np.dtype[np.bool_]] | None = None
    valid: np.ndarray[Any, np.dtype[np.bool_]] | None = None

    def __len__(self) -> int:
        return len(self.frame)

    def cells(self, header: str) -> list[Any]:
        """One column's cells as Python values, None where missing (whatever the backing)."""
        column = self.frame[header]
        if isinstance(column.dtype, pd.ArrowDtype):
            return list(pa.array(column).to_pylist())
        return list(column.tolist())


class FileRejected(InvalidInput):
    """The whole file is refused (corrupt, hostile, missing parts, ambiguous choice).

    The message names the file part or the choice to make (e.g. "missing .shx", "layers:
    a, b — pass --layer").
    """

    def __init__(self, detail: str, detail_zh: str, code: str = "file_rejected") -> None:
        super().__init__(detail=detail, detail_zh=detail_zh, code=code)
