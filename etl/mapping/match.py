"""Match a file's headers to a target's fields: automatic where unambiguous, else ask.

The rules, in order:

1. ``overrides`` (``--map 源列=field``) are applied first. The value is a field name,
   ``lon``/``lat`` for coordinate columns, or ``-``/``ignore`` to drop the column.
2. Every other header is compared with the declared aliases after
   :func:`~etl.mapping.spec.split_header` (NFKC, no spaces, lower case, no ``*`` marker,
   no trailing ``(户)``-style unit). A unit in brackets that the field does not accept
   stops the match: ``面积(亩)`` is never read as hectares.
3. When several headers match one field, the one matching the earliest alias wins; a tie
   is refused, because guessing which of two columns is the data would be silent
   corruption.
4. Headers matching nothing are kept, verbatim, as keys of the JSONB ``attributes``.

Nothing here reads cell values except ``constants``, which are parsed once so that a bad
``--set`` fails the file instead of every row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from etl.mapping.parse import parse_cell
from etl.mapping.spec import (
    LAT_ALIASES,
    LON_ALIASES,
    FieldSpec,
    TargetSpec,
    normalize_header,
    normalize_token,
    split_header,
)
from etl.model import FileRejected

#: Override values that drop a column (neither a field nor an attribute).
IGNORE = frozenset({"-", "ignore"})
#: Override values that pick the coordinate columns.
COORDINATES = ("lon", "lat")


@dataclass
class ColumnMatch:
    """Which source header fills which field, and what happens to the rest.

    Attributes:
        fields: field → source header.
        lon: the longitude (or X) column, when the file has one.
        lat: the latitude (or Y) column.
        extra: headers kept as ``attributes`` keys, in file order.
        ignored: headers dropped on request (``--map 列=-``).
        constants: field → value stored in every row (``--set kind=school``), parsed.
        notes: what matched what and why, for the import report.
    """

    fields: dict[str, str] = field(default_factory=dict)
    lon: str | None = None
    lat: str | None = None
    extra: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    constants: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Candidate:
    """A header that matches a field (or a coordinate) through one of its aliases."""

    header: str
    rank: int
    alias: str


def _rejected(detail: str, detail_zh: str, code: str) -> FileRejected:
    return FileRejected(detail=detail, detail_zh=detail_zh, code=code)


def _alias_index(target: TargetSpec) -> dict[str, tuple[str, int, str]]:
    """Normalised alias → (field or ``lon``/``lat``, rank, alias as declared)."""
    index: dict[str, tuple[str, int, str]] = {}
    owners: list[tuple[str, tuple[str, ...]]] = [
        *((spec.name, spec.all_aliases) for spec in target.fields),
        ("lon", LON_ALIASES),
        ("lat", LAT_ALIASES),
    ]
    for owner, aliases in owners:
        for rank, alias in enumerate(aliases):
            index.setdefault(normalize_header(alias), (owner, rank, alias))
    return index


def _check_headers(headers: Sequence[str]) -> None:
    """Refuse headers that cannot be addressed or stored: duplicates and NUL characters."""
    seen: set[str] = set()
    for header in headers:
        if "\x00" in header:
            raise _rejected(
                "a column header contains a NUL character",
                "列名含有空字符 (NUL)",
                "bad_header",
            )
        if header in seen:
            raise _rejected(
                f"the column header '{header}' appears twice — rename one",
                f"列名「{header}」重复，请修改其中一列",
                "duplicate_header",
            )
        seen.add(header)


def _resolve_header(name: str, headers: Sequence[str]) -> str:
    """The file header an override names: exact, else the one equal after normalisation."""
    if name in headers:
        return name
    close = [h for h in headers if normalize_header(h) == normalize_header(name)]
    if len(close) == 1:
        return close[0]
    if close:
        listed = ", ".join(f"'{h}'" for h in close)
        raise _rejected(
            f"--map '{name}' fits several columns ({listed}); write the header exactly",
            f"--map「{name}」对应多列（{listed}），请写出完整列名",
            "ambiguous_columns",
        )
    listed = ", ".join(headers)
    raise _rejected(
        f"--map names a column '{name}' that the file does not have (columns: {listed})",
        f"--map 指定的列「{name}」在文件中不存在（现有列：{listed}）",
        "unknown_override",
    )


def _apply_overrides(
    headers: Sequence[str],
    target: TargetSpec,
    overrides: Mapping[str, str],
    result: ColumnMatch,
) -> set[str]:
    """Apply ``--map`` entries to ``result``; return the headers they consumed."""
    valid = [*target.field_names, *COORDINATES, *sorted(IGNORE)]
    used: set[str] = set()
    claimed: dict[str, str] = {}
    for source, wanted in overrides.items():
        header = _resolve_header(source, headers)
        choice = wanted.strip().lower()
        if choice not in valid:
            raise _rejected(
                f"--map {source}={wanted}: '{wanted}' is not a field of {target.table} "
                f"(fields: {', '.join(valid)})",
                f"--map {source}={wanted}：「{wanted}」不是{target.title_zh}的字段"
                f"（可用字段：{'、'.join(valid)}）",
                "unknown_override",
            )
        if choice in claimed and choice not in IGNORE:
            raise _rejected(
                f"--map sends both '{claimed[choice]}' and '{header}' to {choice}",
                f"--map 将「{claimed[choice]}」和「{header}」都指定为 {choice}",
                "ambiguous_columns",
            )
        claimed[choice] = header
        used.add(header)
        if choice in IGNORE:
            result.ignored.append(header)
            result.notes.append(f"column '{header}' ignored (--map)")
        elif choice == "lon":
            result.lon = header
            result.notes.append(f"column '{header}' → longitude (--map)")
        elif choice == "lat":
            result.lat = header
            result.notes.append(f"column '{header}' → latitude (--map)")
        else:
            result.fields[choice] = header
            result.notes.append(
                f"column '{header}' → {choice} ({target.field_spec(choice).title_zh}) (--map)"
            )
    return used


def _apply_constants(target: TargetSpec, constants: Mapping[str, str], result: ColumnMatch) -> None:
    """Parse ``--set field=value`` once; a value the field refuses rejects the file."""
    for name, raw in constants.items():
        if name not in target.field_names:
            raise _rejected(
                f"--set {name}: not a field of {target.table} "
                f"(fields: {', '.join(target.field_names)})",
                f"--set {name}：不是{target.title_zh}的字段"
                f"（可用字段：{'、'.join(target.field_names)}）",
                "unknown_override",
            )
        if name in result.fields:
            raise _rejected(
                f"{name} is given both by --map ('{result.fields[name]}') and by --set",
                f"{name} 同时由 --map（「{result.fields[name]}」）和 --set 指定",
                "ambiguous_columns",
            )
        spec = target.field_spec(name)
        value, issue = parse_cell(spec, raw)
        if issue is not None and issue.blocking:
            raise _rejected(
                f"--set {name}={raw}: {issue.reason}",
                f"--set {name}={raw}：{issue.reason_zh}",
                "bad_constant",
            )
        result.constants[name] = value
        result.notes.append(f"{name} ({spec.title_zh}) = {value!r} for every row (--set)")


def _unit_fits(spec: FieldSpec, unit: str | None) -> bool:
    """Whether a header's bracketed unit may fill ``spec`` (no declared units: any)."""
    if unit is None or not spec.units:
        return True
    return normalize_token(unit) in spec.unit_tokens


def _candidates(
    headers: Sequence[str],
    target: TargetSpec,
    result: ColumnMatch,
    used: set[str],
) -> dict[str, list[_Candidate]]:
    """Owner (field or ``lon``/``lat``) → the headers whose aliases match it."""
    index = _alias_index(target)
    specs = {spec.name: spec for spec in target.fields}
    found: dict[str, list[_Candidate]] = {}
    for header in headers:
        if header in used:
            continue
        core, unit = split_header(header)
        hit = index.get(core)
        if hit is None:
            continue
        owner, rank, alias = hit
        spec = specs.get(owner)
        if spec is not None and not _unit_fits(spec, unit):
            result.notes.append(
                f"column '{header}' not used for {owner}: unit '{unit}' is not "
                f"{'/'.join(spec.units)} (kept in attributes; --map to override)"
            )
            continue
        found.setdefault(owner, []).append(_Candidate(header, rank, alias))
    return found


def _pick(owner: str, candidates: list[_Candidate], target: TargetSpec) -> _Candidate:
    """The best-ranked header for one field; a tie is refused."""
    best = min(c.rank for c in candidates)
    top = [c for c in candidates if c.rank == best]
    if len(top) == 1:
        return top[0]
    listed = ", ".join(f"'{c.header}'" for c in top)
    title_zh = target.field_spec(owner).title_zh if owner in target.field_names else owner
    raise _rejected(
        f"ambiguous: columns {listed} all match {owner} ({title_zh}) — use --map 源列={owner}",
        f"列 {listed} 都可作为「{title_zh}」({owner})，无法确定 —— 请用 --map 源列={owner} 指定",
        "ambiguous_columns",
    )


def _require(target: TargetSpec, result: ColumnMatch) -> None:
    """Refuse a file that lacks a required column, naming every one and its headers."""
    missing = [
        spec
        for spec in target.fields
        if spec.required and spec.name not in result.fields and spec.name not in result.constants
    ]
    if not missing:
        return
    detail = "; ".join(
        f"{s.name} ({s.title_zh}): accepted headers {', '.join(s.all_aliases)}" for s in missing
    )
    detail_zh = "；".join(
        f"「{s.title_zh}」({s.name})：可用列名 {'、'.join(s.all_aliases)}" for s in missing
    )
    raise _rejected(
        f"missing required column(s) for {target.table}: {detail} — or use --map 源列=field",
        f"{target.title_zh}缺少必填列：{detail_zh} —— 或用 --map 源列=字段 指定",
        "missing_required",
    )


def match_columns(
    headers: Sequence[str],
    target: TargetSpec,
    overrides: Mapping[str, str],
    *,
    constants: Mapping[str, str] | None = None,
) -> ColumnMatch:
    """Decide which header fills which field of ``target``.

    Args:
        headers: the file's column headers, as the reader produced them.
        target: the table being imported.
        overrides: source header → field, ``lon``, ``lat``, ``-`` or ``ignore``
            (from ``--map 源列=field``); they win over automatic matching.
        constants: field → raw value stored in every row (from ``--set field=value``),
            for files that carry one kind of thing without saying so (a 学校 survey table
            has no 类型 column). A constant wins over a matching header.

    Returns:
        The match; headers that match nothing are listed in ``extra``.

    Raises:
        FileRejected: an override or constant names an unknown header or field, two
            headers tie for one field, or a required field has no column.
    """
    names = [str(h) for h in headers]
    _check_headers(names)
    result = ColumnMatch()
    used = _apply_overrides(names, target, overrides, result)
    _apply_constants(target, constants or {}, result)
    taken = {*result.fields, *result.constants}
    if result.lon is not None:
        taken.add("lon")
    if result.lat is not None:
        taken.add("lat")
    for owner, candidates in _candidates(names, target, result, used).items():
        if owner in taken:
            for c in candidates:
                result.notes.append(
                    f"column '{c.header}' also matches {owner}, already given; kept in attributes"
                )
            continue
        chosen = _pick(owner, candidates, target)
        used.add(chosen.header)
        if owner == "lon":
            result.lon = chosen.header
            result.notes.append(f"column '{chosen.header}' → longitude")
        elif owner == "lat":
            result.lat = chosen.header
            result.notes.append(f"column '{chosen.header}' → latitude")
        else:
            result.fields[owner] = chosen.header
            title_zh = target.field_spec(owner).title_zh
            result.notes.append(f"column '{chosen.header}' → {owner} ({title_zh})")
        for loser in candidates:
            if loser is not chosen:
                result.notes.append(
                    f"column '{loser.header}' also matches {owner}; "
                    f"'{chosen.header}' is preferred, '{loser.header}' kept in attributes"
                )
    if (result.lon is None) != (result.lat is None):
        result.notes.append("only one coordinate column found; coordinates need both")
    _require(target, result)
    result.extra = [h for h in names if h not in used]
    if result.extra:
        result.notes.append(f"kept in attributes: {', '.join(result.extra)}")
    ordered = {f: result.fields[f] for f in target.field_names if f in result.fields}
    result.fields = ordered
    return result
