"""The libpq path of the point queries (``ReadConnection.scalar_text``/``execute_raw``), real DB.

Same text as the psycopg cursor gives, prepared once per connection, a stale pooled
connection replaced, and server errors mapped to the same domain errors as ``execute``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import psycopg
import pytest
from psycopg.generators import execute
from sqlalchemy import text

from gis_service.db.engine import ReadConnection, _raw_statement, make_read_pool
from gis_service.demo.loader import psycopg_conninfo
from gis_service.domain.scope import Principal
from gis_service.errors import QueryTooExpensive
from gis_service.query import layers as qlayers
from gis_service.query import locate as qlocate
from gis_service.query import nearby as qnearby
from gis_service.query.sqlparts import cached_text
from gis_service.settings import Settings
from gis_service.types import Role

Body = Callable[[ReadConnection], Awaitable[Any]]


def _with_read(url: str, settings: Settings, *bodies: Body) -> list[Any]:
    """Run ``bodies`` one after the other, each on a checkout of one private read pool."""

    async def run() -> list[Any]:
        pool = make_read_pool(url, settings.db)
        await pool.open(wait=True)
        try:
            out = []
            for body in bodies:
                async with ReadConnection(pool) as conn:
                    out.append(await body(conn))
            return out
        finally:
            await pool.close()

    return asyncio.run(run())


@pytest.fixture(scope="module")
def points(demo_url: str) -> list[tuple[float, float]]:
    """Building points of the district (one per 500th building)."""
    with psycopg.connect(psycopg_conninfo(demo_url)) as c:
        rows = c.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM building"
            " WHERE admin_code LIKE '430204%' AND id % 500 = 0 ORDER BY id LIMIT 20) s"
        ).fetchall()
    return [(float(x), float(y)) for x, y in rows]


@pytest.mark.parametrize("scope", [None, "430204", "440304"])
def test_scalar_text_equals_the_cursor(
    demo_url: str, settings: Settings, points: list[tuple[float, float]], scope: str | None
) -> None:
    """The locate statement's text through libpq equals psycopg's, for each area scope."""
    who = Principal("raw", Role.commander, scope)
    statement, common = qlocate._prepare(who, 1)

    def params(x: float, y: float) -> dict[str, Any]:
        return {**common, "xs": f"{{{x!r}}}", "ys": f"{{{y!r}}}", "ix": "{1}"}

    async def both(conn: ReadConnection) -> list[tuple[Any, Any]]:
        return [
            (
                (await conn.execute(statement, params(x, y))).scalar_one(),
                (await conn.scalar_text(statement, params(x, y))).decode(),
            )
            for x, y in points
        ]

    (pairs,) = _with_read(demo_url, settings, both)
    assert all(cursor == raw for cursor, raw in pairs)
    villages = [orjson.loads(raw)[0][1] for _, raw in pairs]
    assert sum(v is not None for v in villages) == (0 if scope == "440304" else len(points))


def test_prepared_once_per_connection(demo_url: str, settings: Settings) -> None:
    """Repeated calls reuse one named statement; values go as text (float, int, str)."""
    clause = text("SELECT (CAST(:a AS float8) + CAST(:b AS int))::text || CAST(:c AS text)")

    async def body(conn: ReadConnection) -> tuple[list[bytes], int]:
        got = [await conn.scalar_text(clause, {"a": 0.5, "b": i, "c": "号"}) for i in range(3)]
        names = (
            await conn.execute(
                text(
                    "SELECT count(*) AS n FROM pg_prepared_statements"
                    " WHERE name LIKE 'gis_raw_%' AND statement LIKE '%CAST($3 AS text)%'"
                )
            )
        ).scalar_one()
        return got, int(names)

    ((got, names),) = _with_read(demo_url, settings, body)
    assert got == [f"{0.5 + i}号".encode() for i in range(3)]
    assert names == 1


def test_stale_connection_is_replaced(demo_url: str, settings: Settings) -> None:
    """A pooled connection killed while idle fails once, then a fresh one answers."""
    clause = text("SELECT CAST(:v AS text) || pg_backend_pid()::text")

    async def first(conn: ReadConnection) -> int:
        pid = int((await conn.scalar_text(clause, {"v": ""})).decode())
        with psycopg.connect(psycopg_conninfo(demo_url), autocommit=True) as c:
            c.execute("SELECT pg_terminate_backend(%s)", (pid,))
        await asyncio.sleep(0.2)
        return pid

    async def second(conn: ReadConnection) -> int:
        return int((await conn.scalar_text(clause, {"v": ""})).decode())

    killed, fresh = _with_read(demo_url, settings, first, second)
    assert fresh != killed


def test_statement_timeout_is_the_domain_error(demo_url: str, settings: Settings) -> None:
    """``statement_timeout`` on this path is QueryTooExpensive (503), as with ``execute``."""
    limit = text("SELECT set_config('statement_timeout', CAST(:ms AS text), false)")
    sleep = text("SELECT pg_sleep(CAST(:s AS float8))::text")

    async def body(conn: ReadConnection) -> type[Exception] | None:
        await conn.scalar_text(limit, {"ms": 50})
        try:
            await conn.scalar_text(sleep, {"s": 2.0})
        except QueryTooExpensive as exc:
            return type(exc)
        return None

    assert _with_read(demo_url, settings, body) == [QueryTooExpensive]


def test_statement_prepared_by_a_cancelled_call(demo_url: str, settings: Settings) -> None:
    """A name the server already holds (its first caller was cancelled) is used, not refused."""
    clause = text("SELECT CAST(:v AS text) || '!'")
    name, sql, _ = _raw_statement(clause)

    async def body(conn: ReadConnection) -> bytes:
        raw = conn._conn
        assert raw is not None
        raw.pgconn.send_query(b"PREPARE " + name + b" AS " + sql)
        await raw.wait(execute(raw.pgconn))
        return await conn.scalar_text(clause, {"v": "ok"})

    assert _with_read(demo_url, settings, body) == [b"ok!"]


def test_execute_raw_equals_execute_for_nearest_of_every_layer(
    demo_url: str, settings: Settings, points: list[tuple[float, float]]
) -> None:
    """Same rows and Python types (dates, decimals, None) as the cursor, layer by layer."""
    who = Principal("raw", Role.commander, "430204")
    x, y = points[0]

    async def both(conn: ReadConnection) -> list[tuple[str, list[Any], list[Any]]]:
        out = []
        for name in sorted(qlayers.NAMES):
            sql = cached_text(qnearby._nearest_sql(qlayers.get(name), who.scope_code))
            params = {"lon": x, "lat": y, "k": 7, "scope": who.scope_code}
            cursor = [r._mapping for r in (await conn.execute(sql, params)).all()]
            raw = [r._mapping for r in (await conn.execute_raw(sql, params)).all()]
            out.append((name, cursor, raw))
        return out

    (layers,) = _with_read(demo_url, settings, both)
    assert sum(len(cursor) for _, cursor, _ in layers) > 20
    for name, cursor, raw in layers:
        assert raw == cursor, name
        assert [[type(v) for v in r.values()] for r in raw] == [
            [type(v) for v in r.values()] for r in cursor
        ], name
