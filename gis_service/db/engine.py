"""Engines, the pool, and the translation of driver errors into domain errors.

This module is the only place that opens connections. Query code receives an
``AsyncConnection`` (or ``Connection``) already inside a transaction.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from gis_service.errors import (
    Conflict,
    DatabaseUnavailable,
    GisError,
    InvalidInput,
    QueryTooExpensive,
    ReadOnlyDatabase,
)
from gis_service.settings import DatabaseSettings

log = logging.getLogger(__name__)


def resolve_url(db: DatabaseSettings, *, start: bool = True) -> str:
    """The SQLAlchemy URL to use: ``DATABASE_URL`` if set, else the embedded cluster's.

    Args:
        db: database settings.
        start: bring the embedded cluster up if it is not running.
    """
    if db.url:
        url = db.url
        if url.startswith("postgres://"):
            url = "postgresql://" + url.removeprefix("postgres://")
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        return url
    from gis_service.db.cluster import EmbeddedCluster

    cluster = EmbeddedCluster(db.data_dir, dbname=db.dbname)
    info = cluster.up() if start else cluster.status()
    if info.url is None:
        raise DatabaseUnavailable(
            detail="the embedded database is not running; run `gis-service db up`",
            detail_zh="内置数据库未启动，请运行 gis-service db up",
        )
    return info.url


def _server_options(db: DatabaseSettings) -> str:
    return (
        f"-c statement_timeout={db.statement_timeout_ms}"
        f" -c lock_timeout={db.lock_timeout_ms}"
        f" -c idle_in_transaction_session_timeout={db.idle_in_transaction_timeout_ms}"
        " -c timezone=Asia/Shanghai"
        " -c max_parallel_workers_per_gather=0"
    )


def make_async_engine(url: str, db: DatabaseSettings) -> AsyncEngine:
    """The serving pool: pre-ping, short connect and pool timeouts, server-side budgets."""
    return create_async_engine(
        url,
        pool_pre_ping=True,
        pool_size=db.pool_size,
        max_overflow=db.max_overflow,
        pool_timeout=db.pool_timeout_s,
        pool_recycle=1800,
        connect_args={"connect_timeout": db.connect_timeout_s, "options": _server_options(db)},
    )


def make_sync_engine(url: str, db: DatabaseSettings | None = None) -> Engine:
    """A synchronous engine for the CLI, loaders and migrations (no statement budget)."""
    opts = {"connect_timeout": (db.connect_timeout_s if db else 5)}
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=2,
        connect_args={**opts, "options": "-c timezone=Asia/Shanghai"},
    )


# SQLSTATE classes → domain errors (STYLE lesson 3, BAD_INPUTS §3.4).
_UNAVAILABLE = {"57P01", "57P02", "57P03", "08000", "08001", "08003", "08004", "08006", "53300"}
_CONFLICT = {"23505", "23503", "40001", "40P01", "55P03"}
_INVALID = {"23514", "23502", "22P02", "22003", "22023", "XX000"}


def translate(exc: BaseException) -> GisError | None:
    """Map a driver/pool exception to a domain error, or None if it is not a DB error."""
    if isinstance(exc, PoolTimeoutError):
        return DatabaseUnavailable(detail="database busy (connection pool exhausted), retry")
    if not isinstance(exc, DBAPIError):
        return None
    orig = exc.orig
    state: str | None = getattr(orig, "sqlstate", None)
    if state is None and getattr(exc, "connection_invalidated", False):
        return DatabaseUnavailable()
    if state is None:
        # psycopg raises OperationalError without SQLSTATE when it cannot connect.
        return DatabaseUnavailable() if "Operational" in type(orig).__name__ else None
    if state in _UNAVAILABLE:
        return DatabaseUnavailable()
    if state == "57014":
        return QueryTooExpensive()
    if state in {"25006", "53100"}:
        return ReadOnlyDatabase()
    if state in _CONFLICT:
        return Conflict()
    if state in _INVALID:
        return InvalidInput(detail="the data was refused by a database rule")
    return None


@contextlib.contextmanager
def db_errors() -> Iterator[None]:
    """Re-raise driver errors as domain errors (sync code)."""
    try:
        yield
    except (DBAPIError, PoolTimeoutError) as exc:
        mapped = translate(exc)
        if mapped is None:
            raise
        log.warning("database error mapped to %s: %s", mapped.code, exc)
        raise mapped from exc


@dataclass(frozen=True)
class TxContext:
    """Who is acting in a transaction: read by the audit trigger via ``SET LOCAL``."""

    actor: str | None = None
    scope: str | None = None
    request_id: str | None = None


_SET_LOCAL = text(
    "SELECT set_config('gis.actor', :actor, true), set_config('gis.scope', :scope, true),"
    " set_config('gis.request_id', :rid, true)"
)


@contextlib.asynccontextmanager
async def transaction(engine: AsyncEngine, ctx: TxContext) -> AsyncIterator[AsyncConnection]:
    """One transaction with the actor set LOCAL to it (never session-wide on a pool)."""
    try:
        async with engine.begin() as conn:
            await conn.execute(
                _SET_LOCAL,
                {"actor": ctx.actor or "", "scope": ctx.scope or "", "rid": ctx.request_id or ""},
            )
            yield conn
    except (DBAPIError, PoolTimeoutError, OSError) as exc:
        mapped = translate(exc) if not isinstance(exc, OSError) else DatabaseUnavailable()
        if mapped is None:
            raise
        log.warning("database error mapped to %s: %s", mapped.code, exc)
        raise mapped from exc
