"""Exports over HTTP: a table of my area as GeoJSON, GeoPackage, Shapefile, CSV or XLSX."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Literal

import psycopg
from fastapi import Path as PathParam
from fastapi import Query, Request
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from etl.export import ExportResult, export_table
from gis_service.api.deps import CurrentUser
from gis_service.api.routes import router
from gis_service.db.engine import db_errors
from gis_service.demo.loader import psycopg_conninfo

api = router("exports")


@api.get(
    "/export/{target}.{fmt}",
    summary="Export a table of my area (geojson, gpkg, shp as zip, csv, xlsx)",
    response_class=FileResponse,
)
async def export(  # noqa: PLR0917 - one query parameter per option
    request: Request,
    user: CurrentUser,
    target: Annotated[str, PathParam(pattern=r"^[a-z_]{2,32}$")],
    fmt: Annotated[Literal["geojson", "gpkg", "shp", "csv", "xlsx"], PathParam()],
    crs: Annotated[
        str,
        Query(
            pattern=r"^(cgcs2000|wgs84|gcj02|bd09|EPSG:\d{4,5})$",
            description="gcj02/bd09 are display coordinates for Amap/Baidu overlays",
        ),
    ] = "cgcs2000",
    encoding: Annotated[Literal["utf-8", "gbk"], Query()] = "utf-8",
    admin: Annotated[str | None, Query(pattern=r"^(\d{6}|\d{9}|\d{12})$")] = None,
) -> FileResponse:
    """Rows outside my area are never included; ``admin`` narrows further."""
    folder = Path(tempfile.mkdtemp(prefix="gis-export-"))
    url = request.app.state.database_url

    def work() -> ExportResult:
        with db_errors(), psycopg.connect(psycopg_conninfo(url)) as conn:
            return export_table(
                conn,
                target,
                fmt,
                folder,
                scope_code=user.scope_code,
                admin_code=admin,
                crs=crs,
                encoding=encoding,
            )

    try:
        result = await asyncio.to_thread(work)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    label = result.crs_label.encode("ascii", "replace").decode()
    return FileResponse(
        result.path,
        media_type=result.media_type,
        filename=result.path.name,
        headers={"X-Coordinate-System": label},
        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
    )
