"""Liveness, readiness and version: no authentication, no secrets."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from sqlalchemy import text

from gis_service import __version__
from gis_service.api.deps import EngineDep
from gis_service.api.routes import router
from gis_service.db.engine import TxContext, transaction
from gis_service.db.migrate import current_revision
from gis_service.errors import GisError

api = router("health")


@api.get("/health/live", summary="The process is up (does not touch the database)")
async def live() -> dict[str, str]:
    """Always 200 while the process runs."""
    return {"status": "ok"}


@api.get("/health/ready", summary="The database answers and the schema is migrated")
async def ready(engine: EngineDep) -> JSONResponse:
    """200 when PostGIS answers and migrations are applied, 503 otherwise."""
    try:
        async with transaction(engine, TxContext()) as conn:
            await conn.execute(text("SET LOCAL statement_timeout = 1000"))
            await conn.execute(text("SELECT 1"))
            revision = await conn.run_sync(current_revision)
    except GisError as exc:
        return JSONResponse(
            {"status": "unavailable", "code": exc.code},
            status_code=503,
            headers={"Retry-After": "2"},
        )
    if revision is None:
        return JSONResponse(
            {"status": "unavailable", "code": "not_migrated"},
            status_code=503,
            headers={"Retry-After": "5"},
        )
    return JSONResponse({"status": "ok", "schema_revision": revision})


@api.get("/version", summary="Service version")
async def version() -> dict[str, Any]:
    """The package version and the API it speaks."""
    return {"name": "gis-service", "version": __version__, "api": "v1"}
