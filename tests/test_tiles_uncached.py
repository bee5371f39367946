"""Cache off: no feed round trip per tile, yet a user/token change applies to the very next tile.

With ``GIS_TILES_CACHE_MB=0`` the fast path renders with the remembered caller at once and
checks afterwards: each tile connection LISTENs to ``gis_auth_change``, so the statement's
answer carries every change committed before it was sent, and a tile rendered for a caller
that changed meanwhile is discarded and redone. Changes are committed from another connection
(as another process or worker would), and two app instances (two workers) both refuse at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from gis_service.api.app import create_app
from gis_service.demo.loader import psycopg_conninfo
from gis_service.domain.users import hash_token
from gis_service.settings import Settings
from gis_service.tiles.service import TileService
from tests.fixtures import auth
from tests.test_tiles import CENTRE, decode, tile_of

LOGIN = "tile_uncached"
PATH = "/tiles/grids/{}/{}/{}.mvt".format(*tile_of(*CENTRE, 14))


def _service(client: TestClient) -> TileService:
    service: TileService = client.app.state.tiles  # type: ignore[attr-defined]
    return service


@pytest.fixture
def workers(
    demo_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, TestClient]]:
    """Two app instances (two workers) on the demo database with the tile cache off."""
    monkeypatch.setenv("GIS_TILES_CACHE_MB", "0")
    with ExitStack() as stack:
        pair = tuple(
            stack.enter_context(TestClient(create_app(settings, database_url=demo_url)))
            for _ in range(2)
        )
        yield pair[0], pair[1]


@pytest.fixture
def user(demo_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A throw-away national admin (token ``gis_test_tile_uncached``), deleted afterwards."""
    with psycopg.connect(psycopg_conninfo(demo_url), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO app_user (login, role, scope_code, token_hash, source)"
            " VALUES (%s, 'admin', NULL, %s, 'test')",
            (LOGIN, hash_token(f"gis_test_{LOGIN}")),
        )
        try:
            yield conn
        finally:
            conn.execute("DELETE FROM app_user WHERE login = %s", (LOGIN,))


def test_no_feed_round_and_the_memo_is_used(workers: tuple[TestClient, TestClient]) -> None:
    client = workers[0]
    service = _service(client)
    assert not service.cache.enabled
    before = service.speculated
    for _ in range(8):
        r = client.get(PATH, headers=auth("national_admin"))
        assert r.status_code == 200
        assert r.headers["x-tile-cache"] == "miss"
        assert decode(r.content)["grids"]["features"]
    # Looked up again only after a tile connection joined the pool (it clears the memo).
    assert service.speculated >= before + 8 - 1 - service.settings.pool_min
    assert service.feed.rounds == 0
    assert not service.feed.healthy


def test_disabled_user_is_refused_on_the_next_tile_by_every_worker(
    workers: tuple[TestClient, TestClient], user: psycopg.Connection[Any]
) -> None:
    for client in workers:
        for _ in range(2):  # the second is rendered for the remembered caller
            assert client.get(PATH, headers=auth(LOGIN)).status_code == 200
    redone = [_service(c).redone for c in workers]
    user.execute("UPDATE app_user SET active = false WHERE login = %s", (LOGIN,))
    for client in workers:
        r = client.get(PATH, headers=auth(LOGIN))
        assert r.status_code == 401, r.text
    # Each worker rendered for the remembered caller, heard the change with the answer,
    # discarded the tile and refused on the fresh lookup.
    assert [_service(c).redone for c in workers] == [n + 1 for n in redone]


def test_changed_scope_applies_to_the_next_tile(
    workers: tuple[TestClient, TestClient], user: psycopg.Connection[Any]
) -> None:
    client = workers[0]
    whole = client.get(PATH, headers=auth(LOGIN))
    assert client.get(PATH, headers=auth(LOGIN)).content == whole.content  # memo warm
    assert whole.status_code == 200
    assert decode(whole.content)["grids"]["features"]
    user.execute("UPDATE app_user SET scope_code = '440304' WHERE login = %s", (LOGIN,))
    # The district's tile as seen from the foreign county: nothing (no stale national bytes).
    assert client.get(PATH, headers=auth(LOGIN)).status_code == 204
    assert client.get(PATH, headers=auth(LOGIN)).status_code == 204  # and remembered so
