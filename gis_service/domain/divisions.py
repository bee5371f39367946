"""行政区划 reads, within the caller's scope."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gis_service.db.models import AdminDivision
from gis_service.domain.scope import Principal
from gis_service.errors import NotFound


def _visible(principal: Principal) -> Any:
    """A unit is visible if it is in the caller's area or is one of the area's ancestors."""
    if principal.scope_code is None:
        return AdminDivision.id.isnot(None)
    own_chain = (
        select(func.unnest(AdminDivision.ancestors))
        .where(AdminDivision.code == principal.scope_code)
        .scalar_subquery()
    )
    return or_(
        AdminDivision.ancestors.contains([principal.scope_code]),
        AdminDivision.code.in_(own_chain),
    )


async def get_division(conn: AsyncConnection, principal: Principal, code: str) -> dict[str, Any]:
    """One unit with its chain of ancestors, its bounding box and its children."""
    row = (
        await conn.execute(
            select(
                AdminDivision.code,
                AdminDivision.level,
                AdminDivision.name,
                AdminDivision.parent_code,
                AdminDivision.ancestors,
                AdminDivision.urban_rural_code,
                func.ST_XMin(AdminDivision.boundary).label("xmin"),
                func.ST_YMin(AdminDivision.boundary).label("ymin"),
                func.ST_XMax(AdminDivision.boundary).label("xmax"),
                func.ST_YMax(AdminDivision.boundary).label("ymax"),
            ).where(AdminDivision.code == code, _visible(principal))
        )
    ).one_or_none()
    if row is None:
        raise NotFound(detail=f"admin unit {code} not found", detail_zh=f"区划 {code} 不存在")
    chain = (
        await conn.execute(
            select(AdminDivision.code, AdminDivision.level, AdminDivision.name)
            .where(AdminDivision.code.in_(row.ancestors))
            .order_by(func.length(AdminDivision.code), AdminDivision.code)
        )
    ).all()
    children = (
        await conn.execute(
            select(AdminDivision.code, AdminDivision.level, AdminDivision.name)
            .where(AdminDivision.parent_code == code, _visible(principal))
            .order_by(AdminDivision.code)
        )
    ).all()
    bbox = None if row.xmin is None else [row.xmin, row.ymin, row.xmax, row.ymax]
    return {
        "code": row.code,
        "level": row.level,
        "name": row.name,
        "parent_code": row.parent_code,
        "urban_rural_code": row.urban_rural_code,
        "bbox": bbox,
        "chain": [dict(r._mapping) for r in chain],
        "children": [dict(r._mapping) for r in children],
    }


async def list_roots(conn: AsyncConnection, principal: Principal) -> list[dict[str, Any]]:
    """The top units the caller sees: their own scope unit, or the provinces for national users."""
    stmt = select(AdminDivision.code, AdminDivision.level, AdminDivision.name)
    if principal.scope_code is None:
        stmt = stmt.where(AdminDivision.parent_code.is_(None))
    else:
        stmt = stmt.where(AdminDivision.code == principal.scope_code)
    return [dict(r._mapping) for r in await conn.execute(stmt.order_by(AdminDivision.code))]
