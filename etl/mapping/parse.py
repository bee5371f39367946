"""Cell parsers: one ledger cell → one Python value ready for COPY, or the reason it is not.

Ledgers are typed by hand in Excel and WPS, so the parsers accept what people really write
(``１,２００户``, ``2024年3月5日``, ``45356`` as an Excel date, ``√``) and refuse what cannot
be read without guessing (``1.2万`` in a count, ``3/5/2024``, ``约12``). Nothing is ever
evaluated: a cell starting with ``=`` is text, or not a number.

Each parser returns ``(value, issue)``; a blocking issue means the row is refused, a
non-blocking one that the value was repaired (an unknown sector stored as ``other``).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import pandas as pd

from etl.mapping.spec import (
    INT4_MAX,
    LIST_SEPARATORS,
    TEXT_MAX_LEN,
    FieldSpec,
    normalize_token,
)

#: Bureau ledgers are kept in China Standard Time (no DST); naive times are read as such.
CHINA_TZ = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")

#: Cells that mean "nothing here" in hand-kept ledgers (compared after normalize_token).
BLANK_TOKENS = frozenset(
    {"", "-", "--", "—", "——", "/", "\\", "n/a", "#n/a", "na", "null", "none", "nan", "nat"}
)

#: No placeholder is longer than this, so longer cells skip the normalisation.
_LONGEST_BLANK = 8

#: Yes/no spellings every bool field accepts.
BOOL_TOKENS: dict[str, bool] = {
    **dict.fromkeys(("是", "有", "y", "yes", "true", "t", "1", "√", "✓", "✔", "对"), True),
    **dict.fromkeys(("否", "无", "没有", "n", "no", "false", "f", "0", "×", "✗", "✘", "错"), False),
}

#: Excel day 0 (the 1900 leap-year bug makes serials count from 1899-12-30).
EXCEL_EPOCH = dt.datetime(1899, 12, 30)
#: A plain number in a date column is an Excel serial only in this range (1982 … 2064).
EXCEL_SERIAL_RANGE = (30000.0, 60000.0)
#: Dates outside these years are typing errors in a ledger, not history.
YEAR_RANGE = (1900, 2100)

_MAGNITUDES = frozenset("万亿千百十")
_NUMBER = re.compile(
    r"(?P<sign>[+-]?)(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?P<frac>\.\d*)?(?P<exp>e[+-]?\d+)?"
    r"\s*(?P<unit>.*)",
    re.IGNORECASE,
)
_UNIT = re.compile(
    r"[a-z%°′″]{1,6}[23]?(?:/[a-z]{1,4}[23]?)?|[\u4e00-\u9fff]{1,4}(?:/[\u4e00-\u9fff]{1,4})?"
)
_DATE = re.compile(
    r"(?P<y>\d{4})\s*[-/.年]\s*(?P<m>\d{1,2})\s*[-/.月]\s*(?P<d>\d{1,2})\s*[日号]?"
    r"|(?P<cy>\d{4})(?P<cm>\d{2})(?P<cd>\d{2})"
)
_TIME = re.compile(
    r"[\sT]*(?P<h>\d{1,2})\s*[:时点]\s*(?P<mi>\d{1,2})\s*(?:[:分]\s*(?P<s>\d{1,2})"
    r"(?:\.(?P<f>\d{1,6})\d*)?\s*秒?|分)?\s*(?P<tz>z|[+-]\d{2}:?\d{2})?",
    re.IGNORECASE,
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Issue:
    """Why one cell could not be stored as given (English and Chinese)."""

    reason: str
    reason_zh: str
    blocking: bool = True


Parsed = tuple[Any, Issue | None]


def is_blank(value: object) -> bool:
    """True for an empty cell: None, NaN, NaT, or a placeholder like ``-`` or ``/``."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float | np.floating):
        return math.isnan(value)
    if isinstance(value, str):
        text = value.strip()
        return len(text) <= _LONGEST_BLANK and normalize_token(text) in BLANK_TOKENS
    return False


def as_text(value: object) -> str:
    """A cell as the text a person sees: whole floats without ``.0``, dates in ISO form."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0) and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "、".join(as_text(v) for v in value)
    return str(value)


def show(value: object, limit: int = 40) -> str:
    """A cell quoted for a message: shortened, control characters made visible."""
    text = as_text(value)
    if len(text) > limit:
        text = text[:limit] + "…"
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def parse_text(spec: FieldSpec, value: object) -> Parsed:
    """Trimmed text; NUL and other control characters and overlong cells are refused."""
    text = as_text(value).strip()
    if "\x00" in text:
        return None, Issue("contains a NUL character", "含有空字符 (NUL)")
    if _CONTROL.search(text):
        return None, Issue("contains a control character", "含有控制字符")
    if spec.identifier:
        text = "".join(unicodedata.normalize("NFKC", text).split()).upper()
    limit = spec.max_len or TEXT_MAX_LEN
    if len(text) > limit:
        return None, Issue(
            f"is longer than {limit} characters ({len(text)})",
            f"超过 {limit} 个字符（{len(text)}）",
        )
    if spec.pattern is not None and not re.fullmatch(spec.pattern.regex, text):
        return None, Issue(
            f"value '{show(value)}' is not a valid {spec.title} ({spec.pattern.hint})",
            f"「{show(value)}」不是有效的{spec.title_zh}（{spec.pattern.hint_zh}）",
        )
    return text, None


def _decimal(spec: FieldSpec, value: object) -> tuple[Decimal | None, Issue | None]:
    """A number cell as a Decimal, after separators and a unit suffix are checked."""
    bad = Issue(
        f"value '{show(value)}' is not a number",
        f"「{show(value)}」不是数字",
    )
    if isinstance(value, bool | np.bool_):
        return None, bad
    if isinstance(value, int | np.integer):
        return Decimal(int(value)), None
    if isinstance(value, float | np.floating):
        real = float(value)
        return (Decimal(repr(real)), None) if math.isfinite(real) else (None, bad)
    text = unicodedata.normalize("NFKC", as_text(value)).strip()
    match = _NUMBER.fullmatch(text)
    if match is None:
        return None, bad
    unit = normalize_token(match["unit"])
    if unit and unit not in spec.unit_tokens:
        if unit[0] in _MAGNITUDES:
            return None, Issue(
                f"value '{show(value)}' has a magnitude ({unit[0]}); "
                f"enter the number in the column's unit",
                f"「{show(value)}」带有数量级（{unit[0]}），请按本列单位填写数字",
            )
        if not _UNIT.fullmatch(unit):
            return None, bad
        if spec.unit_tokens:
            return None, Issue(
                f"unit '{unit}' does not fit {spec.title} (expected {'/'.join(spec.units)})",
                f"单位「{unit}」不符合{spec.title_zh}（应为 {'/'.join(spec.units)}）",
            )
    literal = match["sign"] + match["int"].replace(",", "") + (match["frac"] or "")
    try:
        number = Decimal(literal + (match["exp"] or ""))
    except InvalidOperation:
        return None, bad
    return (number, None) if number.is_finite() else (None, bad)


def _bounded(spec: FieldSpec, number: float | int, shown: object) -> Issue | None:
    """The range check shared by int and float fields."""
    low = spec.min_value
    high = spec.max_value
    if spec.kind == "int":
        low = -INT4_MAX if low is None else low
        high = INT4_MAX if high is None else high
    if low is not None and number < low:
        return Issue(
            f"value '{show(shown)}' is below the minimum {low:g} for {spec.title}",
            f"「{show(shown)}」小于{spec.title_zh}的最小值 {low:g}",
        )
    if high is not None and number > high:
        return Issue(
            f"value '{show(shown)}' is above the maximum {high:g} for {spec.title}",
            f"「{show(shown)}」大于{spec.title_zh}的最大值 {high:g}",
        )
    return None


def parse_int(spec: FieldSpec, value: object) -> Parsed:
    """A whole number within the field's range (``12户``, ``1,200``, ``１２`` accepted)."""
    number, issue = _decimal(spec, value)
    if number is None:
        return None, issue
    if number != number.to_integral_value():
        return None, Issue(
            f"value '{show(value)}' is not a whole number",
            f"「{show(value)}」不是整数",
        )
    whole = int(number)
    issue = _bounded(spec, whole, value)
    return (None, issue) if issue else (whole, None)


def parse_float(spec: FieldSpec, value: object) -> Parsed:
    """A finite decimal number within the field's range."""
    number, issue = _decimal(spec, value)
    if number is None:
        return None, issue
    real = float(number)
    if not math.isfinite(real):
        return None, Issue(f"value '{show(value)}' is out of range", f"「{show(value)}」超出范围")
    issue = _bounded(spec, real, value)
    return (None, issue) if issue else (real, None)


def _from_serial(number: float) -> dt.datetime | None:
    """An Excel serial day number as a naive datetime, if it is in the plausible range."""
    low, high = EXCEL_SERIAL_RANGE
    if not low <= number <= high:
        return None
    return EXCEL_EPOCH + dt.timedelta(seconds=round(number * 86400))


def _read_moment(value: object) -> dt.datetime | None:
    """Any accepted date or datetime spelling as a datetime (naive unless an offset is given).

    Raises:
        ValueError: the cell has the shape of a date but is not a calendar date.
    """
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, int | float | np.integer | np.floating):
        number = float(value)
        if number.is_integer() and 19000101 <= number <= 21001231:
            return _read_moment(str(int(number)))
        return _from_serial(number)
    text = unicodedata.normalize("NFKC", as_text(value)).strip()
    date_match = _DATE.match(text)
    if date_match is None:
        try:
            return _from_serial(float(text)) if re.fullmatch(r"\d+(\.\d+)?", text) else None
        except ValueError:
            return None
    year = int(date_match["y"] or date_match["cy"])
    month = int(date_match["m"] or date_match["cm"])
    day = int(date_match["d"] or date_match["cd"])
    rest = text[date_match.end() :]
    if not rest.strip():
        return dt.datetime(year, month, day)
    time_match = _TIME.fullmatch(rest)
    if time_match is None:
        return None
    fraction = (time_match["f"] or "").ljust(6, "0")
    moment = dt.datetime(
        year,
        month,
        day,
        int(time_match["h"]),
        int(time_match["mi"]),
        int(time_match["s"] or 0),
        int(fraction),
    )
    offset = time_match["tz"]
    if offset:
        if offset.lower() == "z":
            return moment.replace(tzinfo=dt.UTC)
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        delta = dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        return moment.replace(tzinfo=dt.timezone(sign * delta))
    return moment


def _moment(spec: FieldSpec, value: object) -> tuple[dt.datetime | None, Issue | None]:
    """Shared by date and datetime fields: read, then check the year is plausible."""
    noun, noun_zh = ("date", "日期") if spec.kind == "date" else ("date and time", "日期时间")
    try:
        moment = _read_moment(value)
    except ValueError:
        return None, Issue(
            f"value '{show(value)}' is not a calendar date",
            f"「{show(value)}」不是有效的日历日期",
        )
    if moment is None:
        return None, Issue(
            f"value '{show(value)}' is not a {noun} (accepted: 2024-03-05, 2024/3/5, "
            f"2024年3月5日, 20240305, Excel dates)",
            f"「{show(value)}」不是有效的{noun_zh}（可用格式：2024-03-05、2024/3/5、"
            f"2024年3月5日、20240305、Excel 日期）",
        )
    low, high = YEAR_RANGE
    if not low <= moment.year <= high:
        return None, Issue(
            f"value '{show(value)}' has a year outside {low}–{high}",
            f"「{show(value)}」的年份不在 {low}–{high} 之间",
        )
    return moment, None


def parse_date(spec: FieldSpec, value: object) -> Parsed:
    """A calendar date; a time of day in the cell is dropped."""
    moment, issue = _moment(spec, value)
    if moment is None:
        return None, issue
    if moment.tzinfo is not None:
        moment = moment.astimezone(CHINA_TZ)
    return moment.date(), None


def parse_datetime(spec: FieldSpec, value: object) -> Parsed:
    """A timezone-aware datetime; times without an offset are China Standard Time."""
    moment, issue = _moment(spec, value)
    if moment is None:
        return None, issue
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=CHINA_TZ)
    return moment, None


def parse_bool(spec: FieldSpec, value: object) -> Parsed:
    """是/否, 有/无, Y/N, true/false, 1/0, √/× and the field's own spellings."""
    if isinstance(value, bool | np.bool_):
        return bool(value), None
    token = normalize_token(as_text(value))
    if token in spec.lookup:
        return spec.lookup[token] == "true", None
    if token in BOOL_TOKENS:
        return BOOL_TOKENS[token], None
    return None, Issue(
        f"value '{show(value)}' is not yes/no for {spec.title} "
        f"(accepted: 是/否, 有/无, Y/N, 1/0, √/×)",
        f"「{show(value)}」不是{spec.title_zh}的是/否值（可用：是/否、有/无、Y/N、1/0、√/×）",
    )


def _lookup(spec: FieldSpec, token: str) -> str | None:
    """A spelling's key: exact, else ``A(B)`` read as A or B when both agree."""
    if token in spec.lookup:
        return spec.lookup[token]
    match = re.fullmatch(r"(.*?)\((.*)\)(.*)", token)
    if match is None:
        return None
    found = {spec.lookup.get(part) for part in (match[1] + match[3], match[2])} - {None}
    return found.pop() if len(found) == 1 else None


def _unknown(spec: FieldSpec, value: object) -> Parsed:
    """An undeclared spelling: the fallback key (repaired) or a refusal naming what works."""
    if spec.fallback is not None:
        return spec.fallback, Issue(
            f"value '{show(value)}' is not a known {spec.title}; stored as '{spec.fallback}'",
            f"「{show(value)}」不是已知的{spec.title_zh}，已按「{spec.label(spec.fallback)}」保存",
            blocking=False,
        )
    return None, Issue(
        f"value '{show(value)}' is not a {spec.title} (accepted: {spec.accepted_hint()})",
        f"「{show(value)}」不是有效的{spec.title_zh}（可用：{spec.accepted_hint()}）",
    )


def parse_enum(spec: FieldSpec, value: object) -> Parsed:
    """One key of the field's enumeration, from any declared spelling."""
    key = _lookup(spec, normalize_token(as_text(value)))
    return (key, None) if key is not None else _unknown(spec, value)


def parse_enum_list(spec: FieldSpec, value: object) -> Parsed:
    """A list of keys from ``地震、洪涝`` style cells (or a list); duplicates dropped."""
    items = value if isinstance(value, list | tuple) else [value]
    words = [
        word
        for item in items
        for word in LIST_SEPARATORS.split(unicodedata.normalize("NFKC", as_text(item)))
        if not is_blank(word)
    ]
    keys: list[str] = []
    unknown: list[str] = []
    repaired: list[Issue] = []
    for word in words:
        key, issue = parse_enum(spec, word)
        if key is None:
            unknown.append(word)
            continue
        if issue is not None:
            repaired.append(issue)
        if key not in keys:
            keys.append(key)
    if unknown:
        listed = "、".join(show(w) for w in unknown)
        return None, Issue(
            f"'{listed}' is not a {spec.title} (accepted: {spec.accepted_hint()})",
            f"「{listed}」不是有效的{spec.title_zh}（可用：{spec.accepted_hint()}）",
        )
    return keys, (repaired[0] if repaired else None)


PARSERS: dict[str, Callable[[FieldSpec, object], Parsed]] = {
    "text": parse_text,
    "int": parse_int,
    "float": parse_float,
    "date": parse_date,
    "datetime": parse_datetime,
    "bool": parse_bool,
    "enum": parse_enum,
    "enum_list": parse_enum_list,
}


def blank_value(spec: FieldSpec) -> Parsed:
    """What a blank cell becomes: a problem when required, else the default (``[]`` for lists)."""
    if spec.required:
        return None, Issue(
            f"required field {spec.title} ({spec.name}) is blank",
            f"必填项「{spec.title_zh}」为空",
        )
    if spec.kind == "enum_list":
        return [], None
    return spec.default, None


def parse_cell(spec: FieldSpec, value: object) -> Parsed:
    """Parse one cell for ``spec``: blanks first, then the parser for its kind."""
    if is_blank(value):
        return blank_value(spec)
    return PARSERS[spec.kind](spec, value)
