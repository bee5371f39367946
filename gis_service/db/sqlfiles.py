"""SQL kept in ``.sql`` files beside the code, loaded as package data."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def read_sql(name: str) -> str:
    """The text of ``gis_service/db/sql/<name>``."""
    return (resources.files("gis_service.db") / "sql" / name).read_text(encoding="utf-8")
