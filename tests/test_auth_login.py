"""Password login, expiring login tokens, the login throttle (E10) and the principal cache.

The cache must never outlive a change: a disabled user, a new password or an expired token
is refused on the very next request, whoever made the change (API, CLI, plain SQL), and a
lost change feed means no caching rather than stale answers.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from gis_service.api.app import create_app
from gis_service.demo.loader import psycopg_conninfo
from gis_service.domain.users import hash_password, hash_token, verify_password
from gis_service.settings import Settings
from tests.fixtures import private_demo

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def demo_url(make_database: Any, demo_city: Any) -> str:
    """A private copy of the demo: these tests write users, tokens and failures."""
    return private_demo(make_database, demo_city, "auth")


def _app_client(url: str, settings: Settings, **auth: Any) -> TestClient:
    tuned = settings.model_copy(update={"auth": settings.auth.model_copy(update=auth)})
    return TestClient(create_app(tuned, database_url=url), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client(demo_url: str, settings: Settings) -> Iterator[TestClient]:
    """An app whose throttle allows 3 failures per login and 8 per address."""
    with _app_client(
        demo_url, settings, login_max_failures=3, login_max_failures_per_address=8
    ) as c:
        yield c


def _sql(url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(psycopg_conninfo(url), autocommit=True) as c:
        cur = c.execute(query, params)
        return cur.fetchall() if cur.description else []


def _cli(url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "gis_service.cli", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def user(demo_url: str) -> Iterator[str]:
    """A planner of 430204 with a password set through the CLI; removed afterwards."""
    login = f"pw_{time.monotonic_ns() % 10**9}"
    _sql(
        demo_url,
        "INSERT INTO app_user (login, role, scope_code, token_hash, display_name, source)"
        " VALUES (%s, 'planner', '430204', %s, '测试规划员', 'test')",
        login,
        hash_token("gis_cli_" + login),
    )
    r = _cli(demo_url, "users", "passwd", login, "--password-stdin", stdin=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    yield login
    _sql(demo_url, "DELETE FROM app_user WHERE login = %s", login)
    _sql(demo_url, "DELETE FROM auth_failure WHERE login = %s OR address = 'testclient'", login)


def _login(client: TestClient, login: str, password: str) -> Any:
    return client.post("/auth/login", json={"login": login, "password": password})


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_password_hash_is_salted_scrypt() -> None:
    a, b = hash_password(PASSWORD), hash_password(PASSWORD)
    assert a != b
    assert a.startswith("scrypt$16384$8$1$")
    assert verify_password(PASSWORD, a)
    assert verify_password(PASSWORD, b)
    assert not verify_password(PASSWORD + "x", a)
    assert not verify_password(PASSWORD, None)
    assert not verify_password(PASSWORD, "scrypt$garbage")


def test_login_gives_an_expiring_token_that_works(client: TestClient, user: str) -> None:
    r = _login(client, user, PASSWORD)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"token", "login", "role", "scope_code", "display_name", "expires_at"}
    assert (body["login"], body["role"], body["scope_code"]) == (user, "planner", "430204")
    assert body["display_name"] == "测试规划员"
    left = dt.datetime.fromisoformat(body["expires_at"]) - dt.datetime.now(dt.UTC)
    assert dt.timedelta(hours=11, minutes=59) < left <= dt.timedelta(hours=12)
    me = client.get("/me", headers=_bearer(body["token"]))
    assert me.status_code == 200
    assert me.json()["login"] == user
    # Only the hash is stored.
    rows = _sql(client.app.state.database_url, "SELECT token_hash FROM auth_token")  # type: ignore[attr-defined]
    assert (hash_token(body["token"]),) in rows
    assert all(body["token"] not in str(r) for r in rows)


def test_unknown_login_and_wrong_password_look_the_same(client: TestClient, user: str) -> None:
    wrong = _login(client, user, "not the password")
    unknown = _login(client, "nobody_here", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.headers["content-type"] == "application/problem+json"
    strip = lambda r: {k: v for k, v in r.json().items() if k != "request_id"}  # noqa: E731
    assert strip(wrong) == strip(unknown)
    assert strip(wrong)["code"] == "not_authenticated"


def test_bad_login_bodies_are_422(client: TestClient) -> None:
    for body in (
        {"login": "x"},
        {"login": "x", "password": "y", "role": "admin"},
        {"login": 5, "password": "y"},
        {"login": "", "password": "y"},
        {"login": "x" * 65, "password": "y"},
    ):
        r = client.post("/auth/login", json=body)
        assert r.status_code == 422, body
        assert r.json()["errors"], body
    r = client.post("/auth/login", content=b"{", headers={"content-type": "application/json"})
    assert r.status_code == 422


def test_failed_logins_are_throttled_per_login(client: TestClient, user: str) -> None:
    for _ in range(3):
        assert _login(client, user, "guess").status_code == 401
    r = _login(client, user, PASSWORD)  # even the right password waits now
    assert r.status_code == 429
    assert r.json()["code"] == "too_many_requests"
    assert 1 <= int(r.headers["retry-after"]) <= 900
    # The throttle is per login: another user on the same address still signs in.
    _sql(
        client.app.state.database_url,  # type: ignore[attr-defined]
        "DELETE FROM auth_failure WHERE login = %s",
        user,
    )
    assert _login(client, user, PASSWORD).status_code == 200


def test_failed_logins_are_throttled_per_address(client: TestClient, user: str) -> None:
    # Credential stuffing: many logins, one address (the per-login limit is never reached).
    codes = [_login(client, f"stuff_{i}", "guess").status_code for i in range(10)]
    assert codes[:8] == [401] * 8
    assert codes[8:] == [429, 429]
    assert _login(client, user, PASSWORD).status_code == 429


def test_success_clears_the_login_failures(client: TestClient, user: str) -> None:
    for _ in range(2):
        assert _login(client, user, "guess").status_code == 401
    assert _login(client, user, PASSWORD).status_code == 200
    for _ in range(2):
        assert _login(client, user, "guess").status_code == 401
    assert _login(client, user, PASSWORD).status_code == 200


def test_expired_login_token_is_refused(demo_url: str, settings: Settings, user: str) -> None:
    with _app_client(demo_url, settings, login_token_hours=1 / 3600) as c:
        token = _login(c, user, PASSWORD).json()["token"]
        assert c.get("/me", headers=_bearer(token)).status_code == 200  # now cached
        time.sleep(1.2)
        r = c.get("/me", headers=_bearer(token))
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer")


def test_new_password_ends_login_sessions(client: TestClient, demo_url: str, user: str) -> None:
    token = _login(client, user, PASSWORD).json()["token"]
    assert client.get("/me", headers=_bearer(token)).status_code == 200
    r = _cli(demo_url, "users", "passwd", user, "--password-stdin", stdin="another password\n")
    assert r.returncode == 0, r.stderr
    assert client.get("/me", headers=_bearer(token)).status_code == 401
    assert _login(client, user, PASSWORD).status_code == 401
    assert _login(client, user, "another password").status_code == 200
    # The CLI token is a separate credential and keeps working.
    assert client.get("/me", headers=_bearer("gis_cli_" + user)).status_code == 200


def test_passwd_refuses_short_passwords_and_unknown_users(demo_url: str, user: str) -> None:
    r = _cli(demo_url, "users", "passwd", user, "--password-stdin", stdin="short\n")
    assert r.returncode == 1
    assert "8" in r.stderr
    r = _cli(demo_url, "users", "passwd", "nobody_x", "--password-stdin", stdin=PASSWORD + "\n")
    assert r.returncode == 1
    assert "nobody_x" in r.stderr


def test_disabled_by_sql_is_refused_next_request(client: TestClient, user: str) -> None:
    """The cache holds the user; a plain SQL update elsewhere still takes effect at once."""
    token = _login(client, user, PASSWORD).json()["token"]
    for _ in range(3):
        assert client.get("/me", headers=_bearer(token)).status_code == 200
    cache = client.app.state.principals  # type: ignore[attr-defined]
    assert hash_token(token) in cache._entries  # served from the cache
    _sql(client.app.state.database_url, "UPDATE app_user SET active = false WHERE login = %s", user)  # type: ignore[attr-defined]
    assert client.get("/me", headers=_bearer(token)).status_code == 401
    assert client.get("/me", headers=_bearer("gis_cli_" + user)).status_code == 401


def test_lost_change_feed_means_no_stale_answers(client: TestClient, user: str) -> None:
    url = client.app.state.database_url  # type: ignore[attr-defined]
    token = _login(client, user, PASSWORD).json()["token"]
    assert client.get("/me", headers=_bearer(token)).status_code == 200
    killed = _sql(
        url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = 'gis-change-feed' AND datname = current_database()",
    )
    assert killed, "the feed connection exists"
    _sql(url, "UPDATE app_user SET active = false WHERE login = %s", user)
    assert client.get("/me", headers=_bearer(token)).status_code == 401
    _sql(url, "UPDATE app_user SET active = true WHERE login = %s", user)
    assert client.get("/me", headers=_bearer(token)).status_code == 200
    deadline = time.monotonic() + 10
    while not client.app.state.principals.listener.healthy:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "the feed reconnects"
        client.get("/me", headers=_bearer(token))
        time.sleep(0.2)


def test_terminated_pool_connections_are_replaced_silently(client: TestClient) -> None:
    """BAD_INPUTS F1 without pool pre-ping: the first statement retries on a new connection."""
    url = client.app.state.database_url  # type: ignore[attr-defined]
    headers = _bearer("gis_test_a_planner")
    for _ in range(3):
        assert client.get(
            "/query/nearest?lon=113.18&lat=27.9&layer=shelters", headers=headers
        ).status_code in (200, 404)
    _sql(
        url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid() AND application_name <> 'gis-change-feed'",
    )
    codes = [
        client.get("/query/nearest?lon=113.18&lat=27.9&layer=shelters", headers=headers).status_code
        for _ in range(4)
    ]
    assert all(c in (200, 404) for c in codes), codes
