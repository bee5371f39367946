"""One domain error hierarchy; the API maps it to HTTP in ``api/errors.py``.

Every error carries a stable ``code`` and a safe user message in English and Chinese.
The ``detail`` never contains SQL, file paths or tracebacks: those go to the log only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class FieldProblem:
    """One offending input field: where it is and what is wrong with it."""

    field: str
    message: str


@dataclass
class GisError(Exception):
    """Base of every error the service raises on purpose."""

    detail: str = "request failed"
    detail_zh: str = "请求失败"
    code: str = "error"
    fields: list[FieldProblem] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"


@dataclass
class InvalidInput(GisError):
    """The request or file is malformed or out of range."""

    detail: str = "invalid input"
    detail_zh: str = "输入无效"
    code: str = "invalid_input"


@dataclass
class NotFound(GisError):
    """The object does not exist, or is outside the caller's area scope (no existence oracle)."""

    detail: str = "not found"
    detail_zh: str = "未找到"
    code: str = "not_found"


@dataclass
class NotAuthenticated(GisError):
    """No valid token was presented."""

    detail: str = "authentication required"
    detail_zh: str = "需要登录"
    code: str = "not_authenticated"


@dataclass
class Forbidden(GisError):
    """The caller's role may not do this."""

    detail: str = "your role may not do this"
    detail_zh: str = "当前角色无此权限"
    code: str = "forbidden"


@dataclass
class Conflict(GisError):
    """The write conflicts with existing data (duplicate key, illegal state transition)."""

    detail: str = "conflict with existing data"
    detail_zh: str = "与现有数据冲突"
    code: str = "conflict"


@dataclass
class PreconditionFailed(GisError):
    """The If-Match version is not the current one (someone else edited first)."""

    detail: str = "the object was changed by someone else; reload and retry"
    detail_zh: str = "数据已被他人修改，请刷新后重试"
    code: str = "precondition_failed"


@dataclass
class PreconditionRequired(GisError):
    """A write to a versioned object came without If-Match."""

    detail: str = "If-Match header with the current ETag is required"
    detail_zh: str = "修改需要携带 If-Match 版本号"
    code: str = "precondition_required"


@dataclass
class TooLarge(GisError):
    """The request or file exceeds a server-side cap."""

    detail: str = "request too large"
    detail_zh: str = "请求过大"
    code: str = "too_large"


@dataclass
class TooManyRequests(GisError):
    """Too many attempts (failed logins): wait ``retry_after`` seconds (BAD_INPUTS E10)."""

    detail: str = "too many attempts, retry later"
    detail_zh: str = "尝试次数过多，请稍后再试"
    code: str = "too_many_requests"
    retry_after: int = 60


@dataclass
class DatabaseUnavailable(GisError):
    """PostgreSQL cannot be reached or is shutting down; the client should retry."""

    detail: str = "database temporarily unavailable, retry shortly"
    detail_zh: str = "数据库暂时不可用，请稍后重试"
    code: str = "database_unavailable"
    retry_after: int = 2


@dataclass
class QueryTooExpensive(GisError):
    """A statement ran past its time budget."""

    detail: str = "query took too long, narrow the request or retry"
    detail_zh: str = "查询超时，请缩小范围或稍后重试"
    code: str = "query_timeout"
    retry_after: int = 2


@dataclass
class ReadOnlyDatabase(GisError):
    """The database refuses writes (read-only standby, disk full)."""

    detail: str = "the database does not accept writes right now"
    detail_zh: str = "数据库当前不可写入"
    code: str = "database_read_only"
    retry_after: int = 30


@dataclass
class DatabaseSetupError(GisError):
    """The embedded PostgreSQL/PostGIS cluster cannot be created or started."""

    detail: str = "cannot set up the database"
    detail_zh: str = "无法初始化数据库"
    code: str = "database_setup"


@dataclass
class BadParameter(InvalidInput):
    """An unknown, duplicated or malformed query parameter (HTTP 400, not 422)."""

    detail: str = "bad query parameter"
    detail_zh: str = "查询参数错误"
    code: str = "bad_parameter"
