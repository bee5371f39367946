"""Reference data: administrative divisions, grids and classification schemes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path

from gis_service.api.deps import CurrentUser, DbDep
from gis_service.api.routes import router
from gis_service.domain import divisions, grids, schemes

api = router("reference")

CodePath = Annotated[str, Path(pattern=r"^(\d{6}|\d{9}|\d{12})$", description="区划代码")]
GridPath = Annotated[str, Path(pattern=r"^\d{15}$", description="15 位网格编码")]
SchemePath = Annotated[str, Path(pattern=r"^[a-z0-9_]{1,40}$")]


@api.get("/divisions", summary="Top administrative units I can see")
async def list_divisions(user: CurrentUser, db: DbDep) -> list[dict[str, Any]]:
    """My scope unit (or the provinces for national users)."""
    async with db.tx() as conn:
        return await divisions.list_roots(conn, user)


@api.get("/divisions/{code}", summary="One administrative unit: chain, bbox, children")
async def get_division(code: CodePath, user: CurrentUser, db: DbDep) -> dict[str, Any]:
    """404 when the unit is outside my area (no existence oracle)."""
    async with db.tx() as conn:
        return await divisions.get_division(conn, user, code)


@api.get("/grids/{grid_code}", summary="A grid with its grid worker and leader")
async def get_grid(grid_code: GridPath, user: CurrentUser, db: DbDep) -> dict[str, Any]:
    """Names and phones are masked for roles that may not see personal data."""
    async with db.tx() as conn:
        return await grids.get_grid(conn, user, grid_code)


@api.get("/schemes", summary="Classification schemes (四色, 险情等级 …) with colours")
async def list_schemes(user: CurrentUser, db: DbDep) -> list[dict[str, Any]]:
    """Every scheme with its classes in display order."""
    async with db.tx() as conn:
        return await schemes.list_schemes(conn)


@api.get("/schemes/{key}", summary="One classification scheme")
async def get_scheme(key: SchemePath, user: CurrentUser, db: DbDep) -> dict[str, Any]:
    """The scheme's classes in display order."""
    async with db.tx() as conn:
        return (await schemes.list_schemes(conn, key))[0]
