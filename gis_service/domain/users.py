"""Users and bearer tokens. Tokens are shown once; only their SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gis_service.db.models import AdminDivision, AppUser
from gis_service.domain.scope import Principal, in_scope
from gis_service.errors import Conflict, Forbidden, InvalidInput, NotFound
from gis_service.types import Role

TOKEN_PREFIX = "gis_"  # noqa: S105 - a prefix, not a secret


def new_token() -> str:
    """A fresh random bearer token (256 bits)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """SHA-256 hex of a token: what the database keeps."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class NewUser:
    """A created user and the one copy of its token."""

    id: int
    login: str
    role: Role
    scope_code: str | None
    token: str


async def authenticate(conn: AsyncConnection, token: str) -> Principal | None:
    """The active user holding ``token``, or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
        return None
    row = (
        await conn.execute(
            select(AppUser.id, AppUser.login, AppUser.role, AppUser.scope_code).where(
                AppUser.token_hash == hash_token(token), AppUser.active.is_(True)
            )
        )
    ).one_or_none()
    if row is None:
        return None
    return Principal(
        login=row.login, role=Role(row.role), scope_code=row.scope_code, user_id=row.id
    )


async def create_user(
    conn: AsyncConnection,
    login: str,
    role: Role,
    scope_code: str | None,
    *,
    by: Principal | None = None,
    display_name: str | None = None,
    source: str | None = None,
) -> NewUser:
    """Create a user with a fresh token.

    Args:
        conn: connection inside a transaction.
        login: unique login name.
        role: the user's role.
        scope_code: admin code of the user's area; None (nationwide) only for admins.
        by: the admin creating it (None for the CLI, which runs with the server's rights);
            an admin may only create users inside their own scope.
        display_name: optional human name.
        source: provenance to record (default: the creating admin, or ``cli``).
    """
    if by is not None and by.role != Role.admin:
        raise Forbidden(detail="only admins create users", detail_zh="仅管理员可创建用户")
    if scope_code is None and role != Role.admin:
        raise InvalidInput(
            detail="a scope (admin code) is required for non-admin users",
            detail_zh="非管理员用户必须指定管辖区划代码",
        )
    if scope_code is None and by is not None and by.scope_code is not None:
        raise NotFound(detail="scope not found", detail_zh="区划不存在")
    if scope_code is not None:
        stmt = select(AdminDivision.code).where(AdminDivision.code == scope_code)
        if by is not None:
            stmt = stmt.where(in_scope(AdminDivision.code, by))
        if (await conn.execute(stmt)).scalar_one_or_none() is None:
            raise NotFound(
                detail=f"admin code {scope_code} not found",
                detail_zh=f"区划代码 {scope_code} 不存在",
            )
    exists = await conn.execute(select(AppUser.id).where(AppUser.login == login))
    if exists.scalar_one_or_none() is not None:
        raise Conflict(detail=f"login {login!r} exists", detail_zh=f"用户名 {login} 已存在")
    token = new_token()
    user_id = (
        await conn.execute(
            insert(AppUser)
            .values(
                login=login,
                role=role.value,
                scope_code=scope_code,
                token_hash=hash_token(token),
                display_name=display_name,
                source=source or (f"user:{by.login}" if by else "cli"),
            )
            .returning(AppUser.id)
        )
    ).scalar_one()
    return NewUser(id=user_id, login=login, role=role, scope_code=scope_code, token=token)


async def list_users(conn: AsyncConnection, principal: Principal) -> list[dict[str, object]]:
    """Users whose scope lies inside the caller's (admins only)."""
    if principal.role != Role.admin:
        raise Forbidden(detail="only admins list users", detail_zh="仅管理员可查看用户")
    stmt = select(
        AppUser.id, AppUser.login, AppUser.role, AppUser.scope_code, AppUser.active
    ).order_by(AppUser.login)
    if principal.scope_code is not None:
        stmt = stmt.where(in_scope(AppUser.scope_code, principal))
    return [dict(r._mapping) for r in await conn.execute(stmt)]
