"""Pure ASGI middleware: request ids, trusted hosts and the body cap (cheap on the tile path)."""

from __future__ import annotations

import re
import uuid

from starlette.middleware.trustedhost import TrustedHostMiddleware as _StarletteTrustedHost
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gis_service.errors import TooLarge

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_ACCEPTED_HOSTS_MAX = 256


def _first_header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


class TrustedHostMiddleware(_StarletteTrustedHost):
    """Starlette's Host check, with the Host values it accepted remembered.

    Its verdict depends on the header value alone; re-parsing and matching it on every tile
    request was measurable CPU. Unknown values (and every refusal) still go through
    Starlette's code, so answers are unchanged.
    """

    def __init__(self, app: ASGIApp, allowed_hosts: list[str], www_redirect: bool = True) -> None:
        super().__init__(self._passed, allowed_hosts=allowed_hosts, www_redirect=www_redirect)
        self.downstream = app
        self._accepted: set[bytes] = set()

    async def _passed(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and len(self._accepted) < _ACCEPTED_HOSTS_MAX:
            host = _first_header(scope, b"host")
            if host is not None:
                self._accepted.add(host)
        await self.downstream(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass a remembered Host straight through; check anything else."""
        if scope["type"] == "http" and _first_header(scope, b"host") in self._accepted:
            await self.downstream(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


class RequestIdMiddleware:
    """Give every request an id (``X-Request-ID``), echoed in responses and error bodies."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Tag the request and its response."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = given if _SAFE_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        await self.app(scope, receive, send_with_id)


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes`` (by Content-Length, and by counting when chunked).

    ``overrides`` raises the cap for path prefixes that take files (uploads).
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, overrides: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.overrides = overrides or {}

    def _cap(self, path: str) -> int:
        for prefix, cap in self.overrides.items():
            if path == prefix or path.startswith(prefix + "/"):
                return cap
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 413 before reading an oversized body, or stop reading one mid-way."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = self._cap(scope["path"])
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > cap):
            await _send_413(scope, send)
            return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > cap:
                    raise TooLarge(detail=f"request body over {cap} bytes")
            return message

        await self.app(scope, counting_receive, send)


async def _send_413(scope: Scope, send: Send) -> None:
    body = (
        b'{"type":"urn:gis-service:problem:too_large","title":"request too large","status":413,'
        b'"code":"too_large","detail":"request too large","detail_zh":"\xe8\xaf\xb7\xe6\xb1\x82'
        b'\xe8\xbf\x87\xe5\xa4\xa7"}'
    )
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
