"""Driver errors are translated at the DB edge into domain errors (STYLE lesson 3)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from gis_service.db.cluster import free_port
from gis_service.db.engine import TxContext, make_async_engine, transaction
from gis_service.errors import (
    Conflict,
    DatabaseUnavailable,
    GisError,
    InvalidInput,
    QueryTooExpensive,
)
from gis_service.settings import Settings


def _run(url: str, settings: Settings, sql: str) -> None:
    async def go() -> None:
        engine = make_async_engine(url, settings.db)
        try:
            async with transaction(engine, TxContext(actor="t")) as conn:
                for stmt in sql.split(";"):
                    await conn.execute(text(stmt))
        finally:
            await engine.dispose()

    asyncio.run(go())


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        ("SET LOCAL statement_timeout = 50; SELECT pg_sleep(2)", QueryTooExpensive),
        (
            "INSERT INTO app_user (login, role, scope_code, token_hash) SELECT login, role, scope_code, token_hash FROM app_user LIMIT 1",
            Conflict,
        ),
        (
            "UPDATE enterprise SET risk_level = 'purple' WHERE id = (SELECT min(id) FROM enterprise)",
            InvalidInput,
        ),
        ("SELECT ST_GeomFromText('POLYGON((0 0, 1 1))', 4490)", InvalidInput),
    ],
    ids=["statement_timeout", "unique_violation", "check_violation", "postgis_xx000"],
)
def test_driver_errors_become_domain_errors(
    demo_url: str, settings: Settings, sql: str, error: type[GisError]
) -> None:
    with pytest.raises(error) as info:
        _run(demo_url, settings, sql)
    # The user message never carries SQL.
    assert "SELECT" not in info.value.detail
    assert "INSERT" not in info.value.detail


def test_unreachable_server_is_database_unavailable(settings: Settings) -> None:
    url = f"postgresql+psycopg://gis:x@127.0.0.1:{free_port()}/gis"
    with pytest.raises(DatabaseUnavailable):
        _run(url, settings, "SELECT 1")
