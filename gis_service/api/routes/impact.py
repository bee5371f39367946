"""Hazard layers, raster tiles and values, warnings, impact analysis and readiness checks.

Thin: parsing and HTTP here, the work in :mod:`gis_service.impact`. Rasters are addressed by
layer key only (no path or URL parameter exists, BAD_INPUTS A10); tile size and zoom are
allow-listed before anything is read (A9).
"""

from __future__ import annotations

import asyncio
import time
from functools import partial
from typing import Annotated, Any, Literal

import orjson
from fastapi import Depends, Path, Query, Response
from starlette.concurrency import run_in_threadpool

from gis_service.api.deps import CurrentUser, DbDep, SettingsDep, require_roles
from gis_service.api.routes import router
from gis_service.domain.scope import Principal
from gis_service.errors import BadParameter, FieldProblem
from gis_service.impact import analysis, catalog, rasters, readiness, store, warnings
from gis_service.impact import footprint as fp
from gis_service.query import params as qp
from gis_service.query import tables
from gis_service.types import Role

api = router("impact")

LayerKey = Annotated[str, Path(max_length=64, description="hazard layer key")]
Fmt = Literal["json", "csv", "xlsx"]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
Commander = Annotated[Principal, Depends(require_roles(Role.admin, Role.commander))]

#: Layer lookups of the tile route, per (key, scope), for a few seconds: a map asks for
#: dozens of tiles a second and each must not cost two queries.
_LAYER_TTL_S = 5.0
_layers: dict[tuple[str, str | None], tuple[float, catalog.HazardLayer]] = {}


def _download(content: bytes, fmt: str, name: str) -> Response:
    media = "text/csv; charset=utf-8" if fmt == "csv" else XLSX
    return Response(
        content,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'},
    )


def _catalogue_entry(layer: catalog.HazardLayer) -> dict[str, Any]:
    raster = layer.raster is not None
    tile_layer = layer.tile_layer
    return {
        "key": layer.key,
        "title": layer.title,
        "hazard_type": layer.hazard_type,
        "layer_kind": layer.layer_kind,
        "data_type": layer.data_type,
        "scenario": layer.scenario,
        "return_period": layer.return_period,
        "unit": layer.unit,
        "year": layer.year,
        "scheme": layer.scheme.as_dict() if layer.scheme else None,
        "bounds": [round(v, 6) for v in layer.raster.bounds] if layer.raster else None,
        "minzoom": rasters.MIN_ZOOM if raster else None,
        "maxzoom": rasters.MAX_ZOOM if raster else None,
        "tiles": f"/rasters/{layer.key}/{{z}}/{{x}}/{{y}}.png"
        if raster
        else (f"/tiles/{tile_layer}/{{z}}/{{x}}/{{y}}.mvt" if tile_layer else None),
        "tilejson": f"/rasters/{layer.key}.json"
        if raster
        else (f"/tiles/{tile_layer}.json" if tile_layer else None),
        "geojson": None if raster or tile_layer else f"/hazard-layers/{layer.key}/zones",
        "vector_layer": None if raster else tile_layer,
        "scheme_property": None if raster else layer.class_property,
    }


@api.get("/hazard-layers", summary="Hazard, risk and zoning layers for the map (catalogue)")
async def hazard_layers(user: CurrentUser, db: DbDep) -> dict[str, Any]:
    """Every hazard layer the caller may see, with its legend and tile URL template."""
    async with db.tx() as conn:
        layers = await catalog.list_layers(conn, user)
    return {"layers": [_catalogue_entry(layer) for layer in layers]}


@api.get("/hazard-layers/{layer}/zones", summary="Polygons of an imported vector hazard layer")
async def hazard_zones(layer: LayerKey, user: CurrentUser, db: DbDep) -> dict[str, Any]:
    """GeoJSON of the zones (class key, value, colour) of a layer added by ``hazards add``."""
    async with db.tx() as conn:
        return await catalog.zone_features(conn, user, layer)


async def _raster_layer(db: Any, user: Principal, key: str) -> catalog.HazardLayer:
    now = time.monotonic()
    hit = _layers.get((key, user.scope_code))
    if hit is not None and now - hit[0] < _LAYER_TTL_S:
        return hit[1]
    async with db.tx() as conn:
        layer = await catalog.get_layer(conn, user, key, raster=True)
    if len(_layers) > 1024:
        _layers.clear()
    _layers[key, user.scope_code] = (now, layer)
    return layer


async def _file(db: Any, settings: Any, layer: catalog.HazardLayer) -> Any:
    assert layer.raster is not None
    path = settings.raster.dir / f"{layer.raster.sha256}.tif"
    if path.exists():
        return path
    async with db.tx() as conn:
        return await store.layer_file(conn, settings.raster.dir, layer.raster.sha256)


@api.get("/rasters/{layer}.json", summary="TileJSON 3.0 of a raster layer, with its legend")
async def raster_tilejson(
    layer: LayerKey, user: CurrentUser, db: DbDep, settings: SettingsDep
) -> dict[str, Any]:
    """TileJSON plus ``legend`` (the scheme's classes), ``unit`` and ``scheme``."""
    hl = await _raster_layer(db, user, layer)
    assert hl.raster is not None
    w, s, e, n = hl.raster.bounds
    base = settings.api.public_url.rstrip("/")
    return {
        "tilejson": "3.0.0",
        "name": hl.key,
        "description": hl.title,
        "tiles": [f"{base}/rasters/{hl.key}/{{z}}/{{x}}/{{y}}.png"],
        "bounds": [w, s, e, n],
        "center": [(w + e) / 2, (s + n) / 2, 12],
        "minzoom": rasters.MIN_ZOOM,
        "maxzoom": rasters.MAX_ZOOM,
        "legend": [c.as_dict() for c in hl.scheme.classes] if hl.scheme else [],
        "unit": hl.unit,
        "scheme": hl.scheme.key if hl.scheme else None,
    }


@api.get(
    "/rasters/{layer}/{z}/{x}/{y}.png",
    summary="A raster tile coloured by the layer's classes (transparent nodata)",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, 204: {"description": "outside the raster"}},
)
async def raster_tile(  # noqa: PLR0917 - FastAPI injects by parameter
    layer: LayerKey,
    z: Annotated[int, Path(ge=rasters.MIN_ZOOM, le=rasters.MAX_ZOOM)],
    x: Annotated[int, Path(ge=0)],
    y: Annotated[int, Path(ge=0)],
    user: CurrentUser,
    db: DbDep,
    settings: SettingsDep,
    tilesize: Literal[256, 512] = 256,
) -> Response:
    """PNG of one web-mercator tile; 204 when the tile is outside the raster."""
    if x >= 2**z or y >= 2**z:
        raise BadParameter(
            detail=f"tile {z}/{x}/{y} is outside the tile matrix",
            detail_zh="瓦片坐标超出范围",
            fields=[FieldProblem("path.x" if x >= 2**z else "path.y", "outside the matrix")],
        )
    hl = await _raster_layer(db, user, layer)
    path = await _file(db, settings, hl)
    hit, png = rasters.cached_tile(path, hl.scheme, z, x, y, tilesize=tilesize)
    if not hit:
        rasters.set_cache_size(settings.raster.tile_cache_entries)
        png = await run_in_threadpool(
            partial(rasters.render_tile, tilesize=tilesize), path, hl.scheme, z, x, y
        )
    if png is None:
        return Response(status_code=204)
    assert hl.raster is not None
    return Response(
        png,
        media_type="image/png",
        headers={
            "Cache-Control": "private, max-age=300",
            "ETag": f'"{hl.raster.sha256[:16]}-{z}-{x}-{y}-{tilesize}"',
        },
    )


@api.get("/rasters/{layer}/point", summary="The raster value and class at a point")
async def raster_point(  # noqa: PLR0917 - FastAPI injects by parameter
    layer: LayerKey,
    lon: Annotated[float, Query(ge=-180, le=180, allow_inf_nan=False)],
    lat: Annotated[float, Query(ge=-90, le=90, allow_inf_nan=False)],
    user: CurrentUser,
    db: DbDep,
    settings: SettingsDep,
    crs: qp.InputCrs = qp.InputCrs.wgs84,
) -> dict[str, Any]:
    """``value`` null for nodata or outside the raster."""
    x, y = qp.storage_point(lon, lat, crs)
    hl = await _raster_layer(db, user, layer)
    assert hl.raster is not None
    path = await _file(db, settings, hl)
    value = await run_in_threadpool(rasters.point_value, path, x, y, hl.raster.nodata)
    cls = hl.scheme.classify(value) if hl.scheme else None
    return {
        "layer": hl.key,
        "lon": lon,
        "lat": lat,
        "value": value,
        "nodata": value is None,
        "unit": hl.unit,
        "class": None
        if cls is None
        else {"key": cls.key, "zh_name": cls.zh_name, "color": cls.color},
    }


_ZONAL_COLS = [
    ("code", "编码"),
    ("name", "名称"),
    ("village_code", "村社区代码"),
    ("area_km2", "面积(km²)"),
    ("coverage_km2", "有值面积(km²)"),
    ("min", "最小值"),
    ("max", "最大值"),
    ("mean", "平均值"),
]


@api.get("/rasters/{layer}/zonal", summary="Zonal statistics of a raster per grid or village")
async def raster_zonal(  # noqa: PLR0917 - FastAPI injects by parameter
    layer: LayerKey,
    by: Literal["grid", "village"],
    user: CurrentUser,
    db: DbDep,
    settings: SettingsDep,
    admin: Annotated[str | None, Query(pattern=r"^(\d{6}|\d{9}|\d{12})$")] = None,
    format: Literal["json", "csv"] = "json",
) -> Any:
    """Coverage-weighted min/max/mean and area per class (exactextract), in the caller's area."""
    async with db.tx() as conn:
        hl = await catalog.get_layer(conn, user, layer, raster=True)
        assert hl.raster is not None
        path = await store.layer_file(conn, settings.raster.dir, hl.raster.sha256)
        zones = await catalog.zones(conn, user, by, admin, hl.raster.bounds)
    stats = await asyncio.to_thread(
        rasters.zonal, path, hl.raster, hl.scheme, [(z["code"], z["geom"]) for z in zones]
    )
    rows = [
        {
            "code": z["code"],
            "name": z["name"],
            "village_code": z["village_code"],
            "area_km2": z["area_km2"],
            **{k: v for k, v in s.items() if k != "code"},
        }
        for z, s in zip(zones, stats, strict=True)
    ]
    if format == "csv":
        keys = [k for k, _ in _ZONAL_COLS]
        heads = [h for _, h in _ZONAL_COLS]
        class_keys = [c.key for _, _, c in hl.scheme.intervals()] if hl.scheme else []
        flat = [{**r, **{f"class_{k}": r["classes"].get(k) for k in class_keys}} for r in rows]
        names = {c.key: c.zh_name for c in hl.scheme.classes} if hl.scheme else {}
        keys += [f"class_{k}" for k in class_keys]
        heads += [f"{names.get(k, k)}(km²)" for k in class_keys]
        return _download(tables.to_csv(keys, heads, flat), "csv", f"zonal_{hl.key}_{by}")
    return {
        "layer": hl.key,
        "by": by,
        "unit": hl.unit,
        "method": "exactextract (coverage-weighted)",
        "rows": rows,
    }


# ---------------------------------------------------------------------------- warnings
@api.post("/warnings", status_code=201, summary="Register a warning (预警) as received")
async def create_warning(
    body: warnings.WarningCreate, user: Commander, db: DbDep
) -> dict[str, Any]:
    """Polygon and/or admin codes, kind, level blue–red, validity window."""
    geom = (
        None
        if body.geometry is None
        else qp.polygon_from_geojson(body.geometry, qp.InputCrs(body.crs), field="body.geometry")
    )
    async with db.tx() as conn:
        return await warnings.create(conn, user, body, geom, user.login)


@api.get("/warnings", summary="Warnings in my area as GeoJSON (active ones by default)")
async def list_warnings(
    user: CurrentUser,
    db: DbDep,
    active: bool | None = True,
    level: Literal["blue", "yellow", "orange", "red"] | None = None,
) -> dict[str, Any]:
    """A FeatureCollection, newest first; ``active=false`` lists expired ones."""
    async with db.tx() as conn:
        return await warnings.list_warnings(conn, user, active=active, level=level)


WarningId = Annotated[int, Path(ge=1, le=2**62)]


@api.get("/warnings/{warning_id}", summary="One warning as a GeoJSON Feature")
async def get_warning(warning_id: WarningId, user: CurrentUser, db: DbDep) -> dict[str, Any]:
    """404 when unknown or outside my area."""
    async with db.tx() as conn:
        return await warnings.get(conn, user, warning_id)


@api.delete("/warnings/{warning_id}", status_code=204, summary="Withdraw a warning")
async def delete_warning(warning_id: WarningId, user: Commander, db: DbDep) -> Response:
    """Commanders and admins of the warning's area."""
    async with db.tx() as conn:
        await warnings.delete(conn, user, warning_id)
    return Response(status_code=204)


# ---------------------------------------------------------------------------- impact
async def _impact(req: fp.ImpactRequest, user: Principal, db: Any, settings: Any, fmt: str) -> Any:
    geom = (
        None
        if req.geometry is None
        else qp.polygon_from_geojson(req.geometry, qp.InputCrs(req.crs), field="body.geometry")
    )
    started = time.perf_counter()
    async with db.tx() as conn:
        where = await fp.resolve(conn, user, req, geometry=geom, folder=settings.raster.dir)
        result = await analysis.run(conn, user, where, shelters=req.shelters)
    if fmt == "json":  # orjson directly: a city-wide answer is too big for jsonable_encoder
        doc = {**result.as_dict(), "timing_ms": round((time.perf_counter() - started) * 1000)}
        return Response(orjson.dumps(doc), media_type="application/json")
    cols = [k for k, _ in analysis.EVACUATION_COLUMNS]
    heads = [h for _, h in analysis.EVACUATION_COLUMNS]
    rows = result.evacuation_list()
    if fmt == "csv":
        return _download(tables.to_csv(cols, heads, rows), "csv", "evacuation_list")
    unit_cols = list(analysis.COLUMNS)
    unit_heads = [analysis.LABELS_ZH.get(c, c) for c in unit_cols]
    sheets: list[tables.Sheet] = [
        ("转移清单", cols, heads, rows),
        (
            "按村社区",
            ["village_code", "village", *unit_cols],
            ["村社区代码", "村社区", *unit_heads],
            result.by_village,
        ),
        (
            "按网格",
            ["grid_code", "grid_name", "village", *unit_cols],
            ["网格编码", "网格", "村社区", *unit_heads],
            result.by_grid,
        ),
        (
            "安置分配",
            ["village", "shelter", "people", "distance_m"],
            ["村社区", "避难场所", "人数", "距离(米)"],
            result.assignment,
        ),
        (
            "叫应名单",
            ["role", "duty", "level", "name", "phone", "target_name", "grid_code"],
            ["角色", "职责", "层级", "姓名", "电话", "对象", "网格"],
            result.contacts,
        ),
    ]
    return _download(tables.to_xlsx(sheets), "xlsx", "evacuation_list")


@api.post("/analysis/impact", summary="Who and what is inside a hazard footprint; 转移清单")
async def impact(
    body: fp.ImpactRequest,
    user: CurrentUser,
    db: DbDep,
    settings: SettingsDep,
    format: Fmt = "json",
) -> Any:
    """Footprint: a polygon, a warning, a risk zone, or a raster threshold/class.

    ``format=csv|xlsx`` gives the evacuation list (转移清单) instead of JSON.
    """
    return await _impact(body, user, db, settings, format)


@api.get("/warnings/{warning_id}/impact", summary="Impact of a warning (same as the POST)")
async def warning_impact(
    warning_id: WarningId,
    user: CurrentUser,
    db: DbDep,
    settings: SettingsDep,
    format: Fmt = "json",
) -> Any:
    """``POST /analysis/impact`` with ``{"warning_id": id}``."""
    return await _impact(fp.ImpactRequest(warning_id=warning_id), user, db, settings, format)


# ---------------------------------------------------------------------------- readiness
@api.get("/readiness", summary="Readiness checks: responsibility chains, routes, shelters")
async def readiness_check(
    user: CurrentUser,
    db: DbDep,
    admin: Annotated[str | None, Query(pattern=r"^(\d{6}|\d{9}|\d{12})$")] = None,
) -> dict[str, Any]:
    """Defects in the plan of an admin unit (default: my area)."""
    code = admin or user.scope_code
    if code is None:
        raise BadParameter(
            detail="admin is required for national users",
            detail_zh="全国范围用户须指定区划代码",
            fields=[FieldProblem("query.admin", "required")],
        )
    async with db.tx() as conn:
        return await readiness.check(conn, user, code)
