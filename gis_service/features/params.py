"""Parsing of ``/ogc/collections/{id}/items`` query strings, before any SQL (BAD_INPUTS B).

The items endpoint takes dynamic parameters (one per published property), so the generic
strict-query check cannot list them in advance; this module is that check for the endpoint:
unknown and repeated parameters are refused, every value is parsed and bounded, ``limit``
is clamped (OGC: a huge limit is not an error), and property names come only from the
layer registry.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from typing import Any

import pyproj
from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Date,
    DateTime,
    Float,
    Text,
    column,
)
from sqlalchemy.sql.elements import ColumnClause
from sqlalchemy.types import TypeEngine

from gis_service.errors import BadParameter, FieldProblem
from gis_service.features import cql2
from gis_service.registry import LayerSpec, PropertySpec

DEFAULT_LIMIT = 10
MAX_LIMIT = 1000
MAX_OFFSET = 1_000_000
MAX_SORT_KEYS = 3

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG4490 = "http://www.opengis.net/def/crs/EPSG/0/4490"
EPSG3857 = "http://www.opengis.net/def/crs/EPSG/0/3857"
#: Output/bbox CRSs (Part 2) and their accepted spellings.
CRS_URIS = (CRS84, EPSG4490, EPSG3857)
_CRS_ALIASES = {
    "crs84": CRS84,
    "ogc:crs84": CRS84,
    "epsg:4490": EPSG4490,
    "epsg:3857": EPSG3857,
    "epsg:4326": CRS84,  # accepted on input only as lon/lat; answers say CRS84
}
RESERVED = frozenset(
    {
        "limit",
        "offset",
        "bbox",
        "bbox-crs",
        "datetime",
        "crs",
        "sortby",
        "properties",
        "filter",
        "filter-lang",
        "filter-crs",
        "f",
    }
)
_SQL_TYPES: dict[str, TypeEngine[Any]] = {
    "string": Text(),
    "integer": BigInteger(),
    "number": Float(),
    "boolean": Boolean(),
    "date": Date(),
    "datetime": DateTime(timezone=True),
}
_WEB_MERCATOR = pyproj.Transformer.from_crs(3857, 4326, always_xy=True)


def bad(name: str, message: str, zh: str | None = None) -> BadParameter:
    """A 400 naming the query parameter at fault."""
    return BadParameter(
        detail=f"{name}: {message}",
        detail_zh=zh or f"参数 {name} 无效",
        fields=[FieldProblem(f"query.{name[:64]}", message)],
    )


def published(spec: LayerSpec, sees_pii: bool) -> list[PropertySpec]:
    """Properties this caller may read, filter and sort on (PII ones only for PII roles)."""
    return [p for p in spec.properties if sees_pii or not p.pii]


def prop_column(p: PropertySpec) -> ColumnClause[Any]:
    """The SQL column of a published property (a registry identifier, typed)."""
    return column(p.column, _SQL_TYPES[p.type])


def parse_crs(value: str, name: str) -> str:
    """A supported CRS URI (or a common short spelling of one)."""
    uri = value if value in CRS_URIS else _CRS_ALIASES.get(value.strip().lower())
    if uri is None:
        raise bad(name, f"unsupported CRS; use one of {', '.join(CRS_URIS)}")
    return uri


def _int(name: str, value: str) -> int:
    if not re.fullmatch(r"\d{1,100}", value):
        raise bad(name, "must be a non-negative integer")
    return int(value)


def _bbox(value: str, crs: str) -> tuple[float, float, float, float]:
    parts = value.split(",")
    if len(parts) not in (4, 6):
        raise bad("bbox", "4 or 6 comma-separated numbers")
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        raise bad("bbox", "not numbers") from None
    if not all(math.isfinite(n) for n in nums):
        raise bad("bbox", "numbers must be finite")
    if len(nums) == 6:
        nums = [nums[0], nums[1], nums[3], nums[4]]
    a, b, c, d = nums
    if crs == EPSG4490:  # EPSG axis order: latitude first
        a, b, c, d = b, a, d, c
    if crs == EPSG3857:
        lim = 20037508.3428
        if not all(-lim <= v <= lim for v in (a, b, c, d)):
            raise bad("bbox", "outside the Web Mercator range")
        a, b, c, d = _WEB_MERCATOR.transform_bounds(a, b, c, d, densify_pts=21)
    if not (-180 <= a <= 180 and -180 <= c <= 180 and -90 <= b <= 90 and -90 <= d <= 90):
        raise bad("bbox", "coordinates out of range (lon, lat order for CRS84)")
    if a > c or b > d:
        raise bad("bbox", "min must not exceed max (boxes across the antimeridian are not served)")
    return a, b, c, d


def _instant(text: str) -> dt.datetime:
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
        stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise bad("datetime", "an RFC 3339 instant or interval (a/b, ../b, a/..)") from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


def _datetime(value: str) -> tuple[dt.datetime | None, dt.datetime | None, bool]:
    """(start, end, is_instant); open ends are None."""
    if "/" not in value:
        t = _instant(value)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return t, t + dt.timedelta(days=1), False
        return t, t, True
    lo, _, hi = value.partition("/")
    start = None if lo in ("", "..") else _instant(lo)
    end = None if hi in ("", "..") else _instant(hi)
    if start is None and end is None:
        raise bad("datetime", "at least one end of the interval")
    if start and end and start > end:
        raise bad("datetime", "the interval ends before it starts")
    return start, end, False


def _typed(p: PropertySpec, value: str) -> Any:
    """A property filter value parsed as the property's type."""
    try:
        if p.type == "integer":
            if not re.fullmatch(r"[+-]?\d{1,18}", value):
                raise ValueError
            return int(value)
        if p.type == "number":
            number = float(value)
            if not math.isfinite(number):
                raise ValueError
            return number
        if p.type == "boolean":
            if value.lower() not in ("true", "false"):
                raise ValueError
            return value.lower() == "true"
        if p.type == "date":
            return dt.date.fromisoformat(value)
        if p.type == "datetime":
            return _instant(value)
    except ValueError:
        raise bad(p.column, f"expected a {p.type}") from None
    if len(value) > 200:
        raise bad(p.column, "value too long")
    return value


@dataclass
class ItemsQuery:
    """Everything the items query needs, validated."""

    limit: int = DEFAULT_LIMIT
    offset: int = 0
    bbox: tuple[float, float, float, float] | None = None
    bbox_crs: str = CRS84
    crs: str = CRS84
    time: tuple[dt.datetime | None, dt.datetime | None, bool] | None = None
    sort: list[tuple[str, bool]] = field(default_factory=list)  # (column, descending)
    properties: list[PropertySpec] = field(default_factory=list)
    equals: list[tuple[PropertySpec, Any]] = field(default_factory=list)
    filter: ColumnElement[bool] | None = None
    fmt: str = "json"
    #: The query parameters as given (for self/next links), minus paging.
    echo: list[tuple[str, str]] = field(default_factory=list)


def parse_items(spec: LayerSpec, items: list[tuple[str, str]], *, sees_pii: bool) -> ItemsQuery:
    """Validate an items query string against the collection ``spec``.

    Raises:
        BadParameter: unknown or repeated parameter, malformed or out-of-range value.
    """
    props = {p.column: p for p in published(spec, sees_pii)}
    seen: set[str] = set()
    values: dict[str, str] = {}
    for key, value in items:
        if "\x00" in value:
            raise bad(key, "NUL characters are not allowed")
        if key not in RESERVED and key not in props:
            raise bad(key, "unknown parameter", "未知查询参数")
        if key in seen:
            raise bad(key, "given more than once", "参数重复")
        seen.add(key)
        values[key] = value
    q = ItemsQuery(properties=list(props.values()))
    if "limit" in values:
        q.limit = min(max(_int("limit", values["limit"]), 0), MAX_LIMIT)
        if q.limit == 0:
            raise bad("limit", "must be at least 1")
    if "offset" in values:
        q.offset = _int("offset", values["offset"])
        if q.offset > MAX_OFFSET:
            raise bad("offset", f"at most {MAX_OFFSET}; narrow the query with bbox or filter")
    if "bbox-crs" in values:
        q.bbox_crs = parse_crs(values["bbox-crs"], "bbox-crs")
    if "bbox" in values:
        q.bbox = _bbox(values["bbox"], q.bbox_crs)
    if "crs" in values:
        q.crs = parse_crs(values["crs"], "crs")
    if "datetime" in values:
        if spec.time_column is None:
            raise bad("datetime", "this collection has no time")
        q.time = _datetime(values["datetime"])
    if "properties" in values:
        names = [n.strip() for n in values["properties"].split(",") if n.strip()]
        unknown = [n for n in names if n not in props]
        if unknown:
            raise bad("properties", f"not a published property: {unknown[0][:40]}")
        q.properties = [props[n] for n in dict.fromkeys(names)]
    if "sortby" in values:
        keys = [k.strip() for k in values["sortby"].split(",") if k.strip()]
        if not keys or len(keys) > MAX_SORT_KEYS:
            raise bad("sortby", f"1 to {MAX_SORT_KEYS} keys")
        for key in keys:
            desc = key.startswith("-")
            name = key.lstrip("+-")
            if name not in props and name != "id":
                raise bad("sortby", f"not a sortable property: {name[:40]}")
            q.sort.append((spec.id_column if name == "id" else name, desc))
    for name, prop in props.items():
        if name in values:
            q.equals.append((prop, _typed(prop, values[name])))
    if values.get("filter-lang", "cql2-text") != "cql2-text":
        raise bad("filter-lang", "only cql2-text is supported")
    if "filter-crs" in values and parse_crs(values["filter-crs"], "filter-crs") != CRS84:
        raise bad("filter-crs", "only CRS84")
    if "filter" in values:

        def resolve(name: str) -> tuple[ColumnElement[Any], str]:
            if name == "id":
                return column(spec.id_column, BigInteger()), "integer"
            if name not in props:
                raise bad("filter", f"not a queryable property: {name[:40]}")
            return prop_column(props[name]), props[name].type

        q.filter = cql2.parse(values["filter"], resolve)
    if "f" in values:
        if values["f"] not in ("json", "html"):
            raise bad("f", "json or html")
        q.fmt = values["f"]
    q.echo = [(k, v) for k, v in items if k not in ("limit", "offset", "f")]
    return q
