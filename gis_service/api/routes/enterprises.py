"""生产经营单位: read, and edit with If-Match (lost updates are refused, never silent)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header, Path, Response

from gis_service.api.deps import CurrentUser, DbDep
from gis_service.api.routes import router
from gis_service.domain import enterprises
from gis_service.errors import BadParameter, PreconditionRequired

api = router("enterprises")
IdPath = Annotated[int, Path(ge=1, le=2**62)]


def _etag(version: int) -> str:
    return f'"{version}"'


def _parse_if_match(value: str | None) -> int:
    if value is None:
        raise PreconditionRequired()
    tag = value.strip().removeprefix("W/").strip('"')
    if not tag.isdigit() or len(tag) > 12:
        raise BadParameter(detail="If-Match must be an ETag from a previous GET")
    return int(tag)


@api.get("/enterprises/{enterprise_id}", summary="One enterprise (in my area)")
async def get_enterprise(
    enterprise_id: IdPath, user: CurrentUser, db: DbDep, response: Response
) -> dict[str, Any]:
    """The enterprise with its ETag (its row version)."""
    async with db.tx() as conn:
        row = await enterprises.get_enterprise(conn, user, enterprise_id)
    response.headers["ETag"] = _etag(row["row_version"])
    return row


@api.patch("/enterprises/{enterprise_id}", summary="Edit an enterprise (admin, surveyor)")
async def patch_enterprise(  # noqa: PLR0917 - FastAPI injects by parameter
    enterprise_id: IdPath,
    body: enterprises.EnterprisePatch,
    user: CurrentUser,
    db: DbDep,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    """Requires ``If-Match``: 428 without it, 412 when someone else edited first."""
    expected = _parse_if_match(if_match)
    async with db.tx() as conn:
        row = await enterprises.update_enterprise(conn, user, enterprise_id, expected, body)
    response.headers["ETag"] = _etag(row["row_version"])
    return row
