"""Fixtures: one throw-away PostGIS cluster per run, databases made from it, the demo.

Set ``GIS_TEST_DATABASE_URL`` (an admin URL to a PostGIS server) to use your own server
instead of starting a cluster.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from gis_service.api.app import create_app
from gis_service.demo import loader
from gis_service.settings import Settings, load_settings


def _with_db(url: str, dbname: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{dbname}"


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """Admin URL of a PostGIS server for this test run."""
    given = os.environ.get("GIS_TEST_DATABASE_URL")
    if given:
        yield given
        return
    from gis_service.db.cluster import temporary_cluster

    with temporary_cluster() as info:
        assert info.url is not None
        yield info.url


@pytest.fixture(scope="session")
def make_database(server_url: str) -> Iterator[Any]:
    """Factory: a fresh empty database with PostGIS; dropped at the end of the run."""
    made: list[str] = []

    def make(prefix: str = "t") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(loader.psycopg_conninfo(server_url), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = _with_db(server_url, name)
        with psycopg.connect(loader.psycopg_conninfo(url), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        made.append(name)
        return url

    yield make
    with psycopg.connect(loader.psycopg_conninfo(server_url), autocommit=True) as conn:
        for name in made:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def demo_city() -> Any:
    """The district demo, generated once per run."""
    from gis_service.demo.generator import generate

    return generate("district")


@pytest.fixture(scope="session")
def demo_url(make_database: Any, demo_city: Any) -> str:
    """A migrated database holding the district demo and a second, foreign county."""
    from tests.fixtures import private_demo

    return private_demo(make_database, demo_city)


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Test settings (no environment surprises)."""
    return load_settings(environment="test")


@pytest.fixture(scope="session")
def client(demo_url: str, settings: Settings) -> Iterator[TestClient]:
    """An in-process client of an app on the demo database."""
    app = create_app(settings, database_url=demo_url)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def conn(demo_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A direct connection to the demo database; rolled back after the test."""
    with psycopg.connect(loader.psycopg_conninfo(demo_url)) as c:
        yield c
        c.rollback()
