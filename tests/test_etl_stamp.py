"""The importer's vectorised stamping gives the answers of the ``gis_stamps`` SQL rule."""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg
import pytest
import shapely

from etl.stamp import stamps

TABLES = ["building", "enterprise", "safety_hazard", "geohazard_point", "shelter", "facility"]


def _compare(conn: psycopg.Connection[Any], table: str) -> int:
    rows = conn.execute(
        f"SELECT t.id, ST_AsBinary(t.geom), s.admin_code, s.grid_code"
        f" FROM {table} t JOIN gis_stamps('{table}'::regclass) s USING (id) ORDER BY t.id"
    ).fetchall()
    assert rows, f"no {table} rows in the demo"
    geometries = shapely.from_wkb([bytes(r[1]) for r in rows])
    admin, grid = stamps(conn, np.asarray(geometries, dtype=object))
    expected_admin = [r[2] for r in rows]
    expected_grid = [r[3] for r in rows]
    assert admin.tolist() == expected_admin
    assert grid.tolist() == expected_grid
    return len(rows)


@pytest.mark.parametrize("table", TABLES)
def test_stamps_match_sql_rule_on_demo(conn: psycopg.Connection[Any], table: str) -> None:
    assert _compare(conn, table) > 0


def test_stamps_on_shared_edges_take_the_smallest_code(conn: psycopg.Connection[Any]) -> None:
    """Points exactly on grid and village boundaries: both sides intersect, the rule picks."""
    conn.execute(
        "CREATE TEMP TABLE edge_points (id bigint PRIMARY KEY, geom geometry(Point, 4490))"
    )
    conn.execute(
        "INSERT INTO edge_points SELECT row_number() OVER (), p.geom FROM ("
        " SELECT (ST_DumpPoints(geom)).geom FROM grid WHERE valid_to IS NULL"
        " ORDER BY grid_code LIMIT 400) p"
    )
    shared = conn.execute(
        "SELECT count(*) FROM edge_points e"
        " WHERE (SELECT count(*) FROM grid g WHERE ST_Intersects(g.geom, e.geom)) > 1"
    ).fetchone()
    assert shared is not None
    assert shared[0] > 10
    assert _compare(conn, "edge_points") == 400


def test_missing_and_outside_geometries(conn: psycopg.Connection[Any]) -> None:
    far = shapely.Point(80.0, 40.0)  # in China, far from the demo villages
    admin, grid = stamps(conn, np.array([None, far], dtype=object))
    assert admin.tolist() == [None, None]
    assert grid.tolist() == [None, None]
