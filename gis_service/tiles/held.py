"""Tile connections kept out of the pool between tiles, and a libpq wait without timers.

Why: a cold tile is one prepared statement, and per tile psycopg_pool's ``connection()``
(stats, locks, a check-in that inspects and maybe resets the connection) plus psycopg's
generic ``wait`` (a generator, an interval timer and reader/writer re-registration at every
step) cost more Python than the statement's own round trip (cProfile, process time: about a
quarter of the app's CPU per cold tile). Here a connection borrowed from the pool stays
borrowed while it is healthy and idle: handing it to the next tile is a list pop, and
waiting for the answer is one reader registration on its socket.

The pool still opens, configures (warm-up, settings) and replaces connections: one that
broke, or is not idle after use, goes back to it and the next caller borrows afresh.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import psycopg
from psycopg import generators
from psycopg.pq import ConnStatus, TransactionStatus
from psycopg.pq.abc import PGconn, PGresult
from psycopg_pool import AsyncConnectionPool, PoolTimeout

Conn = psycopg.AsyncConnection[Any]


class HeldConnections:
    """At most ``limit`` pool connections, reused in LIFO order (the warmest first)."""

    def __init__(self, pool: AsyncConnectionPool[Any], limit: int, timeout: float) -> None:
        self.pool = pool
        self.limit = limit
        self.timeout = timeout
        self._idle: list[Conn] = []
        self._held = 0
        #: Callers waiting for a connection; a result of None means "borrow from the pool".
        self._waiters: collections.deque[asyncio.Future[Conn | None]] = collections.deque()

    @property
    def held(self) -> int:
        """Connections currently borrowed from the pool (idle here or in use)."""
        return self._held

    def idle_backends(self) -> tuple[int, ...]:
        """Backend pids of the idle held connections (for operators and tests)."""
        return tuple(conn.pgconn.backend_pid for conn in self._idle)

    async def acquire(self) -> Conn:
        """An idle held connection, else a new one from the pool, else wait for a release.

        Raises:
            PoolTimeout: none could be had within ``timeout`` seconds.
        """
        if self._idle:
            return self._idle.pop()
        if self._held >= self.limit:
            waiter: asyncio.Future[Conn | None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                conn = await asyncio.wait_for(waiter, self.timeout)
            except TimeoutError:
                raise PoolTimeout(f"no tile connection within {self.timeout} s") from None
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    given = waiter.result()
                    if given is not None:
                        await self.release(given)
                    else:
                        self._pass_turn()
                raise
            if conn is not None:
                return conn
        self._held += 1
        try:
            fresh: Conn = await self.pool.getconn(timeout=self.timeout)
        except BaseException:
            self._held -= 1
            self._pass_turn()
            raise
        return fresh

    def _pass_turn(self) -> None:
        """A slot freed without a connection: the first waiter borrows from the pool."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def release(self, conn: Conn) -> None:
        """Keep ``conn`` for the next tile if healthy and idle, else give it back to the pool."""
        pgconn = conn.pgconn
        if (
            pgconn.status == ConnStatus.OK
            and pgconn.transaction_status == TransactionStatus.IDLE
            and not conn.closed
        ):
            while self._waiters:
                waiter = self._waiters.popleft()
                if not waiter.done():
                    waiter.set_result(conn)
                    return
            self._idle.append(conn)
            return
        self._held -= 1
        self._pass_turn()
        await self.pool.putconn(conn)  # the pool discards or resets it

    async def close(self) -> None:
        """Give every idle connection back (before the pool closes)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            self._held -= 1
            await self.pool.putconn(conn)


async def run_prepared(
    conn: Conn, name: bytes, values: list[bytes | None], result_format: int = 1
) -> list[PGresult]:
    """Results of ``EXECUTE name(values)``: send, then wait on the socket until answered."""
    pgconn = conn.pgconn
    pgconn.send_query_prepared(name, values, result_format=result_format)
    if pgconn.flush():  # the send buffer was full: let psycopg finish the whole exchange
        return await conn.wait(generators.fetch_many(pgconn))
    return await _results(pgconn)


async def _results(pgconn: PGconn) -> list[PGresult]:
    """Every result of the query in flight (libpq is told to read only when data arrived)."""
    results: list[PGresult] = []
    loop = asyncio.get_running_loop()
    fd = pgconn.socket
    while True:
        pgconn.consume_input()
        while not pgconn.is_busy():
            result = pgconn.get_result()
            if result is None:
                return results
            results.append(result)
        readable: asyncio.Future[None] = loop.create_future()
        loop.add_reader(fd, _wake, readable)
        try:
            await readable
        finally:
            loop.remove_reader(fd)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
