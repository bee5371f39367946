"""The layers the spatial queries may touch: a declared allowlist (BAD_INPUTS §3.1).

A request names a layer; the name is looked up here and only these constants reach SQL.
Table and column names are checked against the SQLAlchemy models at import, so a typo fails
the test suite rather than a request.
"""

from __future__ import annotations

from dataclasses import dataclass

from gis_service.db.models import Base


@dataclass(frozen=True)
class QueryLayer:
    """One queryable table: where its rows are, how they are scoped, what is shown."""

    name: str
    title: str
    table: str
    #: Published columns (never PII; names of people are reached through their own rules).
    columns: tuple[str, ...]
    #: Column holding the admin code the scope predicate tests.
    scope_column: str = "admin_code"
    #: A constant SQL condition (no user input) rows must also meet.
    where: str = "TRUE"
    geometry: str = "geom"
    polygonal: bool = False
    #: A GiST index on ``(geom::geography)`` exists (migration 0018): metre questions use it.
    geography_index: bool = False


LAYERS: dict[str, QueryLayer] = {
    layer.name: layer
    for layer in (
        QueryLayer(
            "enterprises",
            "生产经营单位",
            "enterprise",
            ("name", "uscc", "sector", "risk_level", "address", "admin_code", "grid_code"),
        ),
        QueryLayer(
            "safety_hazards",
            "事故隐患",
            "safety_hazard",
            ("hazard_no", "title", "level", "status", "deadline", "admin_code", "grid_code"),
        ),
        QueryLayer(
            "geohazard_points",
            "地质灾害隐患点",
            "geohazard_point",
            (
                "code",
                "name",
                "kind",
                "danger_grade",
                "threatened_households",
                "threatened_people",
                "admin_code",
                "grid_code",
            ),
            where="NOT t.closed",
            geography_index=True,
        ),
        QueryLayer(
            "geohazard_zones",
            "地质灾害风险区",
            "geohazard_zone",
            ("code", "name", "risk_level", "households", "people", "admin_code", "grid_code"),
            polygonal=True,
        ),
        QueryLayer(
            "shelters",
            "避难场所",
            "shelter",
            (
                "name",
                "grade",
                "space_type",
                "capacity",
                "current_occupancy",
                "status",
                "admin_code",
                "grid_code",
            ),
            geography_index=True,
        ),
        QueryLayer(
            "facilities",
            "公共服务设施",
            "facility",
            ("kind", "name", "people", "admin_code", "grid_code"),
        ),
        QueryLayer(
            "buildings",
            "房屋",
            "building",
            ("name", "structure", "floors", "households", "population", "admin_code", "grid_code"),
            polygonal=True,
        ),
        QueryLayer(
            "fire_points",
            "火点",
            "fire_point",
            ("source_kind", "detected_at", "verification_status", "verdict", "admin_code"),
        ),
        QueryLayer(
            "grids",
            "网格",
            "grid",
            ("grid_code", "name", "kind", "households", "population", "community_code"),
            scope_column="community_code",
            where="t.valid_to IS NULL",
            polygonal=True,
        ),
    )
}
NAMES = frozenset(LAYERS)


def _check_against_models() -> None:
    tables = Base.metadata.tables
    for layer in LAYERS.values():
        cols = tables[layer.table].c
        for c in (*layer.columns, layer.scope_column, layer.geometry, "id"):
            if c not in cols:  # pragma: no cover - caught by any test importing this module
                raise RuntimeError(f"query layer {layer.name}: no column {layer.table}.{c}")


_check_against_models()


def get(name: str) -> QueryLayer:
    """The declared layer (callers validate names first with ``params.parse_layers``)."""
    return LAYERS[name]


def scope_sql(
    column: str, scope_code: str | None, *, per_row: bool = False, hashed: bool = False
) -> str:
    """SQL text of the area-scope predicate on ``column`` (a declared column name).

    The same rule as :func:`gis_service.domain.scope.in_scope` (hierarchy through
    ``admin_division.ancestors``, never code prefixes), in text form for the hand-written
    statements of this package; the scope code is the bound parameter ``:scope``.

    Two spellings of one rule, for two access paths. ``per_row`` tests each candidate row by
    one unique-index lookup of its unit: right when an index on the geometry (a point's
    neighbourhood, ``<->`` order) yields a handful of rows, and it keeps the planner from
    driving the query from the (possibly thousand-unit) area instead of the geometry.
    The default ``EXISTS`` form lets aggregates over many rows use a hash semi-join.
    ``hashed`` (``IN`` an uncorrelated subquery) builds the set of the area's units once per
    statement and probes it per row: for batches, whose thousands of per-point lookups
    would otherwise each cost an index scan.
    """
    if scope_code is None:
        return "TRUE"
    if hashed:
        return (
            f"{column} IN (SELECT su.code FROM admin_division su"
            " WHERE su.ancestors @> ARRAY[CAST(:scope AS text)])"
        )
    if per_row:
        return (
            f"(SELECT su.ancestors FROM admin_division su WHERE su.code = {column})"
            " @> ARRAY[CAST(:scope AS text)]"
        )
    return (
        f"EXISTS (SELECT 1 FROM admin_division su WHERE su.code = {column}"
        " AND su.ancestors @> ARRAY[CAST(:scope AS text)])"
    )
