"""生产经营单位: read, and edit with If-Match (lost updates are refused, never silent)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header, Path, Query, Response

from gis_service.api.deps import CurrentUser, DbDep
from gis_service.api.routes import router
from gis_service.domain import enterprises
from gis_service.errors import BadParameter, PreconditionRequired

api = router("enterprises")
IdPath = Annotated[int, Path(ge=1, le=2**62)]
#: 统一社会信用代码 as stored (GB 32100: 18 upper-case letters and digits); lower case accepted.
UsccQuery = Annotated[
    str, Query(pattern=r"^[0-9A-Za-z]{18}$", description="统一社会信用代码（18 位）")
]


def _etag(version: int) -> str:
    return f'"{version}"'


def _parse_if_match(value: str | None) -> int:
    if value is None:
        raise PreconditionRequired()
    tag = value.strip().removeprefix("W/").strip('"')
    if not tag.isdigit() or len(tag) > 12:
        raise BadParameter(detail="If-Match must be an ETag from a previous GET")
    return int(tag)


@api.get("/enterprises", summary="Find an enterprise by its 统一社会信用代码 (in my area)")
async def find_enterprises(uscc: UsccQuery, user: CurrentUser, db: DbDep) -> dict[str, Any]:
    """Exact match on the unique code, area scoped like every read (the web map's search box).

    ``items`` is empty when no enterprise of the caller's area holds it (the OGC collection
    does not publish the code, so this is the one way to search by it).
    """
    async with db.tx() as conn:
        return {"items": await enterprises.find_by_uscc(conn, user, uscc)}


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
