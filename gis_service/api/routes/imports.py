"""Imports over HTTP: upload a file, the import runs as a background job, poll its report.

The upload is streamed to a private folder (size-capped by the body-limit middleware),
recorded as an ``import_batch`` row, and handed to ``etl.pipeline`` in a worker thread;
the file itself is parsed in a sandboxed child process. Scoped like everything else: a
user sees only batches of their area, and rows outside it are refused.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from sqlalchemy import insert, select

from etl.forkserver import warm_up
from etl.mapping import TARGETS, describe
from etl.pipeline import ImportOptions, run_import
from gis_service.api.deps import CurrentUser, DbDep, SettingsDep, require_roles
from gis_service.api.routes import router
from gis_service.db.models import ImportBatch
from gis_service.domain.scope import Principal, in_scope
from gis_service.errors import BadParameter, NotFound
from gis_service.types import Role


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the import sandbox's forkserver with the server, not with the first upload.

    Its preload (the readers, pandas, GDAL: about 1 s) then does not delay the first import.
    """
    warm_up()
    yield


api = router("imports")
api.lifespan_context = _lifespan
Importer = Annotated[Principal, Depends(require_roles(Role.admin, Role.surveyor, Role.planner))]

_SAFE_NAME = re.compile(r"[^\w.\-\u4e00-\u9fff]+")
_ALLOWED_SUFFIXES = (".zip", ".shp", ".gpkg", ".geojson", ".json", ".csv", ".txt", ".xlsx")
_COLUMNS = (
    ImportBatch.id,
    ImportBatch.status,
    ImportBatch.target,
    ImportBatch.file_name,
    ImportBatch.fmt,
    ImportBatch.layer,
    ImportBatch.encoding,
    ImportBatch.source_crs,
    ImportBatch.crs_label,
    ImportBatch.rows_read,
    ImportBatch.rows_inserted,
    ImportBatch.rows_updated,
    ImportBatch.rows_rejected,
    ImportBatch.rows_repaired,
    ImportBatch.problems,
    ImportBatch.notes,
    ImportBatch.timings,
    ImportBatch.error_code,
    ImportBatch.error_detail,
    ImportBatch.actor,
    ImportBatch.scope_code,
    ImportBatch.created_at,
    ImportBatch.finished_at,
)


def _safe_filename(name: str | None) -> str:
    base = Path(name or "upload").name
    base = _SAFE_NAME.sub("_", base).strip("._") or "upload"
    if not base.lower().endswith(_ALLOWED_SUFFIXES):
        raise BadParameter(
            detail=f"unsupported file type; send one of {', '.join(_ALLOWED_SUFFIXES)}",
            detail_zh="不支持的文件类型（支持 zip/shp/gpkg/geojson/csv/xlsx）",
        )
    return base[-120:]


def _parse_pairs(items: list[str]) -> dict[str, str]:
    """``a=b`` form entries (map: 源列=field; set: field=value)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise BadParameter(detail=f"entries look like key=value, got {item[:60]!r}")
        out[key] = value
    return out


def _row(batch: Any) -> dict[str, Any]:
    out = dict(batch._mapping)
    for key in ("created_at", "finished_at"):
        if out[key] is not None:
            out[key] = out[key].isoformat()
    out["done"] = out["status"] in ("succeeded", "failed", "checked")
    return out


@api.post("/imports", status_code=202, summary="Upload a file to import (admin, surveyor, planner)")
async def create_import(  # noqa: PLR0917 - one form field per option
    request: Request,
    user: Importer,
    db: DbDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="SHP as .zip, GPKG, GeoJSON, CSV or XLSX")],
    target: Annotated[str, Form(pattern=r"^[a-z_]{2,32}$")],
    crs: Annotated[str | None, Form(max_length=40)] = None,
    encoding: Annotated[str | None, Form(max_length=20)] = None,
    layer: Annotated[str | None, Form(max_length=120)] = None,
    sheet: Annotated[str | None, Form(max_length=120)] = None,
    map_: Annotated[list[str] | None, Form(alias="map", max_length=200)] = None,
    set_: Annotated[list[str] | None, Form(alias="set", max_length=200)] = None,
    skip_bad_rows: Annotated[bool, Form()] = False,
    dry_run: Annotated[bool, Form()] = False,
) -> JSONResponse:
    """Store the upload and start the import; poll ``GET /imports/{id}`` for the report."""
    name = _safe_filename(file.filename)
    options = ImportOptions(
        target=target,
        crs=crs,
        encoding=encoding,
        layer=layer,
        sheet=sheet,
        mapping=_parse_pairs(map_ or []),
        constants=_parse_pairs(set_ or []),
        skip_bad_rows=skip_bad_rows,
        dry_run=dry_run,
    )
    folder = settings.etl.upload_dir / uuid.uuid4().hex
    folder.mkdir(parents=True, mode=0o700)
    path = folder / name
    with path.open("wb") as fh:
        while chunk := await file.read(1 << 20):
            fh.write(chunk)
    async with db.tx() as conn:
        batch_id = (
            await conn.execute(
                insert(ImportBatch)
                .values(
                    target=target,
                    file_name=name,
                    file_sha256="0" * 64,
                    file_bytes=path.stat().st_size,
                    options=options.as_dict(),
                    status="pending",
                    actor=user.login,
                    scope_code=user.scope_code,
                    source=f"user:{user.login}",
                )
                .returning(ImportBatch.id)
            )
        ).scalar_one()
    url = request.app.state.database_url

    def work() -> None:
        try:
            run_import(
                url,
                path,
                options,
                limits=settings.etl,
                actor=user.login,
                scope_code=user.scope_code,
                batch_id=batch_id,
            )
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    task = asyncio.create_task(asyncio.to_thread(work))
    jobs: set[asyncio.Task[None]] = request.app.state.import_jobs
    jobs.add(task)
    task.add_done_callback(jobs.discard)
    return JSONResponse(
        {"id": batch_id, "status": "pending", "report": f"/imports/{batch_id}"},
        status_code=202,
        headers={"Location": f"/imports/{batch_id}"},
    )


@api.get("/imports/targets", summary="What can be imported, with accepted headers and values")
async def import_targets(user: CurrentUser) -> dict[str, Any]:
    """Every target with its fields, the column names recognised and the value synonyms."""
    return {
        name: {
            "title_zh": spec.title_zh,
            "geometry": spec.geometry,
            "natural_key": list(spec.natural_key),
            "fields": describe(spec),
        }
        for name, spec in sorted(TARGETS.items())
    }


@api.get("/imports/{batch_id}", summary="Progress and report of one import")
async def get_import(
    batch_id: Annotated[int, PathParam(ge=1, le=2**62)], user: CurrentUser, db: DbDep
) -> dict[str, Any]:
    """The batch row: counts, encoding, CRS, problems with row numbers, timings."""
    async with db.tx() as conn:
        row = (
            await conn.execute(
                select(*_COLUMNS).where(
                    ImportBatch.id == batch_id, in_scope(ImportBatch.scope_code, user)
                )
            )
        ).one_or_none()
    if row is None:
        raise NotFound(detail="import not found", detail_zh="导入记录不存在")
    return _row(row)


@api.get("/imports", summary="Recent imports in my area")
async def list_imports(user: CurrentUser, db: DbDep) -> list[dict[str, Any]]:
    """The last 50 imports, newest first (problems omitted; open one for its report)."""
    stmt = select(*(c for c in _COLUMNS if c is not ImportBatch.problems)).order_by(
        ImportBatch.id.desc()
    )
    stmt = stmt.where(in_scope(ImportBatch.scope_code, user))
    async with db.tx() as conn:
        rows = (await conn.execute(stmt.limit(50))).all()
    return [_row(r) for r in rows]
