"""Round the coordinates of a WKB array where they lie, before GEOS parses them.

Stored coordinates are rounded to 1e-7° (``etl.coords``). Rounding parsed geometries means
reading every vertex and building every geometry a second time (``set_coordinates``), and
the rows then go back to WKB for COPY: on a million buildings about 4 s of CPU. When the
file is already in the storage lon/lat, the same rounding can be done on the WKB bytes
GDAL returned: the geometries parsed from them are the rounded ones, and a row that
validation leaves as it is goes to COPY as those bytes.

Only what can be located with certainty is touched: little-endian, two-dimensional Point,
LineString, Polygon and their Multi* forms whose counts fit their bytes exactly. Anything
else (big-endian, Z/M, collections, very many parts or rings, truncated or inconsistent
values) is left as it is and reported not done, so the caller rounds it after parsing as
before. This is a reader of the WKB layout, not a parser: GEOS still parses every value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from etl.parallel import split_spans

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: ISO/OGC WKB type codes of the 2D types located here.
_POINT, _LINE, _POLYGON, _MULTIPOINT, _MULTILINE, _MULTIPOLYGON = 1, 2, 3, 4, 5, 6

#: Parts per Multi* and rings per polygon walked with vectorised steps; rows with more are
#: left to GEOS (each step is one numpy pass over the rows that still have that many).
MAX_STEPS = 64

_FOUR = np.arange(4)


class _Walk:
    """Cursor state over all values at once: where each is, and whether it is still sound."""

    def __init__(self, buf: npt.NDArray[np.uint8], starts: IntArray, ends: IntArray) -> None:
        self.buf = buf
        self.ends = ends
        self.alive: BoolArray = np.ones(len(starts), dtype=bool)
        self.span_row: list[IntArray] = []
        self.span_pos: list[IntArray] = []
        self.span_doubles: list[IntArray] = []

    def fits(self, rows: IntArray, pos: IntArray, size: IntArray | int) -> BoolArray:
        """Whether ``size`` bytes from ``pos`` lie inside each row's value; kills the others."""
        ok: BoolArray = pos + size <= self.ends[rows]
        self.alive[rows[~ok]] = False
        return ok

    def u32(self, pos: IntArray) -> IntArray:
        """Little-endian uint32 at each byte position."""
        raw = self.buf[pos[:, None] + _FOUR].astype(np.int64)
        out: IntArray = raw[:, 0] | raw[:, 1] << 8 | raw[:, 2] << 16 | raw[:, 3] << 24
        return out

    def header(self, rows: IntArray, pos: IntArray, kind: int) -> BoolArray:
        """Rows whose value at ``pos`` starts with a little-endian header of ``kind``."""
        ok = self.fits(rows, pos, 5)
        good = np.zeros(len(rows), dtype=bool)
        at = np.flatnonzero(ok)
        good[at] = (self.buf[pos[at]] == 1) & (self.u32(pos[at] + 1) == kind)
        self.alive[rows[~good]] = False
        return good

    def doubles(self, rows: IntArray, pos: IntArray, count: IntArray) -> None:
        """Record ``count`` doubles at ``pos`` of each row (already bounds-checked)."""
        self.span_row.append(rows)
        self.span_pos.append(pos)
        self.span_doubles.append(count)

    def counted(self, rows: IntArray, pos: IntArray, item_bytes: int) -> tuple[IntArray, BoolArray]:
        """The uint32 count at ``pos`` and which rows have room for that many items."""
        ok = self.fits(rows, pos, 4)
        count = np.zeros(len(rows), dtype=np.int64)
        count[ok] = self.u32(pos[ok])
        room = ok & self.fits(rows, pos + 4, count * item_bytes)
        return count, room

    def points(self, rows: IntArray, pos: IntArray) -> IntArray:
        """Coordinates ``(x, y)`` at ``pos``; returns the positions after them."""
        ok = self.fits(rows, pos, 16)
        self.doubles(rows[ok], pos[ok], np.full(int(ok.sum()), 2, dtype=np.int64))
        return pos + 16

    def line(self, rows: IntArray, pos: IntArray) -> IntArray:
        """A point count and its coordinates at ``pos``; returns the positions after them."""
        count, ok = self.counted(rows, pos, 16)
        self.doubles(rows[ok], pos[ok] + 4, 2 * count[ok])
        return pos + 4 + 16 * count

    def repeated(
        self,
        rows: IntArray,
        pos: IntArray,
        item_bytes: int,
        item: Callable[[IntArray, IntArray], IntArray],
    ) -> IntArray:
        """A count at ``pos``, then that many items, each read by ``item(rows, pos)``.

        One vectorised step per item index, over the rows that have that many; rows with
        more than :data:`MAX_STEPS` are left to GEOS. Returns the positions after the items.
        """
        count, ok = self.counted(rows, pos, item_bytes)
        self.alive[rows[count > MAX_STEPS]] = False
        pos = pos + 4
        for step in range(int(count[ok].max(initial=0))):
            live = np.flatnonzero(ok & (count > step) & self.alive[rows])
            if not len(live):
                break
            pos[live] = item(rows[live], pos[live])
        return pos

    def rings(self, rows: IntArray, pos: IntArray) -> IntArray:
        """A ring count and its rings at ``pos``; returns the positions after them."""
        return self.repeated(rows, pos, 4, self.line)

    def parts(self, rows: IntArray, pos: IntArray, kind: int) -> IntArray:
        """A part count and its parts (each a full WKB value of ``kind``) at ``pos``."""

        def part(sub: IntArray, at: IntArray) -> IntArray:
            good = self.header(sub, at, kind)
            after = at.copy()  # rows without the header are dead: where they end is moot
            after[good] = self.body(sub[good], at[good] + 5, kind)
            return after

        return self.repeated(rows, pos, 5, part)

    def body(self, rows: IntArray, pos: IntArray, kind: int) -> IntArray:
        """The value of ``kind`` after its header; returns the positions after it."""
        if kind == _POINT:
            return self.points(rows, pos)
        if kind == _LINE:
            return self.line(rows, pos)
        if kind == _POLYGON:
            return self.rings(rows, pos)
        return self.parts(rows, pos, kind - 3)  # Multi* of the single kind


def round_wkb(values: Any, decimals: int) -> tuple[Any, BoolArray]:
    """``values`` (an Arrow binary array of WKB) with coordinates rounded where located.

    Returns the new array and, per value, whether it was located and rounded (missing
    values count as done: there is nothing to round). Values not done are byte for byte
    as they were.
    """
    array = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    n = len(array)
    if n == 0 or not (pa.types.is_binary(array.type) or pa.types.is_large_binary(array.type)):
        return values, np.zeros(n, dtype=bool)
    offset_type = np.int64 if pa.types.is_large_binary(array.type) else np.int32
    _, offsets_buf, data_buf = array.buffers()
    offsets: IntArray = np.asarray(
        np.frombuffer(offsets_buf, dtype=offset_type)[array.offset : array.offset + n + 1],
        dtype=np.int64,
    )
    # Only this slice's bytes are copied (a slice shares its parent's whole data buffer).
    base = int(offsets[0])
    buf = (
        np.frombuffer(data_buf, dtype=np.uint8)[base : int(offsets[-1])].copy()
        if data_buf is not None
        else np.zeros(0, dtype=np.uint8)
    )
    offsets = offsets - base  # a new array: for large_binary the slice above is a view
    present = ~np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    rows = np.flatnonzero(present & (offsets[1:] > offsets[:-1]))
    walk = _Walk(buf, offsets[:-1].copy(), offsets[1:].copy())
    kinds = np.zeros(n, dtype=np.int64)
    ok = walk.fits(rows, offsets[rows], 5)
    at = rows[ok]
    kinds[at] = walk.u32(offsets[at] + 1)
    walk.alive[at[buf[offsets[at]] != 1]] = False
    end = offsets[:-1].copy()
    for kind in (_POINT, _LINE, _POLYGON, _MULTIPOINT, _MULTILINE, _MULTIPOLYGON):
        mine = at[(kinds[at] == kind) & walk.alive[at]]
        if len(mine):
            end[mine] = walk.body(mine, offsets[mine] + 5, kind)
    walk.alive[at[~np.isin(kinds[at], np.arange(1, 7))]] = False
    walk.alive[present & (offsets[1:] == offsets[:-1])] = False  # empty bytes: not WKB
    walk.alive[rows[~ok]] = False
    # The walk must end exactly where the value does: anything else is not understood.
    walk.alive[at[end[at] != offsets[1:][at]]] = False
    _round_spans(walk, decimals)
    validity = pa.array(present, type=pa.bool_()).buffers()[1] if array.null_count else None
    rounded = pa.Array.from_buffers(
        array.type,
        n,
        [validity, pa.py_buffer(offsets.astype(offset_type)), pa.py_buffer(buf)],
        null_count=array.null_count,
    )
    return rounded, walk.alive


def round_wkb_split(values: Any, decimals: int) -> tuple[Any, BoolArray]:
    """:func:`round_wkb` over one slice per core, joined in order (a chunked array).

    The walk and the rounding are numpy passes that release the GIL, so a million values
    take about half the time.
    """
    whole = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    pieces = split_spans(lambda a, b: round_wkb(whole.slice(a, b - a), decimals), len(whole))
    joined = pa.chunked_array([p[0] for p in pieces], type=whole.type)
    return joined, np.concatenate([p[1] for p in pieces])


def _round_spans(walk: _Walk, decimals: int) -> None:
    """Round, in ``walk.buf``, the doubles of every span of a row still alive.

    A span's doubles share one alignment (position mod 8), so per alignment the buffer is
    viewed as doubles starting there and the spans' elements are indexed directly.
    """
    if not walk.span_row:
        return
    row = np.concatenate(walk.span_row)
    pos = np.concatenate(walk.span_pos)
    count = np.concatenate(walk.span_doubles)
    keep = walk.alive[row] & (count > 0)
    pos, count = pos[keep], count[keep]
    size = len(walk.buf)
    for align in range(8):
        mine = (pos & 7) == align
        if not mine.any():
            continue
        start, n = (pos[mine] - align) >> 3, count[mine]
        total = int(n.sum())
        first = np.cumsum(n) - n
        at = np.repeat(start - first, n) + np.arange(total, dtype=np.int64)
        view: npt.NDArray[np.float64] = np.ndarray(
            ((size - align) // 8,), dtype="<f8", buffer=walk.buf, offset=align
        )
        view[at] = np.round(view[at], decimals)
