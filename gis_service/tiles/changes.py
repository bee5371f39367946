"""The change feed: ``LISTEN gis_tile_change``, drained without blocking before every cache read.

Migration 0005's statement triggers announce each write (table and bbox) on commit, from
any process: API edits, CLI imports, ``psql``. The listener is a plain libpq connection
that is never waited on: :meth:`ChangeFeed.drain` reads whatever notifications already
reached its socket (one non-blocking ``recv``) and applies them to the cache, so a cache
hit costs microseconds and is never older than the notification latency. If the
connection is lost, the cache is cleared and bypassed until the feed is back.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

log = logging.getLogger(__name__)

CHANNEL = "gis_tile_change"
BBox = tuple[float, float, float, float]


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


class ChangeFeed:
    """A non-blocking LISTEN connection feeding ``on_change`` and ``on_reset``."""

    def __init__(
        self,
        conninfo: str,
        on_change: Callable[[str, BBox | None], object],
        on_reset: Callable[[], object],
        retry_s: float = 1.0,
    ) -> None:
        self.conninfo = conninfo
        self.on_change = on_change
        self.on_reset = on_reset
        self.retry_s = retry_s
        self._conn: psycopg.Connection[Any] | None = None
        #: A connection opened by the background thread, adopted on the event loop.
        self._pending: psycopg.Connection[Any] | None = None
        self._connecting: threading.Thread | None = None
        self._next_try = 0.0
        self.received = 0

    @property
    def healthy(self) -> bool:
        """Whether changes are being received (otherwise the cache must be bypassed)."""
        return self._conn is not None

    def connect(self) -> bool:
        """Open the listening connection now (blocking; startup and tests)."""
        conn = self._open()
        if conn is None:
            return False
        self._adopt(conn)
        return True

    def _open(self) -> psycopg.Connection[Any] | None:
        try:
            conn = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=2)
            conn.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error as exc:
            log.warning("tile change feed unavailable: %s", exc)
            return None
        return conn

    def _adopt(self, conn: psycopg.Connection[Any]) -> None:
        # Changes may have been missed while there was no feed: forget every cached tile.
        self._conn = conn
        self.on_reset()

    def _reconnect_in_background(self) -> None:
        """Reconnect off the event loop (an unreachable host must not block requests)."""
        now = time.monotonic()
        if self._connecting is not None or now < self._next_try:
            return
        self._next_try = now + self.retry_s

        def work() -> None:
            self._pending = self._open()
            self._connecting = None

        self._connecting = threading.Thread(target=work, name="tile-feed", daemon=True)
        self._connecting.start()

    def drain(self) -> bool:
        """Apply every notification already received; False when the feed is down."""
        conn = self._conn
        if conn is None:
            pending, self._pending = self._pending, None
            if pending is None:
                self._reconnect_in_background()
                return False
            self._adopt(pending)
            conn = pending
        pgconn = conn.pgconn
        try:
            # Twice: a terminated backend sends its FATAL message and then closes; the first
            # read may return just the message, the second sees the end of the stream.
            pgconn.consume_input()
            pgconn.consume_input()
        except psycopg.Error as exc:
            log.warning("tile change feed lost: %s", exc)
            self._lost()
            return False
        while (note := pgconn.notifies()) is not None:
            self.received += 1
            parsed = parse_payload(note.extra.decode("utf-8", "replace"))
            if parsed is None:
                self.on_reset()
            else:
                self.on_change(*parsed)
        if pgconn.status != 0:  # CONNECTION_OK
            self._lost()
            return False
        return True

    def _lost(self) -> None:
        conn, self._conn = self._conn, None
        self.on_reset()
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()

    def close(self) -> None:
        """Stop listening."""
        if self._connecting is not None:
            self._connecting.join(timeout=5)
        for conn in (self._conn, self._pending):
            if conn is not None:
                conn.close()
        self._conn = self._pending = None
