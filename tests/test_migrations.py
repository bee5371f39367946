"""Migrations up, down and up again on a fresh database; models and schema agree."""

from __future__ import annotations

from typing import Any

import psycopg
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from geoalchemy2 import Geometry, alembic_helpers

from gis_service.db import migrate
from gis_service.db.models import Base
from gis_service.demo.loader import psycopg_conninfo


def _tables(url: str) -> set[str]:
    with psycopg.connect(psycopg_conninfo(url)) as c:
        return {
            r[0]
            for r in c.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename NOT IN ('spatial_ref_sys', 'alembic_version')"
            )
        }


def test_upgrade_downgrade_upgrade(make_database: Any) -> None:
    url = make_database("mig")
    migrate.upgrade(url)
    expected = {t.name for t in Base.metadata.sorted_tables}
    assert _tables(url) == expected
    migrate.downgrade(url, "base")
    assert _tables(url) == set()
    with psycopg.connect(psycopg_conninfo(url)) as c:
        left = c.execute("SELECT count(*) FROM pg_proc WHERE proname LIKE 'gis\\_%'").fetchone()
        assert left == (0,)
    migrate.upgrade(url)
    assert _tables(url) == expected
    # The seed migration goes down and up on its own too.
    migrate.downgrade(url, "0001")
    with psycopg.connect(psycopg_conninfo(url)) as c:
        assert c.execute("SELECT count(*) FROM classification_scheme").fetchone() == (0,)
    migrate.upgrade(url)


def test_models_match_migrated_schema(demo_url: str) -> None:
    engine = sa.create_engine(demo_url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn,
            opts={
                "include_object": alembic_helpers.include_object,
                "compare_type": True,
            },
        )
        diff = compare_metadata(ctx, Base.metadata)
    engine.dispose()
    assert diff == []


def test_every_geometry_is_4490_and_gist_indexed(demo_url: str) -> None:
    with psycopg.connect(psycopg_conninfo(demo_url)) as c:
        cols = c.execute(
            "SELECT f_table_name, f_geometry_column, srid FROM geometry_columns"
            " WHERE f_table_schema = 'public'"
        ).fetchall()
        expected = {
            (t.name, c.name)
            for t in Base.metadata.sorted_tables
            for c in t.columns
            if isinstance(c.type, Geometry)
        }
        assert {(t, c) for t, c, _ in cols} == expected
        for table, column, srid in cols:
            assert srid == 4490, (table, column)
            idx = c.execute(
                "SELECT count(*) FROM pg_indexes WHERE tablename = %s AND indexdef ILIKE %s",
                (table, f"%USING gist ({column})%"),
            ).fetchone()
            assert idx == (1,), (table, column)


def test_seeded_schemes_and_colours(demo_url: str) -> None:
    with psycopg.connect(psycopg_conninfo(demo_url)) as c:
        rows = dict(
            c.execute(
                "SELECT s.key, array_agg(k.key || '=' || k.color ORDER BY k.ord)"
                " FROM classification_scheme s JOIN classification_class k ON k.scheme_id = s.id"
                " GROUP BY s.key"
            ).fetchall()
        )
    assert rows["enterprise_risk_4color"] == [
        "red=#e60000",
        "orange=#ff8c00",
        "yellow=#ffd700",
        "blue=#1e6fff",
    ]
    assert [c.split("=")[0] for c in rows["geohazard_danger_grade"]] == ["I", "II", "III", "IV"]
    assert [c.split("=")[0] for c in rows["forest_fire_danger_5"]] == ["1", "2", "3", "4", "5"]
    assert len(rows["shelter_grade"]) == 5
    assert len(rows["warning_4color"]) == 4
