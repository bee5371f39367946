"""The caller, and user administration (admins, within their own scope)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends
from pydantic import BaseModel, ConfigDict, Field

from gis_service.api.deps import CurrentUser, DbDep, require_roles
from gis_service.api.routes import router
from gis_service.domain import users
from gis_service.domain.scope import Principal
from gis_service.types import Role

api = router("users")
AdminDep = Annotated[Principal, Depends(require_roles(Role.admin))]


class UserIn(BaseModel):
    """A user to create; the token is returned once."""

    model_config = ConfigDict(extra="forbid", strict=True)

    login: str = Field(pattern=r"^[A-Za-z0-9_.@\-]{2,64}$")
    role: Role = Field(strict=False)
    scope_code: str | None = Field(default=None, pattern=r"^(\d{6}|\d{9}|\d{12})$")
    display_name: str | None = Field(default=None, max_length=100)


@api.get("/me", summary="Who am I: login, role and area scope")
async def me(user: CurrentUser) -> dict[str, Any]:
    """The authenticated caller."""
    return {
        "login": user.login,
        "role": user.role.value,
        "scope_code": user.scope_code,
        "anonymous": user.anonymous,
        "sees_personal_data": user.sees_pii,
    }


@api.get("/users", summary="Users inside my area (admin)")
async def list_users(user: AdminDep, db: DbDep) -> list[dict[str, Any]]:
    """Users whose scope lies inside the admin's."""
    async with db.tx() as conn:
        return await users.list_users(conn, user)


@api.post("/users", status_code=201, summary="Create a user inside my area (admin)")
async def create_user(body: UserIn, user: AdminDep, db: DbDep) -> dict[str, Any]:
    """Create a user; the response holds its token, shown this once only."""
    async with db.tx() as conn:
        created = await users.create_user(
            conn, body.login, body.role, body.scope_code, by=user, display_name=body.display_name
        )
    return {
        "id": created.id,
        "login": created.login,
        "role": created.role.value,
        "scope_code": created.scope_code,
        "token": created.token,
    }
