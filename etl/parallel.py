"""Element-wise GEOS work on every core: shapely's vectorised functions release the GIL.

A million buildings spend seconds in single calls (WKB parsing, validity, vertex reads and
rewrites) while the read and prepare phases leave the other core idle. These helpers cut
such a call into one contiguous slice per core, run the slices in threads and join the
results in order, so the answer is exactly the one-call answer.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely

#: Below this many geometries one call is cheaper than starting threads.
MIN_SPLIT = 50_000


def _bounds(n: int) -> list[tuple[int, int]]:
    parts = min(os.cpu_count() or 1, max(1, n // MIN_SPLIT))
    edges = np.linspace(0, n, parts + 1).astype(int)
    return list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))


def _run(work: Callable[[int, int], Any], n: int) -> list[Any]:
    spans = _bounds(n)
    if len(spans) == 1:
        return [work(0, n)]
    with ThreadPoolExecutor(len(spans), thread_name_prefix="etl-geos") as pool:
        return list(pool.map(lambda span: work(*span), spans))


def split_spans(work: Callable[[int, int], Any], n: int) -> list[Any]:
    """``work(a, b)`` over contiguous spans covering ``range(n)``, one per core, in order."""
    return _run(work, n)


def split_map(func: Callable[[Any], Any], values: Any) -> Any:
    """``func(values)`` for an element-wise ``func`` (one output row per input), on all cores."""
    pieces = _run(lambda a, b: func(values[a:b]), len(values))
    return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)


def coordinates(
    geoms: npt.NDArray[Any],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.intp]]:
    """``shapely.get_coordinates(geoms, return_index=True)`` on all cores."""

    def work(a: int, b: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.intp]]:
        xy, owner = shapely.get_coordinates(geoms[a:b], return_index=True)
        return xy, owner + a

    pieces = _run(work, len(geoms))
    if len(pieces) == 1:
        xy, owner = pieces[0]
        return xy, owner
    return (
        np.concatenate([p[0] for p in pieces]),
        np.concatenate([p[1] for p in pieces]),
    )


def set_coordinates(
    geoms: npt.NDArray[Any], xy: npt.NDArray[np.float64], counts: npt.NDArray[np.intp]
) -> npt.NDArray[Any]:
    """``shapely.set_coordinates(geoms, xy)`` on all cores; ``counts``: vertices per geometry."""
    starts = np.concatenate([[0], np.cumsum(counts)])

    def work(a: int, b: int) -> npt.NDArray[Any]:
        out: npt.NDArray[Any] = shapely.set_coordinates(
            np.array(geoms[a:b], dtype=object), xy[starts[a] : starts[b]]
        )
        return out

    pieces = _run(work, len(geoms))
    joined: npt.NDArray[Any] = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
    return joined
