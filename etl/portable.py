"""What the sandboxed child runs: read a file, hand back picklable parts.

Kept apart from ``etl.pipeline`` so a child imports only the readers (preloaded in the
forkserver), not the database layer: that import alone cost ~1 s per parse.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import shapely

from etl.readers import read_file


def read_portable(path: str, **kwargs: Any) -> dict[str, Any]:
    """Read ``path``; geometry as WKB and CRS as WKT so the parts pickle cheaply."""
    table = read_file(Path(path), **kwargs)
    return {
        "frame": table.frame,
        "wkb": None if table.geometry is None else pack_wkb(table.geometry),
        "crs": None if table.crs is None else table.crs.to_wkt(),
        "encoding": table.encoding,
        "layer": table.layer,
        "rows": table.source_rows,
        "fmt": table.fmt,
        "notes": table.notes,
    }


def pack_wkb(geoms: Any) -> tuple[bytes, Any]:
    """Geometries as one WKB blob plus end offsets: pickles as a single buffer.

    A million separate ``bytes`` objects cost seconds to pickle across the pipe; one blob
    is a memcpy. Missing geometries have zero length.
    """
    wkbs = shapely.to_wkb(geoms)
    lengths = np.fromiter(
        (0 if w is None else len(w) for w in wkbs), dtype=np.int64, count=len(wkbs)
    )
    return b"".join(w for w in wkbs if w is not None), np.cumsum(lengths)


def unpack_wkb(packed: tuple[bytes, Any]) -> Any:
    """Inverse of :func:`pack_wkb`: an object array of geometries (None where missing)."""
    blob, ends = packed
    view = memoryview(blob)
    starts = np.concatenate(([0], ends[:-1]))
    parts = np.array(
        [None if s == e else bytes(view[s:e]) for s, e in zip(starts, ends, strict=True)],
        dtype=object,
    )
    return shapely.from_wkb(parts)
