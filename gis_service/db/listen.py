"""A ``LISTEN`` connection that keeps an in-process cache honest about commits from anywhere.

Statement triggers ``pg_notify`` a channel when a table changes (API, CLI, ``psql``). A cache
calls :meth:`Listener.check` before trusting an entry:

* ``strict``: one round trip on the listening connection (an empty query sent through
  libpq), shared by every caller that arrives while none is under way. The socket is
  watched permanently: one callback applies notifications as they arrive and completes the
  round in flight, so a round costs one ``send`` and one wakeup (the tile path and locate
  check on every request).
  The backend sends every notification it was signalled for before it answers, and a
  writer's COMMIT signals listeners before its client is told the commit happened, so
  every change whose COMMIT had returned before the caller arrived has been applied. What
  it does not promise: a write still committing while the caller is served may or may not
  show (it was not "before").
* ``notify``: only what already reached the socket is read (no round trip); stale for the
  notification latency.

When the connection is lost the cache is reset and must be bypassed (``check`` is False) until
a background task has re-opened it: an unreachable database never blocks a request here.
One connection serves several channels and caches (:meth:`Listener.subscribe`; an API worker
has one, ``app.state.changes``, for its principal and locate caches), so one round trip makes
all of them fresh. A request that checks more than one cache takes a :meth:`Listener.ticket`
when it arrives and passes it to each check: a round that started after the ticket and has
completed serves every later check of that request, so it pays at most one round trip.
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
from psycopg.pq import ExecStatus

log = logging.getLogger(__name__)

Freshness = Literal["strict", "notify"]
_CHANNEL = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class Listener:
    """One autocommit connection listening on its subscribers' channels; payloads go to them."""

    def __init__(
        self,
        conninfo: str,
        handlers: Mapping[str, Callable[[str], object]] | None = None,
        on_reset: Callable[[], object] | None = None,
        *,
        freshness: Freshness = "strict",
        retry_s: float = 1.0,
        app_name: str = "gis-listener",
    ) -> None:
        self.conninfo = conninfo
        self.handlers: dict[str, list[Callable[[str], object]]] = {}
        self._resets: list[Callable[[], object]] = []
        self._add(handlers or {}, on_reset)
        self.freshness = freshness
        self.retry_s = retry_s
        self.app_name = app_name
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._next_round: asyncio.Future[None] | None = None
        self._pumping = False
        self._next_try = 0.0
        #: Round trips started (strict checks are shared: ``rounds`` / requests shows how well).
        self.rounds = 0
        #: Number of the last round trip that completed on the current connection (0: none).
        self._completed = 0
        self._watched: tuple[psycopg.AsyncConnection[Any], int] | None = None
        self._in_flight: asyncio.Future[None] | None = None

    @property
    def healthy(self) -> bool:
        """Whether notifications are being received (otherwise bypass the cache)."""
        return self._conn is not None

    def _add(
        self, handlers: Mapping[str, Callable[[str], object]], on_reset: Callable[[], object] | None
    ) -> None:
        for channel in handlers:
            if not _CHANNEL.fullmatch(channel):  # constants only; checked anyway
                raise ValueError(f"bad channel name {channel!r}")
        for channel, handler in handlers.items():
            self.handlers.setdefault(channel, []).append(handler)
        if on_reset is not None:
            self._resets.append(on_reset)

    async def subscribe(
        self, handlers: Mapping[str, Callable[[str], object]], on_reset: Callable[[], object]
    ) -> None:
        """Add a cache: its channels' payloads go to ``handlers``, every reset to ``on_reset``.

        Subscribing to an open connection re-opens it (every subscriber is reset), so that the
        new channels are listened to; API workers subscribe once, at start-up.
        """
        self._add(handlers, on_reset)
        if self._conn is not None:
            await self._lost()
        await self.connect()

    def on_reset(self) -> None:
        """Tell every subscriber that changes may have been missed (empty your cache)."""
        for reset in self._resets:
            reset()

    def ticket(self) -> int:
        """Taken when a request arrives: ``check(after=ticket)`` needs no newer round than that."""
        return self.rounds

    def _heard(self, channel: str, payload: str) -> None:
        for handler in self.handlers.get(channel, ()):
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
        fd = conn.pgconn.socket
        asyncio.get_running_loop().add_reader(fd, self._readable, conn)
        self._watched = (conn, fd)
        self.on_reset()
        return True

    def _unwatch(self, error: BaseException | None = None) -> None:
        self._completed = 0  # rounds on a closed connection prove nothing about the next one
        watched, self._watched = self._watched, None
        if watched is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(watched[1])
        pending, self._in_flight = self._in_flight, None
        if pending is not None and not pending.done():
            pending.set_exception(error or psycopg.OperationalError("change feed closed"))

    def _readable(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Read what arrived: apply notifications, complete the round trip in flight."""
        pgconn = conn.pgconn
        try:
            pgconn.consume_input()
        except psycopg.Error as exc:  # closed or broken: check() will see and reset
            self._unwatch(exc)
            return
        while (note := pgconn.notifies()) is not None:
            self._heard(note.relname.decode(), note.extra.decode("utf-8", "replace"))
        pending = self._in_flight
        if pending is None:
            return
        while not pgconn.is_busy():
            result = pgconn.get_result()
            if result is None:  # the empty query's answer is complete
                self._in_flight = None
                if not pending.done():
                    pending.set_result(None)
                return
            if result.status == ExecStatus.FATAL_ERROR and not pending.done():
                pending.set_exception(psycopg.errors.error_from_result(result))

    async def _round(self) -> None:
        """One empty-query round trip on the watched connection."""
        watched = self._watched
        conn = self._conn
        if watched is None or conn is None or watched[0] is not conn:
            raise psycopg.OperationalError("change feed is down")
        pending: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._in_flight = pending
        pgconn = conn.pgconn
        pgconn.send_query(b"")
        if pgconn.flush():  # a few bytes: practically never left over
            await self._flushed(pgconn, watched[1])
        await pending

    @staticmethod
    async def _flushed(pgconn: Any, fd: int) -> None:
        """Wait until libpq has sent everything (the socket's send buffer was full)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def writable() -> None:
            try:
                left = pgconn.flush()
            except psycopg.Error as exc:
                left = 0
                if not done.done():
                    done.set_exception(exc)
            if not left:
                loop.remove_writer(fd)
                if not done.done():
                    done.set_result(None)

        loop.add_writer(fd, writable)
        await done

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

    async def check(self, after: int | None = None) -> bool:
        """Apply every notification the cache must know about; False when the feed is down.

        Args:
            after: the caller's :meth:`ticket`; a completed round trip started after it is
                enough (None: one that starts after this call).
        """
        conn = self._conn
        if conn is None:
            self._reconnect_in_background()
            return False
        try:
            if self.freshness == "strict":
                if after is None or self._completed <= after:
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
                # One loop pass first: requests already read off their sockets join this
                # round instead of the next one (its query is still sent after them).
                await asyncio.sleep(0)
                this_round, self._next_round = self._next_round, None
                self.rounds += 1
                number = self.rounds
                try:
                    await self._round()
                except Exception as exc:  # noqa: BLE001 - handed to every waiter
                    this_round.set_exception(exc)
                    this_round.exception()  # retrieved even if every waiter was cancelled
                else:
                    self._completed = number
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
        self._unwatch()
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
        self._unwatch()
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()
