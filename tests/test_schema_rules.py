"""Database rules: enumerations, geometry validity, stamping, versions, audit."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

PT = "ST_SetSRID(ST_MakePoint(%s, %s), 4490)"


def _inside_grid(conn: psycopg.Connection[Any]) -> tuple[float, float, str, str]:
    row = conn.execute(
        "SELECT ST_X(p), ST_Y(p), grid_code, community_code FROM ("
        " SELECT ST_PointOnSurface(geom) p, grid_code, community_code FROM grid"
        " WHERE source = 'demo' ORDER BY grid_code LIMIT 1 OFFSET 7) s"
    ).fetchone()
    assert row is not None
    return row


def _insert_enterprise(conn: psycopg.Connection[Any], x: float, y: float, **kw: Any) -> int:
    values = {"name": "测试企业", "sector": "hazchem", "risk_level": "yellow", **kw}
    row = conn.execute(
        f"INSERT INTO enterprise (name, sector, risk_level, geom) VALUES (%s, %s, %s, {PT})"
        " RETURNING id",
        (values["name"], values["sector"], values["risk_level"], x, y),
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_insert_is_stamped_with_village_and_grid(conn: psycopg.Connection[Any]) -> None:
    x, y, grid_code, community = _inside_grid(conn)
    eid = _insert_enterprise(conn, x, y)
    row = conn.execute(
        "SELECT admin_code, grid_code FROM enterprise WHERE id = %s", (eid,)
    ).fetchone()
    assert row == (community, grid_code)


def test_moving_a_row_restamps_it(conn: psycopg.Connection[Any]) -> None:
    x, y, grid_code, _ = _inside_grid(conn)
    eid = _insert_enterprise(conn, x, y)
    other = conn.execute(
        "SELECT ST_X(p), ST_Y(p), grid_code, community_code FROM (SELECT ST_PointOnSurface(geom) p,"
        " grid_code, community_code FROM grid WHERE source = 'demo' AND grid_code <> %s"
        " ORDER BY grid_code DESC LIMIT 1) s",
        (grid_code,),
    ).fetchone()
    assert other is not None
    conn.execute(f"UPDATE enterprise SET geom = {PT} WHERE id = %s", (other[0], other[1], eid))
    row = conn.execute(
        "SELECT admin_code, grid_code, row_version FROM enterprise WHERE id = %s", (eid,)
    ).fetchone()
    assert row == (other[3], other[2], 2)


def test_outside_every_village_is_unstamped(conn: psycopg.Connection[Any]) -> None:
    eid = _insert_enterprise(conn, 100.0, 30.0)
    row = conn.execute(
        "SELECT admin_code, grid_code FROM enterprise WHERE id = %s", (eid,)
    ).fetchone()
    assert row == (None, None)


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        (
            "INSERT INTO enterprise (name, sector, risk_level, geom) VALUES ('x', 'hazchem', 'purple', "
            + PT
            + ")",
            (113.1, 27.9),
        ),
        (
            "INSERT INTO enterprise (name, sector, risk_level, geom) VALUES ('x', 'bakery', 'red', "
            + PT
            + ")",
            (113.1, 27.9),
        ),
        (
            "INSERT INTO enterprise (name, sector, risk_level, geom) VALUES ('x', 'hazchem', 'red', "
            + PT
            + ")",
            (float("nan"), 27.9),
        ),
        (
            "INSERT INTO enterprise (name, sector, risk_level, geom) VALUES ('x', 'hazchem', 'red', "
            + PT
            + ")",
            (213.1, 27.9),
        ),
        (
            "INSERT INTO enterprise (name, sector, risk_level, geom) VALUES ('x', 'hazchem', 'red', ST_GeomFromText('POINT EMPTY', 4490))",
            (),
        ),
        (
            "INSERT INTO enterprise (name, sector, risk_level, geom) VALUES ('x', 'hazchem', 'red', ST_SetSRID(ST_MakePoint(113.1, 27.9), 4326))",
            (),
        ),
        (
            "INSERT INTO geohazard_zone (code, name, risk_level, geom) VALUES ('z', 'bowtie', 'high', ST_Multi(ST_GeomFromText('POLYGON((113 27, 113.1 27.1, 113.1 27, 113 27.1, 113 27))', 4490)))",
            (),
        ),
        (
            "INSERT INTO enterprise (name, sector, risk_level, special_flags, geom) VALUES ('x', 'hazchem', 'red', ARRAY['bogus'], "
            + PT
            + ")",
            (113.1, 27.9),
        ),
        (
            "INSERT INTO safety_hazard (hazard_no, title, level, status) VALUES ('h1', 't', 'general', 'closed')",
            (),
        ),
        (
            "INSERT INTO grid (grid_code, name, community_code, geom) SELECT '999999999999001', 'g', code, boundary FROM admin_division WHERE level = 'village' LIMIT 1",
            (),
        ),
        (
            "INSERT INTO app_user (login, role, token_hash) VALUES ('nobody', 'planner', repeat('a', 64))",
            (),
        ),
        ("INSERT INTO admin_division (code, level, name) VALUES ('4302041', 'county', 'bad')", ()),
        (
            "INSERT INTO classification_class (scheme_id, key, zh_name, en_name, ord, color) SELECT id, 'x', 'x', 'x', 99, 'red' FROM classification_scheme LIMIT 1",
            (),
        ),
    ],
    ids=[
        "unknown_colour",
        "unknown_sector",
        "nan_coordinate",
        "lon_out_of_range",
        "empty_point",
        "wrong_srid",
        "bowtie_polygon",
        "unknown_special_flag",
        "closed_without_closed_at",
        "grid_code_not_in_community",
        "non_admin_without_scope",
        "code_length_vs_level",
        "colour_not_hex",
    ],
)
def test_bad_rows_are_refused(
    conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...]
) -> None:
    with pytest.raises(psycopg.errors.DatabaseError):
        conn.execute(sql, params)


def test_admin_ancestors_follow_the_parent(conn: psycopg.Connection[Any]) -> None:
    row = conn.execute(
        "SELECT ancestors FROM admin_division WHERE level = 'village' AND code LIKE '430204%' LIMIT 1"
    ).fetchone()
    assert row is not None
    chain = row[0]
    assert chain[:3] == ["430000", "430200", "430204"]
    assert len(chain) == 5
    assert len(chain[3]) == 9
    assert len(chain[4]) == 12


def test_admin_cycle_is_refused(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.errors.DatabaseError):
        conn.execute("UPDATE admin_division SET parent_code = '430204001' WHERE code = '430204'")


def test_writes_are_audited_with_the_actor(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        "SELECT set_config('gis.actor', 'tester', true), set_config('gis.request_id', 'req-1', true)"
    )
    x, y, _, _ = _inside_grid(conn)
    eid = _insert_enterprise(conn, x, y)
    conn.execute("UPDATE enterprise SET risk_level = 'red' WHERE id = %s", (eid,))
    rows = conn.execute(
        "SELECT action, actor, request_id, before->>'risk_level', after->>'risk_level'"
        " FROM audit_log WHERE table_name = 'enterprise' AND row_id = %s ORDER BY id",
        (eid,),
    ).fetchall()
    assert rows == [
        ("INSERT", "tester", "req-1", None, "yellow"),
        ("UPDATE", "tester", "req-1", "yellow", "red"),
    ]


def test_audit_log_is_append_only(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("DELETE FROM audit_log WHERE id = (SELECT min(id) FROM audit_log)")


def test_audit_log_cannot_be_updated(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("UPDATE audit_log SET actor = 'x' WHERE id = (SELECT min(id) FROM audit_log)")


def test_restamp_after_grid_change(conn: psycopg.Connection[Any]) -> None:
    x, y, grid_code, _ = _inside_grid(conn)
    eid = _insert_enterprise(conn, x, y)
    conn.execute("UPDATE grid SET valid_to = current_date WHERE grid_code = %s", (grid_code,))
    n = conn.execute("SELECT gis_restamp('enterprise'::regclass)").fetchone()
    assert n is not None
    assert n[0] >= 1
    row = conn.execute("SELECT grid_code FROM enterprise WHERE id = %s", (eid,)).fetchone()
    assert row == (None,)
