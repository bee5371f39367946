"""The district demo as loaded: the figures the bureau quotes, and every row stamped."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest


def one(conn: psycopg.Connection[Any], sql: str) -> Any:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return row[0] if len(row) == 1 else row


def test_grids_households_and_people(conn: psycopg.Connection[Any]) -> None:
    assert one(conn, "SELECT count(*) FROM grid WHERE source = 'demo'") == 232
    households = one(conn, "SELECT sum(households) FROM grid WHERE source = 'demo'")
    people = one(conn, "SELECT sum(population) FROM grid WHERE source = 'demo'")
    assert households == pytest.approx(92_800, rel=0.01)
    assert people == pytest.approx(278_400, rel=0.01)
    balanced = one(
        conn,
        "SELECT avg((abs(households - 400) <= 40)::int) FROM grid WHERE source = 'demo'",
    )
    assert balanced >= 0.95


def test_grid_counts_are_sums_of_their_buildings(conn: psycopg.Connection[Any]) -> None:
    mismatches = one(
        conn,
        "SELECT count(*) FROM grid g LEFT JOIN (SELECT grid_code, sum(households) h FROM building"
        " GROUP BY grid_code) b USING (grid_code) WHERE g.source = 'demo'"
        " AND g.households <> coalesce(b.h, 0)",
    )
    assert mismatches == 0
    assert one(conn, "SELECT sum(households) FROM building WHERE source = 'demo'") == one(
        conn, "SELECT sum(households) FROM grid WHERE source = 'demo'"
    )


def test_every_located_row_is_stamped(conn: psycopg.Connection[Any]) -> None:
    for table in (
        "building",
        "enterprise",
        "safety_hazard",
        "geohazard_point",
        "shelter",
        "facility",
    ):
        missing = one(
            conn,
            f"SELECT count(*) FROM {table} WHERE source = 'demo' AND (admin_code IS NULL"
            " OR grid_code IS NULL)",
        )
        assert missing == 0, table
    # The stamp is the spatial truth: the village polygon holds the row's point.
    wrong = one(
        conn,
        "SELECT count(*) FROM enterprise e JOIN admin_division v ON v.code = e.admin_code"
        " WHERE e.source = 'demo' AND NOT ST_Intersects(v.boundary, e.geom)",
    )
    assert wrong == 0


def test_enterprise_colours(conn: psycopg.Connection[Any]) -> None:
    colours = dict(
        conn.execute(
            "SELECT risk_level, count(*) FROM enterprise WHERE source = 'demo' GROUP BY 1"
        ).fetchall()
    )
    assert colours == {"blue": 112, "yellow": 229, "orange": 37, "red": 1}


def test_hazard_ledger(conn: psycopg.Connection[Any]) -> None:
    assert one(conn, "SELECT count(*) FROM safety_hazard WHERE source = 'demo'") == 1056
    assert one(conn, "SELECT count(*) FROM safety_hazard WHERE status = 'closed'") == 986
    # Every hazard has its history, ending at its current status.
    bad = one(
        conn,
        "SELECT count(*) FROM safety_hazard h WHERE h.source = 'demo' AND h.status IS DISTINCT FROM"
        " (SELECT to_status FROM hazard_event e WHERE e.hazard_id = h.id ORDER BY at DESC, id DESC"
        " LIMIT 1)",
    )
    assert bad == 0


def test_one_worker_per_grid_and_one_leader_per_community(conn: psycopg.Connection[Any]) -> None:
    assert (
        one(
            conn,
            "SELECT count(*) FROM grid g WHERE g.source = 'demo' AND (SELECT count(*)"
            " FROM grid_assignment a WHERE a.grid_id = g.id AND a.role = 'grid_worker') <> 1",
        )
        == 0
    )
    assert (
        one(
            conn,
            "SELECT count(*) FROM (SELECT g.community_code, count(DISTINCT a.person_id) n FROM grid g"
            " JOIN grid_assignment a ON a.grid_id = g.id AND a.role = 'grid_leader'"
            " WHERE g.source = 'demo' GROUP BY 1) s WHERE n <> 1",
        )
        == 0
    )
    communities = one(conn, "SELECT count(DISTINCT community_code) FROM grid WHERE source = 'demo'")
    leaders = one(
        conn,
        "SELECT count(DISTINCT g.community_code) FROM grid g JOIN grid_assignment a"
        " ON a.grid_id = g.id AND a.role = 'grid_leader' WHERE g.source = 'demo'",
    )
    assert communities == leaders


def test_geohazard_points_have_three_level_responsibility(conn: psycopg.Connection[Any]) -> None:
    points = one(conn, "SELECT count(*) FROM geohazard_point WHERE source = 'demo'")
    assert points >= 20
    complete = one(
        conn,
        "SELECT count(*) FROM geohazard_point p WHERE p.source = 'demo' AND (SELECT count(DISTINCT"
        " r.level) FROM responsibility r WHERE r.target_type = 'geohazard_point' AND r.target_id = p.id"
        " AND r.duty = 'prevention_lead' AND r.level IN ('county', 'township', 'village')) = 3",
    )
    assert complete == points


def test_danger_grade_matches_threatened_people(conn: psycopg.Connection[Any]) -> None:
    wrong = one(
        conn,
        "SELECT count(*) FROM geohazard_point WHERE source = 'demo' AND danger_grade <> CASE"
        " WHEN threatened_people >= 1000 THEN 'I' WHEN threatened_people >= 500 THEN 'II'"
        " WHEN threatened_people >= 100 THEN 'III' ELSE 'IV' END",
    )
    assert wrong == 0


def test_grids_tile_their_community(conn: psycopg.Connection[Any]) -> None:
    gaps = conn.execute(
        "SELECT v.code, ST_Area(v.boundary::geography) a,"
        " ST_Area(ST_Union(g.geom)::geography) u FROM admin_division v"
        " JOIN grid g ON g.community_code = v.code WHERE g.source = 'demo'"
        " GROUP BY v.code, v.boundary"
    ).fetchall()
    assert gaps
    for code, area, union in gaps:
        assert union == pytest.approx(area, rel=1e-3), code


def test_bulk_load_is_audited_per_table(conn: psycopg.Connection[Any]) -> None:
    n = one(
        conn,
        "SELECT row_count FROM audit_log WHERE action = 'BULK' AND table_name = 'building'"
        " ORDER BY id DESC LIMIT 1",
    )
    assert n == one(conn, "SELECT count(*) FROM building WHERE source = 'demo'")
