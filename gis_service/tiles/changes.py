"""The tile cache's change feed: ``LISTEN gis_tile_change``, checked before every cache read.

Migration 0005's statement triggers announce each write (table and bbox) on commit, from
any process: API edits, CLI imports, ``psql``. The freshness modes (``strict``: one shared
round trip, never stale for writes committed before the request; ``notify``: what already
arrived) and the reconnection rules are :class:`gis_service.db.listen.Listener`'s; this
module adds the payload and the extra channels the tile path listens to.
"""

from __future__ import annotations

from collections.abc import Callable

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

    def _apply(self, payload: str) -> None:
        parsed = parse_payload(payload)
        if parsed is None:
            self.on_reset()
        else:
            self.on_change(*parsed)


def _ignoring_payload(callback: Callable[[], object]) -> Callable[[str], object]:
    """A channel whose every notification means the same thing (e.g. "some user changed")."""
    return lambda _payload: callback()
