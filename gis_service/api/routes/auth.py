"""Password login (``POST /auth/login``) and the per-worker principal cache's lifetime.

The web map signs in here and then sends the token like any other: ``Authorization: Bearer``.
Login tokens expire after ``GIS_AUTH_LOGIN_TOKEN_HOURS``; failed logins are throttled per
login and per client address (429 + ``Retry-After``, BAD_INPUTS E10). An unknown login and a
wrong password get the same 401 body.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field

from gis_service.api.deps import EngineDep, SettingsDep
from gis_service.api.routes import router
from gis_service.db.engine import TxContext, transaction
from gis_service.domain import users
from gis_service.errors import NotAuthenticated, TooManyRequests


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Own the principal cache and its change feed for the app's lifetime."""
    if not app.state.settings.auth.principal_cache:
        yield
        return
    cache = users.PrincipalCache(app.state.changes)
    await cache.open()
    app.state.principals = cache
    try:
        yield
    finally:
        app.state.principals = None


api = router("auth")
api.lifespan_context = _lifespan


class LoginIn(BaseModel):
    """A login name and its password."""

    model_config = ConfigDict(extra="forbid", strict=True)

    login: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


@api.post("/auth/login", summary="Sign in with login and password; returns an expiring token")
async def login(
    body: LoginIn, request: Request, engine: EngineDep, settings: SettingsDep
) -> dict[str, Any]:
    """``{"token", "login", "role", "scope_code", "display_name", "expires_at"}``."""
    auth = settings.auth
    policy = users.LoginPolicy(
        token_hours=auth.login_token_hours,
        max_failures=auth.login_max_failures,
        max_failures_per_address=auth.login_max_failures_per_address,
        window_s=auth.login_window_s,
    )
    address = request.client.host if request.client else "unknown"
    ctx = TxContext(actor="auth-login", request_id=getattr(request.state, "request_id", None))
    # The failure is recorded in this transaction, which commits before the 401 is raised.
    async with transaction(engine, ctx) as conn:
        outcome = await users.login_with_password(conn, body.login, body.password, address, policy)
    if outcome.retry_after is not None:
        raise TooManyRequests(
            detail=f"too many failed logins, retry in {outcome.retry_after} s",
            detail_zh=f"登录失败次数过多，请 {outcome.retry_after} 秒后再试",
            retry_after=outcome.retry_after,
        )
    if outcome.owner is None or outcome.token is None:
        raise NotAuthenticated(detail="wrong login or password", detail_zh="用户名或密码错误")
    who = outcome.owner.principal
    assert outcome.owner.expires_at is not None
    return {
        "token": outcome.token,
        "login": who.login,
        "role": who.role.value,
        "scope_code": who.scope_code,
        "display_name": outcome.owner.display_name,
        "expires_at": outcome.owner.expires_at.isoformat(),
    }
