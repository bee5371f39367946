"""What every reader shares: caps, column naming, frames of text, library-error translation."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from etl.model import FileRejected
from gis_service.errors import GisError, TooLarge

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Caps:
    """Server-side caps on one table (BAD_INPUTS C5, C8).

    Attributes:
        max_rows: data rows; more → ``TooLarge`` (HTTP 413).
        max_columns: attribute columns; more → ``FileRejected`` (HTTP 422).
    """

    max_rows: int = 2_000_000
    max_columns: int = 500


def check_columns(count: int, caps: Caps, name: str, *, at_least: bool = False) -> None:
    """Refuse a table wider than the cap before its rows are read.

    Args:
        count: columns seen.
        caps: the caps.
        name: the file name for the message.
        at_least: the reader stopped counting at ``count`` (there may be more).

    Raises:
        FileRejected: more than ``caps.max_columns`` columns.
    """
    if count > caps.max_columns:
        more = "at least " if at_least else ""
        more_zh = "至少" if at_least else "共"
        raise FileRejected(
            f"{name} has {more}{count} columns; at most {caps.max_columns} are accepted",
            f"{name} {more_zh}有 {count} 列，超过上限 {caps.max_columns} 列",
            code="too_many_columns",
        )


def check_rows(count: int, caps: Caps, name: str) -> None:
    """Refuse a table longer than the cap, ideally before or while its rows are read.

    Raises:
        TooLarge: more than ``caps.max_rows`` rows.
    """
    if count > caps.max_rows:
        raise TooLarge(
            detail=f"{name} has more than {caps.max_rows} rows; split the file",
            detail_zh=f"{name} 超过 {caps.max_rows} 行，请拆分后导入",
        )


def is_debris(path: Path) -> bool:
    """Whether a file is macOS zip debris (``__MACOSX/``, ``._name`` AppleDouble files).

    Finder adds a ``._roads.shp`` beside every ``roads.shp`` it zips; counting it would
    make every Mac upload "two shapefiles".
    """
    return "__MACOSX" in path.parts or path.name.startswith("._")


def unique_names(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """Column names as given, made usable: trimmed, empty ones named, duplicates suffixed.

    Names stay data: nothing is quoted, escaped or lower-cased (a name such as
    ``a"; drop table x;--`` comes out unchanged); later stages never put them in SQL.

    Returns:
        The names (same length and order) and notes describing each change.

    Example:
        >>> unique_names(["名称", " 地址 ", "", "名称"])
        (['名称', '地址', '列3', '名称_2'], ['column 3 has no header; named 列3', 'duplicate column 名称 renamed 名称_2'])
    """  # noqa: E501
    out: list[str] = []
    notes: list[str] = []
    taken: set[str] = set()
    for index, raw in enumerate(names, start=1):
        name = raw.strip()
        if not name:
            name = f"列{index}"
            notes.append(f"column {index} has no header; named {name}")
        if name in taken:
            suffix = 2
            while f"{name}_{suffix}" in taken:
                suffix += 1
            notes.append(f"duplicate column {name} renamed {name}_{suffix}")
            name = f"{name}_{suffix}"
        taken.add(name)
        out.append(name)
    return out, notes


def text_frame(names: Sequence[str], columns: Sequence[Sequence[str | None]]) -> pd.DataFrame:
    """A frame of text cells kept as Python ``str``/``None`` (object dtype).

    pandas 3 would infer its ``str`` dtype and turn ``None`` into NaN; readers of
    ledgers hand over exactly what the file said, so the object dtype is forced.
    """
    data = {
        name: pd.Series(list(values), dtype=object)
        for name, values in zip(names, columns, strict=True)
    }
    return pd.DataFrame(data, columns=list(names))


def row_numbers(values: Sequence[int] | range) -> np.ndarray[Any, np.dtype[np.int64]]:
    """``SourceTable.source_rows`` from 1-based row numbers."""
    if isinstance(values, range):  # np.asarray walks a range in Python: 0.6 s per million
        return np.arange(values.start, values.stop, values.step, dtype=np.int64)
    return np.asarray(values, dtype=np.int64)


def refuse_replacement_chars(frame: pd.DataFrame, name: str) -> None:
    """Refuse text that already contains U+FFFD: a decoder upstream lost bytes.

    Raises:
        FileRejected: a column name or a text cell holds U+FFFD.
    """
    bad_columns = [c for c in frame.columns if "\ufffd" in str(c)]
    for column in frame.columns:
        series = frame[column]
        if isinstance(series.dtype, pd.ArrowDtype) and pa.types.is_large_string(
            series.dtype.pyarrow_dtype
        ):
            text = pa.array(series)
            if pc.any(pc.match_substring(text, "\ufffd")).as_py():
                bad_columns.append(str(column))
        elif (
            series.dtype == object
            and series.map(lambda v: isinstance(v, str) and "\ufffd" in v).any()
        ):
            bad_columns.append(str(column))
    if bad_columns:
        raise FileRejected(
            f"{name} contains undecodable text (U+FFFD) in {', '.join(bad_columns[:5])}; "
            "pass --encoding",
            f"{name} 的 {', '.join(bad_columns[:5])} 含有无法解码的字符，请用 --encoding 指定编码",
            code="encoding_mismatch",
        )


@contextmanager
def library_errors(name: str, what: str, what_zh: str) -> Iterator[None]:
    """Turn any failure of a format library into ``FileRejected`` naming the file.

    GDAL, SQLite and openpyxl raise many unrelated exception types on corrupt input
    (RuntimeError, KeyError, struct.error, XML errors …); a corrupt upload must end as
    a 422 with a safe message, never as a 500. The library's own message goes to the
    log only, because it can contain paths.

    Args:
        name: the file name shown to the user.
        what: what the file was being read as, e.g. "a GeoPackage".
        what_zh: the same in Chinese.

    Raises:
        FileRejected: for any exception except the service's own errors.
    """
    try:
        yield
    except GisError:
        raise
    except Exception as exc:
        log.info("reading %s as %s failed: %r", name, what, exc)
        raise FileRejected(
            f"{name} could not be read as {what}; the file is corrupt or not of that type",
            f"{name} 无法作为{what_zh}读取：文件已损坏或类型不符",
            code="file_unreadable",
        ) from exc
