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
        self._next_try = 0.0
        self.received = 0

    @property
    def healthy(self) -> bool:
        """Whether changes are being received (otherwise the cache must be bypassed)."""
        return self._conn is not None

    def connect(self) -> bool:
        """(Re)open the listening connection; clears the cache since changes may be missed."""
        now = time.monotonic()
        if now < self._next_try:
            return False
        self._next_try = now + self.retry_s
        try:
            conn = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=2)
            conn.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error as exc:
            log.warning("tile change feed unavailable: %s", exc)
            return False
        self._conn = conn
        self.on_reset()
        return True

    def drain(self) -> bool:
        """Apply every notification already received; False when the feed is down."""
        conn = self._conn
        if conn is None:
            return self.connect()
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
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
