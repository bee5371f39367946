"""Dependencies: the database handle, the current user, role checks (thin routes, fat deps)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gis_service.db.engine import QueryConn, ReadConnection, TxContext, transaction
from gis_service.db.listen import Listener
from gis_service.domain.scope import Principal
from gis_service.domain.users import PrincipalCache, TokenOwner, lookup_token
from gis_service.errors import Forbidden, NotAuthenticated
from gis_service.settings import Settings
from gis_service.types import Role


# Dependencies are ``async def`` on purpose: FastAPI runs plain ``def`` ones in a thread
# pool, a thread hop per dependency per request.
async def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


async def get_engine(request: Request) -> AsyncEngine:
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
    #: The read pool (opened by the query routes' lifespan); None falls back to ``tx``.
    read_pool: AsyncConnectionPool[Any] | None = None

    @asynccontextmanager
    async def tx(self, *, generic_plans: bool = False) -> AsyncIterator[AsyncConnection]:
        """One transaction, committed on success, rolled back on any error.

        ``generic_plans``: plan prepared statements once (index-driven point queries).
        """
        ctx = replace(self.ctx, generic_plans=True) if generic_plans else self.ctx
        async with transaction(self.engine, ctx) as conn:
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[QueryConn]:
        """A connection for one hot read-only point query (no transaction, generic plans).

        Its statements still filter by the caller's scope themselves (bound parameter); only
        the audit context, which no read uses, is not set.
        """
        if self.read_pool is None:
            async with self.tx(generic_plans=True) as conn:
                yield conn
            return
        async with ReadConnection(self.read_pool) as conn:
            yield conn


EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


async def current_principal(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal:
    """The caller from ``Authorization: Bearer``; anonymous read-only only when enabled.

    Token owners are remembered per worker (``app.state.principals``, opened by the auth
    routes' lifespan) and forgotten on any committed change to users or tokens; see
    :class:`~gis_service.domain.users.PrincipalCache`.
    """
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
    token = token.strip()

    async def lookup() -> TokenOwner | None:
        ctx = TxContext(request_id=getattr(request.state, "request_id", None))
        async with transaction(engine, ctx) as conn:
            return await lookup_token(conn, token)

    cache: PrincipalCache | None = getattr(request.app.state, "principals", None)
    owner = await (
        lookup() if cache is None else cache.resolve(token, lookup, after=changes_ticket(request))
    )
    if owner is None:
        raise NotAuthenticated(
            detail="invalid, expired or disabled token", detail_zh="令牌无效、已过期或已停用"
        )
    return owner.principal


def changes_ticket(request: Request) -> int | None:
    """The request's ticket on the worker's change feed, taken the first time it is asked for.

    Every cache check of one request passes it (principal, then locate details), so a
    request pays one strict round trip however many caches it reads.
    """
    ticket: int | None = getattr(request.state, "changes_ticket", None)
    if ticket is None:
        changes: Listener | None = getattr(request.app.state, "changes", None)
        if changes is None:
            return None
        ticket = changes.ticket()
        request.state.changes_ticket = ticket
    return ticket


CurrentUser = Annotated[Principal, Depends(current_principal)]


async def get_database(request: Request, engine: EngineDep, user: CurrentUser) -> Database:
    """The database handle for this request, acting as the current user."""
    return Database(
        engine,
        TxContext(
            actor=user.login,
            scope=user.scope_code,
            request_id=getattr(request.state, "request_id", None),
        ),
        getattr(request.app.state, "read_pool", None),
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
