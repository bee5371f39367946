"""Tile serving knobs (``GIS_TILES_*``), built by the tile service, never at import time."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class TileSettings(BaseSettings):
    """Pool, budgets, cache and limits of the tile endpoints."""

    model_config = SettingsConfigDict(env_prefix="GIS_TILES_", env_file=".env", extra="ignore")

    #: Connections of the tile pool (separate from the API pool: long-lived, warmed, prepared).
    pool_min: int = Field(default=2, ge=1, le=64)
    pool_max: int = Field(default=8, ge=1, le=64)
    #: Per-statement budget of a tile query; past it the client gets 503 + Retry-After.
    statement_timeout_ms: int = Field(default=5_000, ge=100, le=120_000)
    #: In-memory cache bound in MiB (0 disables caching).
    cache_mb: int = Field(default=256, ge=0, le=65_536)
    #: ``strict``: a cache hit first syncs with the change feed (one round trip) and is never
    #: stale; ``notify``: it reads only notifications already received (faster, stale for
    #: the notification latency).
    freshness: Literal["strict", "notify"] = "strict"
    #: Run the prepared tile statements with their generic plan (``plan_cache_mode =
    #: force_generic_plan`` on tile connections). Under PostgreSQL's ``auto`` every tile was
    #: planned afresh (custom plans looked cheaper), which was 25-40 % of a grids or
    #: enterprises tile's backend CPU (over half for a scoped caller's); the plans are the
    #: same, as the envelope comes from a materialised CTE the planner cannot see into
    #: either way. ``false`` only to compare.
    generic_plans: bool = True
    gzip_level: int = Field(default=6, ge=1, le=9)
    #: Layers in one composite request.
    max_layers: int = Field(default=16, ge=1, le=64)
    #: PMTiles archives served under ``/pmtiles/{name}.pmtiles``.
    pmtiles_dir: Path = Path(".gis-data/pmtiles")
    #: Serve well-formed tile requests from the pure ASGI front (``TileFastPath``) instead
    #: of routing them through FastAPI; ``false`` only to compare the two paths.
    fast_path: bool = True
    #: Bytes above which a tile is reported as oversized (header ``X-Tile-Oversized``).
    max_tile_bytes: int = Field(default=500_000, ge=1024)
