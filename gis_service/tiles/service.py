"""The tile service: a warmed psycopg pool, prepared tile statements, the cache and its feed.

Why not the API's SQLAlchemy pool: each tile is one statement whose text depends only on
(layer, zoom, scoped), so a raw psycopg connection in autocommit mode runs it as a
server-side prepared statement with no BEGIN/COMMIT, no pool reset round trip and no ORM
layer (tipg spends 6-8 ms of Python per tile; TILE_SERVING.md). Connections are opened with
parallel query and JIT off (parallel plans make tile SQL ~4x dearer), generic plans forced
(no per-tile planning: :attr:`TileSettings.generic_plans`) and warmed with one
``ST_Transform`` (PROJ initialisation costs ~150 ms on a fresh backend).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
import weakref
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import generators
from psycopg.pq import ExecStatus
from psycopg.pq.abc import PGresult
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from gis_service.domain.scope import Principal
from gis_service.domain.users import AUTH_CHANNEL
from gis_service.errors import (
    BadParameter,
    DatabaseUnavailable,
    FieldProblem,
    InvalidInput,
    NotFound,
    QueryTooExpensive,
)
from gis_service.registry import LayerSpec, Registry
from gis_service.tiles.cache import CacheKey, TileCache, TileEntry, etag_of
from gis_service.tiles.changes import ChangeFeed
from gis_service.tiles.held import Conn, HeldConnections
from gis_service.tiles.pmtiles_store import CachedArchive
from gis_service.tiles.settings import TileSettings
from gis_service.tiles.sql import TileQuery, tile_query
from gis_service.tiles.tilemath import Tile, parse_tile
from gis_service.types import STORAGE_SRID

log = logging.getLogger(__name__)

ARCHIVE_NAME = re.compile(r"[a-z0-9][a-z0-9_\-]{0,63}")
_PRINCIPALS_MAX = 10_000
_ADDRESSES_MAX = 65_536
#: ``application_name`` of the tile connections (visible in ``pg_stat_activity``).
APP_NAME = "gis-tiles"
_NOWHERE = (0.0, 0.0, 0.0, 0.0)
#: PROJ set-up of both directions a tile statement transforms: the envelope 3857 → storage
#: SRID for the ``&&`` test, and every geometry storage SRID → 3857 for ``ST_AsMVTGeom``.
#: PostGIS caches each direction per backend; warming only the first left ~120 ms of CPU
#: (about 1.2 ms per tile over a connection's first hundred tiles) to the first tile.
_WARM = (
    f"SELECT ST_Transform(ST_TileEnvelope(10, 834, 421), {STORAGE_SRID}),"
    f" ST_Transform(ST_SetSRID(ST_MakePoint(113.1, 27.8), {STORAGE_SRID}), 3857)"
)


def _result(results: list[PGresult]) -> PGresult:
    """The last result of a statement, or its error raised as the psycopg exception."""
    for result in results:
        if result.status == ExecStatus.FATAL_ERROR:
            raise psycopg.errors.error_from_result(result)
    if not results:
        raise psycopg.OperationalError("no result from the tile statement")
    return results[-1]


def conninfo_of(url: str) -> str:
    """A libpq URL from a SQLAlchemy one (``postgresql+psycopg://`` → ``postgresql://``)."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql://{rest}" if sep and scheme.startswith("postgres") else url


@dataclass(frozen=True, slots=True)
class TileAddress:
    """A checked tile request: the layers drawn at its zoom (names too) and the tile."""

    shown: tuple[LayerSpec, ...]
    names: tuple[str, ...]
    tile: Tile


@dataclass(frozen=True)
class TileResult:
    """What the endpoint sends: the entry (None = empty tile) and whether it came from cache."""

    entry: TileEntry
    cached: bool
    key: CacheKey


class TileService:
    """Renders, caches and invalidates vector tiles for the layers of one registry."""

    def __init__(self, url: str, settings: TileSettings, registry: Registry) -> None:
        self.settings = settings
        self.registry = registry
        self.conninfo = conninfo_of(url)
        self.cache = TileCache(settings.cache_mb * 1024 * 1024)
        self.feed = ChangeFeed(
            self.conninfo,
            self.cache.invalidate,
            self._reset,
            freshness=settings.freshness,
            also={AUTH_CHANNEL: self.forget_principals},
        )
        #: sha256(Authorization) → (caller, expiry as epoch seconds): the tile path's memo,
        #: trusted only right after a feed check (which also hears user/token changes).
        self._principals: dict[str, tuple[Principal, float]] = {}
        self.auth_generation = 0
        #: Tiles answered by the API's pure ASGI fast path (tests check it is taken).
        self.fast_served = 0
        #: Cache off: tiles rendered with a remembered caller, and those redone because a
        #: user/token change was heard with the answer (tests check the paths are taken).
        self.speculated = 0
        self.redone = 0
        #: Tile connections set up (each forgets the remembered callers: :meth:`_configure`).
        self.configured = 0
        #: Tiles answered by the HTTP-level fast path (``api.tile_protocol``), a subset of
        #: :attr:`fast_served`; and the Host values the app's own check let through to a
        #: tile (that path answers only those: the check's verdict depends on the value alone).
        self.direct_served = 0
        self.checked_hosts: set[bytes] = set()
        self._queries: dict[tuple[str, int, bool], TileQuery] = {}
        self._inflight: dict[CacheKey, tuple[asyncio.Future[TileEntry], int]] = {}
        self._tables: dict[tuple[str, ...], frozenset[str]] = {}
        #: "layers/z/x/y" → its checked address (only valid ones; the registry is fixed).
        self._addresses: dict[str, TileAddress] = {}
        self._archives: dict[str, CachedArchive] = {}
        #: Statement names prepared on each pooled connection (forgotten with the connection).
        self._prepared: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], set[bytes]] = (
            weakref.WeakKeyDictionary()
        )
        options = (
            f"-c statement_timeout={settings.statement_timeout_ms}"
            " -c max_parallel_workers_per_gather=0 -c jit=off -c timezone=Asia/Shanghai"
        )
        if settings.generic_plans:
            options += " -c plan_cache_mode=force_generic_plan"
        self.pool = AsyncConnectionPool(
            self.conninfo,
            min_size=min(settings.pool_min, settings.pool_max),
            max_size=settings.pool_max,
            kwargs={
                "autocommit": True,
                "prepare_threshold": 0,
                "options": options,
                "application_name": APP_NAME,
            },
            configure=self._configure,
            open=False,
            timeout=5.0,
            name="tiles",
            # Borrowing from the pool is rare (tile connections stay borrowed): check each one.
            check=AsyncConnectionPool.check_connection,
        )
        #: Tile and metadata statements borrow through this (a list pop per tile).
        self.conns = HeldConnections(self.pool, settings.pool_max, timeout=5.0)

    async def _configure(self, conn: psycopg.AsyncConnection[Any]) -> None:
        conn.prepared_max = 4096
        # PROJ initialisation may take longer than a tight tile budget: warm without one.
        await conn.execute("SET statement_timeout = 0")
        await conn.execute(_WARM)
        await conn.execute("RESET statement_timeout")
        # Every tile connection hears user/token changes itself: a tile statement's answer
        # then carries every such change committed before it was sent (PostgreSQL sends a
        # listener's pending notifications before ReadyForQuery), which verifies the
        # principal memo without the feed's round trip when the cache is off (see
        # :meth:`verified`). Callers remembered before this connection listened are dropped.
        conn.add_notify_handler(self._tile_conn_heard)
        await conn.execute(f"LISTEN {AUTH_CHANNEL}")
        self.forget_principals()
        self.configured += 1

    def _tile_conn_heard(self, note: psycopg.Notify) -> None:
        if note.channel == AUTH_CHANNEL:
            self.forget_principals()

    def _drain(self, conn: Conn) -> None:
        """Apply the notifications read with a tile statement's answer."""
        pgconn = conn.pgconn
        while (note := pgconn.notifies()) is not None:
            if note.relname.decode() == AUTH_CHANNEL:
                self.forget_principals()

    async def open(self) -> None:
        """Open the pool (warm connections) and, with the cache on, the change feed.

        With the cache off nothing needs the feed: the principal memo is verified by the
        tile connections themselves (:meth:`_configure`).
        """
        await self.pool.open(wait=False)
        if self.cache.enabled:
            await self.feed.check()  # starts connecting in the background

    def _reset(self) -> None:
        """The feed (re)connected or was lost: changes may have been missed."""
        self.cache.clear()
        self.forget_principals()

    def forget_principals(self) -> None:
        """Drop every remembered caller (a user or token changed, or the feed restarted)."""
        self._principals.clear()
        self.auth_generation += 1

    # ------------------------------------------------------------ principals
    @staticmethod
    def _auth_key(authorization: str) -> str:
        return hashlib.sha256(authorization.encode()).hexdigest()  # the token is never kept

    def known_principal(self, authorization: str) -> Principal | None:
        """The remembered caller for this header; only valid right after ``feed.check()``."""
        hit = self._principals.get(self._auth_key(authorization))
        if hit is None or hit[1] <= time.time():
            return None
        return hit[0]

    def remember_principal(
        self, authorization: str, principal: Principal, expires: float, generation: int
    ) -> None:
        """Keep a caller looked up while ``auth_generation`` was ``generation`` (else drop).

        With the cache on, the memo is trusted after a feed round (so the feed must be up);
        with it off, after the tile statement (its connection listens: :meth:`_configure`).
        """
        if generation != self.auth_generation or (self.cache.enabled and not self.feed.healthy):
            return
        if len(self._principals) >= _PRINCIPALS_MAX:
            self._principals.clear()
        self._principals[self._auth_key(authorization)] = (principal, expires)

    async def close(self) -> None:
        """Close the feed and the pool (logging how well strict checks were shared)."""
        log.info(
            "tiles: %d served by the fast path, %d change-feed round trips",
            self.fast_served,
            getattr(self.feed, "rounds", -1),
        )
        await self.feed.close()
        for archive in self._archives.values():
            archive.close()
        await self.conns.close()
        await self.pool.close()

    # ----------------------------------------------------------------- layers
    def resolve(self, names: str) -> tuple[LayerSpec, ...]:
        """Layer specs from ``a,b,c`` (duplicates dropped, order kept); 404/400 before any SQL."""
        parts = names.split(",")
        if len(parts) > self.settings.max_layers * 4:
            raise self._too_many()
        unique = tuple(dict.fromkeys(parts))
        if len(unique) > self.settings.max_layers:
            raise self._too_many()
        return tuple(self.registry.get(n) for n in unique)

    def _too_many(self) -> BadParameter:
        limit = self.settings.max_layers
        return BadParameter(
            detail=f"at most {limit} layers per tile",
            detail_zh=f"每个瓦片最多 {limit} 个图层",
            fields=[FieldProblem("path.layers", "too many layers")],
        )

    @staticmethod
    def active(layers: tuple[LayerSpec, ...], z: int) -> tuple[LayerSpec, ...]:
        """The layers drawn at zoom ``z``; 404 when none is (out of every zoom range)."""
        shown = tuple(s for s in layers if s.minzoom <= z <= s.maxzoom)
        if not shown:
            raise NotFound(
                detail="zoom outside the layer's zoom range", detail_zh="缩放级别超出图层范围"
            )
        return shown

    def address(self, layers: str, z: str, x: str, y: str) -> TileAddress:
        """The checked address of a tile request, remembered (the same checks every time).

        Raises what :meth:`resolve`, :func:`parse_tile` and :meth:`active` raise; refusals
        are never remembered.
        """
        memo = f"{layers}/{z}/{x}/{y}"
        known = self._addresses.get(memo)
        if known is not None:
            return known
        specs = self.resolve(layers)
        tile = parse_tile(z, x, y)
        shown = self.active(specs, tile.z)
        if len(self._addresses) >= _ADDRESSES_MAX:
            self._addresses.clear()
        address = self._addresses[memo] = TileAddress(shown, tuple(s.name for s in shown), tile)
        return address

    def _query(self, spec: LayerSpec, z: int, scoped: bool) -> TileQuery:
        key = (spec.name, z, scoped)
        query = self._queries.get(key)
        if query is None:
            query = self._queries[key] = tile_query(spec, z, scoped)
        return query

    def _tables_of(self, layers: tuple[LayerSpec, ...]) -> frozenset[str]:
        names = tuple(s.name for s in layers)
        tables = self._tables.get(names)
        if tables is None:
            tables = self._tables[names] = frozenset(t for s in layers for t in s.source_tables)
        return tables

    # ----------------------------------------------------------------- tiles
    async def tile(
        self,
        layers: tuple[LayerSpec, ...],
        tile: Tile,
        scope: str | None,
        live: bool | None = None,
    ) -> TileResult:
        """The tile for ``layers`` as seen from ``scope`` (None: the whole country).

        ``live``: the result of a ``feed.check()`` the caller made after the request arrived
        (the fast path checks once for its principal memo and the cache); None: check here.

        Raises:
            NotFound: the zoom is outside every layer's range.
            QueryTooExpensive: the statement ran past its budget (503, never cached).
            DatabaseUnavailable: no connection could be had.
        """
        shown = self.active(layers, tile.z)
        address = TileAddress(shown, tuple(s.name for s in shown), tile)
        return await self.tile_at(address, scope, live)

    async def tile_at(
        self, address: TileAddress, scope: str | None, live: bool | None = None
    ) -> TileResult:
        """:meth:`tile` for an address already checked (the fast path's memo)."""
        shown, tile = address.shown, address.tile
        key: CacheKey = (address.names, tile.z, tile.x, tile.y, scope or "*")
        if not self.cache.enabled:
            return TileResult(await self._render(shown, tile, scope), cached=False, key=key)
        if live is None:
            live = await self.feed.check()
        if live:
            entry = self.cache.get(key)
            if entry is not None:
                return TileResult(entry, cached=True, key=key)
            pending = self._inflight.get(key)
            # Join a render already under way only if no invalidation arrived since it began.
            if pending is not None and pending[1] == self.cache.generation:
                return TileResult(await asyncio.shield(pending[0]), cached=True, key=key)
        generation = self.cache.generation
        future: asyncio.Future[TileEntry] = asyncio.get_running_loop().create_future()
        self._inflight[key] = (future, generation)
        try:
            entry = await self._render(shown, tile, scope)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        finally:
            if self._inflight.get(key, (None, 0))[0] is future:
                del self._inflight[key]
        future.set_result(entry)
        if live:
            # A change committed while rendering bumps the generation (put refuses) or, if its
            # notification comes later, drops the entry then; strict hits check first anyway.
            if self.feed.freshness == "notify":
                await self.feed.check()
            self.cache.put(key, entry, generation)
        return TileResult(entry, cached=False, key=key)

    def gzipped(self, result: TileResult) -> bytes:
        """The gzip body of a tile, compressed once and kept with the cached entry."""
        body = result.entry.gzipped(self.settings.gzip_level)
        self.cache.regzipped(result.key, result.entry)
        return body

    async def _render(
        self, layers: tuple[LayerSpec, ...], tile: Tile, scope: str | None
    ) -> TileEntry:
        parts: list[bytes] = []
        capped: list[str] = []
        scoped = scope is not None
        try:
            conn = await self.conns.acquire()
            try:
                for spec in layers:
                    query = self._query(spec, tile.z, scoped)
                    values = query.values(tile.z, tile.x, tile.y, scope)
                    mvt, count = await self._execute(conn, query, values)
                    if mvt:
                        parts.append(mvt)
                    if count is not None and count >= query.cap:
                        capped.append(spec.name)
            finally:
                await self.conns.release(conn)
        except psycopg.errors.QueryCanceled as exc:
            raise QueryTooExpensive(
                detail="the tile took too long to render; retry shortly",
                detail_zh="瓦片生成超时，请稍后重试",
            ) from exc
        except (PoolTimeout, psycopg.OperationalError) as exc:
            log.warning("tile database unavailable: %s", exc)
            raise DatabaseUnavailable() from exc
        raw = parts[0] if len(parts) == 1 else b"".join(parts)
        margin = max(s.buffer / s.extent for s in layers)
        return TileEntry(
            raw=raw,
            etag=etag_of(raw, self.registry.digest),
            tables=self._tables_of(layers),
            # Only cached entries are ever matched against changed boxes.
            bounds=tile.bounds_with_margin(margin) if self.cache.enabled else _NOWHERE,
            capped=tuple(capped),
        )

    async def _execute(
        self, conn: Conn, query: TileQuery, values: list[bytes | None]
    ) -> tuple[bytes | None, int | None]:
        """(MVT bytes, feature count) of one tile statement, straight through libpq.

        The statement is prepared once per connection under its stable name; each tile then
        costs one ``Bind/Execute`` with text parameters and a binary result, without
        psycopg's per-execute query parsing, adaptation and cursor (measured: that Python
        was most of our CPU per tile above the database's own).
        """
        pgconn = conn.pgconn
        known = self._prepared.get(conn)
        if known is None:
            known = self._prepared[conn] = set()
        if query.name not in known:
            pgconn.send_prepare(query.name, query.positional)
            _result(await self.conns.wait(conn, generators.execute(pgconn)))
            known.add(query.name)
        results = await self.conns.run(conn, query.name, values)
        self._drain(conn)
        result = _result(results)
        if result.ntuples == 0:
            return None, None
        mvt = result.get_value(0, 0)
        count = result.get_value(0, 1)
        return mvt, None if count is None else int.from_bytes(count, "big", signed=True)

    # ---------------------------------------------------------------- PMTiles
    def archive(self, name: str) -> CachedArchive:
        """A published archive by name, validated when first opened or when it changed."""
        if not ARCHIVE_NAME.fullmatch(name):
            raise NotFound(detail="no such archive", detail_zh="瓦片包不存在")
        path = self.settings.pmtiles_dir / f"{name}.pmtiles"
        try:
            stat = path.stat()
        except OSError:
            raise NotFound(detail="no such archive", detail_zh="瓦片包不存在") from None
        opened = self._archives.get(name)
        if opened is not None and opened.signature == (stat.st_mtime_ns, stat.st_size):
            return opened
        try:
            fresh = CachedArchive(path)
        except InvalidInput:
            log.warning("refusing to serve invalid PMTiles archive %s", path)
            raise NotFound(detail="no such archive", detail_zh="瓦片包不存在") from None
        if opened is not None:
            opened.close()
        self._archives[name] = fresh
        return fresh

    async def may_read(self, archive: CachedArchive, scope: str | None) -> bool:
        """Whether a caller scoped to ``scope`` may read an archive exported for an area.

        An archive cut for an admin unit may be read by users whose scope contains that
        unit; one cut by bbox (no scope recorded) holds everyone's rows: national users only.
        """
        if scope is None:
            return True
        area = archive.info.metadata.get("gis-service:scope")
        if not isinstance(area, str):
            return False
        rows = await self.fetch(
            "SELECT %(scope)s = ANY(ancestors) FROM admin_division WHERE code = %(area)s",
            {"scope": scope, "area": area},
        )
        return bool(rows and rows[0][0])

    # --------------------------------------------------------- metadata reads
    async def fetch(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Rows of a small metadata query (TileJSON bounds, scheme colours)."""
        try:
            conn = await self.conns.acquire()
            try:
                return await self.conns.through_psycopg(conn, _rows(conn, sql, params))
            finally:
                await self.conns.release(conn)
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise DatabaseUnavailable() from exc


async def _rows(conn: Conn, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    cur = await conn.execute(sql, params)
    return await cur.fetchall()
