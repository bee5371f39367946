"""Configuration: small prefixed pydantic-settings classes, built in the app factory or CLI.

Nothing here reads the environment at import time; call :func:`load_settings`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class DatabaseSettings(BaseSettings):
    """Where the database is and how hard the pool may push it."""

    model_config = SettingsConfigDict(env_prefix="GIS_DB_", env_file=".env", extra="ignore")

    #: A user's own server. Empty means: use the embedded cluster in ``GIS_DATA_DIR``.
    url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "GIS_DB_URL")
    )
    data_dir: Path = Field(
        default=Path(".gis-data"), validation_alias=AliasChoices("GIS_DATA_DIR", "GIS_DB_DATA_DIR")
    )
    dbname: str = "gis"
    pool_size: int = Field(default=8, ge=1, le=64)
    max_overflow: int = Field(default=4, ge=0, le=64)
    pool_timeout_s: float = Field(default=3.0, gt=0, le=5)
    connect_timeout_s: int = Field(default=2, ge=1, le=10)
    statement_timeout_ms: int = Field(default=10_000, ge=100)
    lock_timeout_ms: int = Field(default=3_000, ge=100)
    idle_in_transaction_timeout_ms: int = Field(default=30_000, ge=1000)


class AuthSettings(BaseSettings):
    """Token authentication and the optional anonymous read-only mode."""

    model_config = SettingsConfigDict(env_prefix="GIS_AUTH_", env_file=".env", extra="ignore")

    #: Anonymous visitors may read public layers (off by default).
    anonymous_read: bool = False
    #: The admin code an anonymous visitor is scoped to when ``anonymous_read`` is on.
    anonymous_scope: str | None = Field(default=None, pattern=r"^(\d{6}|\d{9}|\d{12})$")
    #: Lifetime of tokens issued by ``POST /auth/login`` (CLI tokens do not expire).
    login_token_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    #: Failed logins per login name within ``login_window_s`` before 429 (E10).
    login_max_failures: int = Field(default=5, ge=1, le=1000)
    #: Failed logins per client address within ``login_window_s`` before 429.
    login_max_failures_per_address: int = Field(default=20, ge=1, le=10_000)
    login_window_s: int = Field(default=900, ge=10, le=86_400)
    #: Remember token → user in each worker, invalidated by ``NOTIFY gis_auth_change``.
    principal_cache: bool = True

    @model_validator(mode="after")
    def _anonymous_needs_scope(self) -> Self:
        if self.anonymous_read and not self.anonymous_scope:
            raise ValueError("GIS_AUTH_ANONYMOUS_SCOPE must be set when anonymous_read is on")
        return self


class ApiSettings(BaseSettings):
    """HTTP serving."""

    model_config = SettingsConfigDict(env_prefix="GIS_API_", env_file=".env", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    #: Public base URL used in links; never built from the Host header.
    public_url: str = "http://127.0.0.1:8000"
    #: Serve ``/docs`` and ``/openapi.json``.
    docs: bool = True
    #: Host names accepted in the Host header.
    allowed_hosts: list[str] = Field(
        default_factory=lambda: ["127.0.0.1", "localhost", "testserver"]
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    web_dir: Path | None = None
    #: ``gis-service serve`` worker processes. Two by default: on the two-core machines
    #: bureaus run, one worker leaves a core to PostgreSQL alone and serves warm tiles and
    #: locate at about half the rate (benchmarks/tiles.md, query.md). Import jobs, login
    #: throttling and change feeds live in the database, so workers share them.
    workers: int = Field(default=2, ge=1, le=16)


class EtlSettings(BaseSettings):
    """Limits of imports: what a file may cost before it is refused."""

    model_config = SettingsConfigDict(env_prefix="GIS_ETL_", env_file=".env", extra="ignore")

    #: Upload cap for ``POST /imports`` (bytes).
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)
    max_rows: int = Field(default=2_000_000, ge=1)
    max_columns: int = Field(default=500, ge=1)
    #: Memory (address space) and wall-clock limits of the parsing child process.
    parse_memory_mb: int = Field(default=6144, ge=256)
    parse_seconds: float = Field(default=600.0, gt=0)
    #: Where uploads wait while their import runs.
    upload_dir: Path = Path(".gis-data/uploads")


class WebSettings(BaseSettings):
    """The web map page: optional online base map (the offline default is our own layers)."""

    model_config = SettingsConfigDict(env_prefix="GIS_WEB_", env_file=".env", extra="ignore")

    #: 天地图 key (``tk``); when set the page offers the 天地图 vector/imagery base maps.
    tianditu_key: str | None = Field(default=None, pattern=r"^[0-9A-Za-z]{8,64}$")


class RasterSettings(BaseSettings):
    """Hazard rasters: where their COGs are materialised and what a tile request may cost."""

    model_config = SettingsConfigDict(env_prefix="GIS_RASTER_", env_file=".env", extra="ignore")

    #: Folder the COGs (kept in the database) are written to once, under their SHA-256 name.
    dir: Path = Path(".gis-data/rasters")
    #: Rendered PNG tiles kept in memory per worker (0 disables the cache).
    tile_cache_entries: int = Field(default=4096, ge=0, le=1_000_000)
    #: Largest raster accepted by ``hazards add`` (width × height, BAD_INPUTS C12).
    max_pixels: int = Field(default=400_000_000, ge=1)


class Settings(BaseSettings):
    """Everything configurable, grouped; build with :func:`load_settings`."""

    model_config = SettingsConfigDict(env_prefix="GIS_", env_file=".env", extra="ignore")

    environment: str = Field(default="dev", pattern=r"^(dev|test|prod)$")
    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    etl: EtlSettings = Field(default_factory=EtlSettings)
    raster: RasterSettings = Field(default_factory=RasterSettings)
    web: WebSettings = Field(default_factory=WebSettings)

    @model_validator(mode="after")
    def _prod_is_strict(self) -> Self:
        if self.environment == "prod" and self.auth.anonymous_read and self.api.docs:
            raise ValueError("prod with anonymous_read must not expose /docs (GIS_API_DOCS=false)")
        return self


def load_settings(**overrides: object) -> Settings:
    """Read the environment (and ``.env``) now, with explicit overrides for tests."""
    return Settings(**overrides)  # type: ignore[arg-type]
