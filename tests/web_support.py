"""Helpers of the web-map browser tests: a real uvicorn server, Debian's Chromium, page hooks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2 as httpx
from playwright import sync_api

from gis_service.db.cluster import free_port
from tests.fixtures import token

#: Headless WebGL through ANGLE + SwiftShader, and no traffic to the internet
#: (shared/reference/WEB_RECIPE.md). Never ``--use-gl=swiftshader``: it disables WebGL.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
WEB_VENDOR = Path(__file__).resolve().parents[1] / "web" / "node_modules" / "maplibre-gl" / "dist"


@contextmanager
def launch_chromium() -> Iterator[Any]:
    """Debian's Chromium under Playwright (each test module's ``chromium`` fixture)."""
    # make test installs both (scripts/install-system.sh, npm ci): missing is a failure.
    assert os.access(CHROMIUM, os.X_OK), "Debian's chromium is missing (scripts/install-system.sh)"
    assert (WEB_VENDOR / "maplibre-gl.js").is_file(), "npm ci --prefix web was not run"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextmanager
def uvicorn_app(database_url: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The whole app (API and page) under uvicorn in its own process on a free port.

    Yields the base URL and the process (the web benchmark reads its CPU time).
    """
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "GIS_ENVIRONMENT": "test",
        "GIS_API_PUBLIC_URL": base,
        "GIS_API_PORT": str(port),
    }
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "gis_service.api.app:create_app"]
    proc = subprocess.Popen(
        [*cmd, "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"], env=env
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "uvicorn exited"
            assert time.monotonic() < deadline, "uvicorn did not start"
            try:
                if httpx.get(f"{base}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base, proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def web_server(database_url: str) -> Iterator[str]:
    """The app served on a free port (:func:`uvicorn_app`); yields its base URL."""
    with uvicorn_app(database_url) as (base, _proc):
        yield base


def api_get(base: str, login: str, path: str, **params: Any) -> Any:
    """GET an API path as a test user; JSON answer."""
    r = httpx.get(
        f"{base}{path}",
        params=params or None,
        headers={"Authorization": f"Bearer {token(login)}"},
        timeout=60,
    )
    r.raise_for_status()
    return r.json()


def api_post(base: str, login: str, path: str, body: Any) -> Any:
    """POST JSON to an API path as a test user; JSON answer."""
    r = httpx.post(
        f"{base}{path}",
        json=body,
        headers={"Authorization": f"Bearer {token(login)}"},
        timeout=60,
    )
    r.raise_for_status()
    return r.json()


def login_script(login: str) -> str:
    """An init script that puts the user's token where the page keeps it (sessionStorage)."""
    return f"sessionStorage.setItem('gis-service.token', {token(login)!r})"


def wait_map(page: Any, timeout_ms: int = 90_000) -> None:
    """Until the map exists, its style is loaded and it has rendered every requested tile."""
    page.wait_for_function(
        "() => window.__gis && window.__gis.map && window.__gis.map.isStyleLoaded()",
        timeout=timeout_ms,
    )
    idle(page, timeout_ms)


def idle(page: Any, timeout_ms: int = 90_000) -> None:
    """Wait for MapLibre's ``idle`` (all tiles loaded and drawn, no transition running)."""
    page.wait_for_function(
        """() => { const m = window.__gis.map;
            return m.loaded() && m.areTilesLoaded() && !m.isMoving() && m.isStyleLoaded(); }""",
        timeout=timeout_ms,
        polling=200,
    )
    page.evaluate("() => window.__gis.waitIdle()")


def jump(page: Any, lon: float, lat: float, zoom: float) -> None:
    """Move the map without animation and wait until it is drawn."""
    page.evaluate(
        "([lon, lat, zoom]) => window.__gis.map.jumpTo({center: [lon, lat], zoom})",
        [lon, lat, zoom],
    )
    idle(page)


def rendered(page: Any, layers: list[str]) -> list[dict[str, Any]]:
    """Properties of the features MapLibre drew for these layers (in the viewport)."""
    result: list[dict[str, Any]] = page.evaluate(
        """(layers) => { const m = window.__gis.map;
            const ids = layers.filter((l) => m.getLayer(l));
            return m.queryRenderedFeatures({layers: ids}).map(
                (f) => ({layer: f.layer.id, properties: f.properties})); }""",
        layers,
    )
    return result


def click_lonlat(page: Any, lon: float, lat: float) -> None:
    """Click the map canvas where this coordinate is drawn."""
    x, y = page.evaluate(
        "([lon, lat]) => { const p = window.__gis.map.project([lon, lat]); return [p.x, p.y]; }",
        [lon, lat],
    )
    box = page.locator("#map canvas").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + x, box["y"] + y)


def screenshot(page: Any, name: str) -> Path:
    """Save a screenshot under tests/artifacts/ (gitignored) and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
