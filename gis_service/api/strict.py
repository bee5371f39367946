"""Strict query strings: unknown or repeated parameters are a 400, not silently ignored.

FastAPI ignores both by default (BAD_INPUTS B3); this route class checks the query string
against the parameters the endpoint (and its dependencies) declare.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from gis_service.errors import BadParameter, FieldProblem

_SEQUENCES = (list, tuple, set, frozenset)


def _query_fields(dependant: Dependant) -> list[tuple[str, Any]]:
    """(alias, annotation) of every query parameter of the endpoint and its dependencies."""
    out: list[tuple[str, Any]] = []
    stack = [dependant]
    while stack:
        current = stack.pop()
        for param in current.query_params:
            annotation = param.field_info.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                out.extend(
                    (f.alias or name, f.annotation) for name, f in annotation.model_fields.items()
                )
            else:
                out.append((param.alias, annotation))
        stack.extend(current.dependencies)
    return out


def _is_sequence(annotation: Any) -> bool:
    if typing.get_origin(annotation) in _SEQUENCES:
        return True
    return any(_is_sequence(a) for a in typing.get_args(annotation))


class StrictRoute(APIRoute):
    """An APIRoute that refuses unknown and duplicated query parameters."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap FastAPI's handler with the query-string check (computed once per route)."""
        handler = super().get_route_handler()
        fields = _query_fields(self.dependant)
        allowed = frozenset(alias for alias, _ in fields)
        repeatable = frozenset(alias for alias, ann in fields if _is_sequence(ann))

        async def strict_handler(request: Request) -> Response:
            seen: set[str] = set()
            problems: list[FieldProblem] = []
            for key, _ in request.query_params.multi_items():
                if key not in allowed:
                    problems.append(FieldProblem(f"query.{key[:64]}", "unknown parameter"))
                elif key in seen and key not in repeatable:
                    problems.append(FieldProblem(f"query.{key}", "parameter given more than once"))
                seen.add(key)
            if problems:
                names = ", ".join(sorted({p.field for p in problems}))
                raise BadParameter(
                    detail=f"unknown or repeated query parameter: {names}",
                    detail_zh=f"未知或重复的查询参数：{names}",
                    fields=problems,
                )
            return await handler(request)

        return strict_handler
