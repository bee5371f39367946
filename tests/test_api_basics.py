"""Health, version, docs, the error body, and strict request validation."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.fixtures import auth

LEAKS = re.compile(r"SELECT|INSERT|psycopg|sqlalchemy|Traceback|/work/|/home/|/root/|\.py\b", re.I)


def assert_problem(resp: object, status: int, code: str | None = None) -> dict[str, object]:
    r = resp  # httpx.Response
    assert r.status_code == status, r.text  # type: ignore[attr-defined]
    assert r.headers["content-type"].startswith("application/problem+json")  # type: ignore[attr-defined]
    body = r.json()  # type: ignore[attr-defined]
    assert set(body) >= {"type", "title", "status", "code", "detail", "detail_zh", "request_id"}
    assert body["status"] == status
    if code is not None:
        assert body["code"] == code
    assert not LEAKS.search(r.text), r.text  # type: ignore[attr-defined]
    return body


def test_live_ready_version(client: TestClient) -> None:
    assert client.get("/health/live").json() == {"status": "ok"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    from alembic.script import ScriptDirectory

    from gis_service.db.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert ready.json()["schema_revision"] == head
    assert client.get("/version").json()["name"] == "gis-service"


def test_openapi_and_docs(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "/enterprises/{enterprise_id}" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_request_id_is_echoed(client: TestClient) -> None:
    r = client.get("/me", headers={"X-Request-ID": "abcdef123456"})
    assert r.headers["x-request-id"] == "abcdef123456"
    assert r.json()["request_id"] == "abcdef123456"
    # A hostile id is replaced, never reflected.
    r = client.get("/me", headers={"X-Request-ID": "<script>"})
    assert r.headers["x-request-id"] != "<script>"


def test_unknown_route_is_problem_json(client: TestClient) -> None:
    assert_problem(client.get("/no/such/thing"), 404, "not_found")


@pytest.mark.parametrize(
    "query",
    ["?foo=1", "?limit=1", "?a=1&b=2", "?x=%00"],
)
def test_unknown_query_parameters_are_400(client: TestClient, query: str) -> None:
    body = assert_problem(client.get("/health/live" + query), 400, "bad_parameter")
    assert body["errors"]


def test_unknown_parameter_on_authenticated_route_is_400(client: TestClient) -> None:
    assert_problem(client.get("/me?role=admin", headers=auth("a_viewer")), 400, "bad_parameter")


def test_duplicate_query_parameter_is_400(client: TestClient) -> None:
    # /users has no parameters; use a route with none to prove duplicates of unknowns too.
    assert_problem(client.get("/version?v=1&v=2"), 400)


@pytest.mark.parametrize(
    "body",
    [
        '{"lon": NaN, "lat": 27.9}',
        '{"lon": Infinity, "lat": 27.9}',
        '{"lon": -Infinity, "lat": 27.9}',
        '{"lon": 1e400, "lat": 27.9}',
        '{"lon": false, "lat": 27.9}',
        '{"lon": "113.1", "lat": 27.9}',
        '{"risk_level": "purple"}',
        '{"admin_code": "440304001001"}',
        '{"row_version": 99}',
        '{"id": 5}',
        '{"employees": true}',
        '{"employees": -1}',
        '{"lon": 113.1}',
        '{"lon": 10.0, "lat": 10.0}',
    ],
    ids=[
        "nan",
        "infinity",
        "minus_infinity",
        "overflow",
        "false_as_number",
        "string_as_number",
        "unknown_colour",
        "read_only_admin_code",
        "read_only_version",
        "read_only_id",
        "bool_as_int",
        "negative_count",
        "lon_without_lat",
        "outside_china",
    ],
)
def test_strict_body_validation(client: TestClient, body: str) -> None:
    eid = client.get("/enterprises/1", headers=auth("a_surveyor"))
    etag = eid.headers.get("etag", '"1"')
    r = client.patch(
        "/enterprises/1",
        content=body,
        headers={**auth("a_surveyor"), "Content-Type": "application/json", "If-Match": etag},
    )
    problem = assert_problem(r, 422)
    assert problem["errors"], "the body must name the field at fault"


def test_malformed_json_is_422(client: TestClient) -> None:
    r = client.patch(
        "/enterprises/1",
        content="{not json",
        headers={**auth("a_surveyor"), "Content-Type": "application/json", "If-Match": '"1"'},
    )
    assert_problem(r, 422)


def test_body_over_the_cap_is_413(client: TestClient) -> None:
    r = client.patch(
        "/enterprises/1",
        content=b'{"name": "' + b"x" * 2_000_000 + b'"}',
        headers={**auth("a_surveyor"), "Content-Type": "application/json", "If-Match": '"1"'},
    )
    assert r.status_code == 413


@pytest.mark.parametrize(
    "path",
    [
        "/enterprises/0",
        "/enterprises/-1",
        "/enterprises/abc",
        "/enterprises/99999999999999999999999",
        "/divisions/12",
        "/divisions/43020x",
        "/grids/12345",
    ],
)
def test_malformed_path_values_are_422(client: TestClient, path: str) -> None:
    assert_problem(client.get(path, headers=auth("a_viewer")), 422, "validation_error")


def test_untrusted_host_is_refused(client: TestClient) -> None:
    r = client.get("/health/live", headers={"Host": "evil.example.com"})
    assert r.status_code == 400


def test_database_down_is_503_with_retry_after(settings: object) -> None:
    import time

    from gis_service.api.app import create_app
    from gis_service.db.cluster import free_port

    dead = f"postgresql+psycopg://gis:x@127.0.0.1:{free_port()}/gis"
    app = create_app(settings, database_url=dead)  # type: ignore[arg-type]
    with TestClient(app, raise_server_exceptions=False) as c:
        assert c.get("/health/live").status_code == 200
        started = time.monotonic()
        ready = c.get("/health/ready")
        assert ready.status_code == 503
        assert ready.headers["retry-after"]
        r = c.get("/me", headers=auth("a_viewer"))
        assert time.monotonic() - started < 5
        body = assert_problem(r, 503, "database_unavailable")
        assert r.headers["retry-after"] == "2"
        assert "127.0.0.1" not in str(body)


def test_anonymous_read_only_mode(demo_url: str) -> None:
    from gis_service.api.app import create_app
    from gis_service.settings import load_settings

    off = create_app(load_settings(environment="test"), database_url=demo_url)
    with TestClient(off, raise_server_exceptions=False) as c:
        assert c.get("/me").status_code == 401
    on = create_app(
        load_settings(
            environment="test", auth={"anonymous_read": True, "anonymous_scope": "430204"}
        ),
        database_url=demo_url,
    )
    with TestClient(on, raise_server_exceptions=False) as c:
        me = c.get("/me").json()
        assert me["anonymous"] is True
        assert me["role"] == "viewer"
        assert me["scope_code"] == "430204"
        assert c.get("/divisions/440304").status_code == 404
        assert c.get("/users").status_code == 403
        r = c.patch("/enterprises/1", json={"employees": 1}, headers={"If-Match": '"1"'})
        assert r.status_code in (403, 404)
