"""生产经营单位: read one, and edit it with optimistic locking inside the caller's scope."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gis_service.db.models import SECTORS, SPECIAL_FLAGS, Enterprise
from gis_service.domain.scope import Principal, in_scope
from gis_service.errors import Forbidden, InvalidInput, NotFound, PreconditionFailed
from gis_service.types import CHINA_BBOX, Latitude, Longitude, Role

#: Roles that may edit enterprise records.
EDITORS = frozenset({Role.admin, Role.surveyor})

Sector = Literal[SECTORS]  # type: ignore[valid-type]
Flag = Literal[SPECIAL_FLAGS]  # type: ignore[valid-type]


class EnterprisePatch(BaseModel):
    """Fields an editor may change; anything else (id, admin_code, version …) is refused."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str | None = Field(default=None, min_length=1, max_length=200)
    address: str | None = Field(default=None, max_length=300)
    sector: Sector | None = None
    special_flags: list[Flag] | None = Field(default=None, max_length=len(SPECIAL_FLAGS))
    risk_level: Literal["red", "orange", "yellow", "blue"] | None = None
    assessed_at: dt.date | None = Field(default=None, strict=False)
    employees: int | None = Field(default=None, ge=0, le=1_000_000)
    lon: Longitude | None = None
    lat: Latitude | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> EnterprisePatch:
        if (self.lon is None) != (self.lat is None):
            raise ValueError("lon and lat must be given together")
        if self.lon is not None and self.lat is not None:
            x0, y0, x1, y1 = CHINA_BBOX
            if not (x0 <= self.lon <= x1 and y0 <= self.lat <= y1):
                raise ValueError("the point lies outside China")
        return self


_COLUMNS = (
    Enterprise.id,
    Enterprise.uscc,
    Enterprise.name,
    Enterprise.address,
    Enterprise.sector,
    Enterprise.special_flags,
    Enterprise.risk_level,
    Enterprise.assessed_at,
    Enterprise.employees,
    Enterprise.admin_code,
    Enterprise.grid_code,
    Enterprise.row_version,
    func.ST_X(Enterprise.geom).label("lon"),
    func.ST_Y(Enterprise.geom).label("lat"),
)


def _as_dict(row: Any) -> dict[str, Any]:
    out = dict(row._mapping)
    if out.get("assessed_at") is not None:
        out["assessed_at"] = out["assessed_at"].isoformat()
    return out


async def get_enterprise(
    conn: AsyncConnection, principal: Principal, enterprise_id: int
) -> dict[str, Any]:
    """One enterprise, or NotFound when absent or outside the caller's area."""
    row = (
        await conn.execute(
            select(*_COLUMNS).where(
                Enterprise.id == enterprise_id, in_scope(Enterprise.admin_code, principal)
            )
        )
    ).one_or_none()
    if row is None:
        raise NotFound(detail="enterprise not found", detail_zh="企业不存在")
    return _as_dict(row)


async def find_by_uscc(
    conn: AsyncConnection, principal: Principal, uscc: str
) -> list[dict[str, Any]]:
    """The enterprise of the caller's area holding ``uscc`` (0 or 1 rows; the code is unique).

    The search box's lookup: the OGC collection does not publish the code.
    """
    rows = await conn.execute(
        select(*_COLUMNS).where(
            Enterprise.uscc == uscc.upper(), in_scope(Enterprise.admin_code, principal)
        )
    )
    return [_as_dict(r) for r in rows]


async def update_enterprise(
    conn: AsyncConnection,
    principal: Principal,
    enterprise_id: int,
    expected_version: int,
    patch: EnterprisePatch,
) -> dict[str, Any]:
    """Apply ``patch`` if the row is still at ``expected_version`` and stays in scope.

    Raises:
        NotFound: absent or out of scope (checked before the role, so no existence oracle).
        Forbidden: the caller's role may not edit enterprises.
        PreconditionFailed: someone else changed the row first.
        InvalidInput: the edit would move the enterprise out of the caller's area.
    """
    await get_enterprise(conn, principal, enterprise_id)
    if principal.role not in EDITORS:
        raise Forbidden(
            detail="your role may not edit enterprises", detail_zh="当前角色不能修改企业"
        )
    values: dict[str, Any] = patch.model_dump(exclude_unset=True, exclude={"lon", "lat"})
    if patch.lon is not None and patch.lat is not None:
        values["geom"] = func.ST_SetSRID(func.ST_MakePoint(patch.lon, patch.lat), 4490)
    if not values:
        raise InvalidInput(detail="nothing to change", detail_zh="没有要修改的字段")
    row = (
        await conn.execute(
            update(Enterprise)
            .where(
                Enterprise.id == enterprise_id,
                Enterprise.row_version == expected_version,
                in_scope(Enterprise.admin_code, principal),
            )
            .values(**values)
            .returning(*_COLUMNS)
        )
    ).one_or_none()
    if row is None:
        raise PreconditionFailed()
    moved_in = (
        await conn.execute(
            select(Enterprise.id).where(
                Enterprise.id == enterprise_id, in_scope(Enterprise.admin_code, principal)
            )
        )
    ).scalar_one_or_none()
    if moved_in is None:
        raise InvalidInput(
            detail="the new location lies outside your area",
            detail_zh="新位置不在您的管辖范围内",
        )
    return _as_dict(row)
