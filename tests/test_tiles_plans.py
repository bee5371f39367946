"""Generic plans for the prepared tile statements: never planned per tile, same tiles.

``GIS_TILES_GENERIC_PLANS`` (default on) sets ``plan_cache_mode = force_generic_plan`` on the
tile connections. PostgreSQL's own counters (``pg_prepared_statements``) prove that no tile
was planned afresh, and an app with the switch off (PostgreSQL's ``auto``) serves the very
same bytes for national and scoped callers, on every zoom the layers change statement at.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from fastapi.testclient import TestClient

from gis_service.api.app import create_app
from gis_service.settings import Settings
from gis_service.tiles.service import TileService
from tests.fixtures import auth
from tests.test_tiles import CENTRE, FUTIAN, tile_of

#: Aggregated and feature statements, composite and single, around the district and abroad.
PATHS = [
    f"/tiles/{layers}/{z}/{x}/{y}.mvt"
    for layers in ("grids,enterprises", "safety_hazards", "buildings", "communities")
    for centre in (CENTRE, FUTIAN)
    for z, x, y in (tile_of(*centre, zoom) for zoom in (8, 11, 13, 14, 16))
]
CALLERS = ("national_admin", "a_surveyor", "b_surveyor")


@pytest.fixture
def apps(
    demo_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[bool, TestClient]]:
    """Two cache-off apps on the demo database: generic plans on, and off."""
    monkeypatch.setenv("GIS_TILES_CACHE_MB", "0")
    with ExitStack() as stack:
        pair = {}
        for generic in (True, False):
            monkeypatch.setenv("GIS_TILES_GENERIC_PLANS", str(generic).lower())
            app = create_app(settings, database_url=demo_url)
            pair[generic] = stack.enter_context(TestClient(app))
        yield pair


def _plans(client: TestClient) -> tuple[str, int, int]:
    """(plan_cache_mode, generic plans, custom plans) over the app's held tile connections."""
    service: TileService = client.app.state.tiles  # type: ignore[attr-defined]

    async def count() -> tuple[str, int, int]:
        conns = [await service.conns.acquire() for _ in range(service.conns.held or 1)]
        try:
            modes, generic, custom = set(), 0, 0
            for conn in conns:
                mode = await (await conn.execute("SHOW plan_cache_mode")).fetchone()
                row = await (
                    await conn.execute(
                        "SELECT coalesce(sum(generic_plans), 0), coalesce(sum(custom_plans), 0)"
                        " FROM pg_prepared_statements WHERE name LIKE 'gis_tile_%'"
                    )
                ).fetchone()
                assert mode is not None
                assert row is not None
                modes.add(mode[0])
                generic, custom = generic + row[0], custom + row[1]
            assert len(modes) == 1, modes
            return modes.pop(), generic, custom
        finally:
            for conn in conns:
                await service.conns.release(conn)

    assert client.portal is not None
    return client.portal.call(count)


def test_generic_plans_serve_the_same_tiles(apps: dict[bool, TestClient]) -> None:
    served = 0
    for path in PATHS:
        for login in CALLERS:
            fast = apps[True].get(path, headers=auth(login))
            auto = apps[False].get(path, headers=auth(login))
            assert fast.status_code == auto.status_code, (path, login)
            if fast.status_code == 200:  # (refusals carry a per-request trace id)
                assert fast.content == auto.content, (path, login)
                served += 1
    assert served > len(PATHS)  # most tiles hold features for someone
    mode, generic, custom = _plans(apps[True])
    assert mode == "force_generic_plan"
    assert custom == 0
    assert generic >= served
    mode, generic, custom = _plans(apps[False])
    assert mode == "auto"
    assert custom > 0  # PostgreSQL's auto kept planning tile by tile: what the switch saves
