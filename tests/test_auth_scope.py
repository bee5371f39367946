"""Authentication, roles and the area-scope rule: out of scope is 404, never 403 or data."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from gis_service.demo.loader import psycopg_conninfo
from tests.fixtures import auth


def _ids(demo_url: str) -> dict[str, Any]:
    with psycopg.connect(psycopg_conninfo(demo_url)) as c:
        a = c.execute(
            "SELECT id FROM enterprise WHERE source = 'demo' ORDER BY id LIMIT 1"
        ).fetchone()
        b = c.execute("SELECT id FROM enterprise WHERE uscc = '91440300TEST00001B'").fetchone()
        s = c.execute("SELECT id FROM enterprise WHERE uscc = '91430202TEST00001S'").fetchone()
        g = c.execute(
            "SELECT grid_code FROM grid WHERE source = 'demo' ORDER BY grid_code LIMIT 1"
        ).fetchone()
        v = c.execute(
            "SELECT code FROM admin_division WHERE level = 'village' AND code LIKE '430204%' LIMIT 1"
        ).fetchone()
    assert a
    assert b
    assert s
    assert g
    assert v
    return {"a": a[0], "b": b[0], "sibling": s[0], "grid_a": g[0], "village_a": v[0]}


@pytest.fixture(scope="module")
def ids(demo_url: str) -> dict[str, Any]:
    return _ids(demo_url)


def _row(demo_url: str, eid: int) -> tuple[Any, ...]:
    with psycopg.connect(psycopg_conninfo(demo_url)) as c:
        row = c.execute(
            "SELECT name, risk_level, row_version, ST_AsText(geom) FROM enterprise WHERE id = %s",
            (eid,),
        ).fetchone()
    assert row is not None
    return tuple(row)


# ------------------------------------------------------------------ authentication
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer gis_wrong"},
        {"Authorization": "Basic dXNlcjpwdw=="},
        {"Authorization": "Bearer " + "gis_" + "x" * 500},
        {"Authorization": "Bearer gis_test_disabled_user"},
    ],
    ids=["none", "empty", "wrong", "basic", "huge", "disabled"],
)
def test_bad_credentials_are_401(client: TestClient, headers: dict[str, str]) -> None:
    r = client.get("/me", headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["code"] == "not_authenticated"


def test_me(client: TestClient) -> None:
    me = client.get("/me", headers=auth("a_planner")).json()
    assert me == {
        "login": "a_planner",
        "role": "planner",
        "scope_code": "430204",
        "anonymous": False,
        "sees_personal_data": True,
    }


# --------------------------------------------------------------------- reads
def test_own_county_reads(client: TestClient, ids: dict[str, Any]) -> None:
    r = client.get(f"/enterprises/{ids['a']}", headers=auth("a_viewer"))
    assert r.status_code == 200
    assert r.json()["admin_code"].startswith("430204")
    assert r.headers["etag"] == f'"{r.json()["row_version"]}"'


@pytest.mark.parametrize(
    ("login", "target", "visible"),
    [
        ("a_viewer", "a", True),
        ("a_viewer", "b", False),
        ("a_viewer", "sibling", False),
        ("b_surveyor", "a", False),
        ("b_surveyor", "b", True),
        ("sibling_surveyor", "a", False),
        ("sibling_surveyor", "sibling", True),
        ("city_surveyor", "a", True),
        ("city_surveyor", "sibling", True),
        ("city_surveyor", "b", False),
        ("national_admin", "b", True),
        ("a_admin", "b", False),
    ],
)
def test_enterprise_scope_matrix(
    client: TestClient, ids: dict[str, Any], login: str, target: str, visible: bool
) -> None:
    r = client.get(f"/enterprises/{ids[target]}", headers=auth(login))
    assert r.status_code == (200 if visible else 404)
    if not visible:
        # Indistinguishable from a row that does not exist.
        missing = client.get("/enterprises/999999999", headers=auth(login))
        assert r.json()["code"] == missing.json()["code"] == "not_found"
        assert r.json()["detail"] == missing.json()["detail"]


def test_division_scope(client: TestClient, ids: dict[str, Any]) -> None:
    own = client.get("/divisions/430204", headers=auth("a_viewer")).json()
    assert own["level"] == "county"
    assert [c["code"] for c in own["chain"]] == ["430000", "430200", "430204"]
    assert own["children"]
    assert all(c["code"].startswith("430204") for c in own["children"])
    # Ancestors are visible for context, but without the sibling county among children.
    city = client.get("/divisions/430200", headers=auth("a_viewer")).json()
    assert [c["code"] for c in city["children"]] == ["430204"]
    assert client.get(f"/divisions/{ids['village_a']}", headers=auth("a_viewer")).status_code == 200
    for code in ("430202", "430202001001", "440304", "440304001001"):
        assert client.get(f"/divisions/{code}", headers=auth("a_viewer")).status_code == 404
    assert client.get("/divisions/430204", headers=auth("b_surveyor")).status_code == 404
    assert client.get("/divisions", headers=auth("a_viewer")).json() == [
        {"code": "430204", "level": "county", "name": "石峰区"}
    ]


def test_grid_scope_and_pii_masking(client: TestClient, ids: dict[str, Any]) -> None:
    planner = client.get(f"/grids/{ids['grid_a']}", headers=auth("a_planner")).json()
    viewer = client.get(f"/grids/{ids['grid_a']}", headers=auth("a_viewer")).json()
    assert {s["role"] for s in planner["staff"]} == {"grid_worker", "grid_leader"}
    lon, lat = planner["label_point"]
    assert 113.0 < lon < 113.3
    assert 27.8 < lat < 28.1
    for p, v in zip(planner["staff"], viewer["staff"], strict=True):
        assert "*" not in p["phone"]
        assert len(p["phone"]) == 11
        assert v["phone"] == p["phone"][:3] + "****" + p["phone"][-4:]
        assert v["name"][0] == p["name"][0]
        assert "*" in v["name"]
    assert client.get(f"/grids/{ids['grid_a']}", headers=auth("b_surveyor")).status_code == 404
    assert client.get("/grids/440304001001001", headers=auth("a_planner")).status_code == 404
    assert client.get("/grids/440304001001001", headers=auth("b_surveyor")).status_code == 200


# --------------------------------------------------------------------- writes
def test_out_of_scope_patch_is_404_and_changes_nothing(
    client: TestClient, ids: dict[str, Any], demo_url: str
) -> None:
    before = _row(demo_url, ids["b"])
    r = client.patch(
        f"/enterprises/{ids['b']}",
        json={"risk_level": "blue"},
        headers={**auth("a_surveyor"), "If-Match": f'"{before[2]}"'},
    )
    assert r.status_code == 404
    assert _row(demo_url, ids["b"]) == before


def test_wrong_role_is_403_in_scope(client: TestClient, ids: dict[str, Any], demo_url: str) -> None:
    before = _row(demo_url, ids["a"])
    for login in ("a_viewer", "a_planner", "a_gridworker", "a_commander"):
        r = client.patch(
            f"/enterprises/{ids['a']}",
            json={"risk_level": "blue"},
            headers={**auth(login), "If-Match": f'"{before[2]}"'},
        )
        assert r.status_code == 403, login
    assert _row(demo_url, ids["a"]) == before


def test_patch_needs_if_match_and_refuses_stale_versions(
    client: TestClient, ids: dict[str, Any], demo_url: str
) -> None:
    eid = ids["a"]
    r = client.patch(f"/enterprises/{eid}", json={"employees": 10}, headers=auth("a_surveyor"))
    assert r.status_code == 428
    current = client.get(f"/enterprises/{eid}", headers=auth("a_surveyor"))
    etag = current.headers["etag"]
    ok = client.patch(
        f"/enterprises/{eid}",
        json={"employees": 11},
        headers={**auth("a_surveyor"), "If-Match": etag},
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["employees"] == 11
    assert ok.headers["etag"] != etag
    stale = client.patch(
        f"/enterprises/{eid}",
        json={"employees": 12},
        headers={**auth("a_surveyor"), "If-Match": etag},
    )
    assert stale.status_code == 412
    assert client.get(f"/enterprises/{eid}", headers=auth("a_surveyor")).json()["employees"] == 11


def test_edit_is_audited_with_user_and_request(
    client: TestClient, ids: dict[str, Any], demo_url: str
) -> None:
    eid = ids["a"]
    etag = client.get(f"/enterprises/{eid}", headers=auth("a_surveyor")).headers["etag"]
    r = client.patch(
        f"/enterprises/{eid}",
        json={"name": "审计测试企业"},
        headers={**auth("a_surveyor"), "If-Match": etag, "X-Request-ID": "audit-test-0001"},
    )
    assert r.status_code == 200
    with psycopg.connect(psycopg_conninfo(demo_url)) as c:
        row = c.execute(
            "SELECT actor, scope, request_id, after->>'name' FROM audit_log WHERE table_name = 'enterprise'"
            " AND row_id = %s ORDER BY id DESC LIMIT 1",
            (eid,),
        ).fetchone()
    assert row == ("a_surveyor", "430204", "audit-test-0001", "审计测试企业")


def test_moving_out_of_scope_is_refused_and_rolled_back(
    client: TestClient, ids: dict[str, Any], demo_url: str
) -> None:
    eid = ids["a"]
    before = _row(demo_url, eid)
    r = client.patch(
        f"/enterprises/{eid}",
        json={"lon": 114.05, "lat": 22.54},
        headers={**auth("a_surveyor"), "If-Match": f'"{before[2]}"'},
    )
    assert r.status_code == 422
    assert _row(demo_url, eid) == before


def test_moving_within_scope_restamps(
    client: TestClient, ids: dict[str, Any], demo_url: str
) -> None:
    eid = ids["a"]
    with psycopg.connect(psycopg_conninfo(demo_url)) as c:
        target = c.execute(
            "SELECT ST_X(p), ST_Y(p), grid_code FROM (SELECT ST_PointOnSurface(geom) p, grid_code"
            " FROM grid WHERE source = 'demo' ORDER BY grid_code DESC LIMIT 1) s"
        ).fetchone()
    assert target is not None
    etag = client.get(f"/enterprises/{eid}", headers=auth("a_surveyor")).headers["etag"]
    r = client.patch(
        f"/enterprises/{eid}",
        json={"lon": target[0], "lat": target[1]},
        headers={**auth("a_surveyor"), "If-Match": etag},
    )
    assert r.status_code == 200, r.text
    assert r.json()["grid_code"] == target[2]


def test_users_are_listed_and_created_within_scope(client: TestClient) -> None:
    logins = {u["login"] for u in client.get("/users", headers=auth("a_admin")).json()}
    assert "a_viewer" in logins
    assert "b_surveyor" not in logins
    assert "sibling_surveyor" not in logins
    assert client.get("/users", headers=auth("a_planner")).status_code == 403
    made = client.post(
        "/users",
        json={"login": "new_viewer", "role": "viewer", "scope_code": "430204"},
        headers=auth("a_admin"),
    )
    assert made.status_code == 201
    token = made.json()["token"]
    assert (
        client.get("/me", headers={"Authorization": f"Bearer {token}"}).json()["login"]
        == "new_viewer"
    )
    other = client.post(
        "/users",
        json={"login": "sneaky", "role": "admin", "scope_code": "440304"},
        headers=auth("a_admin"),
    )
    assert other.status_code == 404
    national = client.post(
        "/users", json={"login": "sneaky2", "role": "admin"}, headers=auth("a_admin")
    )
    assert national.status_code == 404
    dup = client.post(
        "/users",
        json={"login": "new_viewer", "role": "viewer", "scope_code": "430204"},
        headers=auth("a_admin"),
    )
    assert dup.status_code == 409


def test_scope_setting_does_not_leak_between_pooled_requests(
    client: TestClient, ids: dict[str, Any]
) -> None:
    # A then B then A on the same small pool: each sees only their own rows.
    for _ in range(3):
        assert client.get(f"/enterprises/{ids['a']}", headers=auth("a_viewer")).status_code == 200
        assert client.get(f"/enterprises/{ids['a']}", headers=auth("b_surveyor")).status_code == 404
        assert client.get(f"/enterprises/{ids['b']}", headers=auth("b_surveyor")).status_code == 200


def test_set_local_context_is_gone_after_the_transaction(demo_url: str) -> None:
    with psycopg.connect(psycopg_conninfo(demo_url)) as c:
        c.execute("SELECT set_config('gis.actor', 'someone', true)")
        c.commit()
        row = c.execute("SELECT coalesce(current_setting('gis.actor', true), '')").fetchone()
    assert row == ("",)
