"""uvicorn's httptools protocol, with well-formed tile requests answered below the ASGI stack.

Why: with the cache off, a tile's own work in our process (the prepared statement's round
trip, the reply) was about half of the app's CPU per tile; the other half was the HTTP
server and the ASGI layers every request crosses: uvicorn's per-response header checks and
two socket writes (head, then body), the ASGI message dicts, the proxy-header, error,
request-id, trusted-host and body-cap middleware and the query fast path (py-spy, c=8,
enterprises). A tile request :func:`~gis_service.api.routes.tiles.direct_tile` accepts is
answered here with the same code as the ASGI fast path (``TileFastPath``) and written in
one call; everything else (other paths, refusals before the checks, a caller's
``X-Request-ID``, a Host value the app has not let through yet) takes uvicorn's usual way.

Run with ``uvicorn --http gis_service.api.tile_protocol:TileHttpProtocol`` (what
``gis-service serve`` does).
"""

from __future__ import annotations

import itertools
import logging
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.types import Receive, Send
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

from gis_service.api.routes.tiles import Direct, direct_reply, direct_tile

log = logging.getLogger(__name__)

#: Request ids of this process: a random prefix and a counter (32 hex digits, like uuid4's
#: hex that ``RequestIdMiddleware`` gives, without a system call for randomness per tile).
_ID_PREFIX = uuid.uuid4().hex[:20]
_ids = itertools.count(1)


def _request_id() -> str:
    return f"{_ID_PREFIX}{next(_ids) & 0xFFFFFFFFFFFF:012x}"


def _starlette_app(app: Any) -> Starlette | None:
    """The Starlette/FastAPI app under uvicorn's wrappers (proxy headers, message logger)."""
    for _ in range(8):
        if isinstance(app, Starlette):
            return app
        app = getattr(app, "app", None)
    return None


class TileHttpProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` that answers :func:`direct_tile` requests itself."""

    _target: Starlette | bool | None = False  # False: not looked up yet (per connection)

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        if app is self.app:  # not the 503 stand-in of --limit-concurrency
            if self._target is False:
                self._target = _starlette_app(self.app)
            target = self._target
            if isinstance(target, Starlette):
                found = direct_tile(target, cycle.scope)  # type: ignore[arg-type]
                if found is not None:
                    task = self.loop.create_task(self._direct(cycle, target, found))
                    task.add_done_callback(self.tasks.discard)
                    self.tasks.add(task)
                    return
        super()._start_asgi_task(cycle, app)

    async def _direct(self, cycle: RequestResponseCycle, app: Starlette, found: Direct) -> None:
        """Answer one tile request; an unexpected error goes to the app's usual handling."""
        scope: Any = cycle.scope
        # uvicorn's typed ASGI events, as Starlette's untyped messages.
        receive: Receive = cycle.receive  # type: ignore[assignment]
        send: Send = cycle.send  # type: ignore[assignment]
        rid = _request_id()
        scope["app"] = app
        scope["state"]["request_id"] = rid
        try:
            reply = await direct_reply(app, scope, receive, found)
        except Exception:
            log.exception("tile %s: answered by the app instead", get_path_with_query_string(scope))
            if not cycle.response_started:
                await cycle.run_asgi(self.app)
            return
        if isinstance(reply, Response):  # a refusal, worded by the app's handlers
            reply.raw_headers.append((b"x-request-id", rid.encode()))
            await reply(scope, receive, send)
            return
        if self.flow.write_paused and not cycle.disconnected:
            await self.flow.drain()  # the client is behind on earlier replies
        if cycle.disconnected:
            return
        status, headers, body = reply
        if self.access_log:  # the line uvicorn's own send would log
            self.access_logger.info(
                '%s - "%s %s HTTP/%s" %d',
                get_client_addr(scope),
                scope["method"],
                get_path_with_query_string(scope),
                scope["http_version"],
                status,
            )
        head = [STATUS_LINE[status]]
        for name, value in (*self.server_state.default_headers, *headers):
            head += (name, b": ", value, b"\r\n")
        head += (b"x-request-id: ", rid.encode(), b"\r\n")
        if not cycle.keep_alive:
            head.append(b"connection: close\r\n")
        head.append(b"\r\n")
        self.transport.writelines((b"".join(head), body))  # one send for the whole reply
        cycle.response_started = cycle.response_complete = True
        cycle.message_event.set()
        if not cycle.keep_alive:
            self.transport.close()
        cycle.on_response()
