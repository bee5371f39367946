"""Cache off: no feed round trip per tile, yet a user/token change applies to the very next tile.

With ``GIS_TILES_CACHE_MB=0`` the fast path renders with the remembered caller at once and
checks afterwards: each tile connection LISTENs to ``gis_auth_change``, so the statement's
answer carries every change committed before it was sent, and a tile rendered for a caller
that changed meanwhile is discarded and redone. Changes are committed from another connection
(as another process or worker would), and two app instances (two workers) both refuse at once.
"""

from __future__ import annotations

import time
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
        for client in pair:  # a connection joining later would clear the memo mid-test
            service = _service(client)
            deadline = time.monotonic() + 20
            while service.pool.get_stats()["pool_size"] < service.settings.pool_min:
                assert time.monotonic() < deadline, "tile pool did not open"
                time.sleep(0.05)
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
        service = _service(client)
        speculated = service.speculated
        for _ in range(10):  # until a tile is rendered for the remembered caller
            assert client.get(PATH, headers=auth(LOGIN)).status_code == 200
            if service.speculated > speculated:
                break
        assert service.speculated > speculated
        redone, configured = service.redone, service.configured
        user.execute("UPDATE app_user SET active = false WHERE login = %s", (LOGIN,))
        r = client.get(PATH, headers=auth(LOGIN))
        assert r.status_code == 401, r.text
        # Rendered for the remembered caller, the change heard with the statement's
        # answer, the tile discarded and the caller refused on the fresh lookup. Unless
        # the pool set up a tile connection meanwhile (it grows in the background): that
        # forgets every remembered caller, and the lookup was fresh from the start.
        assert service.redone == redone + 1 or service.configured > configured, (
            service.redone,
            redone,
            service.configured,
            configured,
        )
        user.execute("UPDATE app_user SET active = true WHERE login = %s", (LOGIN,))
    other = workers[1]
    user.execute("UPDATE app_user SET active = false WHERE login = %s", (LOGIN,))
    assert other.get(PATH, headers=auth(LOGIN)).status_code == 401  # and from the other worker


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


def test_killed_tile_connections_are_replaced(
    workers: tuple[TestClient, TestClient], demo_url: str
) -> None:
    """Connections kept borrowed between tiles: a dead one goes back to the pool, once."""
    client = workers[0]
    service = _service(client)
    for _ in range(3):
        assert client.get(PATH, headers=auth("national_admin")).status_code == 200
    held = service.conns.idle_backends()  # this app's only: the session's app keeps its own
    assert held
    with psycopg.connect(psycopg_conninfo(demo_url), autocommit=True) as conn:
        killed = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = 'gis-tiles' AND pid = ANY(%s)",
            (list(held),),
        ).fetchone()
    assert killed == (len(held),)
    statuses = [client.get(PATH, headers=auth("national_admin")).status_code for _ in range(6)]
    # Each dead connection fails its one tile (503, Retry-After) and is replaced.
    assert set(statuses) <= {200, 503}
    assert statuses[-3:] == [200, 200, 200], statuses
    assert statuses.count(503) <= len(held)
    assert service.conns.held <= service.settings.pool_max
