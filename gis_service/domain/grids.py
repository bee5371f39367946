"""网格 reads: a grid, its community and the people who answer for it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gis_service.db.models import AdminDivision, Grid, GridAssignment, Person
from gis_service.domain.pii import mask_name, mask_phone
from gis_service.domain.scope import Principal, in_scope
from gis_service.errors import NotFound


async def get_grid(conn: AsyncConnection, principal: Principal, grid_code: str) -> dict[str, Any]:
    """The current version of a grid with its workers and leader (PII masked by role)."""
    row = (
        await conn.execute(
            select(
                Grid.id,
                Grid.grid_code,
                Grid.name,
                Grid.kind,
                Grid.community_code,
                AdminDivision.name.label("community_name"),
                Grid.households,
                Grid.population,
                Grid.area_m2,
                Grid.version,
                Grid.valid_from,
                func.ST_X(func.ST_PointOnSurface(Grid.geom)).label("label_lon"),
                func.ST_Y(func.ST_PointOnSurface(Grid.geom)).label("label_lat"),
            )
            .join(AdminDivision, AdminDivision.code == Grid.community_code)
            .where(
                Grid.grid_code == grid_code,
                Grid.valid_to.is_(None),
                in_scope(Grid.community_code, principal),
            )
        )
    ).one_or_none()
    if row is None:
        raise NotFound(detail=f"grid {grid_code} not found", detail_zh=f"网格 {grid_code} 不存在")
    people = (
        await conn.execute(
            select(GridAssignment.role, Person.name, Person.phone, Person.org)
            .join(Person, Person.id == GridAssignment.person_id)
            .where(GridAssignment.grid_id == row.id, GridAssignment.end_date.is_(None))
            .order_by(GridAssignment.role, Person.name)
        )
    ).all()
    out = dict(row._mapping)
    out.pop("id")
    out["label_point"] = [round(out.pop("label_lon"), 6), round(out.pop("label_lat"), 6)]
    out["valid_from"] = row.valid_from.isoformat()
    out["staff"] = [
        {
            "role": p.role,
            "name": p.name if principal.sees_pii else mask_name(p.name),
            "phone": p.phone if principal.sees_pii else mask_phone(p.phone),
            "org": p.org,
        }
        for p in people
    ]
    return out
