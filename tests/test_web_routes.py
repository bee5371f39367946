"""What the API serves for the web map: the page, its own files, the vendored MapLibre and
pmtiles builds (nothing else of node_modules), and the page's configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from gis_service.api.app import create_app
from gis_service.settings import load_settings
from tests.fixtures import auth

WEB = Path(__file__).resolve().parents[1] / "web"


def test_root_is_the_map_page(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "/vendor/maplibre-gl/maplibre-gl.js" in r.text
    assert "/src/app.js" in r.text
    assert "cdn" not in r.text.lower()
    assert "https://" not in r.text  # nothing from the internet


def test_page_files_are_served(client: TestClient) -> None:
    names = ("app.js", "api.js", "draw.js", "views.js", "impact.js", "i18n.js", "early.js")
    for name in (*names, "app.css"):
        r = client.get(f"/src/{name}")
        assert r.status_code == 200, name
        assert r.content == (WEB / "src" / name).read_bytes()
    assert "javascript" in client.get("/src/app.js").headers["content-type"]


def test_vendored_builds_only(client: TestClient) -> None:
    assert (WEB / "node_modules" / "maplibre-gl" / "dist").is_dir(), "npm ci --prefix web"
    r = client.get("/vendor/maplibre-gl/maplibre-gl.js")
    assert r.status_code == 200
    assert "javascript" in r.headers["content-type"]
    assert client.get("/vendor/maplibre-gl/maplibre-gl.css").status_code == 200
    assert client.get("/vendor/pmtiles/pmtiles.js").status_code == 200
    # The rest of node_modules (package manifests, other packages, sources) is not reachable.
    for path in (
        "/node_modules/maplibre-gl/package.json",
        "/vendor/maplibre-gl/../package.json",
        "/vendor/maplibre-gl/%2e%2e/package.json",
        "/vendor/pmtiles/../../.package-lock.json",
        "/web/package.json",
        "/package.json",
        "/src/../package.json",
    ):
        assert client.get(path).status_code == 404, path


def test_config_without_login(client: TestClient) -> None:
    r = client.get("/web/config.json")
    assert r.status_code == 200
    body = r.json()
    assert body["tianditu_key"] is None
    assert set(body) >= {"version", "password_login", "hazard_layers", "warnings", "impact"}
    assert client.get("/web/config.json?x=1").status_code == 400  # strict query parameters


def test_config_tianditu_key_from_settings(demo_url: str) -> None:
    settings = load_settings(environment="test", web={"tianditu_key": "0123456789abcdef"})
    with TestClient(create_app(settings, database_url=demo_url)) as c:
        assert c.get("/web/config.json").json()["tianditu_key"] == "0123456789abcdef"


def test_tianditu_key_is_checked() -> None:
    with pytest.raises(ValueError, match="tianditu_key"):
        load_settings(environment="test", web={"tianditu_key": 'bad key"><script>'})


def test_uscc_search_in_scope(client: TestClient, conn: psycopg.Connection[Any]) -> None:
    """`GET /enterprises?uscc=` (the search box's lookup): the row the database holds, in scope only."""
    uscc, name, lon, lat = conn.execute(
        "SELECT uscc, name, ST_X(geom), ST_Y(geom) FROM enterprise"
        " WHERE admin_code LIKE '430204%' AND uscc IS NOT NULL ORDER BY id LIMIT 1"
    ).fetchone()
    r = client.get("/enterprises", params={"uscc": uscc.lower()}, headers=auth("a_viewer"))
    assert r.status_code == 200
    (item,) = r.json()["items"]
    assert (item["uscc"], item["name"]) == (uscc, name)
    assert (item["lon"], item["lat"]) == pytest.approx((lon, lat), abs=1e-9)
    # Another county's user does not learn that it exists.
    foreign = client.get("/enterprises", params={"uscc": uscc}, headers=auth("b_admin"))
    assert foreign.status_code == 200
    assert foreign.json()["items"] == []
    assert client.get("/enterprises", params={"uscc": uscc}).status_code == 401


@pytest.mark.parametrize(
    "bad", ["", "12345", "91430204302198390R1", "9143020430219839😀", "9143 204302198390R"]
)
def test_uscc_search_refuses_malformed_codes(client: TestClient, bad: str) -> None:
    r = client.get("/enterprises", params={"uscc": bad}, headers=auth("a_viewer"))
    assert 400 <= r.status_code < 500
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "uscc" in r.text
