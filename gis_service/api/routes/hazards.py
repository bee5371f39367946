"""The 隐患 ledger (单四制): register, list, read with history, workflow steps, monthly report.

Steps need ``If-Match`` (428 without, 412 when stale); an impossible step is a 409 that
lists the possible ones. Everything is scoped to the caller's area (404 outside it).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path as FsPath
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import Depends, File, Header, Path, Query, Response, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel

from gis_service.api.deps import CurrentUser, DbDep, SettingsDep
from gis_service.api.routes import router
from gis_service.api.routes.enterprises import _etag, _parse_if_match
from gis_service.db.models import HAZARD_LEVELS, HAZARD_STATUSES, SECTORS
from gis_service.errors import Forbidden, NotFound
from gis_service.hazards import export, files, ledger, notice, stats
from gis_service.hazards import workflow as wf
from gis_service.settings import Settings

api = router("hazards")
IdPath = Annotated[int, Path(ge=1, le=2**62)]
MonthPath = Annotated[str, Path(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")]
Status = Literal[HAZARD_STATUSES]  # type: ignore[valid-type]
Level = Literal[HAZARD_LEVELS]  # type: ignore[valid-type]
Sector = Literal[(*SECTORS, "none")]  # type: ignore[valid-type]
AdminCode = Annotated[str | None, Query(pattern=r"^(\d{6}|\d{9}|\d{12})$")]
IfMatch = Annotated[str | None, Header()]


def hazard_filter(  # noqa: PLR0917 - one query parameter each
    status: Annotated[list[Status] | None, Query(max_length=5)] = None,
    level: Level | None = None,
    overdue: bool | None = None,
    escalated: bool | None = None,
    sector: Sector | None = None,
    admin: AdminCode = None,
    grid: Annotated[str | None, Query(pattern=r"^\d{15}$")] = None,
    enterprise: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    found_from: dt.date | None = None,
    found_to: dt.date | None = None,
) -> ledger.HazardFilter:
    """The ledger filters shared by the list and the map layer."""
    return ledger.HazardFilter(
        status=tuple(status or ()),
        level=level,
        overdue=overdue,
        escalated=escalated,
        sector=sector,
        admin=admin,
        grid=grid,
        enterprise_id=enterprise,
        found_from=found_from,
        found_to=found_to,
    )


FilterDep = Annotated[ledger.HazardFilter, Depends(hazard_filter)]


@api.get("/hazards", summary="The 隐患 ledger (台账) in my area: filters, sorting, paging")
async def list_hazards(  # noqa: PLR0917 - FastAPI injects by parameter
    user: CurrentUser,
    db: DbDep,
    flt: FilterDep,
    sort: Annotated[str, Query(description=", ".join(ledger.SORTS))] = "-found_at",
    limit: Annotated[int, Query(ge=1, le=10**9)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict[str, Any]:
    """``limit`` is clamped to 500; ``status`` may repeat; ``sector=none`` for non-enterprise."""
    async with db.tx() as conn:
        return await ledger.list_hazards(conn, user, flt, sort=sort, limit=limit, offset=offset)


@api.get("/hazards/map.geojson", summary="Map layer: open 隐患, coloured by status and overdue")
async def hazards_map(user: CurrentUser, db: DbDep, flt: FilterDep) -> Response:
    """GeoJSON FeatureCollection; ``colour`` is red for overdue, else by status."""
    import orjson

    async with db.tx() as conn:
        fc = await ledger.open_hazards_geojson(conn, user, flt)
    return Response(orjson.dumps(fc), media_type="application/geo+json")


@api.get("/hazards/export.{fmt}", summary="台账 export (CSV/XLSX): title row, header, one row each")
async def export_ledger(
    fmt: Literal["csv", "xlsx"], user: CurrentUser, db: DbDep, flt: FilterDep
) -> Response:
    """The filtered ledger in my area, in the layout of a printed government 台账."""
    async with db.tx() as conn:
        rows = await export.ledger_rows(conn, user, flt)
        area = (
            await stats.resolve_root(conn, user, flt.admin)
            if flt.admin or user.scope_code
            else {"code": "all", "name": "全国"}
        )
    title = f"{area['name']}安全生产事故隐患排查治理台账（共{len(rows)}项）"
    writer, media = export.FORMATS[fmt]
    name = quote(f"隐患台账-{area['code']}.{fmt}")
    return Response(
        writer(title, rows),
        media_type=media,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}"},
    )


@api.post("/hazard-files", status_code=201, summary="Upload a photo or evidence file (≤ 10 MB)")
async def upload_file(
    user: CurrentUser, settings: SettingsDep, file: Annotated[UploadFile, File()]
) -> dict[str, Any]:
    """JPEG, PNG or PDF, recognised by content; put the answer in ``photos`` or ``evidence``."""
    if user.role not in wf.CREATORS or user.anonymous:
        raise Forbidden(detail="your role may not upload ledger files")
    data = await file.read(files.MAX_FILE_BYTES + 1)
    return await asyncio.to_thread(files.store, _files_root(settings), data, file.filename)


@api.get("/hazard-files/{sha256}", summary="A photo or evidence file of a 隐患 in my area")
async def get_file(
    sha256: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")],
    user: CurrentUser,
    db: DbDep,
    settings: SettingsDep,
) -> FileResponse:
    """404 unless a 隐患 you can see refers to the file."""
    async with db.tx() as conn:
        visible = await ledger.file_visible(conn, user, sha256)
    path = files.path_of(_files_root(settings), sha256)
    if not visible or not path.is_file():
        raise NotFound(detail="file not found", detail_zh="文件不存在")
    with path.open("rb") as fh:
        media = files.sniff(fh.read(16))
    return FileResponse(path, media_type=media, headers={"Cache-Control": "private, max-age=3600"})


def _files_root(settings: Settings) -> FsPath:
    return settings.db.data_dir / "hazard-files"


def _with_etag(row: dict[str, Any], response: Response) -> dict[str, Any]:
    response.headers["ETag"] = _etag(row["row_version"])
    return row


@api.post("/hazards", status_code=201, summary="Register a found 隐患")
async def create_hazard(
    body: wf.HazardCreate, user: CurrentUser, db: DbDep, response: Response
) -> dict[str, Any]:
    """Status ``found``, numbered ``{county}-{yyyymm}-{seq}``; the first event is written too."""
    async with db.tx() as conn:
        row = await ledger.create_hazard(conn, user, body)
    response.headers["Location"] = f"/hazards/{row['id']}"
    return _with_etag(row, response)


@api.get("/hazards/{hazard_id}", summary="One 隐患 with its full history")
async def get_hazard(
    hazard_id: IdPath, user: CurrentUser, db: DbDep, response: Response
) -> dict[str, Any]:
    """With ``history`` (every event) and ``allowed_actions`` for the caller; ETag = version."""
    async with db.tx() as conn:
        row = await ledger.get_hazard(conn, user, hazard_id)
    return _with_etag(row, response)


async def _step(  # noqa: PLR0917 - the step's parts
    action: str,
    hazard_id: int,
    body: BaseModel,
    user: CurrentUser,
    db: DbDep,
    response: Response,
    if_match: str | None,
) -> dict[str, Any]:
    expected = _parse_if_match(if_match)
    async with db.tx() as conn:
        row = await ledger.transition(
            conn, user, hazard_id, action, expected_version=expected, body=body
        )
    return _with_etag(row, response)


@api.post("/hazards/{hazard_id}/assign", summary="交办 (admin, planner)")
async def assign(  # noqa: PLR0917
    hazard_id: IdPath,
    body: wf.AssignBody,
    user: CurrentUser,
    db: DbDep,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """Found → assigned; a major hazard needs all five in place (五落实)."""
    return await _step("assign", hazard_id, body, user, db, response, if_match)


@api.post("/hazards/{hazard_id}/start", summary="开始整改 (admin, surveyor, grid_worker)")
async def start(  # noqa: PLR0917
    hazard_id: IdPath,
    body: wf.NoteBody,
    user: CurrentUser,
    db: DbDep,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """Assigned → rectifying."""
    return await _step("start", hazard_id, body, user, db, response, if_match)


@api.post(
    "/hazards/{hazard_id}/request_closeout",
    summary="申请销号 with evidence (admin, surveyor, grid_worker)",
)
async def request_closeout(  # noqa: PLR0917
    hazard_id: IdPath,
    body: wf.CloseoutBody,
    user: CurrentUser,
    db: DbDep,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """Rectifying → closeout_requested; at least one evidence file."""
    return await _step("request_closeout", hazard_id, body, user, db, response, if_match)


@api.post("/hazards/{hazard_id}/close", summary="复核销号 (admin, planner; not the rectifier)")
async def close(  # noqa: PLR0917
    hazard_id: IdPath,
    body: wf.ReviewBody,
    user: CurrentUser,
    db: DbDep,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """Closeout_requested → closed."""
    return await _step("close", hazard_id, body, user, db, response, if_match)


@api.post("/hazards/{hazard_id}/reject", summary="退回整改 (admin, planner)")
async def reject(  # noqa: PLR0917
    hazard_id: IdPath,
    body: wf.ReviewBody,
    user: CurrentUser,
    db: DbDep,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """Closeout_requested → rectifying, with the reason."""
    return await _step("reject", hazard_id, body, user, db, response, if_match)


@api.post("/hazards/{hazard_id}/escalate", summary="挂牌督办 (admin, planner, commander)")
async def escalate(  # noqa: PLR0917
    hazard_id: IdPath,
    body: wf.EscalateBody,
    user: CurrentUser,
    db: DbDep,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """Flag an open hazard for supervision; the status stays."""
    return await _step("escalate", hazard_id, body, user, db, response, if_match)


@api.get("/reports/monthly/{month}", summary="每月一统计、一排名 (JSON)")
async def monthly_report(
    month: MonthPath, user: CurrentUser, db: DbDep, admin: AdminCode = None
) -> dict[str, Any]:
    """Figures by county → township, level and sector; the ranking; month-on-month change."""
    m = stats.Month.parse(month)
    async with db.tx() as conn:
        return await stats.monthly_report(conn, user, m, admin)


@api.get("/reports/monthly/{month}/notice.{fmt}", summary="一通报: the draft notice")
async def monthly_notice(
    month: MonthPath,
    fmt: Literal["md", "html", "docx", "pdf"],
    user: CurrentUser,
    db: DbDep,
    admin: AdminCode = None,
) -> Response:
    """The notice (Chinese) as Markdown, HTML, DOCX or PDF, from the same figures as the JSON."""
    m = stats.Month.parse(month)
    async with db.tx() as conn:
        report = await stats.monthly_report(conn, user, m, admin)
    data, media = notice.render(report, fmt)
    name = quote(f"隐患排查治理通报-{report['root']['code']}-{month}.{fmt}")
    return Response(
        data,
        media_type=media,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}"},
    )


@api.post("/reports/monthly/{month}/publish", summary="Freeze an ended month (admin, planner)")
async def publish_report(
    month: MonthPath, user: CurrentUser, db: DbDep, admin: AdminCode = None
) -> dict[str, Any]:
    """Once published, the month's report never changes (409 on a second publish)."""
    m = stats.Month.parse(month)
    async with db.tx() as conn:
        return await stats.publish(conn, user, m, admin)
