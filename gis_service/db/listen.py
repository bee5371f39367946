"""A ``LISTEN`` connection that keeps an in-process cache honest about commits from anywhere.

Statement triggers ``pg_notify`` a channel when a table changes (API, CLI, ``psql``). A cache
calls :meth:`Listener.check` before trusting an entry:

* ``strict``: one round trip on the listening connection (an empty query sent through
  libpq, ~30 µs of Python), shared by every caller that arrives while none is under way.
  The backend sends every notification it was signalled for before it answers, and a
  writer's COMMIT signals listeners before its client is told the commit happened, so
  every change whose COMMIT had returned before the caller arrived has been applied. What
  it does not promise: a write still committing while the caller is served may or may not
  show (it was not "before").
* ``notify``: only what already reached the socket is read (no round trip); stale for the
  notification latency.

When the connection is lost the cache is reset and must be bypassed (``check`` is False) until
a background task has re-opened it: an unreachable database never blocks a request here.
One connection may serve several channels (the tile cache and the tile path's principal
memo), so one round trip makes all of them fresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

import psycopg
from psycopg import generators
from psycopg.pq import ExecStatus

log = logging.getLogger(__name__)

Freshness = Literal["strict", "notify"]
_CHANNEL = re.compile(r"[a-z_][a-z0-9_]{0,62}")


async def _ping(conn: psycopg.AsyncConnection[Any]) -> None:
    """One empty-query round trip through libpq (no cursor): what strict freshness waits for.

    psycopg hands the notifications that arrive before the answer to the notify handler.
    """
    pgconn = conn.pgconn
    pgconn.send_query(b"")
    for result in await conn.wait(generators.execute(pgconn)):
        if result.status == ExecStatus.FATAL_ERROR:
            raise psycopg.errors.error_from_result(result)


class Listener:
    """One autocommit connection listening on ``handlers``' channels; payloads go to them."""

    def __init__(
        self,
        conninfo: str,
        handlers: Mapping[str, Callable[[str], object]],
        on_reset: Callable[[], object],
        *,
        freshness: Freshness = "strict",
        retry_s: float = 1.0,
        app_name: str = "gis-listener",
    ) -> None:
        for channel in handlers:
            if not _CHANNEL.fullmatch(channel):  # constants only; checked anyway
                raise ValueError(f"bad channel name {channel!r}")
        self.conninfo = conninfo
        self.handlers = dict(handlers)
        self.on_reset = on_reset
        self.freshness = freshness
        self.retry_s = retry_s
        self.app_name = app_name
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._next_round: asyncio.Future[None] | None = None
        self._pumping = False
        self._next_try = 0.0

    @property
    def healthy(self) -> bool:
        """Whether notifications are being received (otherwise bypass the cache)."""
        return self._conn is not None

    def _heard(self, channel: str, payload: str) -> None:
        handler = self.handlers.get(channel)
        if handler is not None:
            handler(payload)

    def _on_notify(self, note: psycopg.Notify) -> None:
        self._heard(note.channel, note.payload)

    async def connect(self) -> bool:
        """Open the listening connection now; resets the cache (changes may have been missed)."""
        try:
            conn = await psycopg.AsyncConnection.connect(
                self.conninfo, autocommit=True, connect_timeout=2, application_name=self.app_name
            )
            conn.add_notify_handler(self._on_notify)
            for channel in self.handlers:
                await conn.execute(f"LISTEN {channel}")
        except psycopg.Error as exc:
            log.warning("%s: change feed unavailable: %s", self.app_name, exc)
            return False
        self._conn = conn
        self.on_reset()
        return True

    def _reconnect_in_background(self) -> None:
        now = time.monotonic()
        if self._connecting is not None or now < self._next_try:
            return
        self._next_try = now + self.retry_s

        async def work() -> None:
            try:
                await self.connect()
            finally:
                self._connecting = None

        self._connecting = asyncio.get_running_loop().create_task(work())

    async def check(self) -> bool:
        """Apply every notification the cache must know about; False when the feed is down."""
        conn = self._conn
        if conn is None:
            self._reconnect_in_background()
            return False
        try:
            if self.freshness == "strict":
                await self._sync()
            else:
                self._drain(conn)
        except psycopg.Error as exc:
            log.warning("%s: change feed lost: %s", self.app_name, exc)
            await self._lost()
            return False
        if conn.pgconn.status != 0:  # CONNECTION_OK
            await self._lost()
            return False
        return True

    async def _sync(self) -> None:
        """Wait for a round trip sent after the caller arrived (shared by concurrent callers).

        Callers that arrive while a round trip is under way wait for the next one (theirs
        must start later).
        """
        if self._next_round is None:
            self._next_round = asyncio.get_running_loop().create_future()
            if not self._pumping:
                asyncio.get_running_loop().create_task(self._pump())
        await asyncio.shield(self._next_round)

    async def _pump(self) -> None:
        self._pumping = True
        try:
            while self._next_round is not None:
                # Callers from now on join the following round: this one's query is next.
                this_round, self._next_round = self._next_round, None
                try:
                    current = self._conn  # the live connection, even if it was replaced
                    if current is None:
                        raise psycopg.OperationalError("change feed is down")
                    await _ping(current)
                except Exception as exc:  # noqa: BLE001 - handed to every waiter
                    this_round.set_exception(exc)
                    this_round.exception()  # retrieved even if every waiter was cancelled
                else:
                    this_round.set_result(None)
        finally:
            self._pumping = False

    def _drain(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Read what already reached the socket, without waiting (``notify`` mode)."""
        pgconn = conn.pgconn
        # Twice: a terminated backend sends its FATAL message and then closes; the first
        # read may return just the message, the second sees the end of the stream.
        pgconn.consume_input()
        pgconn.consume_input()
        while (note := pgconn.notifies()) is not None:
            self._heard(note.relname.decode(), note.extra.decode("utf-8", "replace"))

    async def _lost(self) -> None:
        conn, self._conn = self._conn, None
        self.on_reset()
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                await conn.close()

    async def close(self) -> None:
        """Stop listening."""
        task = self._connecting
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, psycopg.Error):
                await task
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()
