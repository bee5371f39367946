"""The command line against a real database (DATABASE_URL pointing at the test cluster)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from gis_service.api.app import create_app
from gis_service.demo.loader import psycopg_conninfo
from gis_service.domain.users import hash_token
from gis_service.settings import Settings
from tests.fixtures import private_demo


# These tests write to the demo: they get a copy of their own (see ``private_demo``).
@pytest.fixture(scope="module")
def demo_url(make_database: Any, demo_city: Any) -> str:
    """A private copy of the demo database for this module."""
    return private_demo(make_database, demo_city, "writes")


@pytest.fixture(scope="module")
def client(demo_url: str, settings: Settings) -> Iterator[TestClient]:
    """A client of an app on this module's copy of the demo."""
    app = create_app(settings, database_url=demo_url)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "gis_service.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_users_add_prints_the_token_alone_on_the_last_line(demo_url: str) -> None:
    r = _cli(demo_url, "users", "add", "cli_planner", "--role", "planner", "--scope", "430204")
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip().splitlines()[-1]
    assert token.startswith("gis_")
    assert " " not in token
    with psycopg.connect(psycopg_conninfo(demo_url)) as c:
        row = c.execute(
            "SELECT role, scope_code FROM app_user WHERE token_hash = %s", (hash_token(token),)
        ).fetchone()
    assert row == ("planner", "430204")


def test_users_add_refuses_unknown_scope_and_role(demo_url: str) -> None:
    r = _cli(demo_url, "users", "add", "cli_x", "--role", "planner", "--scope", "999999")
    assert r.returncode == 1
    assert "999999" in r.stderr
    r = _cli(demo_url, "users", "add", "cli_y", "--role", "emperor", "--scope", "430204")
    assert r.returncode == 2
    r = _cli(demo_url, "users", "add", "cli_z", "--role", "planner")
    assert r.returncode == 1
    assert "scope" in r.stderr


def test_users_disable_takes_effect(demo_url: str, client: Any) -> None:
    r = _cli(demo_url, "users", "add", "cli_disable_me", "--role", "viewer", "--scope", "430204")
    token = r.stdout.strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/me", headers=headers).status_code == 200
    assert _cli(demo_url, "users", "disable", "cli_disable_me").returncode == 0
    assert client.get("/me", headers=headers).status_code == 401


def test_db_commands_with_database_url(demo_url: str) -> None:
    assert "DATABASE_URL" in _cli(demo_url, "db", "up").stderr
    r = _cli(demo_url, "db", "url")
    assert r.returncode == 0
    assert r.stdout.strip().startswith("postgresql+psycopg://")
    assert _cli(demo_url, "db", "migrate").returncode == 0


def test_demo_load_is_idempotent(demo_url: str) -> None:
    r = _cli(demo_url, "demo", "load", "--no-users")
    assert r.returncode == 0, r.stderr
    assert "already loaded" in r.stdout


def test_import_and_export_commands(demo_url: str, tmp_path: Any) -> None:
    import json

    path = tmp_path / "企业.csv"
    path.write_bytes(
        "企业名称,统一社会信用代码,行业类别,风险等级,经度,纬度\n"
        "命令行导入化工厂,91430204MA4LCLI001,危化品,红色,113.11,27.89\n"
        "坐标缺失企业,91430204MA4LCLI002,工贸,蓝色,,\n".encode("gb18030")
    )
    refused = _cli(demo_url, "import", "enterprise", str(path), "--crs", "wgs84", "--json")
    assert refused.returncode == 1
    report = json.loads(refused.stdout)
    assert report["status"] == "failed"
    assert report["encoding"] == "gb18030"
    assert sorted({p["row"] for p in report["problems"]}) == [3]
    assert {p["column"] for p in report["problems"]} == {"经度", "纬度"}
    ok = _cli(
        demo_url, "import", "enterprise", str(path), "--crs", "wgs84", "--skip-bad-rows", "--json"
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["rows_inserted"] == 1
    out = tmp_path / "out"
    exported = _cli(
        demo_url,
        "export",
        "enterprise",
        "-f",
        "csv",
        "--crs",
        "bd09",
        "--admin",
        "430204",
        "-o",
        str(out),
    )
    assert exported.returncode == 0, exported.stderr
    files = list(out.iterdir())
    assert [f.name for f in files] == ["enterprise_bd09.csv"]
    assert "命令行导入化工厂" in files[0].read_text(encoding="utf-8-sig")


def test_targets_command_lists_fields_and_headers(demo_url: str) -> None:
    listing = _cli(demo_url, "targets")
    assert listing.returncode == 0
    assert "geohazard_point" in listing.stdout
    assert "地质灾害隐患点" in listing.stdout
    detail = _cli(demo_url, "targets", "enterprise")
    assert "统一社会信用代码" in detail.stdout
    assert _cli(demo_url, "targets", "nonsense").returncode == 2


def test_serve_links_name_the_port_it_serves(demo_url: str) -> None:
    """TileJSON and OGC links point at the address served, not at the default port."""
    import socket
    import time

    import httpx2

    from tests.fixtures import auth

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "DATABASE_URL": demo_url}
    env.pop("GIS_API_PUBLIC_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gis_service.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx2.get(f"{base}/health/live", timeout=1).status_code == 200:
                    break
            except httpx2.TransportError:
                time.sleep(0.2)
        tilejson = httpx2.get(f"{base}/tiles/grids.json", headers=auth("a_viewer"), timeout=30)
        assert tilejson.status_code == 200, tilejson.text
        assert tilejson.json()["tiles"][0].startswith(f"{base}/tiles/grids/")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
