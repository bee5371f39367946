"""CSV/TSV ledgers: strict encoding, a detected delimiter, every value kept as text.

Spreadsheets exported by Chinese offices arrive as UTF-8, UTF-8 with BOM (Excel's
"CSV UTF-8") or GBK (Excel's plain "CSV"), comma- or tab-separated. Nothing is
type-converted here: "0731" must stay "0731" and "113.10" must not become 113.1; the
mapping stage converts with per-row error reports.
"""

from __future__ import annotations

import csv
from pathlib import Path

from etl.encoding import detect_text_encoding
from etl.model import FileRejected, SourceTable
from etl.readers.common import (
    Caps,
    check_columns,
    check_rows,
    row_numbers,
    text_frame,
    unique_names,
)

DELIMITERS = (",", "\t", ";")
_NAMES = {",": "comma", "\t": "tab", ";": "semicolon"}
_SAMPLE_LINES = 50


def pick_delimiter(line: str) -> str:
    r"""The delimiter that splits the header line into the most fields (comma on ties).

    ``csv.Sniffer`` guesses from character frequencies and happily picks a letter or a
    Chinese comma; counting fields for the three real candidates is predictable.

    Example:
        >>> pick_delimiter("名称\t地址\t经度")
        '\t'
    """
    counts = {d: len(next(csv.reader([line], delimiter=d), [])) for d in DELIMITERS}
    return max(DELIMITERS, key=lambda d: (counts[d], -DELIMITERS.index(d)))


def _header_line(path: Path, codec: str) -> str | None:
    with path.open(encoding=codec, errors="strict", newline="") as fh:
        for _, line in zip(range(_SAMPLE_LINES), fh, strict=False):
            if line.strip():
                return line
    return None


def _blank(row: list[str]) -> bool:
    return not any(cell.strip() for cell in row)


def read_csv(path: Path, *, encoding: str | None, caps: Caps) -> SourceTable:
    """Read a delimited text file into text columns.

    The header is the first non-empty row; blank rows are skipped. ``source_rows`` are
    physical line numbers (header on line 1 → first data row on line 2; a quoted value
    spanning lines counts each line). Empty cells become None.

    Raises:
        FileRejected: undecidable encoding, no header, too many columns, a row with
            more values than the header, or malformed CSV (with its line number).
        TooLarge: more than ``caps.max_rows`` data rows (stops reading there).
    """
    choice = detect_text_encoding(path, encoding)
    first = _header_line(path, choice.codec)
    delimiter = pick_delimiter(first or "")
    header: list[str] | None = None
    columns: list[list[str | None]] = []
    lines: list[int] = []
    with path.open(encoding=choice.codec, errors="strict", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        previous = 0
        try:
            for row in reader:
                start, previous = previous + 1, reader.line_num
                if _blank(row):
                    continue
                if header is None:
                    header = row
                    check_columns(len(header), caps, path.name)
                    columns = [[] for _ in header]
                    continue
                _append(row, columns, start, path.name)
                lines.append(start)
                check_rows(len(lines), caps, path.name)
        except csv.Error as exc:
            raise FileRejected(
                f"{path.name} line {reader.line_num} is not valid CSV: {exc}",
                f"{path.name} 第 {reader.line_num} 行不是有效的 CSV：{exc}",
                code="csv_malformed",
            ) from exc
    if header is None:  # only separators and blanks
        raise FileRejected(
            f"{path.name} has no header row", f"{path.name} 没有表头行", code="no_header"
        )
    names, name_notes = unique_names(header)
    return SourceTable(
        frame=text_frame(names, columns),
        geometry=None,
        crs=None,
        encoding=choice.label,
        layer=None,
        source_rows=row_numbers(lines),
        fmt="csv",
        notes=[*choice.report(), f"{_NAMES[delimiter]}-separated", *name_notes],
    )


def _append(row: list[str], columns: list[list[str | None]], line: int, name: str) -> None:
    """Add one data row, padding short rows and refusing values beyond the header."""
    width = len(columns)
    if len(row) > width and not _blank(row[width:]):
        raise FileRejected(
            f"{name} line {line} has {len(row)} values but the header has {width} columns",
            f"{name} 第 {line} 行有 {len(row)} 个值，而表头只有 {width} 列",
            code="csv_ragged",
        )
    for index, values in enumerate(columns):
        cell = row[index] if index < len(row) else ""
        values.append(cell if cell != "" else None)
