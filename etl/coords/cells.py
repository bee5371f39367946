"""Read coordinates typed into spreadsheet cells: decimals, DMS, full-width digits, commas.

Ledgers kept in Excel by district bureaus hold positions in every form people type:
``113.13``, ``１１３．１３`` (full-width, from a Chinese IME), ``113°07′30.5″E``,
``东经113度7分30.5秒``, ``N27°52'``, ``113,13`` (decimal comma), ``3,085,123.45``
(thousands separators in Gauss-Krüger metres). Each cell is read on its own; what cannot be
read becomes a :class:`~etl.model.RowProblem` with the file's row number, the column and the
cell text, so the bureau can fix its ledger.

Comma rule (decided per column, because ``113,123`` alone is ambiguous):

* several commas in groups of three (``3,085,123``) or a comma before a decimal point
  (``512,345.6``): thousands separators, always;
* a single comma that cannot be a thousands separator (``27,5``, ``113,1234``, ``0,123``,
  ``3085123,45``): decimal comma, always;
* a single comma followed by exactly three digits (``113,123``): a decimal comma if the column
  has other decimal-comma cells and no decimal points; thousands separator if the column has
  decimal points or thousands groups and no decimal commas; otherwise ambiguous and reported.
"""

from __future__ import annotations

import decimal
import math
import numbers
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from etl.model import RowProblem

__all__ = ["parse_coordinate", "points_from_columns"]

Axis = Literal["lon", "lat"]
_CommaMode = Literal["decimal", "thousands", "ambiguous"]

_MAX_SHOWN = 40

_PLAIN_RE = re.compile(r"\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)\s*")
_NUMBER_RE = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:E[+-]?\d+)?")
_THOUSANDS_RE = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_SINGLE_COMMA_RE = re.compile(r"(\d+),(\d+)")
_DMS_RE = re.compile(
    r"(\d+(?:\.\d+)?)°(?:(\d+(?:\.\d+)?)(?:'(?:(\d+(?:\.\d+)?)\"?)?)?)?|"
    r"(\d+)'(\d+(?:\.\d+)?)\"?"
)
_SPACED_DMS_RE = re.compile(r"(\d+)[ :](\d+(?:\.\d+)?)(?:[ :](\d+(?:\.\d+)?))?")
_MISSING = frozenset({"", "nan", "none", "null", "n/a", "na", "-", "--", "/", "无", "空"})

_TRANSLATE: dict[int, str] = {i: chr(i - 0xFEE0) for i in range(0xFF01, 0xFF5F)}
_TRANSLATE.update(
    {
        0x3000: " ",
        0x00A0: " ",
        0x2009: " ",
        0x202F: " ",
        0xFEFF: "",
        0x3002: ".",
        0x2212: "-",
        0x2010: "-",
        0x2011: "-",
        0x2012: "-",
        0x2013: "-",
        0xFE63: "-",
        0x00BA: "°",
        0x02DA: "°",
        0x5EA6: "°",  # 度
        0x2032: "'",
        0x2019: "'",
        0x2018: "'",
        0x00B4: "'",
        0x0060: "'",
        0x02B9: "'",
        0x5206: "'",  # 分
        0x2033: '"',
        0x201D: '"',
        0x201C: '"',
        0x02BA: '"',
        0x3003: '"',
        0x79D2: '"',  # 秒
    }
)
_WORDS = (("东经", "E"), ("西经", "W"), ("北纬", "N"), ("南纬", "S"))
_SINGLE_WORDS = (("东", "E"), ("西", "W"), ("北", "N"), ("南", "S"))


@dataclass(frozen=True)
class _Failure:
    reason: str
    reason_zh: str


def _normalise(text: str) -> str:
    """Full-width to ASCII, unify degree/minute/second marks and hemisphere words, uppercase."""
    s = text.translate(_TRANSLATE)
    for word, letter in _WORDS:
        s = s.replace(word, letter)
    for word, letter in _SINGLE_WORDS:
        s = s.replace(word, letter)
    s = s.replace("''", '"')
    return " ".join(s.split()).upper()


def _comma_evidence(s: str) -> _CommaMode | None:
    """What one normalised cell says about the column's comma convention."""
    if "," not in s:
        return "thousands" if "." in s and _NUMBER_RE.fullmatch(s.lstrip("+-")) else None
    body = s.lstrip("+-").strip()
    if _THOUSANDS_RE.fullmatch(body) and (body.count(",") > 1 or "." in body):
        return "thousands"
    single = _SINGLE_COMMA_RE.fullmatch(body)
    if single is not None and _decimal_only(single.group(1), single.group(2)):
        return "decimal"
    return None


def _decimal_only(head: str, tail: str) -> bool:
    """A single comma that cannot separate thousands (see the module's comma rule)."""
    return (
        len(tail) != 3 or len(head) > 3 or (len(head) > 1 and head.startswith("0")) or (head == "0")
    )


def _column_mode(normalised: Sequence[str]) -> _CommaMode:
    seen = {_comma_evidence(s) for s in normalised}
    if "decimal" in seen and "thousands" not in seen:
        return "decimal"
    if "thousands" in seen and "decimal" not in seen:
        return "thousands"
    return "ambiguous"


def _fail(column: str, shown: str, why: str, why_zh: str) -> _Failure:
    return _Failure(
        f"cannot read coordinate {shown!r} in column {column!r}: {why}",
        f"无法识别列“{column}”中的坐标值“{shown}”：{why_zh}",
    )


def _resolve_commas(body: str, mode: _CommaMode) -> str | None:
    """Body with commas removed or turned into decimal points; None if ambiguous/unreadable."""
    if "," not in body:
        return body
    if any(mark in body for mark in "°'\""):
        return re.sub(r"(\d),(\d)", r"\1.\2", body)
    if _THOUSANDS_RE.fullmatch(body) and (body.count(",") > 1 or "." in body):
        return body.replace(",", "")
    single = _SINGLE_COMMA_RE.fullmatch(body)
    if single is None:
        return None
    if _decimal_only(single.group(1), single.group(2)) or mode == "decimal":
        return body.replace(",", ".")
    if mode == "thousands":
        return body.replace(",", "")
    return None


def _parse_dms(body: str) -> tuple[float, float, float] | _Failure | None:
    """Degrees, minutes, seconds of a DMS body; a failure if out of range; None if not DMS."""
    compact = body.replace(" ", "")
    match = _DMS_RE.fullmatch(compact)
    if match is not None:
        if match.group(4) is not None:
            deg, minutes, seconds = match.group(4), match.group(5), None
        else:
            deg, minutes, seconds = match.group(1), match.group(2), match.group(3)
    else:
        match = _SPACED_DMS_RE.fullmatch(body)
        if match is None:
            return None
        deg, minutes, seconds = match.group(1), match.group(2), match.group(3)
    d = float(deg)
    m = float(minutes) if minutes is not None else 0.0
    s = float(seconds) if seconds is not None else 0.0
    if minutes is not None and not d.is_integer():
        return _Failure("degrees must be whole when minutes follow", "带分时度须为整数")
    if seconds is not None and not m.is_integer():
        return _Failure("minutes must be whole when seconds follow", "带秒时分须为整数")
    if m >= 60.0 or s >= 60.0:
        return _Failure("minutes and seconds must be below 60", "分、秒须小于 60")
    return d, m, s


def parse_coordinate(text: str, axis: Axis, *, comma: _CommaMode = "ambiguous") -> float:
    """Read one coordinate cell (see the module docstring for the accepted forms).

    Args:
        text: The cell text.
        axis: ``"lon"`` or ``"lat"``; a hemisphere letter of the other axis is an error
            (``N27°`` in a longitude column usually means the columns are swapped).
        comma: The column's comma convention for ``ddd,ddd`` cells.

    Returns:
        The value in degrees (or metres for projected columns); S and W are negative.

    Raises:
        ValueError: With an English and a Chinese reason separated by ``"|"``.

    Example:
        >>> round(parse_coordinate("113°07′30″E", "lon"), 6)
        113.125
    """
    result = _parse_normalised(_normalise(text), axis, comma)
    if isinstance(result, _Failure):
        raise ValueError(f"{result.reason}|{result.reason_zh}")
    return result


def _parse_normalised(s: str, axis: Axis, mode: _CommaMode) -> float | _Failure:
    hemi = None
    if s[:1] in ("N", "S", "E", "W"):
        hemi, s = s[0], s[1:].strip()
    if s[-1:] in ("N", "S", "E", "W"):
        if hemi is not None:
            return _Failure("two hemisphere letters", "含两个方位字母")
        hemi, s = s[-1], s[:-1].strip()
    sign = 1.0
    if s[:1] in ("+", "-"):
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:].strip()
        if hemi is not None and sign < 0:
            return _Failure("both a minus sign and a hemisphere letter", "同时含负号和方位字母")
    if hemi is not None:
        if (axis == "lon") != (hemi in ("E", "W")):
            return _Failure(
                f"hemisphere {hemi} in a {'longitude' if axis == 'lon' else 'latitude'} column"
                " (are the columns swapped?)",
                f"{'经度' if axis == 'lon' else '纬度'}列中出现方位 {hemi}（经纬度列是否颠倒？）",
            )
        if hemi in ("S", "W"):
            sign = -1.0
    body = _resolve_commas(s, mode)
    if body is None:
        return _Failure(
            "the comma may be a decimal or a thousands separator; write 113.123 or 113123",
            "逗号可能是小数点也可能是千位分隔符；请写成 113.123 或 113123",
        )
    if _NUMBER_RE.fullmatch(body):
        value = float(body)
    else:
        dms = _parse_dms(body)
        if dms is None:
            return _Failure("not a number or degrees-minutes-seconds", "不是数字或度分秒")
        if isinstance(dms, _Failure):
            return dms
        d, m, sec = dms
        value = d + m / 60.0 + sec / 3600.0
    if not math.isfinite(value):
        return _Failure("not a finite number", "不是有限数值")
    return sign * value


def _parse_column(
    cells: Sequence[Any], rows: npt.NDArray[Any], column: str, axis: Axis
) -> tuple[npt.NDArray[np.float64], list[RowProblem]]:
    n = len(cells)
    values = np.full(n, np.nan, dtype=np.float64)
    problems: list[RowProblem] = []
    slow: list[tuple[int, str, str]] = []
    for i, cell in enumerate(cells):
        if cell is None:
            problems.append(_missing(rows[i], column))
        elif isinstance(cell, str):
            if _PLAIN_RE.fullmatch(cell):
                values[i] = float(cell)
            else:
                norm = _normalise(cell)
                if norm.lower() in _MISSING:
                    problems.append(_missing(rows[i], column))
                else:
                    slow.append((i, cell, norm))
        elif isinstance(cell, bool):
            problems.append(_unreadable(rows[i], column, str(cell), "not a number", "不是数字"))
        elif isinstance(cell, numbers.Real | decimal.Decimal):
            number = float(cell)
            if math.isnan(number):
                problems.append(_missing(rows[i], column))
            elif math.isinf(number):
                problems.append(
                    _unreadable(rows[i], column, str(cell), "not a finite number", "不是有限数值")
                )
            else:
                values[i] = number
        elif _is_na(cell):
            problems.append(_missing(rows[i], column))
        else:
            problems.append(_unreadable(rows[i], column, str(cell), "not a number", "不是数字"))
    if slow:
        plain_dot = any(isinstance(c, str) and "." in c and _PLAIN_RE.fullmatch(c) for c in cells)
        mode = _column_mode([norm for _, _, norm in slow] + (["1.5"] if plain_dot else []))
        for i, cell, norm in slow:
            result = _parse_normalised(norm, axis, mode)
            if isinstance(result, _Failure):
                problems.append(_unreadable(rows[i], column, cell, result.reason, result.reason_zh))
            else:
                values[i] = result
    return values, problems


def _is_na(cell: object) -> bool:
    """Whether a cell is a pandas missing marker (``pd.NA``, ``NaT``) from ``Series.tolist()``."""
    return cell is pd.NA or cell is pd.NaT


def _missing(row: Any, column: str) -> RowProblem:
    return RowProblem(
        row=int(row),
        reason=f"missing coordinate in column {column!r}",
        reason_zh=f"列“{column}”缺少坐标",
        column=column,
    )


def _unreadable(row: Any, column: str, cell: str, why: str, why_zh: str) -> RowProblem:
    shown = cell if len(cell) <= _MAX_SHOWN else cell[:_MAX_SHOWN] + "…"
    failure = _fail(column, shown, why, why_zh)
    return RowProblem(
        row=int(row), reason=failure.reason, reason_zh=failure.reason_zh, column=column
    )


def points_from_columns(
    lon: Sequence[str | float | None],
    lat: Sequence[str | float | None],
    rows: npt.NDArray[Any],
    *,
    lon_column: str = "lon",
    lat_column: str = "lat",
) -> tuple[npt.NDArray[np.object_], list[RowProblem]]:
    """Build points from the x (longitude/easting) and y (latitude/northing) cells of a table.

    Cells may be text in any of the forms of the module docstring, numbers (Excel numeric
    cells), or None/NaN. Ranges are not checked here (Gauss-Krüger metres are legitimate
    input): :func:`etl.coords.resolve_crs` and :func:`etl.coords.validate` do that after the
    CRS is known.

    Args:
        lon: The x cells, one per row.
        lat: The y cells, one per row.
        rows: The file's own row numbers, same length.
        lon_column: Header of the x column, named in problems.
        lat_column: Header of the y column, named in problems.

    Returns:
        ``(points, problems)``: an object array of shapely Points with None where either cell
        is missing or unreadable, and one problem per bad cell ("missing coordinate", or the
        cell text truncated to 40 characters with the reason).
    """
    if len(lon) != len(lat) or len(lon) != len(rows):
        msg = f"column lengths differ: {len(lon)} x, {len(lat)} y, {len(rows)} row numbers"
        raise ValueError(msg)
    row_numbers = np.asarray(rows)
    xs, x_problems = _parse_column(lon, row_numbers, lon_column, "lon")
    ys, y_problems = _parse_column(lat, row_numbers, lat_column, "lat")
    good = np.isfinite(xs) & np.isfinite(ys)
    points = np.full(len(xs), None, dtype=object)
    if good.any():
        points[good] = shapely.points(xs[good], ys[good])
    problems = sorted(x_problems + y_problems, key=lambda p: (p.row, p.column != lon_column))
    return points, problems
