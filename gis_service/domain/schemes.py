"""Classification schemes (四色, 险情等级 …) with their colours, as stored."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from gis_service.db.models import ClassificationClass, ClassificationScheme
from gis_service.errors import NotFound


async def list_schemes(conn: AsyncConnection, key: str | None = None) -> list[dict[str, Any]]:
    """Every scheme (latest version of each) with its classes in display order."""
    stmt = (
        select(
            ClassificationScheme.key,
            ClassificationScheme.version,
            ClassificationScheme.title_zh,
            ClassificationScheme.title_en,
            ClassificationScheme.basis,
            ClassificationClass.key.label("class_key"),
            ClassificationClass.zh_name,
            ClassificationClass.en_name,
            ClassificationClass.color,
            ClassificationClass.min_value,
            ClassificationClass.max_value,
        )
        .join(ClassificationClass, ClassificationClass.scheme_id == ClassificationScheme.id)
        .order_by(ClassificationScheme.key, ClassificationScheme.version, ClassificationClass.ord)
    )
    if key is not None:
        stmt = stmt.where(ClassificationScheme.key == key)
    schemes: dict[str, dict[str, Any]] = {}
    for r in await conn.execute(stmt):
        s = schemes.get(r.key)
        if s is None or s["version"] < r.version:
            s = schemes[r.key] = {
                "key": r.key,
                "version": r.version,
                "title_zh": r.title_zh,
                "title_en": r.title_en,
                "basis": r.basis,
                "classes": [],
            }
        if s["version"] == r.version:
            s["classes"].append(
                {
                    "key": r.class_key,
                    "zh_name": r.zh_name,
                    "en_name": r.en_name,
                    "color": r.color,
                    "min": r.min_value,
                    "max": r.max_value,
                }
            )
    if key is not None and not schemes:
        raise NotFound(detail=f"scheme {key} not found", detail_zh=f"分级方案 {key} 不存在")
    return list(schemes.values())
