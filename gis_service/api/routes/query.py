"""Spatial queries and statistics: locate, nearby, nearest, area, /stats (thin routes)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlencode

import orjson
from fastapi import FastAPI, Query, Request
from fastapi.responses import Response
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from gis_service.api.deps import (
    CurrentUser,
    DbDep,
    SettingsDep,
    changes_ticket,
    current_principal,
)
from gis_service.api.errors import render_problem
from gis_service.api.routes import router
from gis_service.db.engine import ReadConnection, make_read_pool
from gis_service.errors import BadParameter, FieldProblem, GisError, InvalidInput, NotFound
from gis_service.query import area as qarea
from gis_service.query import batch as batch_input
from gis_service.query import details as qdetails
from gis_service.query import layers as qlayers
from gis_service.query import locate as qlocate
from gis_service.query import nearby as qnearby
from gis_service.query import params as qp
from gis_service.query import stats as qstats
from gis_service.query import tables


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Own the read pool of the hot point queries and the ready parts of locate answers.

    See ``Database.read`` and ``query.details``.
    """
    pool = make_read_pool(app.state.database_url, app.state.settings.db)
    await pool.open(wait=False)
    app.state.read_pool = pool
    cache = qdetails.DetailCache(app.state.changes)
    await cache.open()
    app.state.query_details = cache
    try:
        yield
    finally:
        app.state.read_pool = None
        app.state.query_details = None
        await pool.close()


def _details(request: Request) -> qdetails.DetailCache | None:
    cache: qdetails.DetailCache | None = getattr(request.app.state, "query_details", None)
    return cache


api = router("query")
api.lifespan_context = _lifespan

Lon = Annotated[float, Query(ge=-180, le=180, allow_inf_nan=False, description="longitude")]
Lat = Annotated[float, Query(ge=-90, le=90, allow_inf_nan=False, description="latitude")]
CrsQ = Annotated[
    qp.InputCrs,
    Query(description="coordinate system of lon/lat: wgs84, cgcs2000, gcj02 (Amap), bd09 (Baidu)"),
]
Fmt = Literal["json", "csv", "xlsx"]
AdminCodeQ = Annotated[str | None, Query(pattern=r"^(\d{6}|\d{9}|\d{12})$")]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def fast_json(content: Any) -> Response:
    """JSON straight from orjson: FastAPI's encoder walks every value of a 10,000-row answer."""
    return Response(
        orjson.dumps(content, default=_plain, option=orjson.OPT_NON_STR_KEYS),
        media_type="application/json",
    )


_COORD = re.compile(r"^-?\d{1,3}(\.\d{1,15})?$")
_COUNT = re.compile(r"^\d{1,3}$")
#: Query parameters each fast path takes (anything else goes to the route, which refuses it).
_FAST = {
    "/query/locate": frozenset({"lon", "lat", "crs"}),
    "/query/nearest": frozenset({"lon", "lat", "crs", "layer", "k"}),
}


def _plain_query(raw: bytes, allowed: frozenset[str]) -> dict[str, str] | None:
    """The query string as a dict when it is unremarkable (known keys, once each), else None."""
    out: dict[str, str] = {}
    text = raw.decode("latin-1")
    # Nothing to unescape (the usual query): split as parse_qsl would, for a third of its CPU.
    pairs = (
        parse_qsl(text, keep_blank_values=True)
        if "%" in text or "+" in text
        else [(k, v) for k, _, v in (p.partition("=") for p in text.split("&") if p)]
    )
    for key, value in pairs:
        if key not in allowed or key in out:
            return None
        out[key] = value
    return out


def _coord(value: str | None, limit: float) -> float | None:
    if value is None or not _COORD.match(value):
        return None
    number = float(value)
    return number if -limit <= number <= limit else None


class QueryFastPath:
    """Pure ASGI front for well-formed ``GET /query/locate`` and ``GET /query/nearest``.

    FastAPI's routing, parameter solving and response machinery cost more CPU than these
    point queries themselves (py-spy). Requests whose parameters are plainly valid (known
    names once each, decimal numbers in range, a known crs, layer and k) are answered here
    with the same principal dependency, the same query functions on the read pool and the
    same JSON; anything else, and a point outside the caller's area (404), is passed to the
    route unchanged, so every refusal keeps its one wording. Errors after the checks are
    rendered by the app's own handlers.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a point query, or hand the request to the app."""
        allowed = _FAST.get(scope["path"]) if scope["type"] == "http" else None
        app = scope.get("app")
        if (
            allowed is None
            or app is None
            or scope["method"] != "GET"
            or scope.get("root_path")
            or getattr(app.state, "read_pool", None) is None
            or not getattr(app.state, "query_fast_path", True)
            or (args := _plain_query(scope["query_string"], allowed)) is None
            or (body := await self._answer(app, scope, receive, args)) is None
        ):
            await self.app(scope, receive, send)
            return
        app.state.query_fast_served = getattr(app.state, "query_fast_served", 0) + 1
        await body(scope, receive, send)

    @staticmethod
    async def _answer(
        app: Starlette, scope: Scope, receive: Receive, args: dict[str, str]
    ) -> Response | None:
        lon, lat = _coord(args.get("lon"), 180), _coord(args.get("lat"), 90)
        try:
            crs = qp.InputCrs(args.get("crs", "wgs84"))
        except ValueError:
            return None
        if lon is None or lat is None:
            return None
        nearest = scope["path"] == "/query/nearest"
        k = args.get("k", "1")
        if nearest and not (_COUNT.match(k) and 1 <= int(k) <= qp.MAX_K):
            return None
        request = Request(scope, receive)
        try:
            name = ""
            if nearest:
                (name,) = qp.parse_layers(
                    args.get("layer", ""), qlayers.NAMES, field="query.layer", most=1
                )
            point = qp.storage_point(lon, lat, crs)
        except GisError:
            return None  # the route words the refusal
        try:
            state = app.state
            user = await current_principal(
                request, state.engine, state.settings, request.headers.get("authorization")
            )
            async with ReadConnection(state.read_pool) as conn:
                if nearest:
                    features = await qnearby.nearest(conn, user, point, qlayers.get(name), int(k))
                    return fast_json(_nearest_answer(point, name, int(k), features))
                hit = await qlocate.locate_point(
                    conn, user, point, cache=_details(request), after=changes_ticket(request)
                )
        except GisError as exc:
            return await render_problem(request, exc)
        if not hit.found:
            return None  # the route answers the 404
        return fast_json(_locate_answer(lon, lat, crs, hit))


def _locate_answer(lon: float, lat: float, crs: qp.InputCrs, hit: qlocate.Located) -> Any:
    return {"input": {"lon": lon, "lat": lat, "crs": crs.value}, **hit.as_dict()}


def _nearest_answer(
    point: tuple[float, float], name: str, k: int, features: list[dict[str, Any]]
) -> Any:
    return {
        "point": [round(point[0], 7), round(point[1], 7)],
        "layer": name,
        "k": k,
        "features": features,
    }


def download(content: bytes, fmt: Fmt, name: str) -> Response:
    """A CSV/XLSX attachment."""
    media = "text/csv; charset=utf-8" if fmt == "csv" else XLSX
    return Response(
        content,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'},
    )


@api.get("/query/locate", summary="Whose village and grid is this point in, and whom to call")
async def locate(  # noqa: PLR0917 - FastAPI injects by parameter
    request: Request,
    lon: Lon,
    lat: Lat,
    user: CurrentUser,
    db: DbDep,
    crs: CrsQ = qp.InputCrs.wgs84,
) -> Response:
    """Admin chain, grid with its worker and leader, geological hazards there, nearest shelter.

    404 when no village of the caller's area holds the point.
    """
    point = qp.storage_point(lon, lat, crs)
    async with db.read() as conn:
        hit = await qlocate.locate_point(
            conn, user, point, cache=_details(request), after=changes_ticket(request)
        )
    if not hit.found:
        raise NotFound(
            detail="no village of your area holds this point",
            detail_zh="该位置不在您的辖区范围内",
        )
    return fast_json(_locate_answer(lon, lat, crs, hit))


@api.post(
    "/query/locate",
    summary="Locate up to 10,000 points (JSON or CSV; answer as JSON, CSV or XLSX)",
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/csv": {"schema": {"type": "string"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                },
            }
        }
    },
)
async def locate_batch(
    request: Request,
    user: CurrentUser,
    db: DbDep,
    crs: Annotated[qp.InputCrs | None, Query(description="overrides the body's crs")] = None,
    format: Fmt = "json",
) -> Any:
    """JSON ``{"crs", "points": [{"id", "lon", "lat"}]}``, a CSV body, or a multipart ``file``."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body_crs = None
    if kind == "application/json":
        parsed, body_crs = batch_input.from_json(await request.body())
    elif kind in ("text/csv", "text/plain"):
        parsed = batch_input.from_csv(await request.body())
    elif kind == "multipart/form-data":
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise InvalidInput(
                detail="send the CSV as the form field 'file'",
                detail_zh="请以 file 字段上传 CSV",
                fields=[FieldProblem("body.file", "required")],
            )
        parsed = batch_input.from_csv(await upload.read())
    else:
        raise InvalidInput(
            detail="send application/json, text/csv or multipart/form-data",
            detail_zh="请求体须为 JSON、CSV 或表单上传",
            fields=[FieldProblem("header.content-type", "unsupported")],
        )
    system = crs or body_crs or qp.InputCrs.wgs84
    x, y = parsed.storage(system)
    good = [i for i in range(len(parsed)) if i not in parsed.errors]
    located: dict[int, qlocate.Located] = {}
    if good:
        hits = await qlocate.locate_many(
            db.tx, user, x[good], y[good], cache=_details(request), after=changes_ticket(request)
        )
        located = {good[h.index]: h for h in hits}
    rows = parsed.rows(located)
    if format == "json":
        return fast_json(
            {
                "crs": system.value,
                "count": len(rows),
                "found": sum(1 for r in rows if r["found"]),
                "errors": len(parsed.errors),
                "results": rows,
            }
        )
    cols, heads = batch_input.COLUMNS, batch_input.HEADERS
    if format == "csv":
        return download(tables.to_csv(cols, heads, rows), "csv", "locate")
    return download(tables.to_xlsx([("定位结果", cols, heads, rows)]), "xlsx", "locate")


def _link(settings: SettingsDep, path: str, params: dict[str, Any]) -> str:
    base = settings.api.public_url.rstrip("/")
    return f"{base}{path}?{urlencode({k: v for k, v in params.items() if v is not None})}"


@api.get("/query/nearby", summary="Features within a radius, nearest first, per layer")
async def nearby(  # noqa: PLR0917 - FastAPI injects by parameter
    lon: Lon,
    lat: Lat,
    radius_m: Annotated[float, Query(gt=0, le=qp.MAX_RADIUS_M, allow_inf_nan=False)],
    layers: Annotated[str, Query(max_length=400, description="comma-separated layer names")],
    user: CurrentUser,
    db: DbDep,
    settings: SettingsDep,
    crs: CrsQ = qp.InputCrs.wgs84,
    limit: Annotated[int, Query(ge=1, le=qp.MAX_PAGE)] = qp.DEFAULT_PAGE,
    offset: Annotated[int, Query(ge=0, le=qp.MAX_OFFSET)] = 0,
) -> Response:
    """Per layer: total inside the radius, a page of features with metres, a ``next`` link."""
    names = qp.parse_layers(layers, qlayers.NAMES)
    point = qp.storage_point(lon, lat, crs)
    async with db.read() as conn:
        pages = await qnearby.nearby(
            conn,
            user,
            point,
            radius_m,
            [qlayers.get(n) for n in names],
            limit=limit,
            offset=offset,
        )
    common = {"lon": lon, "lat": lat, "radius_m": radius_m, "crs": crs.value, "limit": limit}
    return fast_json(
        {
            "point": [round(point[0], 7), round(point[1], 7)],
            "radius_m": radius_m,
            "layers": [
                {
                    "layer": p.layer,
                    "title": p.title,
                    "total": p.total,
                    "offset": p.offset,
                    "returned": len(p.features),
                    "features": p.features,
                    "next": None
                    if p.next_offset is None
                    else _link(
                        settings,
                        "/query/nearby",
                        {**common, "layers": p.layer, "offset": p.next_offset},
                    ),
                }
                for p in pages
            ],
        }
    )


@api.get("/query/nearest", summary="The k nearest features of a layer, in true metres")
async def nearest(  # noqa: PLR0917 - FastAPI injects by parameter
    lon: Lon,
    lat: Lat,
    layer: Annotated[str, Query(max_length=64)],
    user: CurrentUser,
    db: DbDep,
    crs: CrsQ = qp.InputCrs.wgs84,
    k: Annotated[int, Query(ge=1, le=qp.MAX_K)] = 1,
) -> Response:
    """k-nearest through the index operator ``<->``, re-ranked by spheroid distance."""
    (name,) = qp.parse_layers(layer, qlayers.NAMES, field="query.layer", most=1)
    point = qp.storage_point(lon, lat, crs)
    async with db.read() as conn:
        features = await qnearby.nearest(conn, user, point, qlayers.get(name), k)
    return fast_json(_nearest_answer(point, name, k, features))


def _unit_headers(keys: list[str]) -> list[str]:
    return [qarea.LABELS_ZH.get(k, k) for k in keys]


@api.post("/query/area", summary="What and who is inside an area (counts, lists, grids, staff)")
async def area(
    body: qarea.AreaRequest,
    user: CurrentUser,
    db: DbDep,
    format: Fmt = "json",
) -> Any:
    """A GeoJSON polygon, an admin code, a grid code or a buffer around a feature.

    ``format=csv`` gives the per-grid table; ``format=xlsx`` a workbook with the totals, the
    per-grid and per-village tables, the staff of the grids touched and the requested lists.
    """
    async with db.tx() as conn:
        summary = await qarea.summarize(conn, user, body)
    if format == "json":
        return summary.as_dict()
    units = qarea.unit_columns()
    grid_cols = ["grid_code", "grid_name", "village_code", "village", *units]
    grid_heads = ["网格编码", "网格名称", "村社区代码", "村社区", *_unit_headers(units)]
    if format == "csv":
        return download(tables.to_csv(grid_cols, grid_heads, summary.by_grid), "csv", "area")
    staff = [
        {"grid_code": g["grid_code"], "grid_name": g["name"], **s}
        for g in summary.grids
        for s in g["staff"]
    ]
    sheets: list[tables.Sheet] = [
        (
            "汇总",
            ["key", "label", "value"],
            ["指标", "名称", "数量"],
            [
                {"key": k, "label": qarea.LABELS_ZH.get(k, ""), "value": v}
                for k, v in summary.totals.items()
            ],
        ),
        ("按网格", grid_cols, grid_heads, summary.by_grid),
        (
            "按村社区",
            ["village_code", "village", *units],
            ["村社区代码", "村社区", *_unit_headers(units)],
            summary.by_village,
        ),
        (
            "网格员网格长",
            ["grid_code", "grid_name", "role", "name", "phone"],
            ["网格编码", "网格名称", "角色", "姓名", "电话"],
            staff,
        ),
    ]
    for name, lst in summary.lists.items():
        cols = ["id", "lon", "lat", *qlayers.get(name).columns]
        sheets.append((qlayers.get(name).title, cols, cols, lst["features"]))
    return download(tables.to_xlsx(sheets), "xlsx", "area")


Month = Annotated[
    str | None,
    Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM; default: all to now"),
]


def _stats_answer(table: qstats.StatsTable, fmt: Fmt, lead: list[tuple[str, str]]) -> Any:
    if fmt == "json":
        return table.as_dict()
    keys = [k for k, _ in lead] + [k for k, _ in qstats.columns(by_grid=table.by_grid)]
    heads = [h for _, h in lead] + [h for _, h in qstats.columns(by_grid=table.by_grid)]
    rows = [*table.rows, {lead[0][0]: "合计", **table.total()}]
    name = f"stats_{table.unit['code']}" + ("_grids" if table.by_grid else "")
    if fmt == "csv":
        return download(tables.to_csv(keys, heads, rows), "csv", name)
    return download(tables.to_xlsx([(table.unit["name"], keys, heads, rows)]), "xlsx", name)


def _unit_code(code: str | None, user: CurrentUser, field: str) -> str:
    if code is not None:
        return code
    if user.scope_code is None:
        raise BadParameter(
            detail=f"{field} is required for national users",
            detail_zh="全国范围用户须指定区划代码",
            fields=[FieldProblem(f"query.{field}", "required")],
        )
    return user.scope_code


@api.get("/stats/divisions", summary="Monthly-report table per child admin unit")
async def stats_divisions(
    user: CurrentUser,
    db: DbDep,
    parent: Annotated[AdminCodeQ, Query(description="default: my area")] = None,
    month: Month = None,
    format: Fmt = "json",
) -> Any:
    """Per child unit of ``parent``: the figures of the monthly report.

    Enterprises by colour, 隐患 found/closed/overdue and closure rate, hazard points by grade,
    households/people, shelter capacity vs people, grids.
    """
    async with db.tx() as conn:
        table = await qstats.by_division(conn, user, _unit_code(parent, user, "parent"), month)
    return _stats_answer(table, format, [("code", "区划代码"), ("name", "名称")])


@api.get("/stats/grids", summary="Monthly-report table per grid")
async def stats_grids(
    user: CurrentUser,
    db: DbDep,
    code: Annotated[AdminCodeQ, Query(description="admin unit; default: my area")] = None,
    month: Month = None,
    format: Fmt = "json",
) -> Any:
    """The same figures per current grid under an admin unit."""
    async with db.tx() as conn:
        table = await qstats.by_grid(conn, user, _unit_code(code, user, "code"), month)
    lead = [
        ("code", "网格编码"),
        ("name", "网格名称"),
        ("village", "村社区"),
        ("grid_households", "网格登记户数"),
        ("grid_population", "网格登记人口"),
    ]
    return _stats_answer(table, format, lead)
