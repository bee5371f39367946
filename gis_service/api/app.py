"""The app factory: ``create_app(settings)``; the lifespan owns the database pool."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from gis_service import __version__
from gis_service.api import errors
from gis_service.api.middleware import (
    BodyLimitMiddleware,
    RequestIdMiddleware,
    TrustedHostMiddleware,
)
from gis_service.api.routes import (
    auth,
    enterprises,
    exports,
    features,
    grids,
    hazards,
    health,
    impact,
    imports,
    query,
    reference,
    tiles,
    users,
    web,
)
from gis_service.db.engine import libpq_url, make_async_engine, resolve_url
from gis_service.db.listen import Listener
from gis_service.settings import Settings, load_settings

DESCRIPTION = """
应急管理局 GIS 风险与网格服务：网格、企业四色、隐患台账、地质灾害、避难场所与普查图层。

Authenticate with `Authorization: Bearer <token>` (`gis-service users add`).
Every read and write is limited to the caller's area (`scope_code`); rows outside it answer 404.
Errors are `application/problem+json` with a stable `code`.
"""


#: ``application_name`` of each worker's change-feed connection (visible in ``pg_stat_activity``).
CHANGE_FEED = "gis-change-feed"


def _default_web_dir() -> Path | None:
    candidate = Path(__file__).resolve().parents[2] / "web"
    return candidate if (candidate / "index.html").is_file() else None


def create_app(settings: Settings | None = None, *, database_url: str | None = None) -> FastAPI:
    """Build the API.

    Args:
        settings: explicit settings (tests); read from the environment when None.
        database_url: use this URL instead of resolving one from the settings.
    """
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = database_url or resolve_url(settings.db)
        engine = make_async_engine(url, settings.db)
        app.state.engine = engine
        app.state.database_url = url
        app.state.import_jobs = set()
        # The worker's one change feed: the routers' caches subscribe to it at start-up.
        changes = Listener(libpq_url(url), app_name=CHANGE_FEED)
        app.state.changes = changes
        try:
            yield
        finally:
            if app.state.import_jobs:
                # Imports run in threads; let them finish their transaction before the pool goes.
                await asyncio.wait(app.state.import_jobs, timeout=60)
            await changes.close()
            await engine.dispose()

    docs = settings.api.docs
    app = FastAPI(
        title="gis-service",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
        # FastAPI's built-in OpenTelemetry looks up its providers on every request (py-spy:
        # a visible share of a cached tile); nothing here exports traces, metrics or logs.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    errors.install(app)
    for module in (
        auth,
        health,
        users,
        reference,
        enterprises,
        imports,
        exports,
        tiles,
        query,
        features,
        grids,
        hazards,
        impact,
    ):
        app.include_router(module.api)

    app.include_router(web.api)
    web_dir = settings.api.web_dir or _default_web_dir()
    if web_dir is not None:
        web.mount(app, web_dir)
    else:

        @app.get("/", include_in_schema=False)
        async def home() -> HTMLResponse:
            return HTMLResponse('<a href="/docs">gis-service API</a>')

    # Innermost: well-formed tile requests are answered here, after host/id/body checks.
    app.add_middleware(tiles.TileFastPath)
    app.add_middleware(query.QueryFastPath)  # same for well-formed GET locate/nearest
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.api.max_body_bytes,
        overrides={
            "/imports": settings.etl.max_upload_bytes,
            # 隐患 photos and evidence (the route itself caps them at 10 MB).
            "/hazard-files": 11 * 1024 * 1024,
            # A 10,000-row hotline/Amap CSV with addresses runs past the 1 MB default.
            "/query/locate": 16 * 1024 * 1024,
        },
    )
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.api.allowed_hosts)
    app.add_middleware(RequestIdMiddleware)
    return app
