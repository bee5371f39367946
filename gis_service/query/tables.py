"""Tabular downloads (CSV, XLSX) of query answers, safe to open in Excel/WPS.

Cells that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@`` …) are prefixed
with an apostrophe (CSV injection); CSV is UTF-8 with a BOM so Excel shows Chinese right.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from openpyxl import Workbook

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

#: One sheet: (title, column keys, header labels, rows as dicts).
Sheet = tuple[str, Sequence[str], Sequence[str], Iterable[dict[str, Any]]]


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value)
    if isinstance(value, dict):
        return ";".join(f"{k}={v}" for k, v in value.items())
    return value


def to_csv(columns: Sequence[str], headers: Sequence[str], rows: Iterable[dict[str, Any]]) -> bytes:
    """A UTF-8 (BOM) CSV of ``rows`` with ``headers`` over ``columns``."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(headers)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else _cell(row.get(c)) for c in columns])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_xlsx(sheets: Sequence[Sheet]) -> bytes:
    """An XLSX workbook with one sheet per entry (titles cut to Excel's 31 characters)."""
    wb = Workbook(write_only=True)
    for title, columns, headers, rows in sheets:
        ws = wb.create_sheet(title[:31])
        ws.append(list(headers))
        for row in rows:
            ws.append([_cell(row.get(c)) for c in columns])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
