"""Grid partitioning and assignment: proposals (a background job), edits, commit, people, lists.

``GET /grids/{code}`` (reference routes) is mounted first, so nothing here is a one-segment
GET under ``/grids/``: proposals are ``/grids/proposals/{id}``, reports are two segments deep.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path as FsPath
from typing import Annotated, Any

from fastapi import Depends, File, Path, Query, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection

from gis_service.api.deps import CurrentUser, DbDep, require_roles
from gis_service.api.routes import router
from gis_service.domain.scope import Principal
from gis_service.errors import FieldProblem, InvalidInput
from gis_service.grids import assign, edits, jobs, store
from gis_service.types import Role

api = router("grids")
Planner = Annotated[Principal, Depends(require_roles(Role.admin, Role.planner))]
IdPath = Annotated[int, Path(ge=1, le=2**62)]
GridPath = Annotated[str, Path(pattern=r"^\d{15}$", description="15 位网格编码")]
AdminQuery = Annotated[str, Query(pattern=r"^(\d{6}|\d{9}|\d{12})$", description="区划代码")]


class ProposalBody(BaseModel):
    """What to partition and how (``admin`` or ``communities``)."""

    model_config = ConfigDict(extra="forbid")

    admin: str | None = Field(default=None, pattern=r"^(\d{6}|\d{9}|\d{12})$")
    communities: list[str] | None = Field(default=None, min_length=1, max_length=500)
    target: int = Field(default=400, ge=50, le=5000)
    tolerance: float = Field(default=0.10, ge=0.01, le=0.5)
    barriers: list[str] = Field(default=list(store.DEFAULT_BARRIERS), max_length=5)
    seed: int = Field(default=0, ge=0, lt=2**31)
    warm: bool = True
    weight: bool = Field(
        default=False, description="balance workload (red/orange, geohazards, welfare homes)"
    )
    special: list[str] = Field(
        default_factory=list,
        max_length=200,
        description="专属网格: facility kinds (school, hospital, market …), large_enterprise, "
        "facility:ID or enterprise:ID, each pinned as its own grid outside the balance",
    )
    hard_barriers: bool = Field(
        default=True,
        description="with a crossing layer, grids cross rivers/rail/major roads only at crossings",
    )


@api.post("/grids/proposals", status_code=202, summary="Propose grids for communities (job)")
async def create_proposal(
    request: Request, body: ProposalBody, user: Planner, db: DbDep
) -> JSONResponse:
    """Nothing changes until commit; poll ``GET /grids/proposals/{id}`` for polygons and stats."""
    if (body.admin is None) == (body.communities is None):
        raise InvalidInput(
            detail="give either admin or communities",
            fields=[FieldProblem("admin", "give either admin or communities")],
        )
    for i, c in enumerate(body.communities or []):
        if not (len(c) == 12 and c.isdigit()):
            raise InvalidInput(
                detail="communities: 12-digit village codes",
                fields=[FieldProblem(f"communities.{i}", "not a 12-digit village code")],
            )
    wanted = body.communities or [body.admin or ""]

    def prepare(conn: Connection) -> tuple[int, store.ProposalRequest]:
        codes = store.communities_for(conn, user, wanted)
        req = store.ProposalRequest(
            community_codes=tuple(codes),
            admin_code=body.admin or wanted[0][:6],
            target=body.target,
            tolerance=body.tolerance,
            barriers=tuple(body.barriers),
            seed=body.seed,
            warm=body.warm,
            weight=body.weight,
            special=tuple(body.special),
            hard_barriers=body.hard_barriers,
        )
        return store.create_proposal(conn, req, user), req

    async with db.tx() as conn:
        pid, req = await conn.run_sync(prepare)
    url = request.app.state.database_url
    task = asyncio.create_task(asyncio.to_thread(_job, url, pid, req, user))
    tasks: set[asyncio.Task[None]] = request.app.state.import_jobs
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    href = f"/grids/proposals/{pid}"
    return JSONResponse(
        {"id": pid, "status": "running", "href": href},
        status_code=202,
        headers={"Location": href},
    )


def _job(url: str, pid: int, req: store.ProposalRequest, user: Principal) -> None:
    try:
        jobs.run_job(url, pid, req, user)
    except Exception:  # noqa: BLE001 - recorded on the proposal row by run_job
        return


@api.get("/grids/proposals/{proposal_id}", summary="A proposal: status, quality, grids (GeoJSON)")
async def get_proposal(
    proposal_id: IdPath,
    user: CurrentUser,
    db: DbDep,
    geometry: Annotated[bool, Query(description="include polygons")] = True,
    units: Annotated[
        str | None,
        Query(pattern=r"^\d{12}$", description="add this community's units (for move edits)"),
    ] = None,
) -> dict[str, Any]:
    """Polygons in CRS84 with households, population, area, Polsby-Popper and deviation."""
    async with db.tx() as conn:
        return await conn.run_sync(
            lambda c: jobs.proposal_view(c, proposal_id, user, geometry=geometry, units_of=units)
        )


@api.post("/grids/proposals/{proposal_id}/edits", summary="Move a unit, merge or split grids")
async def edit_proposal(
    proposal_id: IdPath, body: edits.Edit, user: Planner, db: DbDep
) -> dict[str, Any]:
    """Validated first (contiguity; tolerance warnings); refused edits change nothing (422)."""
    async with db.tx() as conn:
        return await conn.run_sync(lambda c: edits.apply_edit(c, proposal_id, body, user))


@api.post("/grids/proposals/{proposal_id}/commit", summary="Commit a proposal as a new version")
async def commit_proposal(proposal_id: IdPath, user: Planner, db: DbDep) -> dict[str, Any]:
    """Retires the current grids (end date), inserts the new ones, re-stamps located rows."""
    async with db.tx() as conn:
        return await conn.run_sync(lambda c: store.commit_proposal(c, proposal_id, user))


@api.get("/grids", summary="Current grids of an area with metrics")
async def list_grids(
    user: CurrentUser,
    db: DbDep,
    admin: AdminQuery,
    metrics: Annotated[str, Query(max_length=200)] = "households",
) -> list[dict[str, Any]]:
    """``metrics``: comma-separated from households, population, workers, red_orange, hazards."""
    names = [m.strip() for m in metrics.split(",") if m.strip()]
    async with db.tx() as conn:
        return await conn.run_sync(lambda c: assign.list_grids(c, user, admin, names))


@api.put("/grids/{grid_code}/assignments", summary="Set the people of a grid")
async def put_assignments(
    grid_code: GridPath,
    body: Annotated[list[assign.Assignment], Field(min_length=1, max_length=50)],
    user: Planner,
    db: DbDep,
) -> dict[str, Any]:
    """Permanent holders of the given roles are replaced; entries with end_date are stand-ins."""
    async with db.tx() as conn:
        return await conn.run_sync(lambda c: assign.put_assignments(c, user, grid_code, body))


@api.post("/grids/assignments/roster", summary="Import a 网格员花名册 (.xlsx)")
async def import_roster(
    user: Planner, db: DbDep, file: Annotated[UploadFile, File(description=".xlsx")]
) -> dict[str, Any]:
    """Columns 姓名, 电话, 网格编码 or 网格名称 (optional 角色); any bad row refuses the file."""
    folder = FsPath(tempfile.mkdtemp(prefix="roster-"))
    try:
        path = folder / "roster.xlsx"
        with path.open("wb") as fh:
            while chunk := await file.read(1 << 20):
                fh.write(chunk)
        async with db.tx() as conn:
            return await conn.run_sync(lambda c: assign.import_roster(c, user, path))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@api.get("/grids/assignments/report", summary="Unassigned grids, workers with several grids")
async def assignment_report(user: CurrentUser, db: DbDep, admin: AdminQuery) -> dict[str, Any]:
    """Also the temporary stand-ins in force; names and phones masked by role."""
    async with db.tx() as conn:
        return await conn.run_sync(lambda c: assign.reports(c, user, admin))
