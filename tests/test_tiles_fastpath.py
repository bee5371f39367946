"""The pure ASGI tile fast path: same bytes, same refusals, same scope and freshness as the route.

``GIS_TILES_FAST_PATH`` (``TileSettings.fast_path``) switches it off at run time, so every
comparison below asks the same app twice: once through the fast path, once through FastAPI.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from gis_service.demo.loader import psycopg_conninfo
from gis_service.domain.scope import Principal
from gis_service.domain.users import hash_token
from gis_service.tiles.service import TileService
from gis_service.types import Role
from tests.fixtures import auth
from tests.test_tiles import CENTRE, FUTIAN, decode, tile_of

#: Headers that legitimately differ between two answers (ids, cache state).
VOLATILE = {"x-request-id", "x-tile-cache", "date", "server"}


def _service(client: TestClient) -> TileService:
    service: TileService = client.app.state.tiles  # type: ignore[attr-defined]
    return service


@pytest.fixture
def paths(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> Iterator[TileService]:
    """The tile service with an empty cache; the fast path switch is restored afterwards."""
    service = _service(client)
    monkeypatch.setattr(service.settings, "fast_path", True)
    service.cache.clear()
    yield service
    service.cache.clear()


def _both(
    client: TestClient, service: TileService, path: str, *, served: bool = True, **headers: str
) -> tuple[Any, Any]:
    """(fast answer, slow answer) for one request, each rendered cold.

    ``served``: the fast path answers with a tile (refusals after its checks are rendered by
    the app's handlers and are not counted).
    """
    answers = []
    for fast in (True, False):
        service.settings.fast_path = fast
        service.cache.clear()
        count = service.fast_served
        answers.append(client.get(path, headers=headers))
        assert service.fast_served == count + (1 if fast and served else 0), (path, fast)
    service.settings.fast_path = True
    return answers[0], answers[1]


def _same(fast: Any, slow: Any) -> None:
    assert fast.status_code == slow.status_code, (fast.status_code, slow.status_code)
    assert fast.content == slow.content
    keep = {k: v for k, v in fast.headers.items() if k not in VOLATILE}
    assert keep == {k: v for k, v in slow.headers.items() if k not in VOLATILE}


@pytest.mark.parametrize(
    ("layers", "zoom", "where"),
    [
        ("grids", 14, CENTRE),
        ("enterprises", 10, CENTRE),  # aggregated at low zoom
        ("enterprises", 13, CENTRE),
        ("grids,enterprises,buildings", 15, CENTRE),  # composite
        ("grids", 14, FUTIAN),
    ],
)
def test_fast_path_bytes_equal_the_route(
    client: TestClient, paths: TileService, layers: str, zoom: int, where: tuple[float, float]
) -> None:
    path = "/tiles/{}/{}/{}/{}.mvt".format(layers, *tile_of(*where, zoom))
    for encoding in ("identity", "gzip"):
        fast, slow = _both(
            client, paths, path, **auth("national_admin"), **{"Accept-Encoding": encoding}
        )
        _same(fast, slow)
        assert fast.status_code == 200
        assert fast.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    decoded = decode(fast.content)
    assert set(decoded) <= set(layers.split(","))


def test_fast_path_empty_tile_304_and_pbf(client: TestClient, paths: TileService) -> None:
    empty = "/tiles/grids/14/0/0.pbf"  # far from every row: 204, no body, no content type
    fast, slow = _both(client, paths, empty, **auth("national_admin"))
    _same(fast, slow)
    assert fast.status_code == 204
    path = "/tiles/grids/{}/{}/{}.mvt".format(*tile_of(*CENTRE, 15))
    etag = client.get(path, headers=auth("national_admin")).headers["etag"]
    fast, slow = _both(client, paths, path, **auth("national_admin"), **{"If-None-Match": etag})
    _same(fast, slow)
    assert fast.status_code == 304
    assert fast.content == b""


@pytest.mark.parametrize(
    "path",
    [
        "/tiles/grids/23/0/0.mvt",
        "/tiles/grids/32/0/0.mvt",
        "/tiles/grids/14/16384/0.mvt",
        "/tiles/grids/14/-1/0.mvt",
        "/tiles/grids/14/0/0.png",
        "/tiles/grids/14/0/0",
        "/tiles/nope/14/0/0.mvt",
        "/tiles/grids;drop/14/0/0.mvt",
        "/tiles/" + ",".join(["grids"] * 100) + "/14/0/0.mvt",
        "/tiles/grids/14/0/0.mvt?filter=1",
        "/tiles/grids//0/0.mvt",
        "/tiles/grids/14/0/0/1.mvt",
    ],
)
def test_fast_path_refuses_like_the_route(
    client: TestClient, paths: TileService, path: str
) -> None:
    answers = []
    for fast in (True, False):
        paths.settings.fast_path = fast
        served = paths.fast_served
        answers.append(client.get(path, headers=auth("national_admin")))
        assert paths.fast_served == served  # never answered by the fast path
    fast_r, slow_r = answers
    assert fast_r.status_code == slow_r.status_code
    assert 400 <= fast_r.status_code < 500
    if fast_r.headers.get("content-type", "").startswith("application/problem+json"):
        body_f, body_s = fast_r.json(), slow_r.json()
        body_f.pop("request_id"), body_s.pop("request_id")
        assert body_f == body_s


def test_fast_path_auth_refusals_match(client: TestClient, paths: TileService) -> None:
    path = "/tiles/grids/{}/{}/{}.mvt".format(*tile_of(*CENTRE, 14))
    for headers in (
        {},
        {"Authorization": "Bearer gis_test_nobody"},
        {"Authorization": "Basic abc"},
        auth("disabled_user"),
    ):
        fast, slow = _both(client, paths, path, served=False, **headers)
        assert fast.status_code == slow.status_code == 401, headers
        body_f, body_s = fast.json(), slow.json()
        body_f.pop("request_id"), body_s.pop("request_id")
        assert body_f == body_s
        assert fast.headers["www-authenticate"] == slow.headers["www-authenticate"]


def test_fast_path_keeps_scopes_apart(client: TestClient, paths: TileService) -> None:
    """Cached bytes of one area never answer a caller from another (BAD_INPUTS A7)."""
    district = "/tiles/grids/{}/{}/{}.mvt".format(*tile_of(*CENTRE, 14))
    first = client.get(district, headers=auth("national_admin"))
    assert first.status_code == 200
    assert client.get(district, headers=auth("national_admin")).headers["x-tile-cache"] == "hit"
    other = client.get(district, headers=auth("b_surveyor"))
    assert other.status_code == 204  # rendered for 440304: nothing here
    assert other.headers["x-tile-cache"] == "miss"
    own = client.get(district, headers=auth("a_surveyor"))
    assert own.status_code == 200
    assert own.headers["x-tile-cache"] == "miss"
    assert client.get(district, headers=auth("a_surveyor")).headers["x-tile-cache"] == "hit"


def test_request_id_and_host_checks_still_apply(client: TestClient, paths: TileService) -> None:
    path = "/tiles/grids/{}/{}/{}.mvt".format(*tile_of(*CENTRE, 14))
    r = client.get(path, headers={**auth("national_admin"), "X-Request-ID": "tile-req-0001"})
    assert r.status_code == 200
    assert r.headers["x-request-id"] == "tile-req-0001"
    served = paths.fast_served
    evil = client.get(path, headers={**auth("national_admin"), "Host": "evil.example.com"})
    assert evil.status_code == 400
    assert paths.fast_served == served
    assert client.head(path, headers=auth("national_admin")).status_code == 200  # the route


@pytest.fixture
def temp_user(demo_url: str) -> Iterator[tuple[str, psycopg.Connection[Any]]]:
    """A throw-away national user (token ``gis_test_tile_temp``), deleted afterwards."""
    with psycopg.connect(psycopg_conninfo(demo_url), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO app_user (login, role, scope_code, token_hash, source)"
            " VALUES ('tile_temp', 'admin', NULL, %s, 'test')",
            (hash_token("gis_test_tile_temp"),),
        )
        try:
            yield "tile_temp", conn
        finally:
            conn.execute("DELETE FROM app_user WHERE login = 'tile_temp'")


def test_disabled_user_is_refused_on_the_next_tile(
    client: TestClient, paths: TileService, temp_user: tuple[str, psycopg.Connection[Any]]
) -> None:
    """The principal memo hears user changes through the feed: no stale access."""
    login, conn = temp_user
    path = "/tiles/grids/{}/{}/{}.mvt".format(*tile_of(*CENTRE, 14))
    for _ in range(2):
        assert client.get(path, headers=auth(login)).status_code == 200
    conn.execute("UPDATE app_user SET active = false WHERE login = %s", (login,))
    assert client.get(path, headers=auth(login)).status_code == 401
    conn.execute(
        "UPDATE app_user SET active = true, scope_code = '440304' WHERE login = %s", (login,)
    )
    assert client.get(path, headers=auth(login)).status_code == 204  # the new, narrower scope


def test_principal_memo_respects_expiry_and_generation(client: TestClient) -> None:
    service = _service(client)
    who = Principal(login="x", role=Role.viewer, scope_code=None)
    header = "Bearer gis_test_memo_only"
    service.remember_principal(header, who, time.time() - 1, service.auth_generation)
    assert service.known_principal(header) is None  # expired
    service.remember_principal(header, who, time.time() + 60, service.auth_generation - 1)
    assert service.known_principal(header) is None  # looked up before a change: not kept
    service.remember_principal(header, who, time.time() + 60, service.auth_generation)
    assert service.known_principal(header) == who
    service.forget_principals()
    assert service.known_principal(header) is None
