"""PostgreSQL binary COPY rows built column by column with Arrow, not row by row in Python.

``copy.write_row`` formats every field of every row through a Python dumper: for a million
buildings with a dozen columns that was ~6 s of this process's CPU. Here each column is
encoded once as an Arrow binary array whose items already are the wire form of the field
(a big-endian int32 length, -1 for NULL, then the bytes), and one
``binary_join_element_wise`` glues the fields of each row behind the field count: the
rows of a chunk come out as one contiguous buffer, written to COPY in block mode.

Only column types whose binary form is plain and fixed are encoded here (see
:data:`ENCODABLE_OIDS`); the caller checks the Python types of the values first.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: The file header of binary COPY: signature, flags, header-extension length.
SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
#: The end-of-data marker (a field count of -1).
TRAILER = b"\xff\xff"

#: numpy big-endian dtype (fixed-width types) per type oid; None: the value's UTF-8 bytes.
_FIXED: dict[int, str | None] = {
    16: "u1",  # boolean: one byte 0/1
    20: ">i8",  # bigint
    21: ">i2",  # smallint
    23: ">i4",  # integer
    701: ">f8",  # double precision
    25: None,  # text
    1043: None,  # character varying
}
_ARROW: dict[int, pa.DataType] = {
    16: pa.bool_(),
    20: pa.int64(),
    21: pa.int16(),
    23: pa.int32(),
    701: pa.float64(),
    25: pa.large_string(),
    1043: pa.large_string(),
}
#: Type oids :func:`encode_values` handles.
ENCODABLE_OIDS = frozenset(_FIXED)
_EMPTY = pa.scalar(b"", pa.large_binary())


def _fixed(width: int, data: np.ndarray[Any, Any]) -> pa.Array:
    """Items of ``width`` bytes each from a contiguous numpy array (one item per row)."""
    raw = np.ascontiguousarray(data)
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), len(raw), [None, pa.py_buffer(raw.tobytes())]
    ).cast(pa.large_binary())


def field(payload: pa.Array) -> pa.Array:
    """Wire form of one field per row: length prefix then bytes; NULL as length -1."""
    payload = payload.cast(pa.large_binary())
    lengths = pc.binary_length(payload).fill_null(-1).to_numpy(zero_copy_only=False)
    prefix = _fixed(4, lengths.astype(">i4"))
    return pc.binary_join_element_wise(prefix, payload.fill_null(b""), _EMPTY)


def encode_values(values: Sequence[Any], oid: int) -> pa.Array:
    """One column of Python values (None for NULL) in the binary form of type ``oid``.

    Raises:
        pyarrow.ArrowInvalid: a value does not fit the type (the caller falls back).
    """
    arrow = pa.array(values, type=_ARROW[oid], from_pandas=False)
    dtype = _FIXED[oid]
    if dtype is None:
        return field(arrow)
    numbers = arrow.fill_null(False if oid == 16 else 0).to_numpy(zero_copy_only=False)
    payload = _fixed(np.dtype(dtype).itemsize, numbers.astype(dtype))
    if arrow.null_count:
        payload = pc.if_else(arrow.is_null(), pa.scalar(None, pa.large_binary()), payload)
    return field(payload)


def encode_constant(value: bytes | None, n: int) -> pa.Scalar[Any]:
    """The same field in every row (``value`` already in binary form; None for NULL)."""
    wire = struct.pack(">i", -1) if value is None else struct.pack(">i", len(value)) + value
    return pa.scalar(wire, pa.large_binary())


def encode_wkb(wkb: Sequence[bytes | None] | np.ndarray[Any, Any], prefix: Any = None) -> pa.Array:
    """Geometry fields from WKB (``geometry_recv`` reads WKB), each after its ``prefix``."""
    payload = pa.array(wkb, type=pa.large_binary())
    if prefix is not None:
        heads = pa.array(prefix, type=pa.large_binary())
        payload = pc.binary_join_element_wise(heads, payload, _EMPTY)
    return field(payload)


def encode_jsonb(texts: Sequence[str]) -> pa.Array:
    """``jsonb`` fields from JSON text: the version byte 1, then the text."""
    payload = pc.binary_join_element_wise(
        pa.scalar(b"\x01", pa.large_binary()),
        pa.array(texts, type=pa.large_string()).cast(pa.large_binary()),
        _EMPTY,
    )
    return field(payload)


def rows(fields: Sequence[pa.Array | pa.Scalar[Any]], keep: np.ndarray[Any, Any] | None) -> bytes:
    """The binary COPY rows (no header or trailer) of the fields' rows where ``keep``."""
    count = pa.scalar(struct.pack(">h", len(fields)), pa.large_binary())
    joined = pc.binary_join_element_wise(count, *fields, _EMPTY)
    if keep is not None:
        joined = joined.filter(pa.array(keep, type=pa.bool_()))
    if not len(joined):
        return b""
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int64)[
        joined.offset : joined.offset + len(joined) + 1
    ]
    data = joined.buffers()[2]
    assert data is not None
    out: bytes = data.slice(int(offsets[0]), int(offsets[-1] - offsets[0])).to_pybytes()
    return out
