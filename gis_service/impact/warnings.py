"""预警 as commanders receive them: an area, a kind, a level, a validity window.

The area is a polygon and/or admin units. Stored in ``warning`` (stamped and audited like
every located row).

Scope is by area: a warning is visible to a caller when its polygon meets the caller's area
(a county user sees the prefecture's warning that covers the county), and a commander may
only issue a warning that meets their own area.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal, Self

import shapely
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from shapely.geometry.base import BaseGeometry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gis_service.db.models import WARNING_LEVELS, WARNING_SOURCES
from gis_service.domain.scope import Principal
from gis_service.errors import FieldProblem, InvalidInput, NotFound
from gis_service.impact.footprint import check_size
from gis_service.impact.scoping import area_scope_sql, code_scope_sql

LEVEL_ZH = {"blue": "蓝色", "yellow": "黄色", "orange": "橙色", "red": "红色"}
LEVEL_COLOR = {"blue": "#1e6fff", "yellow": "#ffd700", "orange": "#ff8c00", "red": "#e60000"}
Level = Literal["blue", "yellow", "orange", "red"]
SourceKind = Literal[
    "cma_signal", "geohazard_meteo", "flash_flood", "hydrology", "forest_fire_danger", "other"
]
assert set(LEVEL_ZH) == set(WARNING_LEVELS)
assert set(SourceKind.__args__) == set(WARNING_SOURCES)  # type: ignore[attr-defined]


class WarningCreate(BaseModel):
    """Body of ``POST /warnings``: a polygon, admin codes, or both (their union)."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(min_length=1, max_length=100, description="e.g. 暴雨红色预警")
    source_kind: SourceKind = "other"
    level: Level
    geometry: dict[str, Any] | None = Field(default=None, description="GeoJSON (Multi)Polygon")
    admin_codes: list[str] = Field(
        default_factory=list, max_length=200, description="6/9/12-digit admin codes"
    )
    crs: Literal["wgs84", "cgcs2000", "gcj02", "bd09"] = "wgs84"
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None
    text: str | None = Field(default=None, max_length=4000)

    @model_validator(mode="after")
    def _area_and_window(self) -> Self:
        if self.geometry is None and not self.admin_codes:
            raise ValueError("give geometry or admin_codes")
        for code in self.admin_codes:
            if not (code.isdigit() and len(code) in (6, 9, 12)):
                raise ValueError(f"admin_codes: {code[:20]!r} is not a 6/9/12-digit code")
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        return self


_FEATURE = """SELECT w.id, w.kind, w.source_kind, w.level, w.admin_codes, w.issued_at,
       w.valid_from, w.valid_to, w.text, w.admin_code,
       (w.valid_from IS NULL OR w.valid_from <= now())
           AND (w.valid_to IS NULL OR w.valid_to > now()) AS active,
       ST_Area(w.geom::geography) / 1e6 AS km2,
       ST_AsGeoJSON(ST_SimplifyPreserveTopology(w.geom, 0.00005), 6, 0)::json AS g
FROM warning w"""


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def feature(r: Any) -> dict[str, Any]:
    """A warning row as a GeoJSON Feature."""
    return {
        "type": "Feature",
        "id": int(r.id),
        "geometry": r.g,
        "properties": {
            "id": int(r.id),
            "kind": r.kind,
            "source_kind": r.source_kind,
            "level": r.level,
            "level_zh": LEVEL_ZH[r.level],
            "color": LEVEL_COLOR[r.level],
            "admin_codes": list(r.admin_codes),
            "issued_at": _iso(r.issued_at),
            "valid_from": _iso(r.valid_from),
            "valid_until": _iso(r.valid_to),
            "active": bool(r.active),
            "text": r.text,
            "area_km2": round(float(r.km2), 4),
        },
    }


async def create(
    conn: AsyncConnection,
    principal: Principal,
    body: WarningCreate,
    geometry: BaseGeometry | None,
    actor: str,
) -> dict[str, Any]:
    """Store a warning; its area is the polygon united with the named units' boundaries."""
    scope = principal.scope_code
    sp = {"scope": scope} if scope else {}
    codes = list(dict.fromkeys(body.admin_codes))
    if codes:
        found = {
            r.code
            for r in await conn.execute(
                text(
                    "SELECT a.code FROM admin_division a WHERE a.code = ANY(:c)"
                    " AND a.boundary IS NOT NULL"
                    f" AND ({code_scope_sql('a.code', scope)}"
                    f" OR {area_scope_sql('a.boundary', scope)})"
                ),
                {"c": codes, **sp},
            )
        }
        missing = [c for c in codes if c not in found]
        if missing:
            raise NotFound(
                detail=f"admin unit {missing[0]} not found",
                detail_zh=f"区划 {missing[0]} 不存在",
                fields=[FieldProblem("body.admin_codes", "unknown admin code")],
            )
    row = (
        await conn.execute(
            text(
                "WITH a AS (SELECT ST_Union(x.g) AS g FROM ("
                " SELECT ST_GeomFromWKB(:wkb, 4490) AS g WHERE CAST(:wkb AS bytea) IS NOT NULL"
                " UNION ALL SELECT boundary FROM admin_division WHERE code = ANY(:c)) x)"
                " SELECT ST_AsBinary(ST_Multi(ST_CollectionExtract(ST_MakeValid(a.g), 3))),"
                " ST_Area(a.g::geography) / 1e6 FROM a"
            ),
            {"wkb": None if geometry is None else shapely.to_wkb(geometry), "c": codes},
        )
    ).one()
    check_size(float(row[1] or 0.0), "body.geometry")
    if scope is not None:
        meets = (
            await conn.execute(
                text(f"SELECT {area_scope_sql('ST_GeomFromWKB(:wkb, 4490)', scope)}"),
                {"wkb": bytes(row[0]), **sp},
            )
        ).scalar_one()
        if not meets:
            raise InvalidInput(
                detail="body.geometry: the warning area lies outside your area",
                detail_zh="预警范围不在您的辖区内",
                fields=[FieldProblem("body.geometry", "outside your area")],
            )
    new_id = (
        await conn.execute(
            text(
                "INSERT INTO warning (kind, source_kind, level, geom, admin_codes, valid_from,"
                " valid_to, text, source) VALUES (:kind, :sk, :level,"
                " ST_SetSRID(ST_GeomFromWKB(:wkb), 4490), CAST(:codes AS text[]), :vf, :vt,"
                " :text, :source) RETURNING id"
            ),
            {
                "kind": body.kind,
                "sk": body.source_kind,
                "level": body.level,
                "wkb": bytes(row[0]),
                "codes": codes,
                "vf": body.valid_from,
                "vt": body.valid_until,
                "text": body.text,
                "source": f"user:{actor}",
            },
        )
    ).scalar_one()
    return await get(conn, principal, int(new_id))


async def get(conn: AsyncConnection, principal: Principal, warning_id: int) -> dict[str, Any]:
    """One visible warning as a Feature, else 404."""
    scope = principal.scope_code
    row = (
        await conn.execute(
            text(f"{_FEATURE} WHERE w.id = :id AND {area_scope_sql('w.geom', scope)}"),
            {"id": warning_id, **({"scope": scope} if scope else {})},
        )
    ).first()
    if row is None:
        raise NotFound(
            detail=f"warning {warning_id} not found",
            detail_zh="预警不存在",
            fields=[FieldProblem("path.warning_id", "not found")],
        )
    return feature(row)


async def list_warnings(
    conn: AsyncConnection, principal: Principal, *, active: bool | None, level: str | None
) -> dict[str, Any]:
    """Visible warnings, newest first, as a FeatureCollection."""
    scope = principal.scope_code
    where = [area_scope_sql("w.geom", scope)]
    if active is True:
        where.append(
            "(w.valid_from IS NULL OR w.valid_from <= now()) AND (w.valid_to IS NULL"
            " OR w.valid_to > now())"
        )
    elif active is False:
        where.append("w.valid_to IS NOT NULL AND w.valid_to <= now()")
    if level is not None:
        where.append("w.level = :level")
    rows = await conn.execute(
        text(
            f"{_FEATURE} WHERE {' AND '.join(where)} ORDER BY w.issued_at DESC, w.id DESC LIMIT 500"
        ),
        {**({"scope": scope} if scope else {}), **({"level": level} if level else {})},
    )
    return {"type": "FeatureCollection", "features": [feature(r) for r in rows]}


async def delete(conn: AsyncConnection, principal: Principal, warning_id: int) -> None:
    """Withdraw a visible warning (404 otherwise)."""
    await get(conn, principal, warning_id)
    await conn.execute(text("DELETE FROM warning WHERE id = :id"), {"id": warning_id})
