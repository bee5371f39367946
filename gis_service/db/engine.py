"""Engines, the pool, and the translation of driver errors into domain errors.

This module is the only place that opens connections. Query code receives an
``AsyncConnection`` (or ``Connection``) already inside a transaction.
"""

from __future__ import annotations

import contextlib
import logging
import re
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import psycopg
from psycopg.adapt import Transformer
from psycopg.generators import execute as _execute
from psycopg.pq import ExecStatus
from psycopg.pq.abc import PGresult
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy import Engine, TextClause, create_engine, text
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect
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

_T = TypeVar("_T")
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
    """The serving pool: short connect and pool timeouts, server-side budgets.

    No ``pool_pre_ping``: a ping is one more round trip on every checkout. A connection that
    died while idle (server restart, ``pg_terminate_backend``) is detected by the first
    statement of :func:`transaction` instead, which then retries once on a fresh connection
    (SQLAlchemy invalidates the rest of the pool on a disconnect), so clients still see no
    error (BAD_INPUTS F1).
    """
    return create_async_engine(
        url,
        pool_pre_ping=False,
        # Overflow connections are closed on return, so under steady load above
        # ``pool_size`` every request paid a new backend (fork + authentication): keep
        # them all, and let the rest queue for ``pool_timeout_s``.
        pool_size=db.pool_size + db.max_overflow,
        max_overflow=0,
        pool_timeout=db.pool_timeout_s,
        pool_recycle=1800,
        connect_args={"connect_timeout": db.connect_timeout_s, "options": _server_options(db)},
    )


def libpq_url(url: str) -> str:
    """A libpq URL from a SQLAlchemy one (``postgresql+psycopg://`` → ``postgresql://``)."""
    return "postgresql://" + url.split("://", 1)[1]


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
    return _by_state(state)


def _by_state(state: str) -> GisError | None:
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
    #: Plan prepared statements once (``plan_cache_mode = force_generic_plan``) for this
    #: transaction: the index-driven point queries, whose planning costs more than running.
    generic_plans: bool = False


#: Key in ``AsyncConnection.info`` telling query code the transaction already plans generically.
GENERIC_PLANS = "gis_generic_plans"

# One round trip sets everything LOCAL to the transaction (it also starts it).
_SET_LOCAL = text(
    "SELECT set_config('gis.actor', :actor, true), set_config('gis.scope', :scope, true),"
    " set_config('gis.request_id', :rid, true),"
    " set_config('plan_cache_mode', coalesce(:plan, current_setting('plan_cache_mode')), true)"
)


async def _begin(engine: AsyncEngine, ctx: TxContext) -> AsyncConnection:
    """A connection inside a fresh transaction, with the context set.

    A pooled connection whose server went away fails on this first statement; that is retried
    once on a new connection (nothing was done yet, so retrying is safe).
    """
    params = {
        "actor": ctx.actor or "",
        "scope": ctx.scope or "",
        "rid": ctx.request_id or "",
        "plan": "force_generic_plan" if ctx.generic_plans else None,
    }
    for attempt in (1, 2):
        conn = await engine.connect()
        try:
            await conn.execute(_SET_LOCAL, params)
        except DBAPIError as exc:
            await conn.close()
            if attempt == 2 or not exc.connection_invalidated:
                raise
            log.info("stale pooled connection replaced: %s", exc.orig)
            continue
        except BaseException:
            await conn.close()
            raise
        return conn
    raise AssertionError("unreachable")  # pragma: no cover


@contextlib.asynccontextmanager
async def transaction(engine: AsyncEngine, ctx: TxContext) -> AsyncIterator[AsyncConnection]:
    """One transaction with the actor set LOCAL to it (never session-wide on a pool)."""
    try:
        conn = await _begin(engine, ctx)
        try:
            if ctx.generic_plans:
                conn.info[GENERIC_PLANS] = True
            yield conn
            await conn.commit()
        finally:
            # Closing returns the connection to the pool, rolling back what was not committed.
            conn.info.pop(GENERIC_PLANS, None)
            await conn.close()
    except (DBAPIError, PoolTimeoutError, OSError) as exc:
        mapped = translate(exc) if not isinstance(exc, OSError) else DatabaseUnavailable()
        if mapped is None:
            raise
        log.warning("database error mapped to %s: %s", mapped.code, exc)
        raise mapped from exc


# ------------------------------------------------------------------ the read pool
# The hot point queries (locate one point, nearest, nearby) are single read-only statements:
# they need no transaction, no audit context and no plan switch per request. They run on
# raw psycopg connections in autocommit mode that plan prepared statements generically for
# the whole session: one round trip per statement instead of four (BEGIN, SET LOCAL, query,
# COMMIT), and no SQLAlchemy execution layer (py-spy: a third of the CPU of such a request).


#: Read connections per main-pool connection (see :func:`make_read_pool`).
READ_POOL_FACTOR = 2


def make_read_pool(url: str, db: DatabaseSettings) -> AsyncConnectionPool[Any]:
    """A small pool of autocommit connections for :class:`ReadConnection` (not opened)."""
    return AsyncConnectionPool(
        libpq_url(url),
        min_size=1,
        # Twice the main pool: a worker under load has a dozen or more point queries in
        # flight, and a request that has to queue for a connection costs the pool a waiter,
        # a timer and a task (in-process, 16 concurrent locates: app CPU 1.4 -> 1.0 ms each).
        max_size=READ_POOL_FACTOR * db.pool_size,
        timeout=db.pool_timeout_s,
        open=False,
        name="gis-read",
        kwargs={
            "autocommit": True,
            "prepare_threshold": 0,
            "connect_timeout": db.connect_timeout_s,
            # Bitmap scans off: the generic plan of locate otherwise reads every open shelter
            # of the area through a bitmap and sorts them instead of walking the KNN index
            # (PG CPU per locate 1.70 -> 1.31 ms on the city demo; nearest and nearby unchanged).
            "options": _server_options(db)
            + " -c plan_cache_mode=force_generic_plan -c enable_bitmapscan=off",
            "application_name": "gis-read",
        },
    )


class ReadRow:
    """A result row with the two access styles the query code uses (``r.x``, ``r._mapping``)."""

    __slots__ = ("_mapping",)

    def __init__(self, mapping: dict[str, Any]) -> None:
        self._mapping = mapping

    def __getattr__(self, name: str) -> Any:
        try:
            return self._mapping[name]
        except KeyError:
            raise AttributeError(name) from None


class ReadResult:
    """The rows of one statement (``one()``, ``all()``, ``one_or_none()``, ``scalar_one()``)."""

    def __init__(self, rows: list[ReadRow]) -> None:
        self._rows = rows

    def all(self) -> list[ReadRow]:
        """Every row."""
        return self._rows

    def one_or_none(self) -> ReadRow | None:
        """The only row, or None."""
        if len(self._rows) > 1:
            raise ValueError("more than one row")
        return self._rows[0] if self._rows else None

    def one(self) -> ReadRow:
        """The only row."""
        row = self.one_or_none()
        if row is None:
            raise ValueError("no row")
        return row

    def scalar_one(self) -> Any:
        """The first column of the only row."""
        return next(iter(self.one()._mapping.values()))


_PSYCOPG_SQL: dict[str, str] = {}


def _psycopg_sql(clause: TextClause) -> str:
    """``text()`` SQL with ``:name`` binds as psycopg ``%(name)s`` (via SQLAlchemy's compiler)."""
    sql = _PSYCOPG_SQL.get(clause.text)
    if sql is None:
        sql = _PSYCOPG_SQL[clause.text] = str(clause.compile(dialect=_DIALECT))
    return sql


_DIALECT = psycopg_dialect.dialect()  # type: ignore[no-untyped-call]


def _row(cursor: Any) -> Callable[[Sequence[Any]], ReadRow]:
    # Field names straight from the libpq result: ``description`` makes a Column object per
    # field of every statement (cProfile: a tenth of the CPU of a 12-column nearest).
    res = cursor.pgresult
    names = [(res.fname(i) or b"").decode() for i in range(res.nfields)] if res else []

    def make(values: Sequence[Any]) -> ReadRow:
        return ReadRow(dict(zip(names, values, strict=True)))

    return make


class ReadConnection:
    """One pooled autocommit connection for read-only statements (see :func:`make_read_pool`).

    ``execute(text(...), params)`` mirrors SQLAlchemy's for the query package. A connection
    that died while idle in the pool fails on its first statement, which is then retried
    once on a fresh one (BAD_INPUTS F1, no ping per checkout).
    """

    #: Statements are planned generically for the whole session (``sqlparts.use_generic_plans``).
    info: ClassVar[dict[str, Any]] = {GENERIC_PLANS: True}

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._used = False

    async def __aenter__(self) -> ReadConnection:
        try:
            self._conn = await self._pool.getconn()
        except PoolTimeout as exc:
            raise DatabaseUnavailable(
                detail="database busy (connection pool exhausted), retry"
            ) from exc
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await self._pool.putconn(conn)

    async def execute(self, clause: TextClause, params: dict[str, Any] | None = None) -> ReadResult:
        """Run one statement and fetch its rows; driver errors become domain errors."""
        sql = _psycopg_sql(clause)

        async def run(conn: psycopg.AsyncConnection[Any]) -> ReadResult:
            cur = conn.cursor(row_factory=_row)
            await cur.execute(sql, params, prepare=True)
            rows: list[ReadRow] = await cur.fetchall()
            return ReadResult(rows)

        return await self._live(run)

    async def _live(self, run: Callable[[psycopg.AsyncConnection[Any]], Awaitable[_T]]) -> _T:
        """``run(connection)`` with driver errors mapped to domain errors.

        A pooled connection that died idle fails its first statement: it is replaced and
        the statement run once more, invisibly to the client (no pre-ping on the hot path).
        """
        for attempt in (1, 2):
            conn = self._conn
            assert conn is not None, "use ReadConnection as an async context manager"
            try:
                out = await run(conn)
            except psycopg.OperationalError as exc:
                if attempt == 1 and not self._used and conn.broken:
                    log.info("stale pooled read connection replaced: %s", exc)
                    await self._pool.putconn(conn)
                    self._conn = None
                    self._conn = await self._pool.getconn()
                    continue
                raise _mapped(exc) from exc
            except psycopg.Error as exc:
                raise _mapped(exc) from exc
            self._used = True
            return out
        raise AssertionError("unreachable")  # pragma: no cover

    async def scalar_text(self, clause: TextClause, params: dict[str, Any]) -> bytes:
        """The text of the one value of a one-row statement (UTF-8), straight through libpq.

        For the hottest statement (locate's, one row of one JSON text): psycopg's cursor
        (query conversion, parameter dumpers, result set-up) costs about 0.1 ms of Python a
        call, twice the rest of this path. The statement is prepared once per connection
        under a name of its own; values go as text (``str``, ``int``, ``float``, None).
        """
        res = await self._raw(clause, params)
        value = res.get_value(0, 0) if res.ntuples == 1 and res.nfields == 1 else None
        if value is None:
            raise ValueError("expected one row of one non-null value")
        return bytes(value)

    async def execute_raw(self, clause: TextClause, params: dict[str, Any]) -> ReadResult:
        """:meth:`execute` through the path of :meth:`scalar_text` (same rows, same types).

        The values are loaded by psycopg's own loaders for the connection; only the cursor
        machinery around them is skipped. For statements whose parameters the server can
        type from the text alone (casts, function arguments, ``LIMIT``).
        """
        res = await self._raw(clause, params)
        assert self._conn is not None
        names = [(res.fname(i) or b"").decode() for i in range(res.nfields)]
        loader = Transformer(self._conn)
        loader.set_pgresult(res)
        return ReadResult(
            loader.load_rows(0, res.ntuples, lambda v: ReadRow(dict(zip(names, v, strict=True))))
        )

    async def _raw(self, clause: TextClause, params: dict[str, Any]) -> PGresult:
        """Run ``clause`` as a named prepared statement through libpq; its result."""
        name, sql, order = _raw_statement(clause)
        values = [None if (v := params[k]) is None else _raw_text(v) for k in order]

        async def run(conn: psycopg.AsyncConnection[Any]) -> PGresult:
            prepared = _RAW_PREPARED.setdefault(conn, set())
            if name not in prepared:
                conn.pgconn.send_prepare(name, sql)
                # Already there: prepared by a call cancelled before it saw the answer.
                with contextlib.suppress(psycopg.errors.DuplicatePreparedStatement):
                    _raw_check(await conn.wait(_execute(conn.pgconn)), conn)
                prepared.add(name)
            conn.pgconn.send_query_prepared(name, values)
            return _raw_check(await conn.wait(_execute(conn.pgconn)), conn)

        return await self._live(run)


#: Statements :meth:`ReadConnection.scalar_text` prepared, per connection.
_RAW_PREPARED: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], set[bytes]] = (
    weakref.WeakKeyDictionary()
)
_RAW_SQL: dict[str, tuple[bytes, bytes, tuple[str, ...]]] = {}
_RAW_PARAM = re.compile(r"%\((\w+)\)s")


def _raw_statement(clause: TextClause) -> tuple[bytes, bytes, tuple[str, ...]]:
    """Name, ``$n`` SQL and parameter order of ``clause`` for libpq (cached per text)."""
    hit = _RAW_SQL.get(clause.text)
    if hit is None:
        order: list[str] = []

        def number(m: re.Match[str]) -> str:
            if m.group(1) not in order:
                order.append(m.group(1))
            return f"${order.index(m.group(1)) + 1}"

        sql = _RAW_PARAM.sub(number, _psycopg_sql(clause)).replace("%%", "%")
        name = f"gis_raw_{len(_RAW_SQL)}"
        hit = _RAW_SQL[clause.text] = (name.encode(), sql.encode(), tuple(order))
    return hit


def _raw_text(value: Any) -> bytes:
    if isinstance(value, float):
        return repr(value).encode()
    if isinstance(value, (str, int)):
        return str(value).encode()
    raise TypeError(f"no text form for {type(value).__name__}")


def _raw_check(results: list[PGresult], conn: psycopg.AsyncConnection[Any]) -> PGresult:
    """The last result, or the server's error raised as psycopg raises it."""
    res = results[-1]
    if res.status not in (ExecStatus.COMMAND_OK, ExecStatus.TUPLES_OK):
        raise psycopg.errors.error_from_result(res, encoding=conn.info.encoding)
    return res


#: What a point query runs on: a transaction of the main pool, or a read connection.
QueryConn = AsyncConnection | ReadConnection


def _mapped(exc: psycopg.Error) -> Exception:
    state = exc.sqlstate
    mapped = _by_state(state) if state else DatabaseUnavailable()
    if mapped is None:
        return exc
    log.warning("database error mapped to %s: %s", mapped.code, exc)
    return mapped
