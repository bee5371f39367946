"""The web map page: its own files, the vendored MapLibre/pmtiles builds and its config.

Only named folders are served (``web/src`` and the ``dist`` folder of each vendored npm
package), never the whole ``node_modules`` tree; nothing is fetched from a CDN.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles

from gis_service import __version__
from gis_service.api.routes import router
from gis_service.settings import Settings

api = router("web")

#: URL prefix → folder under ``web/`` (npm packages' build output only).
VENDORED: dict[str, str] = {
    "/vendor/maplibre-gl": "node_modules/maplibre-gl/dist",
    "/vendor/pmtiles": "node_modules/pmtiles/dist",
}

NO_CACHE = {"Cache-Control": "no-cache"}


@api.get("/web/config.json", summary="What the web map page needs before login")
async def web_config(request: Request) -> JSONResponse:
    """Base-map options and which optional APIs exist; no secret but the 天地图 browser key."""
    settings: Settings = request.app.state.settings
    # The API description lists every mounted route (included routers are not flat lists).
    paths = set(request.app.openapi().get("paths", {}))
    return JSONResponse(
        {
            "version": __version__,
            "tianditu_key": settings.web.tianditu_key,
            # Optional APIs of other issues: the page calls them only when they are mounted.
            "password_login": "/auth/login" in paths,
            "hazard_layers": "/hazard-layers" in paths,
            "warnings": "/warnings" in paths,
            "impact": "/analysis/impact" in paths,
        },
        headers=NO_CACHE,
    )


def mount(app: FastAPI, web_dir: Path) -> None:
    """Serve ``index.html`` at ``/``, ``web/src`` at ``/src`` and the vendored builds."""
    index = web_dir / "index.html"

    async def home(request: Request) -> Response:
        return FileResponse(index, media_type="text/html; charset=utf-8", headers=NO_CACHE)

    app.add_route("/", home, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_route("/index.html", home, methods=["GET", "HEAD"], include_in_schema=False)
    # check_dir=False: an ``npm ci`` after start-up is picked up without a restart.
    app.mount("/src", StaticFiles(directory=web_dir / "src", check_dir=False), name="web-src")
    for prefix, folder in VENDORED.items():
        name = f"web-{prefix.rsplit('/', 1)[1]}"
        app.mount(prefix, StaticFiles(directory=web_dir / folder, check_dir=False), name=name)
