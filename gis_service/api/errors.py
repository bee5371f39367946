"""The one place that maps domain errors to HTTP (problem+json, RFC 9457).

Bodies never carry SQL, paths or tracebacks; the detail goes to the log with the request id.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gis_service import errors as e
from gis_service.db.engine import translate

log = logging.getLogger(__name__)

#: Domain error → HTTP status. Subclasses inherit their parent's unless listed.
STATUS: dict[type[e.GisError], int] = {
    e.BadParameter: 400,
    e.InvalidInput: 422,
    e.NotAuthenticated: 401,
    e.Forbidden: 403,
    e.NotFound: 404,
    e.Conflict: 409,
    e.PreconditionFailed: 412,
    e.TooLarge: 413,
    e.PreconditionRequired: 428,
    e.TooManyRequests: 429,
    e.DatabaseUnavailable: 503,
    e.QueryTooExpensive: 503,
    e.ReadOnlyDatabase: 503,
    e.DatabaseSetupError: 503,
}

_HTTP_TITLES = {
    400: ("bad request", "请求错误"),
    401: ("authentication required", "需要登录"),
    403: ("forbidden", "无权限"),
    404: ("not found", "未找到"),
    405: ("method not allowed", "不支持该请求方法"),
    406: ("not acceptable", "不支持该格式"),
    413: ("request too large", "请求过大"),
    414: ("URI too long", "请求地址过长"),
    415: ("unsupported media type", "不支持的内容类型"),
}
PROBLEM = "application/problem+json"


def status_of(exc: e.GisError) -> int:
    """HTTP status for a domain error (nearest listed ancestor)."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def problem(
    status: int,
    code: str,
    detail: str,
    detail_zh: str,
    request: Request,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    """A problem+json response with a stable ``code`` and the request id."""
    body: dict[str, Any] = {
        "type": f"urn:gis-service:problem:{code}",
        "title": detail,
        "status": status,
        "code": code,
        "detail": detail,
        "detail_zh": detail_zh,
        "request_id": _request_id(request),
    }
    if errors:
        body["errors"] = errors
    for key, value in (extra or {}).items():
        body.setdefault(key, value)  # safe extras a domain error chose to show
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM)


async def _gis_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, e.GisError)
    status = status_of(exc)
    headers: dict[str, str] = {}
    retry = getattr(exc, "retry_after", None)
    if status in (429, 503) and retry:
        headers["Retry-After"] = str(retry)
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="gis-service"'
    fields = [{"field": f.field, "message": f.message} for f in exc.fields]
    return problem(
        status,
        exc.code,
        exc.detail,
        exc.detail_zh,
        request,
        errors=fields,
        headers=headers,
        extra=exc.extra,
    )


async def render_problem(request: Request, exc: e.GisError) -> JSONResponse:
    """The problem+json answer for ``exc``, for code answering outside FastAPI's routing."""
    return await _gis_error(request, exc)


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 naming each field; the offending input is never echoed (NaN would break JSON)."""
    assert isinstance(exc, RequestValidationError)
    fields = [
        {"field": _loc(err.get("loc", ())), "message": str(err.get("msg", ""))}
        for err in exc.errors()
    ]
    names = ", ".join(f["field"] for f in fields[:5])
    return problem(
        422,
        "validation_error",
        f"invalid input: {names}",
        f"输入无效：{names}",
        request,
        errors=fields,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    en, zh = _HTTP_TITLES.get(exc.status_code, ("request failed", "请求失败"))
    code = en.replace(" ", "_").lower()
    return problem(exc.status_code, code, en, zh, request, headers=getattr(exc, "headers", None))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    mapped = translate(exc)
    if mapped is not None:
        return await _gis_error(request, mapped)
    log.exception("unhandled error (request %s)", _request_id(request))
    return problem(500, "internal_error", "internal error", "服务内部错误", request)


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(e.GisError, _gis_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
