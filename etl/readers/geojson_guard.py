"""Cheap pre-flight checks of a GeoJSON file before any parser sees it (BAD_INPUTS C6).

GDAL's GeoJSON reader (like Python's ``json.loads``) accepts the non-standard tokens
``NaN`` and ``Infinity``, and any tree parser can be made to recurse or allocate without
bound. One streaming pass over the bytes, holding a few bytes of state between chunks,
checks size, nesting depth, non-finite tokens and strict UTF-8 without building any
objects.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

import numpy as np

from etl.model import FileRejected
from gis_service.errors import TooLarge

MAX_BYTES = 200 * 1024 * 1024
MAX_DEPTH = 64
_CHUNK = 1 << 20
#: A token can only be cut by a chunk boundary within this many bytes of the end.
_TAIL = 16
#: Every byte is in exactly one match: a string (maybe cut off at the end of the
#: buffer), or a run of bytes between strings (structure, numbers, literals).
_PIECE = re.compile(
    rb'(?P<string>"[^"\\]*(?:\\.[^"\\]*)*)(?P<close>"|\\?\Z)|(?P<between>[^"]+)',
    re.DOTALL,
)
_NONFINITE = re.compile(rb"NaN|Infinity")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPEN = frozenset(b"[{")


def _rejected(name: str, why: str, why_zh: str) -> FileRejected:
    return FileRejected(f"{name}: {why}", f"{name}：{why_zh}", code="geojson_refused")


def _deepest(brackets: bytes, depth: int) -> tuple[int, int]:
    """Running nesting depth over a run of brackets: (depth after, deepest reached)."""
    if len(brackets) < 64:
        deepest = depth
        for byte in brackets:
            depth += 1 if byte in _OPEN else -1
            deepest = max(deepest, depth)
        return depth, deepest
    codes = np.frombuffer(brackets, dtype=np.uint8)
    running = depth + np.cumsum(np.where((codes == 0x5B) | (codes == 0x7B), 1, -1))
    return int(running[-1]), max(depth, int(running.max()))


def check_geojson(path: Path, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> None:
    """Refuse a GeoJSON file that is too big, too deep, non-finite or not UTF-8.

    The bytes are cut into strings and the runs between them; only the runs are
    inspected (a bracket or ``NaN`` inside a string is text). Between chunks the
    scanner keeps at most a few bytes: the unfinished tail of a run, or a synthetic
    opening quote when a chunk ends inside a string.

    Args:
        path: the file.
        max_bytes: size cap (checked from the file system before reading).
        max_depth: deepest allowed nesting of arrays and objects.

    Raises:
        TooLarge: the file exceeds ``max_bytes``.
        FileRejected: nesting deeper than ``max_depth``, a ``NaN``/``Infinity`` token
            outside strings, a string cut off by the end of the file, or bytes that are
            not UTF-8 (RFC 7946 requires UTF-8).
    """
    name = path.name
    if path.stat().st_size > max_bytes:
        raise TooLarge(
            detail=f"{name} is larger than {max_bytes // (1024 * 1024)} MB",
            detail_zh=f"{name} 超过 {max_bytes // (1024 * 1024)} MB 上限",
        )
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="strict")
    depth = 0
    carry = b""
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(_CHUNK)
            eof = not chunk
            try:
                decoder.decode(chunk, final=eof)
            except UnicodeDecodeError as exc:
                raise _rejected(name, "text is not UTF-8", "内容不是 UTF-8 编码") from exc
            buf, carry = carry + chunk, b""
            for match in _PIECE.finditer(buf):
                if match["string"] is not None:
                    if match["close"] == b'"':
                        continue
                    if eof:
                        raise _rejected(name, "a string is not terminated", "字符串未结束")
                    # Still inside a string: carry a synthetic opening quote (and a
                    # pending backslash) instead of the string itself.
                    carry = b'"' + match["close"]
                    break
                run = match["between"]
                if not eof and match.end() == len(buf):  # a token may continue
                    run, carry = run[:-_TAIL], run[-_TAIL:]
                if _NONFINITE.search(run):
                    raise _rejected(
                        name, "NaN/Infinity is not valid JSON", "含有 NaN/Infinity 非法数值"
                    )
                depth, deepest = _deepest(run.translate(None, _NOT_BRACKETS), depth)
                if deepest > max_depth:
                    raise _rejected(
                        name, f"nested deeper than {max_depth} levels", f"嵌套层数超过 {max_depth}"
                    )
            if eof:
                return
