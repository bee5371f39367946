"""What the HTTP benchmarks share: a database holding a demo, and a throw-away bench user."""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from gis_service.db import migrate
from gis_service.demo import loader
from gis_service.domain.users import hash_token


@contextmanager
def demo_database(scale: str, prefix: str) -> Iterator[str]:
    """``GIS_BENCH_DATABASE_URL`` as given, or a throw-away cluster loaded with ``scale``."""
    given = os.environ.get("GIS_BENCH_DATABASE_URL")
    if given:
        yield given
        return
    from gis_service.db.cluster import temporary_cluster
    from gis_service.demo.generator import generate

    with temporary_cluster(prefix) as info:
        assert info.url is not None
        name = f"bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(loader.psycopg_conninfo(info.url), autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        url = info.url.rpartition("/")[0] + "/" + name
        migrate.upgrade(url)
        print(f"loading the {scale} demo …", flush=True)
        loader.load(url, generate(scale))  # type: ignore[arg-type]
        yield url


@contextmanager
def bench_user(url: str, role: str, scope: str) -> Iterator[str]:
    """A user of ``role`` over ``scope`` (its token), removed afterwards."""
    token = "gis_bench_" + secrets.token_urlsafe(16)
    login = f"bench_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(loader.psycopg_conninfo(url), autocommit=True) as c:
        c.execute(
            "INSERT INTO app_user (login, role, scope_code, token_hash, source)"
            " VALUES (%s, %s, %s, %s, 'bench')",
            (login, role, scope, hash_token(token)),
        )
    try:
        yield token
    finally:
        with psycopg.connect(loader.psycopg_conninfo(url), autocommit=True) as c:
            c.execute("DELETE FROM app_user WHERE login = %s", (login,))
