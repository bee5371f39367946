"""The shapes of an import declaration: what a column may be called and what it may hold.

A :class:`TargetSpec` lists the columns a file may fill in one table; a :class:`FieldSpec`
says what one column is called in the ledgers and surveys people actually send (Chinese and
English header names, in priority order), how its cells are parsed, and for enumerations
which spellings mean which database key. The declarations themselves live in
:mod:`etl.mapping.targets`; the code that uses them never branches on a table name.

Header and value spellings are compared after :func:`normalize_header` /
:func:`normalize_token`, so full-width letters, stray spaces and letter case never make two
spellings of the same word differ.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

FieldKind = Literal["text", "int", "float", "date", "datetime", "bool", "enum", "enum_list"]
GeometryKind = Literal["point", "line", "polygon"]

#: Largest value a PostgreSQL ``integer`` column holds; int fields are checked against it.
INT4_MAX = 2_147_483_647

#: Cap on a text cell when the field declares no tighter ``max_len``: a 10 MB cell in a
#: ledger is an accident or an attack, never a name.
TEXT_MAX_LEN = 4000

#: Separators between the items of an ``enum_list`` cell (after NFKC, so ``，；`` count).
LIST_SEPARATORS = re.compile(r"[,;、|/\s]+")

#: Longitude headers in priority order (``经度`` beats ``X`` when both are present).
LON_ALIASES: tuple[str, ...] = (
    "经度",
    "东经",
    "经度(°)",
    "GPS经度",
    "经度坐标",
    "中心经度",
    "lon",
    "lng",
    "long",
    "longitude",
    "point_x",
    "X",
    "x坐标",
    "X坐标",
    "横坐标",
)
#: Latitude headers in priority order.
LAT_ALIASES: tuple[str, ...] = (
    "纬度",
    "北纬",
    "纬度(°)",
    "GPS纬度",
    "纬度坐标",
    "中心纬度",
    "lat",
    "latitude",
    "point_y",
    "Y",
    "y坐标",
    "Y坐标",
    "纵坐标",
)

_TRAILING_BRACKET = re.compile(r"^(.+?)[(\[【]([^()\[\]【】]*)[)\]】]$")
_SYNONYM_SEPARATOR = re.compile(r"[,;、|/\s]")


def normalize_token(text: str) -> str:
    """Fold one spelling to its comparison form: NFKC, no whitespace, lower case.

    NFKC turns full-width letters, digits and brackets into ASCII and ``Ⅳ`` into ``IV``;
    whitespace (including the ideographic space) is removed because Excel headers and
    ledgers wrap and pad words arbitrarily.

    >>> normalize_token(" ＲＥＤ　")
    'red'
    """
    return "".join(unicodedata.normalize("NFKC", text).split()).lower()


def split_header(header: object) -> tuple[str, str | None]:
    """Split a header into its comparison form and the unit written after it in brackets.

    Templates mark required columns with ``*`` and append units (``威胁户数(户)``,
    ``威胁财产（万元）``). The unit is returned separately so a field that declares units
    can refuse a header whose unit differs (``面积(亩)`` is not ``面积(公顷)``).

    >>> split_header("*威胁财产（万元）")
    ('威胁财产', '万元')
    >>> split_header("企业(单位)名称")
    ('企业(单位)名称', None)
    """
    text = normalize_token(str(header)).strip("*")
    match = _TRAILING_BRACKET.match(text)
    if match is None:
        return text, None
    return match.group(1).rstrip("*"), match.group(2)


def normalize_header(header: object) -> str:
    """The comparison form of a header: :func:`split_header` without the unit.

    >>> normalize_header("＊受威胁人数 (人)")
    '受威胁人数'
    """
    return split_header(header)[0]


@dataclass(frozen=True)
class TextPattern:
    """A format an identifier must have, with the hint shown when a cell misses it."""

    regex: str
    hint: str
    hint_zh: str


def synonyms(table: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """Invert ``key → spellings`` into the ``spelling → key`` map a field declares.

    Declarations are written key by key because that is how people check them; the first
    spelling of each key is the one error messages show. Two keys claiming one spelling
    (after normalisation) is a declaration bug and fails at import time.
    """
    inverted: dict[str, str] = {}
    seen: dict[str, str] = {}
    for key, spellings in table.items():
        for spelling in spellings:
            token = normalize_token(spelling)
            if seen.get(token, key) != key:
                raise ValueError(f"synonym {spelling!r} maps to both {seen[token]} and {key}")
            seen[token] = key
            inverted[spelling] = key
    return inverted


@dataclass(frozen=True)
class FieldSpec:
    """One database column an import may fill, and how a file's cells become its values.

    Attributes:
        name: the database column.
        kind: how cells are parsed; ``enum_list`` fills a ``text[]`` column.
        title_zh: the Chinese title shown in reports and ``--help-target``.
        title: the English title used in messages (``"risk level"``).
        aliases: header spellings in priority order: when two headers of one file match
            the field, the one matching the earlier alias wins. The column name itself is
            always accepted, last.
        required: the file must have the column and every row a value (blank → problem).
        max_len: longest accepted text (default :data:`TEXT_MAX_LEN`).
        min_value: smallest accepted number (counts declare 0: negative counts are refused).
        max_value: largest accepted number.
        choices: for enums, the database's own tuple of keys (imported from the models).
        values: for enums, spelling → key; each key and its spellings are accepted. For
            bool fields, extra spellings → ``"true"``/``"false"``.
        default: value stored for a blank cell (columns that are NOT NULL with a server
            default declare it so the rows are ready for COPY). Never used when the file
            lacks the column: then the column is not written at all.
        fallback: enum key stored, with a repaired-row note, for a spelling nobody declared
            (``sector`` → ``other``); without it an unknown spelling rejects the row.
        units: unit spellings accepted in the header's brackets and after numbers in cells;
            empty means any unit is accepted. A differing unit in a header stops the match,
            one in a cell rejects the row: a quantity in the wrong unit is wrong data.
        identifier: codes (USCC, grid code …): NFKC, whitespace removed, upper case.
        pattern: the format an identifier must have after that normalisation.
    """

    name: str
    kind: FieldKind
    title_zh: str
    title: str
    aliases: tuple[str, ...]
    required: bool = False
    max_len: int | None = None
    min_value: float | None = None
    max_value: float | None = None
    choices: tuple[str, ...] = ()
    values: Mapping[str, str] = field(default_factory=dict, compare=False)
    default: bool | int | float | str | None = None
    fallback: str | None = None
    units: tuple[str, ...] = ()
    identifier: bool = False
    pattern: TextPattern | None = None

    def __post_init__(self) -> None:
        """Refuse inconsistent declarations when the module loads, not mid-import."""
        is_enum = self.kind in ("enum", "enum_list")
        if is_enum and not self.choices:
            raise ValueError(f"{self.name}: an enum field needs the database's choices")
        if not is_enum and self.choices:
            raise ValueError(f"{self.name}: only enum fields have choices")
        allowed = set(self.choices) if is_enum else {"true", "false"}
        if self.values and not (is_enum or self.kind == "bool"):
            raise ValueError(f"{self.name}: only enum and bool fields have values")
        stray = set(self.values.values()) - allowed
        if stray:
            raise ValueError(f"{self.name}: values map to unknown keys {sorted(stray)}")
        for key in (self.fallback, self.default if is_enum else None):
            if key is not None and key not in self.choices:
                raise ValueError(f"{self.name}: {key!r} is not one of {self.choices}")
        if self.kind == "enum_list":
            joined = [s for s in self.values if _SYNONYM_SEPARATOR.search(s)]
            if joined:
                raise ValueError(f"{self.name}: list items may not contain separators {joined}")
        if self.pattern is not None and not self.identifier:
            raise ValueError(f"{self.name}: a pattern applies to identifier fields only")

    @cached_property
    def lookup(self) -> dict[str, str]:
        """Normalised spelling → key, including each key itself."""
        table = {normalize_token(key): key for key in self.choices}
        table.update({normalize_token(s): key for s, key in self.values.items()})
        return table

    @cached_property
    def unit_tokens(self) -> frozenset[str]:
        """The declared units in comparison form."""
        return frozenset(normalize_token(u) for u in self.units)

    @property
    def all_aliases(self) -> tuple[str, ...]:
        """The declared aliases followed by the column name, the last resort."""
        if self.name in self.aliases:
            return self.aliases
        return (*self.aliases, self.name)

    def spellings(self) -> dict[str, list[str]]:
        """Key → declared spellings, keys in the database's order (for help and messages)."""
        grouped: dict[str, list[str]] = {key: [] for key in self.choices or ("true", "false")}
        for spelling, key in self.values.items():
            grouped[key].append(spelling)
        return grouped

    def label(self, key: str) -> str:
        """The first declared spelling of ``key`` (its Chinese label), else the key."""
        return next((s for s, k in self.values.items() if k == key), key)

    def accepted_hint(self, limit: int = 6) -> str:
        """A short ``红/橙/黄/蓝 …`` list of accepted spellings, one per key."""
        firsts = [spells[0] if spells else key for key, spells in self.spellings().items()]
        more = " …" if len(firsts) > limit or len(self.values) > len(firsts) else ""
        return "/".join(firsts[:limit]) + more


@dataclass(frozen=True)
class TargetSpec:
    """One importable table: its geometry, its natural key and the fields a file may fill.

    Attributes:
        table: the database table.
        title_zh: Chinese name shown to users.
        title: English name.
        geometry: the geometry a row must bring (point tables also accept lon/lat columns).
        natural_key: fields that identify a row across imports, so a re-import updates
            instead of duplicating; ``()`` means rows are always appended.
        fields: the fillable columns, in display order.
        geometry_required: False where the table accepts rows without a location.
    """

    table: str
    title_zh: str
    title: str
    geometry: GeometryKind
    natural_key: tuple[str, ...]
    fields: tuple[FieldSpec, ...]
    geometry_required: bool = True

    def __post_init__(self) -> None:
        """Refuse declarations whose headers could match two things."""
        names = [f.name for f in self.fields]
        if len(names) != len(set(names)):
            raise ValueError(f"{self.table}: duplicate field names")
        for key in self.natural_key:
            if key not in names or not self.field_spec(key).required:
                raise ValueError(f"{self.table}: natural key {key} must be a required field")
        owner: dict[str, str] = {normalize_header(a): "lon" for a in LON_ALIASES}
        owner.update({normalize_header(a): "lat" for a in LAT_ALIASES})
        for spec in self.fields:
            for alias in spec.all_aliases:
                token = normalize_header(alias)
                if owner.get(token, spec.name) != spec.name:
                    raise ValueError(
                        f"{self.table}: header {alias!r} would match both "
                        f"{owner[token]} and {spec.name}"
                    )
                owner[token] = spec.name

    def field_spec(self, name: str) -> FieldSpec:
        """The field called ``name``; KeyError when the table has none."""
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def field_names(self) -> tuple[str, ...]:
        """The fillable columns in declaration order."""
        return tuple(f.name for f in self.fields)
