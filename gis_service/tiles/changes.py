"""The tile cache's change feed: ``LISTEN gis_tile_change``, checked before every cache read.

Migration 0005's statement triggers announce each write (table and bbox) on commit, from
any process: API edits, CLI imports, ``psql``. The freshness modes (``strict``: one shared
round trip, never stale for writes committed before the request; ``notify``: what already
arrived) and the reconnection rules are :class:`gis_service.db.listen.Listener`'s; this
module adds the payload, the extra channels the tile path listens to, and a cheaper strict
round trip (the socket is watched permanently; requests already read join the next round).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.pq import ExecStatus

from gis_service.db.listen import Freshness, Listener

CHANNEL = "gis_tile_change"
#: ``application_name`` of the listening connection (visible in ``pg_stat_activity``).
APP_NAME = "gis-tile-feed"
BBox = tuple[float, float, float, float]

__all__ = ["APP_NAME", "CHANNEL", "BBox", "ChangeFeed", "Freshness", "parse_payload"]


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


class ChangeFeed(Listener):
    """One listening connection feeding ``on_change`` (table, bbox) and ``on_reset``.

    ``also`` maps other channels heard on the same connection (e.g. user/token changes for
    the tile path's principal memo) to callbacks: one round trip then makes both fresh.
    """

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
        self.on_change = on_change
        handlers: dict[str, Callable[[str], object]] = {CHANNEL: self._apply}
        for channel, callback in (also or {}).items():
            handlers[channel] = _ignoring_payload(callback)
        super().__init__(
            conninfo,
            handlers,
            on_reset,
            freshness=freshness,
            retry_s=retry_s,
            app_name=APP_NAME,
        )

        #: Round trips made (strict checks are shared: ``rounds`` / requests shows how well).
        self.rounds = 0
        self._watched: tuple[psycopg.AsyncConnection[Any], int] | None = None
        self._in_flight: asyncio.Future[None] | None = None

    # The tile path calls ``check()`` on every request, so a strict round trip must be cheap.
    # The base class waits for each answer through psycopg's generic wait (a reader added
    # and removed, a timer armed and cancelled per round). Here the listening socket is
    # watched permanently instead: one callback reads whatever arrives (notifications as
    # soon as they come, and the answer to the round in flight), and a round costs one
    # ``send`` and one wakeup. The promise is unchanged: a round's query is sent after every
    # caller waiting on it arrived, and the backend flushes the notifications it was
    # signalled for before it answers.

    async def connect(self) -> bool:
        """Open the listening connection and start watching its socket."""
        if not await super().connect():
            return False
        conn = self._conn
        if conn is not None:
            fd = conn.pgconn.socket
            asyncio.get_running_loop().add_reader(fd, self._readable, conn)
            self._watched = (conn, fd)
        return True

    def _unwatch(self, error: BaseException | None = None) -> None:
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

    async def _pump(self) -> None:
        self._pumping = True
        try:
            while self._next_round is not None:
                # One loop pass first: requests already read off their sockets join this
                # round instead of the next one (its query is still sent after them).
                await asyncio.sleep(0)
                this_round, self._next_round = self._next_round, None
                self.rounds += 1
                try:
                    await self._round()
                except Exception as exc:  # noqa: BLE001 - handed to every waiter
                    this_round.set_exception(exc)
                    this_round.exception()  # retrieved even if every waiter was cancelled
                else:
                    this_round.set_result(None)
        finally:
            self._pumping = False

    async def _lost(self) -> None:
        self._unwatch()
        await super()._lost()

    async def close(self) -> None:
        """Stop watching, then stop listening."""
        self._unwatch()
        await super().close()

    def _apply(self, payload: str) -> None:
        parsed = parse_payload(payload)
        if parsed is None:
            self.on_reset()
        else:
            self.on_change(*parsed)


def _ignoring_payload(callback: Callable[[], object]) -> Callable[[str], object]:
    """A channel whose every notification means the same thing (e.g. "some user changed")."""
    return lambda _payload: callback()
