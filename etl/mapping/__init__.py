"""Map a file's columns to a table's fields and convert its cells (the ``map`` stage).

``TARGETS`` declares, as data, what each importable table accepts; ``match_columns``
decides which header fills which field; ``convert`` turns the cells into typed values,
unmatched columns into JSONB ``attributes`` and bad cells into ``RowProblem``s;
``describe`` explains a target to people (``gis-service import --help-target``).
"""

from etl.mapping.convert import ATTRIBUTE_MAX_LEN, Converted, convert
from etl.mapping.match import ColumnMatch, match_columns
from etl.mapping.parse import BLANK_TOKENS, BOOL_TOKENS, CHINA_TZ, parse_cell
from etl.mapping.spec import (
    LAT_ALIASES,
    LON_ALIASES,
    TEXT_MAX_LEN,
    FieldKind,
    FieldSpec,
    GeometryKind,
    TargetSpec,
    TextPattern,
    normalize_header,
    normalize_token,
    split_header,
)
from etl.mapping.targets import TARGETS, describe

__all__ = [
    "ATTRIBUTE_MAX_LEN",
    "BLANK_TOKENS",
    "BOOL_TOKENS",
    "CHINA_TZ",
    "LAT_ALIASES",
    "LON_ALIASES",
    "TARGETS",
    "TEXT_MAX_LEN",
    "ColumnMatch",
    "Converted",
    "FieldKind",
    "FieldSpec",
    "GeometryKind",
    "TargetSpec",
    "TextPattern",
    "convert",
    "describe",
    "match_columns",
    "normalize_header",
    "normalize_token",
    "parse_cell",
    "split_header",
]
