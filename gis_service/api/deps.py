"""Dependencies: the database handle, the current user, role checks (thin routes, fat deps)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gis_service.db.engine import TxContext, transaction
from gis_service.domain.scope import Principal
from gis_service.domain.users import authenticate
from gis_service.errors import Forbidden, NotAuthenticated
from gis_service.settings import Settings
from gis_service.types import Role


def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> AsyncEngine:
    """The lifespan-owned pool."""
    engine: AsyncEngine = request.app.state.engine
    return engine


@dataclass(frozen=True)
class Database:
    """The pool plus who is acting; ``tx()`` opens one audited transaction.

    Endpoints open the transaction themselves so it commits before the response is sent.
    """

    engine: AsyncEngine
    ctx: TxContext

    @asynccontextmanager
    async def tx(self) -> AsyncIterator[AsyncConnection]:
        """One transaction, committed on success, rolled back on any error."""
        async with transaction(self.engine, self.ctx) as conn:
            yield conn


EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


async def current_principal(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal:
    """The caller from ``Authorization: Bearer``; anonymous read-only only when enabled."""
    if authorization is None:
        if settings.auth.anonymous_read:
            return Principal(
                login="anonymous",
                role=Role.viewer,
                scope_code=settings.auth.anonymous_scope,
                anonymous=True,
            )
        raise NotAuthenticated()
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated(detail="use Authorization: Bearer <token>")
    ctx = TxContext(request_id=getattr(request.state, "request_id", None))
    async with transaction(engine, ctx) as conn:
        principal = await authenticate(conn, token.strip())
    if principal is None:
        raise NotAuthenticated(detail="invalid or disabled token", detail_zh="令牌无效或已停用")
    return principal


CurrentUser = Annotated[Principal, Depends(current_principal)]


def get_database(request: Request, engine: EngineDep, user: CurrentUser) -> Database:
    """The database handle for this request, acting as the current user."""
    return Database(
        engine,
        TxContext(
            actor=user.login,
            scope=user.scope_code,
            request_id=getattr(request.state, "request_id", None),
        ),
    )


DbDep = Annotated[Database, Depends(get_database)]


def require_roles(*roles: Role) -> Callable[[Principal], Coroutine[Any, Any, Principal]]:
    """A dependency that lets only ``roles`` through (403 otherwise)."""
    allowed = frozenset(roles)

    async def check(user: CurrentUser) -> Principal:
        if user.role not in allowed or user.anonymous:
            raise Forbidden()
        return user

    return check
