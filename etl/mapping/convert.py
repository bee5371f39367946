"""Turn matched columns into typed values ready for COPY, and the rest into ``attributes``.

Columns are converted over their *distinct* cells (``pd.factorize``): a ledger of a
million rows has a few hundred distinct risk levels, dates and counts, so each spelling is
parsed once and the results are spread back with one array index. Problems name the
file's own row numbers (``SourceTable.source_rows``) and the source header.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from etl.mapping.match import ColumnMatch
from etl.mapping.parse import Issue, Parsed, as_text, parse_cell
from etl.mapping.spec import TargetSpec
from etl.model import RowProblem, SourceTable

#: Longest value kept in one ``attributes`` entry: survey remarks fit, a smuggled file not.
ATTRIBUTE_MAX_LEN = 10_000

#: Marks an attribute cell that is left out of the row's dict (blank, NaN).
_OMIT: Any = object()

IntArray = np.ndarray[Any, np.dtype[np.intp]]
ObjectArray = np.ndarray[Any, np.dtype[np.object_]]
BoolArray = np.ndarray[Any, np.dtype[np.bool_]]


@dataclass
class Converted:
    """The typed columns of one table, ready for the loader.

    Attributes:
        records: field → one value per row (int, float, date, aware datetime, bool, str,
            list[str] for enum lists; None for NULL). Only fields the file provides (or
            ``--set``) are present, so a re-import never blanks a column it did not carry.
        attributes: per row, the unmatched columns as a JSON-safe dict (source header →
            value; blank cells omitted, never NaN or infinity).
        ok: per row, False when a blocking problem rejects it.
        problems: every rejected or repaired cell, in file order (row, then column).
    """

    records: dict[str, list[Any]] = field(default_factory=dict)
    attributes: list[dict[str, Any]] = field(default_factory=list)
    ok: BoolArray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    problems: list[RowProblem] = field(default_factory=list)


@dataclass(frozen=True)
class _Column:
    """One converted column: per-row values, and the issue of each distinct cell."""

    values: ObjectArray
    codes: IntArray
    #: Indexed by code; the last entry belongs to missing cells (code -1).
    issues: list[Issue | None]


def _hashable(value: object) -> object:
    """Nested GeoJSON properties (lists, dicts) as hashable keys for factorisation."""
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return value


def _convert_column(
    column: pd.Series[Any], convert: Callable[[object], Parsed], missing: Parsed
) -> _Column:
    """Apply ``convert`` once per distinct cell and spread the results over the rows."""
    if isinstance(column.dtype, pd.ArrowDtype):
        # Text of a sandboxed read: factorised in Arrow, a ``str`` made per distinct value.
        encoded = pa.array(column).dictionary_encode()
        codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
        return _spread(codes, encoded.dictionary.to_pylist(), convert, missing)
    cells = column.to_numpy(dtype=object)
    try:
        codes, uniques = pd.factorize(cells, use_na_sentinel=True)
    except TypeError:
        # Unhashable cells (GeoJSON lists and objects): factorise on a hashable key, then
        # take each code's first cell, so the converter still sees the original value.
        keyed = np.empty(len(cells), dtype=object)
        keyed[:] = [_hashable(v) for v in cells]
        codes, _ = pd.factorize(keyed, use_na_sentinel=True)
        present, first = np.unique(codes, return_index=True)
        uniques = cells[first[present >= 0]]
    return _spread(codes, uniques, convert, missing)


def _spread(
    codes: Any, uniques: Any, convert: Callable[[object], Parsed], missing: Parsed
) -> _Column:
    """Each distinct cell converted once; rows take their code's result (-1: missing)."""
    results = [convert(u) for u in uniques]
    results.append(missing)
    distinct = np.empty(len(results), dtype=object)
    distinct[:] = [value for value, _ in results]
    row_codes = np.asarray(codes, dtype=np.intp)
    return _Column(distinct[row_codes], row_codes, [issue for _, issue in results])


def _report(
    column: _Column,
    header: str,
    rows: np.ndarray[Any, np.dtype[np.int64]],
    ok: BoolArray,
    problems: list[RowProblem],
) -> None:
    """Add a RowProblem for each row whose cell has an issue; blocking ones clear ``ok``."""
    flagged = np.array([issue is not None for issue in column.issues], dtype=bool)
    for index in np.flatnonzero(flagged[column.codes]):
        issue = column.issues[column.codes[index]]
        if issue is None:
            continue
        problems.append(
            RowProblem(
                row=int(rows[index]),
                reason=issue.reason,
                reason_zh=issue.reason_zh,
                column=header,
                repaired=not issue.blocking,
            )
        )
        if issue.blocking:
            ok[index] = False


def _plain(value: object) -> Any:
    """A cell as JSON types; ``_OMIT`` for blanks and NaN (nested NaN becomes None)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return _OMIT
    if isinstance(value, str):
        text = value.strip()
        return text if text else _OMIT
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating | Decimal):
        number = float(value)
        if math.isnan(number):
            return _OMIT
        return number if math.isfinite(number) else ("inf" if number > 0 else "-inf")
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return as_text(value)
    if isinstance(value, list | tuple):
        items = [_plain(v) for v in value]
        return [None if v is _OMIT else v for v in items]
    if isinstance(value, dict):
        pairs = {str(k): _plain(v) for k, v in value.items()}
        return {k: v for k, v in pairs.items() if v is not _OMIT}
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _attribute(value: object) -> Parsed:
    """One unmatched cell for JSONB: JSON types, no NUL (PostgreSQL refuses it), capped."""
    plain = _plain(value)
    if isinstance(plain, str):
        text = plain
    elif isinstance(plain, list | dict):
        text = json.dumps(plain, ensure_ascii=False)
    else:
        return plain, None
    if "\x00" in text or "\\u0000" in text:
        return _OMIT, Issue("contains a NUL character", "含有空字符 (NUL)")
    if len(text) > ATTRIBUTE_MAX_LEN:
        return _OMIT, Issue(
            f"is longer than {ATTRIBUTE_MAX_LEN} characters ({len(text)})",
            f"超过 {ATTRIBUTE_MAX_LEN} 个字符（{len(text)}）",
        )
    return plain, None


def convert(table: SourceTable, match: ColumnMatch, target: TargetSpec) -> Converted:
    """Convert the matched columns of ``table`` to typed values and collect the rest.

    Args:
        table: what the reader produced.
        match: the column decisions from :func:`~etl.mapping.match.match_columns`.
        target: the table being imported.

    Returns:
        Typed ``records`` (fields the file provides, plus ``--set`` constants), per-row
        ``attributes`` from the ``extra`` columns, the ``ok`` mask and the problems.
    """
    size = len(table)
    rows = table.source_rows
    ok = np.ones(size, dtype=bool)
    problems: list[RowProblem] = []
    records: dict[str, list[Any]] = {}
    for spec in target.fields:
        if spec.name in match.constants:
            constant = match.constants[spec.name]
            records[spec.name] = [
                list(constant) if isinstance(constant, list) else constant for _ in range(size)
            ]
            continue
        header = match.fields.get(spec.name)
        if header is None:
            continue
        column = _convert_column(
            table.frame[header], partial(parse_cell, spec), parse_cell(spec, None)
        )
        _report(column, header, rows, ok, problems)
        values = column.values.tolist()
        if spec.kind == "enum_list":
            values = [list(v) if isinstance(v, list) else v for v in values]
        records[spec.name] = values
    attributes: list[dict[str, Any]] = [{} for _ in range(size)]
    for header in match.extra:
        column = _convert_column(table.frame[header], _attribute, (_OMIT, None))
        _report(column, header, rows, ok, problems)
        for index, value in enumerate(column.values.tolist()):
            if value is not _OMIT:
                attributes[index][header] = value
    position = {str(header): i for i, header in enumerate(table.frame.columns)}
    problems.sort(key=lambda p: (p.row, position.get(p.column or "", -1)))
    return Converted(records=records, attributes=attributes, ok=ok, problems=problems)
