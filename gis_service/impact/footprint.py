"""The hazard footprint of an impact run.

A drawn polygon, a warning, a risk zone, or a raster thresholded at a value or class
(polygonised once and cached in ``hazard_footprint``).
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Self

import shapely
from pydantic import BaseModel, ConfigDict, Field, model_validator
from shapely.geometry.base import BaseGeometry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gis_service.domain.scope import Principal
from gis_service.errors import FieldProblem, InvalidInput, NotFound
from gis_service.impact import catalog, rasters, store
from gis_service.impact.scoping import area_scope_sql, code_scope_sql

#: Largest footprint an impact run accepts (km²): a prefecture-size warning still fits.
MAX_FOOTPRINT_KM2 = 20_000.0


class RasterThreshold(BaseModel):
    """A raster layer with ``min`` (and optional ``max``) or a class key ("this class and up")."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    layer: str = Field(max_length=64)
    min: float | None = Field(default=None, allow_inf_nan=False, ge=-1e9, le=1e9)
    max: float | None = Field(default=None, allow_inf_nan=False, ge=-1e9, le=1e9)
    class_key: str | None = Field(default=None, alias="class", max_length=40)

    @model_validator(mode="after")
    def _one_threshold(self) -> Self:
        if (self.min is None) == (self.class_key is None):
            raise ValueError("give exactly one of min or class")
        if self.min is not None and self.max is not None and self.max <= self.min:
            raise ValueError("max must be greater than min")
        return self


class ImpactRequest(BaseModel):
    """Exactly one footprint: ``geometry``, ``warning_id``, ``zone_id`` or ``raster``."""

    model_config = ConfigDict(extra="forbid")

    geometry: dict[str, Any] | None = Field(
        default=None, description="GeoJSON Polygon or MultiPolygon"
    )
    crs: Literal["wgs84", "cgcs2000", "gcj02", "bd09"] = "wgs84"
    warning_id: int | None = Field(default=None, ge=1, le=2**62)
    zone_id: int | None = Field(default=None, ge=1, le=2**62, description="geohazard_zone id")
    raster: RasterThreshold | None = None
    shelters: int = Field(default=10, ge=1, le=50, description="nearest shelters to list")

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [n for n in ("geometry", "warning_id", "zone_id", "raster") if getattr(self, n)]
        if len(given) != 1:
            raise ValueError("give exactly one of geometry, warning_id, zone_id, raster")
        return self


@dataclass(frozen=True)
class Footprint:
    """A resolved footprint in storage coordinates."""

    kind: str
    geom: BaseGeometry
    description: dict[str, Any]


def _scope_params(principal: Principal) -> dict[str, Any]:
    return {"scope": principal.scope_code} if principal.scope_code else {}


async def _one_geometry(
    conn: AsyncConnection, sql: str, params: dict[str, Any], what: str, field: str
) -> tuple[BaseGeometry, Any]:
    row = (await conn.execute(text(sql), params)).first()
    if row is None or row[0] is None:
        raise NotFound(
            detail=f"{what} not found",
            detail_zh="对象不存在",
            fields=[FieldProblem(field, "not found")],
        )
    return shapely.from_wkb(bytes(row[0])), row


async def raster_footprint(
    conn: AsyncConnection,
    principal: Principal,
    req: RasterThreshold,
    folder: Path,
) -> Footprint:
    """``value >= lo [and < hi]`` of a raster layer as polygons, computed once per raster."""
    layer = await catalog.get_layer(
        conn, principal, req.layer, raster=True, field="body.raster.layer"
    )
    assert layer.raster is not None
    lo, hi = req.min, req.max
    if req.class_key is not None:
        lo = layer.scheme.bound_of(req.class_key) if layer.scheme else None
        if lo is None:
            raise InvalidInput(
                detail=f"body.raster.class: {req.class_key[:40]} is not a class of {layer.key}",
                detail_zh="分级不存在",
                fields=[FieldProblem("body.raster.class", "unknown class")],
            )
    assert lo is not None
    sha = layer.raster.sha256
    cached = (
        await conn.execute(
            text(
                "SELECT ST_AsBinary(geom) FROM hazard_footprint WHERE layer_id = :l"
                " AND raster_sha256 = :s AND min_value = :lo"
                " AND max_value IS NOT DISTINCT FROM CAST(:hi AS double precision) LIMIT 1"
            ),
            {"l": layer.id, "s": sha, "lo": lo, "hi": hi},
        )
    ).scalar_one_or_none()
    description = {"layer": layer.key, "title": layer.title, "min": lo, "max": hi}
    if req.class_key is not None:
        description["class"] = req.class_key
    if cached is not None:
        return Footprint("raster", shapely.from_wkb(bytes(cached)), description)
    path = await store.layer_file(conn, folder, sha)
    geom = await asyncio.to_thread(rasters.threshold_polygons, path, lo, hi)
    if geom.is_empty:
        raise InvalidInput(
            detail="body.raster: no pixel of the layer reaches this threshold",
            detail_zh="没有像元达到该阈值",
            fields=[FieldProblem("body.raster.min", "selects no pixel")],
        )
    await conn.execute(
        text(
            "INSERT INTO hazard_footprint (layer_id, raster_sha256, min_value, max_value,"
            " area_km2, geom, source) VALUES (:l, :s, :lo, :hi,"
            " ST_Area(ST_GeomFromWKB(:wkb, 4490)::geography) / 1e6,"
            " ST_Multi(ST_GeomFromWKB(:wkb, 4490)), 'impact')"
        ),
        {"l": layer.id, "s": sha, "lo": lo, "hi": hi, "wkb": shapely.to_wkb(geom)},
    )
    return Footprint("raster", geom, description)


async def resolve(
    conn: AsyncConnection,
    principal: Principal,
    req: ImpactRequest,
    *,
    geometry: BaseGeometry | None,
    folder: Path,
) -> Footprint:
    """Turn the request into a :class:`Footprint`; 404 for a warning/zone outside the scope.

    ``geometry`` is the request's polygon already checked and converted by the caller.
    """
    scope = principal.scope_code
    params = _scope_params(principal)
    if req.raster is not None:
        return await raster_footprint(conn, principal, req.raster, folder)
    if req.warning_id is not None:
        geom, row = await _one_geometry(
            conn,
            "SELECT ST_AsBinary(w.geom), w.kind, w.level FROM warning w WHERE w.id = :id"
            f" AND {area_scope_sql('w.geom', scope)}",
            {"id": req.warning_id, **params},
            f"warning {req.warning_id}",
            "body.warning_id",
        )
        return Footprint(
            "warning", geom, {"warning_id": req.warning_id, "kind": row[1], "level": row[2]}
        )
    if req.zone_id is not None:
        geom, row = await _one_geometry(
            conn,
            "SELECT ST_AsBinary(z.geom), z.code, z.name, z.risk_level FROM geohazard_zone z"
            f" WHERE z.id = :id AND {code_scope_sql('z.admin_code', scope)}",
            {"id": req.zone_id, **params},
            f"risk zone {req.zone_id}",
            "body.zone_id",
        )
        return Footprint(
            "zone",
            geom,
            {"zone_id": req.zone_id, "code": row[1], "name": row[2], "risk_level": row[3]},
        )
    assert geometry is not None
    return Footprint("geometry", geometry, {"crs": req.crs})


def check_size(area_km2: float, field: str = "body.geometry") -> None:
    """Refuse a footprint over :data:`MAX_FOOTPRINT_KM2` (or a degenerate one)."""
    from gis_service.errors import TooLarge

    if not math.isfinite(area_km2) or area_km2 <= 0:
        raise InvalidInput(
            detail=f"{field}: the footprint has no area",
            detail_zh="范围面积为零",
            fields=[FieldProblem(field, "no area")],
        )
    if area_km2 > MAX_FOOTPRINT_KM2:
        raise TooLarge(
            detail=f"{field}: {area_km2:.0f} km² exceeds {MAX_FOOTPRINT_KM2:.0f} km²",
            detail_zh="范围过大",
            fields=[FieldProblem(field, "area too large")],
        )
