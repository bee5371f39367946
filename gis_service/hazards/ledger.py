"""台账: create a 隐患, list and read it in scope, and take workflow steps atomically.

Every step updates the hazard and appends its ``hazard_event`` in the caller's one
transaction (so neither exists without the other), after locking the row and checking the
caller's ``If-Match`` version: of N concurrent steps from the same version exactly one wins.
Times come from the database clock (``now()``); ``overdue`` is derived, never stored.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy import (
    ColumnElement,
    Date,
    and_,
    case,
    false,
    func,
    literal_column,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from gis_service.db.models import AdminDivision, Base, Enterprise, Person
from gis_service.domain.pii import mask_name
from gis_service.domain.scope import Principal, in_scope
from gis_service.errors import (
    BadParameter,
    Conflict,
    FieldProblem,
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionFailed,
)
from gis_service.hazards import workflow as wf

H = Base.metadata.tables["safety_hazard"]
EV = Base.metadata.tables["hazard_event"]
E = Enterprise.__table__
P = Person.__table__

#: The ledger's "today" (local date of the database clock).
TODAY: ColumnElement[dt.date] = literal_column("(now() AT TIME ZONE 'Asia/Shanghai')::date", Date)
OVERDUE: ColumnElement[bool] = and_(H.c.status != "closed", H.c.deadline < TODAY)

MAX_LIMIT = 500
MAX_OFFSET = 100_000

#: Allowed sort keys (never a column name from the request).
SORTS: dict[str, Any] = {
    "found_at": (H.c.found_at.asc(), H.c.id.asc()),
    "-found_at": (H.c.found_at.desc(), H.c.id.desc()),
    "deadline": (H.c.deadline.asc().nulls_last(), H.c.id.asc()),
    "-deadline": (H.c.deadline.desc().nulls_last(), H.c.id.desc()),
    "hazard_no": (H.c.hazard_no.asc(),),
    "-hazard_no": (H.c.hazard_no.desc(),),
    "closed_at": (H.c.closed_at.asc().nulls_last(), H.c.id.asc()),
    "-closed_at": (H.c.closed_at.desc().nulls_last(), H.c.id.desc()),
}


def ledger_columns() -> list[Any]:
    """The columns of a ledger row (list, detail, export)."""
    return [
        H.c.id,
        H.c.hazard_no,
        H.c.title,
        H.c.level,
        H.c.category,
        H.c.found_via,
        H.c.status,
        H.c.escalated,
        H.c.supervision_level,
        H.c.responsible_org,
        func.coalesce(H.c.attributes["responsible_person"].astext, P.c.name).label(
            "responsible_person"
        ),
        H.c.deadline,
        H.c.found_at,
        H.c.closed_at,
        H.c.admin_code,
        H.c.grid_code,
        H.c.enterprise_id,
        E.c.name.label("enterprise_name"),
        E.c.sector,
        OVERDUE.label("overdue"),
        case((OVERDUE, TODAY - H.c.deadline), else_=0).label("days_overdue"),
        func.ST_X(H.c.geom).label("lon"),
        func.ST_Y(H.c.geom).label("lat"),
        H.c.row_version,
    ]


def ledger_from() -> Any:
    """The ledger's FROM: hazards with their enterprise and registered person."""
    return H.outerjoin(E, E.c.id == H.c.enterprise_id).outerjoin(
        P, P.c.id == H.c.responsible_person_id
    )


def _json(row: Any, principal: Principal) -> dict[str, Any]:
    out = dict(row._mapping)
    for key, value in out.items():
        if isinstance(value, dt.date | dt.datetime):
            out[key] = value.isoformat()
    if not principal.sees_pii:
        out["responsible_person"] = mask_name(out.get("responsible_person"))
    return out


def _under(column: Any, code: str) -> ColumnElement[bool]:
    """``column`` (a village code) lies inside admin unit ``code`` (explicit hierarchy)."""
    units = select(AdminDivision.code).where(AdminDivision.ancestors.contains([code]))
    return column.in_(units)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class HazardFilter:
    """The ledger's filters; ``None`` means "any"."""

    status: tuple[str, ...] = ()
    level: str | None = None
    overdue: bool | None = None
    escalated: bool | None = None
    sector: str | None = None
    admin: str | None = None
    grid: str | None = None
    enterprise_id: int | None = None
    found_from: dt.date | None = None
    found_to: dt.date | None = None

    def where(self, principal: Principal) -> list[ColumnElement[bool]]:
        """SQL predicates (scope first); every value is bound."""
        w: list[ColumnElement[bool]] = [in_scope(H.c.admin_code, principal)]
        if self.status:
            w.append(H.c.status.in_(self.status))
        if self.level is not None:
            w.append(H.c.level == self.level)
        if self.overdue is not None:
            w.append(OVERDUE if self.overdue else ~OVERDUE)
        if self.escalated is not None:
            w.append(H.c.escalated.is_(true() if self.escalated else false()))
        if self.sector == "none":
            w.append(H.c.enterprise_id.is_(None))
        elif self.sector is not None:
            w.append(E.c.sector == self.sector)
        if self.admin is not None:
            w.append(_under(H.c.admin_code, self.admin))
        if self.grid is not None:
            w.append(H.c.grid_code == self.grid)
        if self.enterprise_id is not None:
            w.append(H.c.enterprise_id == self.enterprise_id)
        local_found = func.timezone("Asia/Shanghai", H.c.found_at)
        if self.found_from is not None:
            w.append(local_found >= self.found_from)
        if self.found_to is not None:
            w.append(local_found < self.found_to + dt.timedelta(days=1))
        return w


async def list_hazards(
    conn: AsyncConnection,
    principal: Principal,
    flt: HazardFilter,
    *,
    sort: str = "-found_at",
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    """One page of the ledger in the caller's area, with the total matching count."""
    if sort not in SORTS:
        raise BadParameter(
            detail=f"sort must be one of {', '.join(SORTS)}",
            fields=[FieldProblem("sort", "unknown sort key")],
        )
    if offset > MAX_OFFSET:
        raise BadParameter(
            detail=f"offset above {MAX_OFFSET}; narrow the filters",
            fields=[FieldProblem("offset", "too large")],
        )
    limit = max(1, min(limit, MAX_LIMIT))
    where = flt.where(principal)
    total = (
        await conn.execute(select(func.count()).select_from(ledger_from()).where(*where))
    ).scalar_one()
    rows = (
        await conn.execute(
            select(*ledger_columns())
            .select_from(ledger_from())
            .where(*where)
            .order_by(*SORTS[sort])
            .limit(limit)
            .offset(offset)
        )
    ).all()
    return {
        "total": total,
        "limit": limit,
        "offset": offset,
        "items": [_json(r, principal) for r in rows],
    }


_PLACE = text(
    """SELECT v.code AS village, v.name AS village_name, t.code AS township,
              t.name AS township_name, c.code AS county, c.name AS county_name
       FROM admin_division v
       LEFT JOIN admin_division t ON t.code = v.parent_code
       LEFT JOIN admin_division c ON c.code = ANY(v.ancestors) AND c.level = 'county'
       WHERE v.code = :code"""
)

_HISTORY = select(
    EV.c.id,
    EV.c.action,
    EV.c.from_status,
    EV.c.to_status,
    EV.c.actor,
    EV.c.actor_role,
    EV.c.at,
    EV.c.note,
    EV.c.payload,
)


async def get_hazard(
    conn: AsyncConnection, principal: Principal, hazard_id: int, *, lock: bool = False
) -> dict[str, Any]:
    """A 隐患 with its full history and the steps the caller may take; 404 out of scope."""
    stmt = (
        select(
            *ledger_columns(),
            H.c.description,
            H.c.measures,
            H.c.legal_basis,
            H.c.five_in_place,
            H.c.photos,
        )
        .select_from(ledger_from())
        .where(H.c.id == hazard_id, in_scope(H.c.admin_code, principal))
    )
    if lock:
        stmt = stmt.with_for_update(of=H)
    row = (await conn.execute(stmt)).one_or_none()
    if row is None:
        raise NotFound(detail="hazard not found", detail_zh="隐患不存在")
    out = _json(row, principal)
    place = (await conn.execute(_PLACE, {"code": row.admin_code})).one_or_none()
    out["place"] = dict(place._mapping) if place else None
    events = await conn.execute(
        _HISTORY.where(EV.c.hazard_id == hazard_id).order_by(EV.c.at, EV.c.id)
    )
    out["history"] = [{**dict(e._mapping), "at": e.at.isoformat()} for e in events.all()]
    out["allowed_actions"] = (
        []
        if principal.anonymous
        else wf.allowed_actions(row.status, escalated=row.escalated, role=principal.role)
    )
    return out


async def _event(
    conn: AsyncConnection,
    principal: Principal,
    hazard_id: int,
    *,
    action: str,
    from_status: str | None,
    to_status: str,
    note: str | None,
    payload: dict[str, Any],
) -> None:
    await conn.execute(
        EV.insert().values(
            hazard_id=hazard_id,
            action=action,
            from_status=from_status,
            to_status=to_status,
            actor=principal.login,
            actor_role=str(principal.role),
            at=func.now(),
            note=note,
            payload=payload,
            source=f"user:{principal.login}",
        )
    )


_VILLAGE_AT = text(
    """SELECT v.code, c.code AS county
       FROM admin_division v
       JOIN admin_division c ON c.code = ANY(v.ancestors) AND c.level = 'county'
       WHERE v.code = gis_village_at(ST_SetSRID(ST_MakePoint(:lon, :lat), 4490))"""
)
_NEXT_NO = text(
    """SELECT :prefix || '-' || lpad((coalesce(max(split_part(hazard_no, '-', 3)::int), 0) + 1)
              ::text, 4, '0')
       FROM safety_hazard
       WHERE hazard_no LIKE :prefix || '-%' AND hazard_no ~ '^\\d+-\\d{6}-\\d+$'"""
)


async def create_hazard(
    conn: AsyncConnection, principal: Principal, body: wf.HazardCreate
) -> dict[str, Any]:
    """Register a found 隐患 (status ``found``) and its first event; numbered per county and month.

    Raises:
        Forbidden: the caller's role may not register hazards.
        NotFound: the enterprise is absent or outside the caller's area.
        InvalidInput: the point lies in no village of the caller's area.
    """
    if principal.role not in wf.CREATORS or principal.anonymous:
        raise Forbidden(
            detail="your role may not register hazards", detail_zh="当前角色不能登记隐患"
        )
    lon, lat = body.lon, body.lat
    if body.enterprise_id is not None:
        ent = (
            await conn.execute(
                select(func.ST_X(E.c.geom), func.ST_Y(E.c.geom)).where(
                    E.c.id == body.enterprise_id, in_scope(E.c.admin_code, principal)
                )
            )
        ).one_or_none()
        if ent is None:
            raise NotFound(detail="enterprise not found", detail_zh="企业不存在")
        if lon is None:
            lon, lat = float(ent[0]), float(ent[1])
    place = (await conn.execute(_VILLAGE_AT, {"lon": lon, "lat": lat})).one_or_none()
    in_area = (
        place is not None
        and (
            await conn.execute(
                select(AdminDivision.code).where(
                    AdminDivision.code == place.code, in_scope(AdminDivision.code, principal)
                )
            )
        ).scalar_one_or_none()
    )
    if place is None or not in_area:
        raise InvalidInput(
            detail="the location lies in no village of your area",
            detail_zh="位置不在您管辖范围内的任何村（社区）",
            fields=[
                FieldProblem("lon", "outside your area"),
                FieldProblem("lat", "outside your area"),
            ],
        )
    month = (await conn.execute(select(func.to_char(TODAY, "YYYYMM")))).scalar_one()
    prefix = f"{place.county}-{month}"
    await conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(prefix))))
    hazard_no = (await conn.execute(_NEXT_NO, {"prefix": prefix})).scalar_one()
    new_id = (
        await conn.execute(
            H.insert()
            .values(
                hazard_no=hazard_no,
                title=body.title,
                description=body.description,
                enterprise_id=body.enterprise_id,
                geom=func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4490),
                level=body.level,
                category=body.category,
                found_via=body.found_via,
                legal_basis=body.legal_basis,
                photos=[p.model_dump(exclude_none=True) for p in body.photos],
                status="found",
                found_at=func.now(),
                source=f"user:{principal.login}",
            )
            .returning(H.c.id)
        )
    ).scalar_one()
    await _event(
        conn,
        principal,
        new_id,
        action="create",
        from_status=None,
        to_status="found",
        note=None,
        payload={},
    )
    return await get_hazard(conn, principal, new_id)


def _illegal(status: str, action: str, escalated: bool, principal: Principal) -> Conflict:
    legal = wf.legal_actions(status, escalated=escalated)
    mine = wf.allowed_actions(status, escalated=escalated, role=principal.role)
    return Conflict(
        code="illegal_transition",
        detail=f"'{action}' is not possible from status '{status}';"
        f" possible: {', '.join(legal) or 'none'}",
        detail_zh=f"当前状态（{status}）不能执行该操作",
        fields=[FieldProblem("action", f"not allowed from {status}")],
        extra={"status": status, "allowed_actions": mine, "legal_actions": legal},
    )


async def _check_step(
    conn: AsyncConnection,
    principal: Principal,
    hazard: dict[str, Any],
    action: str,
    body: BaseModel,
) -> None:
    """Rules beyond the state machine: deadlines, 五落实, and the four-eyes review."""
    if isinstance(body, wf.AssignBody):
        today = (await conn.execute(select(TODAY))).scalar_one()
        if body.deadline < today or body.deadline > today + dt.timedelta(days=3 * 366):
            raise InvalidInput(
                detail="deadline must be between today and three years ahead",
                detail_zh="整改期限须在今天至三年内",
                fields=[FieldProblem("deadline", "out of range")],
            )
        five = body.five_in_place
        if hazard["level"] == "major" and (five is None or not all(five.model_dump().values())):
            raise InvalidInput(
                detail="a major hazard is assigned only with all five in place"
                " (measures, funds, deadline, person, plan)",
                detail_zh="重大事故隐患须落实措施、资金、期限、责任人和应急预案后方可交办",
                fields=[FieldProblem("five_in_place", "all five must be true for a major hazard")],
            )
    if action == "close":
        rectifiers = await conn.execute(
            select(EV.c.actor)
            .where(EV.c.hazard_id == hazard["id"], EV.c.action.in_(wf.RECTIFIER_ACTIONS))
            .distinct()
        )
        if principal.login in {r[0] for r in rectifiers}:
            raise Forbidden(
                code="reviewer_is_rectifier",
                detail="the reviewer who closes a hazard must not be its rectifier",
                detail_zh="销号复核人不能是整改人",
            )


def _changes(action: str, body: BaseModel, target: str) -> dict[str, Any]:
    values: dict[str, Any] = {"status": target}
    if isinstance(body, wf.AssignBody):
        values |= {
            "responsible_org": body.responsible_org,
            "deadline": body.deadline,
            "measures": body.measures,
            "five_in_place": body.five_in_place.model_dump() if body.five_in_place else None,
            "attributes": H.c.attributes.op("||")(
                func.jsonb_build_object("responsible_person", body.responsible_person)
            ),
        }
    elif isinstance(body, wf.EscalateBody):
        values |= {"escalated": True, "supervision_level": body.supervision_level}
    if action == "close":
        values["closed_at"] = func.now()
    return values


async def transition(
    conn: AsyncConnection,
    principal: Principal,
    hazard_id: int,
    action: str,
    *,
    expected_version: int,
    body: BaseModel,
) -> dict[str, Any]:
    """Take workflow step ``action`` if the hazard is still at ``expected_version``.

    Raises:
        NotFound: absent or outside the caller's area (before anything else: no oracle).
        PreconditionFailed: someone else changed the hazard first (stale If-Match).
        Conflict: the step is not possible from the current status (lists the possible ones).
        Forbidden: the caller's role may not take this step, or would review their own work.
        InvalidInput: a rule of the step is broken (deadline, 五落实 …).
    """
    step = wf.STEPS.get(action)
    if step is None:
        raise NotFound(detail=f"unknown action {action!r}", detail_zh="未知操作")
    hazard = await get_hazard(conn, principal, hazard_id, lock=True)
    if hazard["row_version"] != expected_version:
        raise PreconditionFailed()
    status, escalated = hazard["status"], hazard["escalated"]
    if action not in wf.legal_actions(status, escalated=escalated):
        raise _illegal(status, action, escalated, principal)
    if principal.role not in step.roles or principal.anonymous:
        raise Forbidden(
            detail=f"your role may not {action}",
            detail_zh=f"当前角色不能执行“{step.label_zh}”",
            extra={"allowed_actions": hazard["allowed_actions"]},
        )
    await _check_step(conn, principal, hazard, action, body)
    target = step.target or status
    await conn.execute(
        H.update()
        .where(H.c.id == hazard_id, H.c.row_version == expected_version)
        .values(**_changes(action, body, target))
    )
    payload = body.model_dump(mode="json", exclude_none=True)
    note = payload.pop("note", None) or payload.get("opinion")
    await _event(
        conn,
        principal,
        hazard_id,
        action=action,
        from_status=status,
        to_status=target,
        note=note,
        payload=payload,
    )
    return await get_hazard(conn, principal, hazard_id)


_MAP = text(
    """SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(
               json_build_object('type', 'Feature', 'id', h.id,
                 'geometry', ST_AsGeoJSON(h.geom, 7)::json,
                 'properties', json_build_object(
                    'hazard_no', h.hazard_no, 'title', h.title, 'level', h.level,
                    'status', h.status, 'escalated', h.escalated, 'deadline', h.deadline,
                    'overdue', h.deadline < (now() AT TIME ZONE 'Asia/Shanghai')::date,
                    'colour', CASE
                        WHEN h.deadline < (now() AT TIME ZONE 'Asia/Shanghai')::date
                            THEN '#d7191c'
                        WHEN h.status = 'found' THEN '#fdae61'
                        WHEN h.status = 'assigned' THEN '#ffd700'
                        WHEN h.status = 'rectifying' THEN '#2b83ba'
                        ELSE '#1a9641' END))
               ORDER BY h.id), '[]'::json))
       FROM safety_hazard h
       WHERE h.status <> 'closed' AND h.geom IS NOT NULL AND h.id = ANY(:ids)"""
)


async def open_hazards_geojson(
    conn: AsyncConnection, principal: Principal, flt: HazardFilter
) -> dict[str, Any]:
    """Map layer: open 隐患 in scope as GeoJSON, coloured by status (red when overdue)."""
    ids = (
        await conn.execute(
            select(H.c.id)
            .select_from(ledger_from())
            .where(*flt.where(principal), H.c.status != "closed")
            .limit(20_000)
        )
    ).scalars()
    result: dict[str, Any] = (await conn.execute(_MAP, {"ids": list(ids)})).scalar_one()
    return result


#: The history rule is the database function ``gis_hazard_history`` (migration 0009), which
#: the importer also calls right after a 隐患 import.
_BACKFILL = text("SELECT gis_hazard_history(CAST(:ids AS bigint[]), :actor)")


async def backfill_history(conn: AsyncConnection, principal: Principal) -> int:
    """Give every hazard without events (an imported ledger row) a synthetic history.

    found → … → its current status, flagged ``action = 'import'``: closed rows spread from
    ``found_at`` to ``closed_at`` (the 销号 event at ``closed_at`` exactly), open rows at
    ``found_at``. Without it such rows would be missing from every statistic, which counts
    events. Returns the number of hazards given a history.

    Raises:
        Forbidden: the caller is not an admin or planner.
    """
    if principal.role not in wf.BACKFILLERS or principal.anonymous:
        raise Forbidden(detail="only admins and planners backfill ledger history")
    ids = (
        await conn.execute(
            select(H.c.id).where(
                in_scope(H.c.admin_code, principal),
                ~select(EV.c.id).where(EV.c.hazard_id == H.c.id).exists(),
            )
        )
    ).scalars()
    id_list = list(ids)
    if id_list:
        await conn.execute(_BACKFILL, {"ids": id_list, "actor": principal.login})
    return len(id_list)


async def file_visible(conn: AsyncConnection, principal: Principal, sha256: str) -> bool:
    """Whether a 隐患 in the caller's area refers to this file (photo or step evidence)."""
    ref = func.jsonb_build_array(func.jsonb_build_object("sha256", sha256))
    evidence = (
        select(EV.c.id)
        .where(EV.c.hazard_id == H.c.id, EV.c.payload["evidence"].op("@>")(ref))
        .exists()
    )
    row = await conn.execute(
        select(H.c.id)
        .where(in_scope(H.c.admin_code, principal), or_(H.c.photos.op("@>")(ref), evidence))
        .limit(1)
    )
    return row.first() is not None
