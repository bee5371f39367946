"""What the sandboxed child runs: read a file, hand back parts that pickle cheaply.

Kept apart from ``etl.pipeline`` so a child imports only the readers (preloaded in the
forkserver), not the database layer: that import alone cost ~1 s per parse.

A million Python ``str`` or ``bytes`` objects take seconds to pickle across the pipe, so
text columns and the WKB travel as Arrow arrays (a few contiguous buffers each) and are
turned back into the readers' object arrays on the other side.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from pyproj import CRS

from etl.coords import stored_as_read
from etl.model import SourceTable
from etl.readers import read_file
from etl.readers.vector import WKB_SINK
from etl.wkb import round_wkb

#: ``read_portable``'s ``wkb`` when the WKB went to ``emit`` batch by batch.
STREAMED = "streamed"


def read_portable(
    path: str,
    *,
    emit: Callable[[tuple[str, Any]], None] | None = None,
    round_to: int | None = None,
    user_crs: str | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Read ``path``; columns and WKB as Arrow where that is faithful, CRS as WKT.

    ``emit``: a vector file's ``("crs", wkt)`` and then its WKB, ``("wkb", array)`` per batch
    of GDAL's, as they are read (``etl.readers.vector.WKB_SINK``); ``wkb`` is then
    :data:`STREAMED` if anything was emitted. With ``round_to``, when the file's numbers will
    be stored as read (:func:`etl.coords.stored_as_read` of its CRS and ``user_crs``, the
    ``--crs`` option), each batch is rounded here first and sent as
    ``("rounded", (array, done))`` (:func:`etl.wkb.round_wkb`): this process waits for the
    parent's parse of the previous batch anyway, and the rounding was a third of that parse.
    """
    emitted: list[str] = []
    rounding = False

    def sink(kind: str, value: Any) -> None:
        nonlocal rounding
        emitted.append(kind)
        assert emit is not None
        if kind == "crs":
            crs = None if value is None else CRS.from_wkt(value)
            rounding = round_to is not None and stored_as_read(crs, user_crs)
        elif rounding:
            assert round_to is not None
            emit(("rounded", round_wkb(value, round_to)))
            return
        emit((kind, value))

    token = WKB_SINK.set(None if emit is None else sink)
    try:
        table = read_file(Path(path), parse_geometry=False, **kwargs)
    finally:
        WKB_SINK.reset(token)
    return {
        "columns": {str(name): pack_column(table.frame[name]) for name in table.frame.columns},
        "wkb": STREAMED if "wkb" in emitted else _wkb(table),
        "crs": None if table.crs is None else table.crs.to_wkt(),
        "encoding": table.encoding,
        "layer": table.layer,
        "rows": table.source_rows,
        "fmt": table.fmt,
        "notes": table.notes,
    }


def _wkb(table: SourceTable) -> Any:
    """The WKB as an Arrow array: the reader's own when it kept GDAL's."""
    if table.wkb_arrow is not None:
        return table.wkb_arrow
    return None if table.wkb is None else pa.array(table.wkb, type=pa.large_binary())


def pack_column(column: pd.Series[Any]) -> Any:
    """A column of only text and None as an Arrow string array; anything else as it is.

    Numeric columns already pickle as one buffer; mixed object columns (ledger cells with
    numbers, dates and text) keep their Python values exactly.
    """
    if isinstance(column.dtype, pd.ArrowDtype) and pa.types.is_large_string(
        column.dtype.pyarrow_dtype
    ):
        return pa.array(column)  # text the reader kept as Arrow (``keep_text``)
    if column.dtype != object:
        return column
    try:
        packed = pa.array(column.to_numpy(), type=pa.large_string(), from_pandas=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return column
    return packed


def unpack_column(packed: Any) -> pd.Series[Any]:
    """Inverse of :func:`pack_column`, text left in Arrow (``SourceTable.frame``).

    Turning a million cells into Python ``str`` cost 0.1 s per column here, on the import's
    critical path; the column mapping factorises the Arrow array instead and makes a
    ``str`` per distinct value only.
    """
    if isinstance(packed, pd.Series):
        return packed
    return pd.Series(pd.arrays.ArrowExtensionArray(packed))


def unpack_frame(columns: dict[str, Any], rows: int) -> pd.DataFrame:
    """The reader's frame from :func:`read_portable`'s ``columns``.

    ``rows`` long even when the file has geometry and no attribute columns.
    """
    return pd.DataFrame(
        {name: unpack_column(packed) for name, packed in columns.items()},
        columns=list(columns),
        index=pd.RangeIndex(rows),
    )


def unpack_wkb(packed: Any) -> Any:
    """The WKB values as an object array of bytes (None where missing)."""
    return np.asarray(packed.to_numpy(zero_copy_only=False), dtype=object)
