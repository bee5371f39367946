"""Excel ``.xlsx`` ledgers: the right sheet, the real header row, values as text.

Government ledgers are made for printing, not parsing: a merged title row
(「石峰区危险化学品企业安全风险台账」 across A1:H1), a 「填报单位：… 日期：…」 line, then
the header, sometimes two rows deep with a merged group label (「坐标」 over 「经度」
「纬度」), sometimes followed by a row of column numbers 1, 2, 3 … This module finds
the header by shape, reads every value as the text a person sees in Excel (no float
noise, ISO dates) and says in ``notes`` what it decided.

The workbook is a zip, so it passes ``etl.archive.check_zip`` first; its XML is parsed by
openpyxl through defusedxml, so entity-expansion ("billion laughs") files fail fast.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import openpyxl.xml
from defusedxml import DefusedXmlException
from openpyxl.workbook.workbook import Workbook
from openpyxl.worksheet.cell_range import CellRange

from etl.archive import check_zip
from etl.model import FileRejected, SourceTable
from etl.readers.common import (
    Caps,
    check_columns,
    check_rows,
    library_errors,
    row_numbers,
    text_frame,
    unique_names,
)

#: Below this size the workbook is loaded fully, so merged ranges are visible; above
#: it openpyxl's streaming mode keeps memory flat but cannot see merges.
SMALL_WORKBOOK_BYTES = 20 * 1024 * 1024
HEADER_SCAN_ROWS = 20
#: Header cells are labels: a string at most this long that is not a number.
_LABEL_MAX = 40

Row = tuple[int, list[Any]]  # (Excel row number, cell values from column A)
#: A normal or a read-only worksheet; openpyxl's stubs give them no common base.
Sheet = Any


def _entity_attack(exc: BaseException | None) -> bool:
    """Whether defusedxml refused XML somewhere in ``exc``'s chain.

    openpyxl re-raises parser errors as a ValueError ("could not read strings").
    """
    while exc is not None:
        if isinstance(exc, DefusedXmlException):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


@contextmanager
def _excel_errors(name: str) -> Iterator[None]:
    """Translate openpyxl/defusedxml failures, naming XML entity attacks explicitly."""
    with library_errors(name, "an Excel workbook", "Excel 工作簿"):
        try:
            yield
        except Exception as exc:
            if not _entity_attack(exc):
                raise
            raise FileRejected(
                f"{name} contains XML entity declarations (possible entity-expansion attack)",
                f"{name} 含有 XML 实体声明（疑似实体膨胀攻击），已拒绝",
                code="xml_entities",
            ) from exc


@contextmanager
def _workbook(path: Path, *, read_only: bool) -> Iterator[tuple[Workbook, list[str]]]:
    """Check the archive, then open it values-only with macros and links ignored.

    Yields:
        The workbook and notes about the container (macros present …).
    """
    if not openpyxl.xml.DEFUSEDXML:  # fail closed: never parse workbook XML unguarded
        raise RuntimeError("defusedxml is required to read Excel files safely")
    names = {member.name for member in check_zip(path, allow_nested=True)}
    if "xl/workbook.xml" not in names:
        raise FileRejected(
            f"{path.name} is a zip archive but not an Excel workbook",
            f"{path.name} 是 zip 压缩包而不是 Excel 工作簿",
            code="file_type_mismatch",
        )
    notes = ["macros present and ignored"] if "xl/vbaProject.bin" in names else []
    with _excel_errors(path.name):
        wb = openpyxl.load_workbook(path, read_only=read_only, data_only=True, keep_links=False)
    try:
        yield wb, notes
    finally:
        wb.close()


def sheet_names(path: Path) -> list[str]:
    """Worksheet names in workbook order (chart sheets excluded).

    Raises:
        FileRejected: not a readable, safe workbook.
    """
    with _workbook(path, read_only=True) as (wb, _):
        return [ws.title for ws in wb.worksheets]


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def number_text(value: float) -> str:
    """A number as Excel shows it: 15 significant digits, integers without ``.0``.

    Excel stores binary doubles and may write 0.30000000000000004 into the file; it
    displays 15 significant digits, and that is what the person typed.

    Example:
        >>> [number_text(v) for v in (113.123456, 5.0, 0.1 + 0.2, 1e-7, 43021119900101.0)]
        ['113.123456', '5', '0.3', '0.0000001', '43021119900101']
    """
    if not math.isfinite(value):
        return str(value)
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    text = format(value, ".15g")
    return format(Decimal(text), "f") if "e" in text else text


def cell_text(value: Any) -> str | None:
    """The text of one cell value; None for empty cells.

    Example:
        >>> cell_text(dt.datetime(2024, 5, 1)), cell_text(True), cell_text(28.0)
        ('2024-05-01', 'TRUE', '28')
    """
    if _empty(value):
        return None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return number_text(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _is_label(value: Any) -> bool:
    """A column label: short text, not a number, not a form prompt such as 「日期：」."""
    text = value.strip() if isinstance(value, str) else ""
    if not text or len(text) > _LABEL_MAX or "：" in text or text.endswith(":"):
        return False
    try:
        float(text.replace(",", ""))
    except ValueError:
        return True
    return False


def _filled(values: Sequence[Any]) -> list[Any]:
    return [v for v in values if not _empty(v)]


def _header_like(values: Sequence[Any]) -> bool:
    cells = _filled(values)
    return bool(cells) and sum(_is_label(v) for v in cells) >= 0.8 * len(cells)


def _has_values(ws: Sheet) -> bool:
    return any(not _empty(v) for row in ws.iter_rows(values_only=True) for v in row)


def _choose_sheet(wb: Workbook, sheet: str | None, name: str, notes: list[str]) -> Sheet:
    sheets = wb.worksheets
    titles = [ws.title for ws in sheets]
    listed = ", ".join(titles[:50])
    if sheet is not None:
        if sheet not in titles:
            raise FileRejected(
                f"{name} has no sheet {sheet!r}; sheets: {listed}",
                f"{name} 中没有工作表 {sheet!r}；现有工作表：{listed}",
                code="unknown_sheet",
            )
        return wb[sheet]
    if len(sheets) == 1:
        return sheets[0]
    filled = [ws for ws in sheets if _has_values(ws)]
    if len(filled) == 1:
        notes.append(f"sheet {filled[0].title!r} read: the only sheet with data")
        return filled[0]
    if not filled:
        raise FileRejected(f"{name} is empty", f"{name} 没有数据", code="empty_file")
    with_data = ", ".join(ws.title for ws in filled[:50])
    raise FileRejected(
        f"{name} has {len(filled)} sheets with data: {with_data}; pass --sheet",
        f"{name} 有 {len(filled)} 个工作表含数据：{with_data}；请用 --sheet 指定",
        code="sheet_required",
    )


def _read_rows(ws: Sheet, caps: Caps, name: str) -> list[Row]:
    """Non-blank rows, each padded to the table width, within the caps.

    At most ``max_columns + 1`` columns are read: one more than allowed is enough to
    know the sheet is too wide, without materialising 16,384 formatted-empty columns.
    """
    probe = caps.max_columns + 1
    rows: list[Row] = []
    width = 0
    cells = ws.iter_rows(values_only=True, max_col=min(ws.max_column or probe, probe))
    for number, values in enumerate(cells, start=1):
        filled = [i for i, v in enumerate(values) if not _empty(v)]
        if not filled:
            continue
        width = max(width, filled[-1] + 1)
        check_columns(width, caps, name, at_least=width == probe)
        rows.append((number, list(values)))
        check_rows(len(rows) - HEADER_SCAN_ROWS, caps, name)
    return [(n, (v + [None] * width)[:width]) for n, v in rows]


def _find_header(rows: list[Row], merges: list[CellRange], name: str) -> int:
    """Index of the header: the first of the first 20 rows that looks like one.

    A header row (a) spans at least 60 % of the table width, counting cells covered by
    a merged label, (b) has at least two distinct labels when the table is wider than
    two columns, and (c) is 80 % short, non-numeric strings without a colon. (a) and (b)
    skip a merged title, (c) skips a 「填报单位：… 日期：…」 line.

    Raises:
        FileRejected: no such row.
    """
    widest = max((len(_filled(v)) for _, v in rows[: HEADER_SCAN_ROWS + 30]), default=0)
    for index, (number, values) in enumerate(rows[:HEADER_SCAN_ROWS]):
        filled = {i for i, v in enumerate(values) if not _empty(v)}
        covered = filled | {
            col
            for m in merges
            if m.min_row <= number <= m.max_row
            for col in range(m.min_col - 1, m.max_col)
        }
        if len(covered) >= 0.6 * widest and len(filled) >= min(2, widest) and _header_like(values):
            return index
    raise FileRejected(
        f"{name}: no header row found in the first {HEADER_SCAN_ROWS} rows",
        f"{name}：前 {HEADER_SCAN_ROWS} 行中找不到表头行",
        code="no_header",
    )


def _header_merges(merges: list[CellRange], top: int) -> tuple[list[CellRange], list[CellRange]]:
    """Merged ranges starting on the header row: column groups and two-row cells."""
    groups = [m for m in merges if m.min_row == top == m.max_row and m.max_col > m.min_col]
    tall = [m for m in merges if m.min_row == top and m.max_row == top + 1]
    return groups, tall


def _is_two_row_header(rows: list[Row], index: int, merges: list[CellRange]) -> bool:
    """Whether the header continues on the next row.

    Yes when a header cell is merged down into the next row, or when the next row is
    all labels standing only under merged column groups (「坐标」 over 「经度」「纬度」).
    """
    top = rows[index][0]
    if index + 1 >= len(rows) or rows[index + 1][0] != top + 1:
        return False
    lower = rows[index + 1][1]
    if not _header_like(lower):
        return False
    groups, tall = _header_merges(merges, top)
    if tall:
        return True
    under_groups = {c for m in groups for c in range(m.min_col - 1, m.max_col)}
    filled = {i for i, v in enumerate(lower) if not _empty(v)}
    return bool(groups) and filled <= under_groups


def _two_row_names(
    upper: list[Any], lower: list[Any], groups: list[CellRange], notes: list[str], top: int
) -> list[str]:
    """Header names from two rows.

    Under a merged group label the lower cell is the name (「经度」, not 「坐标/经度」),
    because that is the word a person looks for; where lower names repeat under
    different groups (「姓名」 under 「负责人」 and 「联系人」) they become
    「负责人/姓名」. Stacked labels outside a group are joined with ``/``.
    """
    group_of = {c: m for m in groups for c in range(m.min_col - 1, m.max_col)}
    names: list[str] = []
    for col, low in enumerate(lower):
        group = group_of.get(col)
        up = cell_text(upper[group.min_col - 1] if group else upper[col])
        down = cell_text(low)
        if up and down:
            names.append(down if group else f"{up}/{down}")
        else:
            names.append(up or down or "")
    counts = {n: names.count(n) for n in names}
    for col, group in group_of.items():
        up = cell_text(upper[group.min_col - 1])
        if up and counts.get(names[col], 0) > 1 and names[col]:
            names[col] = f"{up}/{names[col]}"
    labels = ", ".join(sorted({cell_text(upper[m.min_col - 1]) or "" for m in groups}))
    notes.append(
        f"two-row header on rows {top}-{top + 1}"
        + (f"; group labels ({labels}) dropped above unique lower names" if labels else "")
    )
    return [n.strip() for n in names]


def _column_number_row(values: Sequence[Any]) -> bool:
    """Whether a row only numbers the columns (1, 2, 3 …), as printed ledgers do."""
    cells = _filled(values)
    numbers = [cell_text(v) for v in cells]
    return len(cells) >= 3 and numbers == [str(i) for i in range(1, len(cells) + 1)]


def _fill_merged_data(
    rows: list[Row], first_data: int, merges: list[CellRange], notes: list[str]
) -> None:
    """Give every row of a vertically merged data cell the cell's value.

    A district merged down over its five companies means the district of each.
    """
    by_number = {number: values for number, values in rows[first_data:]}
    filled: list[str] = []
    for merge in merges:
        top = by_number.get(merge.min_row)
        if top is None or merge.max_row == merge.min_row or merge.min_col > len(top):
            continue
        value = top[merge.min_col - 1]
        for number in range(merge.min_row + 1, merge.max_row + 1):
            if number in by_number:
                by_number[number][merge.min_col - 1] = value
        filled.append(merge.coord)
    if filled:
        notes.append(f"merged data cells filled down: {', '.join(filled[:20])}")


def read_xlsx(path: Path, *, sheet: str | None, caps: Caps) -> SourceTable:
    """Read one worksheet of an ``.xlsx``/``.xlsm`` as text columns.

    Formulas come as their cached values (``data_only``), macros are never run.
    ``source_rows`` are Excel row numbers; blank rows are dropped.

    Raises:
        FileRejected: unsafe or corrupt workbook, sheet choice needed, no header,
            too many columns.
        TooLarge: more than ``caps.max_rows`` data rows, or the archive caps.
    """
    read_only = path.stat().st_size >= SMALL_WORKBOOK_BYTES
    with _workbook(path, read_only=read_only) as (wb, notes), _excel_errors(path.name):
        ws = _choose_sheet(wb, sheet, path.name, notes)
        rows = _read_rows(ws, caps, path.name)
        merges: list[CellRange] = [] if read_only else list(ws.merged_cells.ranges)
        title = str(ws.title)
    if read_only:
        notes.append("large workbook streamed: merged cells are not taken into account")
    if not rows:
        raise FileRejected(f"{path.name} is empty", f"{path.name} 没有数据", code="empty_file")
    index = _find_header(rows, merges, path.name)
    top, upper = rows[index]
    if _is_two_row_header(rows, index, merges):
        groups, _ = _header_merges(merges, top)
        header = _two_row_names(upper, rows[index + 1][1], groups, notes, top)
        first_data = index + 2
    else:
        header = [cell_text(v) or "" for v in upper]
        for group in _header_merges(merges, top)[0]:  # a merged label names each column
            for col in range(group.min_col, group.max_col):
                header[col] = header[group.min_col - 1]
        first_data = index + 1
    if top > 1:
        notes.append(f"header found on row {top}; rows above it skipped")
    if first_data < len(rows) and _column_number_row(rows[first_data][1]):
        notes.append(f"row {rows[first_data][0]} only numbers the columns; skipped")
        first_data += 1
    _fill_merged_data(rows, first_data, merges, notes)
    data = rows[first_data:]
    check_rows(len(data), caps, path.name)
    names, name_notes = unique_names(header)
    columns = [[cell_text(values[col]) for _, values in data] for col in range(len(names))]
    return SourceTable(
        frame=text_frame(names, columns),
        geometry=None,
        crs=None,
        encoding=None,
        layer=title,
        source_rows=row_numbers([number for number, _ in data]),
        fmt="xlsx",
        notes=[*notes, *name_notes],
    )
