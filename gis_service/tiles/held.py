"""Tile connections kept out of the pool between tiles, and a libpq wait without timers.

Why: a cold tile is one prepared statement, and per tile psycopg_pool's ``connection()``
(stats, locks, a check-in that inspects and maybe resets the connection) plus psycopg's
generic ``wait`` (a generator, an interval timer and reader/writer re-registration at every
step) cost more Python than the statement's own round trip (cProfile, process time: about a
quarter of the app's CPU per cold tile). Here a connection borrowed from the pool stays
borrowed while it is healthy and idle: handing it to the next tile is a list pop, and
waiting for the answer is one reader registration on its socket.

The socket of a held connection stays registered with the event loop while it is held (one
registration per connection instead of an add and a remove per tile: 8-15 us of CPU per
tile under uvloop); its callback reads whatever arrived (an answer, or a notification heard
while idle) into libpq and wakes the tile waiting for it. psycopg's own waits on the same
socket (preparing a statement, metadata queries) replace and then drop that registration,
so they go through :meth:`HeldConnections.wait`, which restores it.

The pool still opens, configures (warm-up, settings) and replaces connections: one that
broke, or is not idle after use, goes back to it and the next caller borrows afresh.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Generator
from typing import Any, TypeVar

import psycopg
from psycopg import generators
from psycopg.pq import ConnStatus, TransactionStatus
from psycopg.pq.abc import PGconn, PGresult
from psycopg_pool import AsyncConnectionPool, PoolTimeout

Conn = psycopg.AsyncConnection[Any]
T = TypeVar("T")


class _Watch:
    """The registered socket of one held connection, and the tile waiting on it if any."""

    __slots__ = ("error", "fd", "pgconn", "waiter")

    def __init__(self, pgconn: PGconn) -> None:
        self.pgconn = pgconn
        self.fd = pgconn.socket
        self.waiter: asyncio.Future[None] | None = None
        self.error: psycopg.OperationalError | None = None

    def readable(self) -> None:
        """Read what arrived into libpq (which clears the readiness), then wake the waiter."""
        if self.error is None:
            try:
                self.pgconn.consume_input()
            except psycopg.OperationalError as exc:
                self.error = exc  # lost: the tile waiting now (or next) raises it
                asyncio.get_running_loop().remove_reader(self.fd)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


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
        #: The watched socket of every held connection (idle here or in use).
        self._watches: dict[Conn, _Watch] = {}

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
        self._watch(fresh)
        return fresh

    def _watch(self, conn: Conn) -> None:
        """(Re)register ``conn``'s socket with the loop, for as long as it is held."""
        watch = self._watches.get(conn)
        if watch is None:
            watch = self._watches[conn] = _Watch(conn.pgconn)
        if watch.error is None:
            asyncio.get_running_loop().add_reader(watch.fd, watch.readable)

    def _unwatch(self, conn: Conn) -> None:
        watch = self._watches.pop(conn, None)
        if watch is not None and watch.error is None:
            asyncio.get_running_loop().remove_reader(watch.fd)

    async def wait(self, conn: Conn, gen: Generator[Any, Any, T]) -> T:
        """Psycopg's own wait for ``gen`` on a held connection, then the watch again."""
        return await self.through_psycopg(conn, conn.wait(gen))

    async def through_psycopg(self, conn: Conn, step: Awaitable[T]) -> T:
        """Await a psycopg operation on a held connection (it takes the socket), then watch."""
        try:
            return await step
        finally:
            if conn in self._watches:
                self._watch(conn)

    async def run(
        self, conn: Conn, name: bytes, values: list[bytes | None], result_format: int = 1
    ) -> list[PGresult]:
        """Results of ``EXECUTE name(values)`` on a held connection: send, await the answer."""
        pgconn = conn.pgconn
        pgconn.send_query_prepared(name, values, result_format=result_format)
        if pgconn.flush():  # the send buffer was full: let psycopg finish the whole exchange
            return await self.wait(conn, generators.fetch_many(pgconn))
        watch = self._watches[conn]
        results: list[PGresult] = []
        while True:
            if watch.error is not None:
                raise watch.error
            while not pgconn.is_busy():
                result = pgconn.get_result()
                if result is None:
                    return results
                results.append(result)
            waiter = watch.waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                watch.waiter = None

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
        self._unwatch(conn)
        await self.pool.putconn(conn)  # the pool discards or resets it

    async def close(self) -> None:
        """Give every idle connection back (before the pool closes)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            self._held -= 1
            self._unwatch(conn)
            await self.pool.putconn(conn)
