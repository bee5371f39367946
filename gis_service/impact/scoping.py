"""The two scope predicates of this package, as SQL text with ``:scope`` bound when set.

By code (rows stamped with a village code) and by area (warnings, whose polygon may cover
several counties: visible where it meets the caller's area).
"""

from __future__ import annotations


def area_scope_sql(geom_column: str, scope: str | None) -> str:
    """SQL: the geometry meets the caller's area (``:scope`` bound when set)."""
    if scope is None:
        return "true"
    return (
        "EXISTS (SELECT 1 FROM admin_division sa WHERE sa.code = :scope"
        f" AND sa.boundary && {geom_column} AND ST_Intersects(sa.boundary, {geom_column}))"
    )


def code_scope_sql(column: str, scope: str | None) -> str:
    """SQL: an admin code lies inside the caller's area (``:scope`` bound when set)."""
    if scope is None:
        return "true"
    return (
        f"{column} IN (SELECT sc.code FROM admin_division sc"
        " WHERE sc.ancestors @> ARRAY[CAST(:scope AS text)])"
    )
