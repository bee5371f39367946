"""The import sandbox's forkserver starts with the command or server that will parse files."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from gis_service import entry
from gis_service.api import app as app_module
from gis_service.api.routes import imports
from gis_service.settings import Settings


def test_the_import_command_starts_the_parse_server_before_the_cli_loads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``gis-service import …`` starts the forkserver first, then runs the CLI with the same
    arguments; other commands do not start it."""
    import etl.forkserver
    import gis_service.cli

    calls: list[Any] = []
    monkeypatch.setattr(etl.forkserver, "warm_up", lambda: calls.append("warm_up"))
    monkeypatch.setattr(gis_service.cli, "main", lambda args: calls.append(list(args)))
    entry.main(["import", "building", "b.gpkg", "--crs", "cgcs2000"])
    assert calls == ["warm_up", ["import", "building", "b.gpkg", "--crs", "cgcs2000"]]
    calls.clear()
    entry.main(["layers", "validate"])
    assert calls == [["layers", "validate"]]


def test_the_api_starts_the_parse_server_at_start_up(
    monkeypatch: pytest.MonkeyPatch, demo_url: str, settings: Settings
) -> None:
    """The first upload does not wait for the forkserver's preload."""
    started: list[str] = []
    monkeypatch.setattr(imports, "warm_up", lambda: started.append("warm_up"))
    app = app_module.create_app(settings, database_url=demo_url)
    assert started == []
    with TestClient(app):
        assert started == ["warm_up"]
