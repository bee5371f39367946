"""Vector tiles, TileJSON, styles, the layer catalogue and PMTiles.

Path segments are checked (registry names, z/x/y inside the matrix, extension) before the
caller is even authenticated, so a bad tile request never reaches the database
(BAD_INPUTS A1-A4, A8). Callers come from the shared principal cache (``api.deps``): a
map asks for dozens of tiles per second and each must not cost a user lookup.
"""

from __future__ import annotations

import gzip
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import FastAPI, Header, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from gis_service.api.deps import current_principal
from gis_service.api.routes import router
from gis_service.db.engine import TxContext, transaction
from gis_service.domain.scope import Principal
from gis_service.domain.users import lookup_token
from gis_service.errors import BadParameter, FieldProblem, GisError, NotFound
from gis_service.registry import load_registry
from gis_service.registry.model import VIEWS
from gis_service.tiles import metadata
from gis_service.tiles.pmtiles_store import CachedArchive
from gis_service.tiles.service import TileAddress, TileResult, TileService
from gis_service.tiles.settings import TileSettings
from gis_service.tiles.tilemath import parse_tile

MVT = "application/vnd.mapbox-vector-tile"
EXTENSIONS = (".mvt", ".pbf")


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Own the tile service (pool, cache, change feed) for the app's lifetime."""
    settings = TileSettings()
    service = TileService(app.state.database_url, settings, load_registry())
    await service.open()
    app.state.tiles = service
    try:
        yield
    finally:
        await service.close()


api = router("tiles")
api.lifespan_context = _lifespan

Authorization = Annotated[str | None, Header(include_in_schema=False)]


def _service(request: Request) -> TileService:
    service: TileService = request.app.state.tiles
    return service


async def _principal(request: Request, authorization: str | None) -> Principal:
    """The caller, through the shared principal cache (invalidated by ``gis_auth_change``)."""
    return await current_principal(
        request, request.app.state.engine, request.app.state.settings, authorization
    )


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(t.strip().removeprefix("W/") == etag for t in if_none_match.split(","))


Headers = list[tuple[bytes, bytes]]
_MVT_TYPE = (b"content-type", MVT.encode())
_FIXED = ((b"cache-control", b"private, no-cache"), (b"vary", b"Authorization, Accept-Encoding"))
_HIT, _MISS = (b"x-tile-cache", b"hit"), (b"x-tile-cache", b"miss")
_GZIP = (b"content-encoding", b"gzip")


def _headers(service: TileService, result: TileResult) -> Headers:
    """The response headers of a tile that do not depend on the body sent."""
    entry = result.entry
    headers: Headers = [(b"etag", entry.etag.encode()), *_FIXED, _HIT if result.cached else _MISS]
    if entry.capped:
        headers.append((b"x-tile-capped", ",".join(entry.capped).encode()))
    if len(entry.raw) > service.settings.max_tile_bytes:
        headers.append((b"x-tile-oversized", str(len(entry.raw)).encode()))
    return headers


def _tile_reply(
    service: TileService,
    result: TileResult,
    if_none_match: str | None,
    accept_encoding: str | None,
) -> tuple[int, Headers, bytes]:
    """(status, headers, body) of a rendered tile: one definition for both paths.

    A cached entry keeps the header lists it was answered with (per hit/miss and encoding),
    so a warm hit builds no header bytes; each reply gets its own copy of the list.
    """
    entry = result.entry
    if if_none_match is not None and _matches(if_none_match, entry.etag):
        return 304, _headers(service, result), b""
    if not entry.raw:
        return 204, _headers(service, result), b""
    gzip_ok = accept_encoding is not None and "gzip" in accept_encoding
    body = service.gzipped(result) if gzip_ok else entry.raw
    variant = (result.cached, gzip_ok)
    known = entry.replies.get(variant)
    if known is None:
        known = _headers(service, result)
        if gzip_ok:
            known.append(_GZIP)
        known += [(b"content-length", str(len(body)).encode()), _MVT_TYPE]
        entry.replies[variant] = known
    return 200, known.copy(), body


def _split_tile_path(path: str) -> tuple[str, str, str, str] | None:
    """(layers, z, x, y) of ``/tiles/{layers}/{z}/{x}/{y}.mvt|.pbf``; None: not that shape."""
    parts = path[7:].split("/") if path.startswith("/tiles/") else ()
    if len(parts) != 4 or not all(parts):
        return None
    y, dot, ext = parts[3].partition(".")
    if not dot or f".{ext}" not in EXTENSIONS:
        return None
    return parts[0], parts[1], parts[2], y


async def serve_tile(request: Request) -> Response:
    """The tile endpoint as a plain Starlette route (when the fast path stands aside).

    The documented FastAPI route below has the same path and is never reached.
    """
    if request.url.query:
        raise BadParameter(
            detail="tile requests take no query parameters",
            detail_zh="瓦片请求不接受查询参数",
            fields=[FieldProblem("query", "unknown parameter")],
        )
    params = request.path_params
    y, dot, ext = params["tile_y"].partition(".")
    if not dot or f".{ext}" not in EXTENSIONS:
        raise NotFound(detail="tiles are served as .mvt", detail_zh="瓦片格式仅支持 .mvt")
    service = _service(request)
    specs = service.resolve(params["layers"])
    tile = parse_tile(params["z"], params["x"], y)
    service.active(specs, tile.z)
    headers_in = request.headers
    user = await _principal(request, headers_in.get("authorization"))
    result = await service.tile(specs, tile, user.scope_code)
    status, headers, body = _tile_reply(
        service, result, headers_in.get("if-none-match"), headers_in.get("accept-encoding")
    )
    response = Response(body, status_code=status)
    response.raw_headers = headers
    return response


async def _fast_principal(
    scope: Scope, receive: Receive, service: TileService, authorization: str | None, live: bool
) -> Principal:
    """The caller from the tile service's memo when fresh, else looked up.

    Fresh: ``live`` came from a feed check made after the request arrived, and the feed also
    hears user/token changes (``gis_auth_change``), or (cache off) the tile statement is
    checked afterwards (:func:`_uncached_tile`). Only a valid bearer token is remembered,
    with its expiry; everything else (anonymous callers, refusals) goes through
    :func:`_principal` every time, so answers are the same. A memo hit builds no Request.
    """
    if live and authorization is not None:
        known = service.known_principal(authorization)
        if known is not None:
            return known
    request = Request(scope, receive)
    if authorization is None:
        return await _principal(request, authorization)
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if not live or scheme.lower() != "bearer" or not token:
        return await _principal(request, authorization)
    generation = service.auth_generation
    ctx = TxContext(request_id=getattr(request.state, "request_id", None))
    async with transaction(request.app.state.engine, ctx) as conn:
        owner = await lookup_token(conn, token)
    if owner is None:
        return await _principal(request, authorization)  # the refusal, worded as elsewhere
    expires = math.inf if owner.expires_at is None else owner.expires_at.timestamp()
    service.remember_principal(authorization, owner.principal, expires, generation)
    return owner.principal


async def _uncached_tile(
    scope: Scope,
    receive: Receive,
    service: TileService,
    address: TileAddress,
    authorization: str | None,
) -> TileResult:
    """A tile with the cache off: no feed round trip; the tile statement verifies the caller.

    A remembered caller is used at once and checked afterwards: the tile connection listens
    to ``gis_auth_change``, so the statement's answer carries every user/token change
    committed before it was sent. If one was heard (``auth_generation`` moved) the tile is
    discarded and redone for the caller looked up afresh. Not remembered: looked up now,
    which is as fresh as it gets.
    """
    generation = service.auth_generation
    known = None if authorization is None else service.known_principal(authorization)
    if known is None:
        user = await _fast_principal(scope, receive, service, authorization, True)
        return await service.tile_at(address, user.scope_code)
    service.speculated += 1
    result = await service.tile_at(address, known.scope_code)
    if service.auth_generation == generation:
        return result
    service.redone += 1
    user = await _fast_principal(scope, receive, service, authorization, True)
    return await service.tile_at(address, user.scope_code)


class TileFastPath:
    """Pure ASGI front for ``GET /tiles/{layers}/{z}/{x}/{y}.mvt`` (warm and cold).

    Routing through FastAPI, Starlette's Request/Response and the principal dependency cost
    more CPU than a cached tile (py-spy, c=8). This answers well-formed tile requests
    directly: path split, the same checks as :func:`serve_tile`, one change-feed check for
    both the principal memo and the tile cache, then bytes out. Anything unusual (query
    string, HEAD, bad segments, ``GIS_TILES_FAST_PATH=false``) is passed to the app
    unchanged, so refusals are produced by the one slow path; errors after the checks
    (401, 503 + Retry-After) are rendered by the app's own exception handlers.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a tile, or hand the request to the app."""
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or scope["query_string"]
            or scope.get("root_path")
            or (parts := _split_tile_path(scope["path"])) is None
        ):
            await self.app(scope, receive, send)
            return
        app = scope["app"]
        service: TileService | None = getattr(app.state, "tiles", None)
        if service is None or not service.settings.fast_path:
            await self.app(scope, receive, send)
            return
        try:
            address = service.address(*parts)
        except GisError:
            await self.app(scope, receive, send)  # the slow path words the refusal
            return
        authorization, if_none_match, accept_encoding, host, _ = _tile_headers(scope)
        if host is not None and len(service.checked_hosts) < _CHECKED_HOSTS_MAX:
            service.checked_hosts.add(host)  # it passed the app's Host check to get here
        try:
            result = await _fast_result(scope, receive, service, address, authorization)
        except GisError as exc:
            request = Request(scope, receive)
            response = await _problem(app, request, exc)
            await response(scope, receive, send)
            return
        service.fast_served += 1
        status, headers, body = _tile_reply(service, result, if_none_match, accept_encoding)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


#: Bound on the Host values remembered as checked (a value is a few dozen bytes).
_CHECKED_HOSTS_MAX = 64
_PASS_THROUGH = frozenset((b"x-request-id", b"content-length", b"transfer-encoding"))


def _tile_headers(
    scope: Scope,
) -> tuple[str | None, str | None, str | None, bytes | None, bool]:
    """(authorization, if-none-match, accept-encoding, host, plain) of a tile request.

    First value of each; ``plain``: no header the tile paths leave to the full app stack
    (a caller's request id, a request body).
    """
    authorization = if_none_match = accept_encoding = None
    host: bytes | None = None
    plain = True
    for key, value in scope["headers"]:
        if key == b"authorization":
            if authorization is None:
                authorization = value.decode("latin-1")
        elif key == b"if-none-match":
            if if_none_match is None:
                if_none_match = value.decode("latin-1")
        elif key == b"accept-encoding":
            if accept_encoding is None:
                accept_encoding = value.decode("latin-1")
        elif key == b"host":
            if host is None:
                host = bytes(value)
        elif key in _PASS_THROUGH:
            plain = False
    return authorization, if_none_match, accept_encoding, host, plain


async def _fast_result(
    scope: Scope,
    receive: Receive,
    service: TileService,
    address: TileAddress,
    authorization: str | None,
) -> TileResult:
    """The tile for a checked address: one definition for the ASGI and the HTTP fast path."""
    if service.cache.enabled:
        live = await service.feed.check()
        user = await _fast_principal(scope, receive, service, authorization, live)
        return await service.tile_at(address, user.scope_code, live=live)
    return await _uncached_tile(scope, receive, service, address, authorization)


Direct = tuple[TileService, TileAddress, str | None, str | None, str | None]


def direct_tile(app: Starlette, scope: Scope) -> Direct | None:
    """What the HTTP-level fast path (``api.tile_protocol``) needs to answer a request.

    (service, address, authorization, if-none-match, accept-encoding), or None: hand the
    request to the app. Only what :class:`TileFastPath` would serve, from a Host value the
    app's Host check has already let through to a tile, without a caller's request id or a
    body: the middleware it skips (request id, trusted host, body cap) would then change
    nothing but the id.
    """
    if scope["method"] != "GET" or scope["query_string"] or scope.get("root_path"):
        return None
    parts = _split_tile_path(scope["path"])
    service: TileService | None = getattr(app.state, "tiles", None)
    if parts is None or service is None or not service.settings.fast_path:
        return None
    authorization, if_none_match, accept_encoding, host, plain = _tile_headers(scope)
    if not plain or host not in service.checked_hosts:
        return None
    try:
        address = service.address(*parts)
    except GisError:
        return None
    return service, address, authorization, if_none_match, accept_encoding


async def direct_reply(
    app: Starlette, scope: Scope, receive: Receive, found: Direct
) -> tuple[int, Headers, bytes] | Response:
    """The reply to a :func:`direct_tile` request: (status, headers, body).

    Or the app's problem response for a refusal after the checks (401, 503 + Retry-After).
    """
    service, address, authorization, if_none_match, accept_encoding = found
    try:
        result = await _fast_result(scope, receive, service, address, authorization)
    except GisError as exc:
        return await _problem(app, Request(scope, receive), exc)
    service.fast_served += 1
    service.direct_served += 1
    return _tile_reply(service, result, if_none_match, accept_encoding)


async def _problem(app: Starlette, request: Request, exc: GisError) -> Response:
    """The app's own handler for a domain error (same body and headers as elsewhere)."""
    for cls in type(exc).__mro__:
        handler = app.exception_handlers.get(cls)
        if handler is not None:
            response = await handler(request, exc)
            assert isinstance(response, Response)
            return response
    raise exc


TILE_PATH = "/tiles/{layers}/{z}/{x}/{tile_y}"
api.add_route(TILE_PATH, serve_tile, methods=["GET"], include_in_schema=False)


@api.get(
    TILE_PATH,
    summary="A vector tile (MVT) of one or several layers (a,b,c)",
    response_class=Response,
    responses={200: {"content": {MVT: {}}}, 204: {"description": "empty tile"}},
)
async def get_tile(  # noqa: PLR0917 - documents the parameters of serve_tile
    layers: str,
    z: str,
    x: str,
    tile_y: str,
    request: Request,
    authorization: Authorization = None,
    if_none_match: Annotated[str | None, Header()] = None,
    accept_encoding: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """Only the caller's area; 204 when empty; ETag/If-None-Match; gzip when accepted.

    ``layers`` is one name or several (``grids,enterprises``); ``tile_y`` is ``{y}.mvt``.
    """
    return await serve_tile(request)


async def _bounds(service: TileService, scope: str | None) -> metadata.BBox | None:
    rows = await service.fetch(metadata.BOUNDS_SQL, {"scope": scope})
    if not rows or rows[0][0] is None:
        return None
    x0, y0, x1, y1 = rows[0]
    return float(x0), float(y0), float(x1), float(y1)


def _base(request: Request) -> str:
    base: str = request.app.state.settings.api.public_url
    return base


@api.get("/tiles/{layers}.json", summary="TileJSON 3.0 of one or several layers")
async def get_tilejson(
    layers: str, request: Request, authorization: Authorization = None
) -> JSONResponse:
    """Bounds are the caller's area; zooms and fields come from the registry."""
    service = _service(request)
    specs = service.resolve(layers)
    user = await _principal(request, authorization)
    body = metadata.tilejson(specs, _base(request), await _bounds(service, user.scope_code))
    return JSONResponse(body, headers={"Cache-Control": "private, no-cache"})


@api.get("/layers", summary="The layer catalogue the web map reads")
async def get_layers(request: Request, authorization: Authorization = None) -> JSONResponse:
    """Every published layer with Chinese labels, zooms, URLs and style hints."""
    service = _service(request)
    await _principal(request, authorization)
    body = {
        "layers": metadata.catalogue(service.registry, _base(request)),
        "styles": {v: f"{_base(request).rstrip('/')}/styles/{v}.json" for v in VIEWS},
    }
    return JSONResponse(body)


@api.get("/styles/{view}.json", summary="A MapLibre style: planner, survey or commander view")
async def get_style(
    view: str, request: Request, authorization: Authorization = None
) -> JSONResponse:
    """Colours come from ``classification_scheme``; bounds from the caller's area."""
    if view not in VIEWS:
        raise NotFound(detail="no such style", detail_zh="样式不存在")
    service = _service(request)
    user = await _principal(request, authorization)
    palette = metadata.palette_from_rows(await service.fetch(metadata.PALETTE_SQL, {}))
    body = metadata.style(
        view,
        service.registry,
        palette,
        _base(request),
        await _bounds(service, user.scope_code),
    )
    return JSONResponse(body, headers={"Cache-Control": "private, no-cache"})


class ArchiveResponse(FileResponse):
    """A file with HTTP Range; more than ``max_ranges`` ranges → the whole file (BAD_INPUTS A11)."""

    @classmethod
    def _parse_range_header(cls, http_range: str, file_size: int) -> list[tuple[int, int]]:
        if http_range.count(",") + 1 > cls.max_ranges:
            return []
        return super()._parse_range_header(http_range, file_size)


async def _readable_archive(
    request: Request, name: str, authorization: str | None
) -> CachedArchive:
    service = _service(request)
    user = await _principal(request, authorization)  # first: no archive-name oracle
    archive = service.archive(name)
    if not await service.may_read(archive, user.scope_code):
        raise NotFound(detail="no such archive", detail_zh="瓦片包不存在")
    return archive


@api.get(
    "/pmtiles/{name}.pmtiles",
    summary="A PMTiles archive (HTTP Range: 206, 416, multipart ranges)",
    response_class=Response,
)
async def get_archive(name: str, request: Request, authorization: Authorization = None) -> Response:
    """Validated archives only; readable by users whose area contains the archive's area."""
    archive = await _readable_archive(request, name, authorization)
    return ArchiveResponse(
        archive.path,
        media_type="application/vnd.pmtiles",
        headers={"Cache-Control": "private, no-cache"},
    )


@api.get(
    "/pmtiles/{name}/{z}/{x}/{tile_y}",
    summary="One tile of a PMTiles archive, served like a layer tile",
    response_class=Response,
)
async def get_archive_tile(  # noqa: PLR0917 - FastAPI injects by parameter
    name: str,
    z: str,
    x: str,
    tile_y: str,
    request: Request,
    authorization: Authorization = None,
    accept_encoding: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """Stored gzip bytes pass through to clients that accept gzip (no recompression)."""
    y, dot, ext = tile_y.partition(".")
    if not dot or f".{ext}" not in EXTENSIONS:
        raise NotFound(detail="tiles are served as .mvt", detail_zh="瓦片格式仅支持 .mvt")
    tile = parse_tile(z, x, y)
    archive = await _readable_archive(request, name, authorization)
    data = archive.get(tile.z, tile.x, tile.y)
    headers = {"Cache-Control": "private, no-cache", "Vary": "Authorization, Accept-Encoding"}
    if not data:
        return Response(status_code=204, headers=headers)
    if archive.gzipped:
        if accept_encoding and "gzip" in accept_encoding:
            headers["Content-Encoding"] = "gzip"
        else:
            data = gzip.decompress(data)
    return Response(data, media_type=MVT, headers=headers)
