"""Vector tiles, TileJSON, styles, the layer catalogue and PMTiles.

Path segments are checked (registry names, z/x/y inside the matrix, extension) before the
caller is even authenticated, so a bad tile request never reaches the database
(BAD_INPUTS A1-A4, A8). Tokens are remembered for ``GIS_TILES_AUTH_CACHE_S`` seconds: a
map asks for dozens of tiles per second and each must not cost a user lookup.
"""

from __future__ import annotations

import gzip
import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import FastAPI, Header, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from gis_service.api.deps import current_principal
from gis_service.api.routes import router
from gis_service.domain.scope import Principal
from gis_service.errors import BadParameter, FieldProblem, NotFound
from gis_service.registry import load_registry
from gis_service.registry.model import VIEWS
from gis_service.tiles import metadata
from gis_service.tiles.pmtiles_store import CachedArchive
from gis_service.tiles.service import TileService
from gis_service.tiles.settings import TileSettings
from gis_service.tiles.tilemath import parse_tile

MVT = "application/vnd.mapbox-vector-tile"
EXTENSIONS = (".mvt", ".pbf")
_AUTH_CACHE_MAX = 10_000


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Own the tile service (pool, cache, change feed) for the app's lifetime."""
    settings = TileSettings()
    service = TileService(app.state.database_url, settings, load_registry())
    await service.open()
    app.state.tiles = service
    app.state.tile_auth = {}
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
    """The caller, from a short-lived token cache (the token itself is never kept)."""
    service = _service(request)
    ttl = service.settings.auth_cache_s
    if authorization is None or ttl <= 0:
        return await current_principal(
            request, request.app.state.engine, request.app.state.settings, authorization
        )
    cache: dict[str, tuple[float, Principal]] = request.app.state.tile_auth
    key = hashlib.sha256(authorization.encode()).hexdigest()
    now = time.monotonic()
    hit = cache.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    principal = await current_principal(
        request, request.app.state.engine, request.app.state.settings, authorization
    )
    if len(cache) >= _AUTH_CACHE_MAX:
        cache.clear()
    cache[key] = (now + ttl, principal)
    return principal


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(t.strip().removeprefix("W/") == etag for t in if_none_match.split(","))


async def serve_tile(request: Request) -> Response:
    """The tile endpoint as a plain Starlette route: no dependency solving per tile.

    A map requests dozens of tiles a second; FastAPI's parameter machinery costs more than
    a cached tile. The documented route below has the same path and is never reached.
    """
    if request.url.query:
        raise BadParameter(
            detail="tile requests take no query parameters",
            detail_zh="瓦片请求不接受查询参数",
            fields=[FieldProblem("query", "unknown parameter")],
        )
    params = request.path_params
    tile_y: str = params["tile_y"]
    y, dot, ext = tile_y.partition(".")
    if not dot or f".{ext}" not in EXTENSIONS:
        raise NotFound(detail="tiles are served as .mvt", detail_zh="瓦片格式仅支持 .mvt")
    service = _service(request)
    specs = service.resolve(params["layers"])
    tile = parse_tile(params["z"], params["x"], y)
    service.active(specs, tile.z)
    headers_in = request.headers
    user = await _principal(request, headers_in.get("authorization"))
    result = await service.tile(specs, tile, user.scope_code)
    entry = result.entry
    headers = {
        "ETag": entry.etag,
        "Cache-Control": "private, no-cache",
        "Vary": "Authorization, Accept-Encoding",
        "X-Tile-Cache": "hit" if result.cached else "miss",
    }
    if entry.capped:
        headers["X-Tile-Capped"] = ",".join(entry.capped)
    if len(entry.raw) > service.settings.max_tile_bytes:
        headers["X-Tile-Oversized"] = str(len(entry.raw))
    if _matches(headers_in.get("if-none-match"), entry.etag):
        return Response(status_code=304, headers=headers)
    if not entry.raw:
        return Response(status_code=204, headers=headers)
    if "gzip" in headers_in.get("accept-encoding", ""):
        body = service.gzipped(result)
        headers["Content-Encoding"] = "gzip"
        return Response(body, media_type=MVT, headers=headers)
    return Response(entry.raw, media_type=MVT, headers=headers)


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
