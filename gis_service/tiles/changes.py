"""The change feed: ``LISTEN gis_tile_change`` on one connection, checked before every cache read.

Migration 0005's statement triggers announce each write (table and bbox) on commit, from
any process: API edits, CLI imports, ``psql``. Two ways to be sure a cached tile is fresh:

* ``strict`` (default): a cache hit first makes one round trip on the listening connection
  (an empty query sent through libpq, ~30 µs of Python; concurrent hits share one round
  trip that started after they arrived). PostgreSQL delivers pending notifications before
  it answers, so every write whose COMMIT had returned before the request arrived has been
  applied: never stale. What it does not promise: a write still committing while the
  request is served may or may not show (it was not "before the request").
* ``notify``: the cache hit only reads what already reached the socket (one non-blocking
  ``recv``); cheaper, but stale for the notification latency (usually sub-millisecond,
  more on a busy machine).

If the connection is lost, the cache is cleared and bypassed until the feed is back; it is
re-opened by a background task so an unreachable database never blocks a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable
from typing import Any, Literal

import psycopg
from psycopg import generators
from psycopg.pq import ExecStatus

log = logging.getLogger(__name__)

CHANNEL = "gis_tile_change"
_CHANNEL_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
#: ``application_name`` of the listening connection (visible in ``pg_stat_activity``).
APP_NAME = "gis-tile-feed"
BBox = tuple[float, float, float, float]
Freshness = Literal["strict", "notify"]


def quote_channel(name: str) -> str:
    """A channel name safe to splice into ``LISTEN`` (constants only; checked anyway)."""
    if not _CHANNEL_NAME.fullmatch(name):
        raise ValueError(f"bad channel name {name!r}")
    return name


def parse_payload(payload: str) -> tuple[str, BBox | None] | None:
    """``id|table|xmin,ymin,xmax,ymax`` (empty bbox: the whole table) → (table, bbox)."""
    parts = payload.split("|")
    if len(parts) != 3 or not parts[1]:
        return None
    if not parts[2]:
        return parts[1], None
    try:
        x0, y0, x1, y1 = (float(v) for v in parts[2].split(","))
    except ValueError:
        return parts[1], None
    return parts[1], (x0, y0, x1, y1)


async def _ping(conn: psycopg.AsyncConnection[Any]) -> None:
    """One empty-query round trip through libpq (no cursor): what strict freshness waits for.

    The backend sends every notification it was signalled for before answering, and a
    writer's COMMIT signals listeners before its client is told the commit happened.
    psycopg hands the notifications to ``_on_notify`` while reading the answer.
    """
    pgconn = conn.pgconn
    pgconn.send_query(b"")
    for result in await conn.wait(generators.execute(pgconn)):
        if result.status == ExecStatus.FATAL_ERROR:
            raise psycopg.errors.error_from_result(result)


class ChangeFeed:
    """One listening connection feeding ``on_change`` (table, bbox) and ``on_reset``."""

    def __init__(
        self,
        conninfo: str,
        on_change: Callable[[str, BBox | None], object],
        on_reset: Callable[[], object],
        *,
        freshness: Freshness = "strict",
        retry_s: float = 1.0,
        also: dict[str, Callable[[], object]] | None = None,
    ) -> None:
        self.conninfo = conninfo
        #: Other channels heard on the same connection (e.g. user/token changes for the tile
        #: path's principal memo): one round trip then makes both caches fresh.
        self.also = dict(also or {})
        self.on_change = on_change
        self.on_reset = on_reset
        self.freshness = freshness
        self.retry_s = retry_s
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._next_round: asyncio.Future[None] | None = None
        self._pumping = False
        self._next_try = 0.0
        self.received = 0

    @property
    def healthy(self) -> bool:
        """Whether changes are being received (otherwise the cache must be bypassed)."""
        return self._conn is not None

    def _apply(self, payload: str) -> None:
        self.received += 1
        parsed = parse_payload(payload)
        if parsed is None:
            self.on_reset()
        else:
            self.on_change(*parsed)

    def _on_notify(self, note: psycopg.Notify) -> None:
        self._heard(note.channel, note.payload)

    def _heard(self, channel: str, payload: str) -> None:
        if channel == CHANNEL:
            self._apply(payload)
        elif (callback := self.also.get(channel)) is not None:
            self.received += 1
            callback()

    async def connect(self) -> bool:
        """Open the listening connection now; clears the cache (changes may have been missed)."""
        try:
            conn = await psycopg.AsyncConnection.connect(
                self.conninfo, autocommit=True, connect_timeout=2, application_name=APP_NAME
            )
            conn.add_notify_handler(self._on_notify)
            for channel in (CHANNEL, *self.also):
                await conn.execute(f"LISTEN {quote_channel(channel)}")
        except psycopg.Error as exc:
            log.warning("tile change feed unavailable: %s", exc)
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
        """Apply every change the cache must know about; False when the feed is down."""
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
            log.warning("tile change feed lost: %s", exc)
            await self._lost()
            return False
        if conn.pgconn.status != 0:  # CONNECTION_OK
            await self._lost()
            return False
        return True

    async def _sync(self) -> None:
        """One ``SELECT 1`` round trip sent after the caller arrived, shared by concurrent callers.

        Notifications committed before the query reach us before its answer. Callers that
        arrive while a round trip is under way wait for the next one (theirs must start later).
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
                        raise psycopg.OperationalError("tile change feed is down")
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
