"""BAD_INPUTS section A: hostile or malformed tile requests → 4xx JSON, and no SQL at all."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from gis_service.api.app import create_app
from gis_service.api.routes import tiles as tile_routes
from gis_service.db import migrate
from gis_service.demo.loader import psycopg_conninfo
from gis_service.domain.users import hash_token
from gis_service.settings import Settings
from gis_service.tiles.service import TileService
from tests.fixtures import auth

HEADERS = auth("national_admin")


@pytest.fixture
def statements(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every statement the app sends: API engine, tile renders, tile metadata, auth."""
    seen: list[str] = []
    engine = client.app.state.engine.sync_engine  # type: ignore[attr-defined]

    def on_execute(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", on_execute)
    render, fetch = TileService._render, TileService.fetch

    async def counted_render(self: TileService, *args: Any) -> Any:
        seen.append("render")
        return await render(self, *args)

    async def counted_fetch(self: TileService, *args: Any) -> Any:
        seen.append("fetch")
        return await fetch(self, *args)

    def counted_auth(real: Any) -> Any:
        async def auth(*args: Any) -> Any:
            seen.append("auth")
            return await real(*args)

        return auth

    monkeypatch.setattr(TileService, "_render", counted_render)
    monkeypatch.setattr(TileService, "fetch", counted_fetch)
    # Both tile paths (the ASGI fast path and the Starlette route) authenticate through these.
    for name in ("_principal", "_fast_principal"):
        monkeypatch.setattr(tile_routes, name, counted_auth(getattr(tile_routes, name)))
    client.app.state.tiles.forget_principals()  # type: ignore[attr-defined]
    yield seen
    event.remove(engine, "before_cursor_execute", on_execute)


def _problem(r: Any, status: int) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        # A1: z beyond the layer's range, beyond 30, absurdly large
        ("/tiles/grids/23/0/0.mvt", 404),
        ("/tiles/grids/4/0/0.mvt", 404),
        ("/tiles/grids/32/0/0.mvt", 400),
        ("/tiles/grids/99999999999999999999/0/0.mvt", 400),
        # A2: outside the matrix, negative, non-integers
        ("/tiles/grids/14/16384/0.mvt", 404),
        ("/tiles/grids/14/0/16384.mvt", 404),
        ("/tiles/grids/14/-1/0.mvt", 400),
        ("/tiles/grids/14/0/-1.mvt", 400),
        ("/tiles/grids/14/1.5/0.mvt", 400),
        ("/tiles/grids/14/+1/0.mvt", 400),
        ("/tiles/grids/14/0x10/0.mvt", 400),
        ("/tiles/grids/１４/0/0.mvt", 400),
        ("/tiles/grids/14/0/１２.mvt", 400),
        ("/tiles/grids/14/18446744073709551616/0.mvt", 400),
        # A8: wrong extension
        ("/tiles/grids/14/0/0.png", 404),
        ("/tiles/grids/14/0/0.pbf.exe", 404),
        ("/tiles/grids/14/0/0", 404),
        ("/tiles/grids/14/0/0.MVT", 404),
    ],
)
def test_bad_tile_addresses(
    client: TestClient, statements: list[str], path: str, status: int
) -> None:
    _problem(client.get(path, headers=HEADERS), status)
    assert statements == []


HOSTILE = [
    'x";drop table grid;--',
    "grids;select 1",
    "grids'--",
    "../../etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "%00",
    "grids%00",
    "GRIDS",
    "grid",
    "pg_catalog.pg_user",
    "public.grid",
    "grids ",
    " grids",
    "grids,nope",
    "nope,grids",
    "$(id)",
    "{layer}",
    "*",
    "grids,",
    ",grids",
    "ｇｒｉｄｓ",
    "grids\u200b",
    "a" * 500,
    "%27%3B%20DROP%20TABLE%20grid%3B--",
    "1;DELETE FROM enterprise",
    "enterprises\\",
    "enterprises%5C",
    "__proto__",
    "constructor",
    "null",
    "undefined",
    "true",
    "0",
    "-1",
    "grids%2F..%2Fenterprises",
    "%2e%2e",
    "grids%2Cnope",
    "<script>",
    "grids%0d%0aX-Injected:1",
    "😀",
    "grids;",
    "(select 1)",
    "grids--",
    "grids/*",
    "grids)",
    "UNION SELECT",
    "admin_division",
    "app_user",
    "tile_change",
    "layer.schema",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_layer_names(client: TestClient, statements: list[str], name: str) -> None:
    r = client.get(f"/tiles/{name}/14/0/0.mvt", headers=HEADERS)
    assert r.status_code in (400, 404), (name, r.status_code)
    if r.headers["content-type"].startswith("application/"):
        assert "drop" not in r.text.lower()
    assert statements == []
    assert client.get(f"/tiles/{name}.json", headers=HEADERS).status_code in (400, 404)
    assert statements == []


def test_too_many_layers_is_400_fast(client: TestClient, statements: list[str]) -> None:
    t = time.perf_counter()
    r = client.get("/tiles/" + ",".join(["grids"] * 1000) + "/14/0/0.mvt", headers=HEADERS)
    assert time.perf_counter() - t < 0.5
    _problem(r, 400)
    names = ",".join(
        ["grids", "enterprises", "buildings", "shelters", "fire_points", "townships"] * 3
    )
    ok = client.get(f"/tiles/{names}/14/0/0.mvt", headers=HEADERS)
    assert ok.status_code == 204  # duplicates collapse to six layers
    assert statements.count("render") == 1
    assert "fetch" not in statements


def test_unauthenticated_tile_is_401_without_rendering(
    client: TestClient, statements: list[str]
) -> None:
    r = client.get("/tiles/grids/14/13341/6866.mvt")
    _problem(r, 401)
    assert "render" not in statements


def test_query_parameters_are_refused(client: TestClient) -> None:
    r = client.get("/tiles/grids/14/0/0.mvt?filter=1", headers=HEADERS)
    _problem(r, 400)
    assert "no query parameters" in r.json()["detail"]  # the route: the fast path stands aside


SLOW = """
name: slow
title: 慢图层
title_en: Slow
function: slow_tile
depends_on: [enterprise]
geometry_type: Point
properties: []
style: {kind: circle}
"""


@pytest.fixture
def slow_app(
    make_database: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> Iterator[tuple[TestClient, str]]:
    """A private database with a function layer that sleeps past the tile budget."""
    url = make_database("tiles_slow")
    migrate.upgrade(url)
    with psycopg.connect(psycopg_conninfo(url), autocommit=True) as c:
        c.execute(
            "CREATE FUNCTION slow_tile(z int, x int, y int, scope text) RETURNS bytea"
            " LANGUAGE sql AS $$ SELECT convert_to(pg_sleep(1)::text, 'UTF8') $$"
        )
        c.execute(
            "INSERT INTO app_user (login, role, scope_code, token_hash)"
            " VALUES ('national_admin', 'admin', NULL, %s)",
            (hash_token("gis_test_national_admin"),),
        )
    (tmp_path / "slow.yaml").write_text(SLOW, encoding="utf-8")
    monkeypatch.setenv("GIS_LAYERS_DIR", str(tmp_path))
    monkeypatch.setenv("GIS_TILES_STATEMENT_TIMEOUT_MS", "200")
    app = create_app(settings, database_url=url)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c, url


def test_timeout_is_503_and_never_cached(slow_app: tuple[TestClient, str]) -> None:
    client, url = slow_app
    assert client.get("/tiles/slow.json", headers=HEADERS).status_code == 200  # warm the pool
    t = time.perf_counter()
    r = client.get("/tiles/slow/10/1/1.mvt", headers=HEADERS)
    assert time.perf_counter() - t < 0.2 + 0.5
    _problem(r, 503)
    assert r.json()["code"] == "query_timeout"
    assert int(r.headers["retry-after"]) >= 1
    with psycopg.connect(psycopg_conninfo(url), autocommit=True) as c:
        c.execute(
            "CREATE OR REPLACE FUNCTION slow_tile(z int, x int, y int, scope text) RETURNS bytea"
            " LANGUAGE sql AS $$ SELECT '\\x1a00'::bytea $$"
        )
    again = client.get("/tiles/slow/10/1/1.mvt", headers=HEADERS)
    assert again.status_code == 200
    assert again.headers["x-tile-cache"] == "miss"
    assert again.content == b"\x1a\x00"
