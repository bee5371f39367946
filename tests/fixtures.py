"""Test data beyond the demo: a foreign county (深圳市福田区), a sibling county village,
and users with known tokens for each role and area relation."""

from __future__ import annotations

from typing import Any

import psycopg

from gis_service.demo.loader import psycopg_conninfo
from gis_service.domain.users import hash_token

SQUARE = "ST_Multi(ST_MakeEnvelope(%s, %s, %s, %s, 4490))"

#: The building table's plain value CHECKs (``ValueRule``): a first load may prove them.
BUILDING_VALUE_CHECKS = frozenset(
    {
        "ck_building_admin_code_village",
        "ck_building_grid_code_15",
        "ck_building_source_crs",
        "ck_building_counts_nonneg",
        "ck_building_floors",
        "ck_building_structure",
        "ck_building_use",
        "ck_building_year_band",
        "ck_building_urban_rural",
    }
)

#: login → (role, scope_code); each token is ``gis_test_<login>``.
USERS: dict[str, tuple[str, str | None]] = {
    "a_admin": ("admin", "430204"),
    "a_planner": ("planner", "430204"),
    "a_surveyor": ("surveyor", "430204"),
    "a_commander": ("commander", "430204"),
    "a_gridworker": ("grid_worker", "430204"),
    "a_viewer": ("viewer", "430204"),
    "b_surveyor": ("surveyor", "440304"),
    "b_admin": ("admin", "440304"),
    "sibling_surveyor": ("surveyor", "430202"),
    "city_surveyor": ("surveyor", "430200"),
    "national_admin": ("admin", None),
    "disabled_user": ("surveyor", "430204"),
}


def token(login: str) -> str:
    """The known bearer token of a test user."""
    return f"gis_test_{login}"


def auth(login: str) -> dict[str, str]:
    """Authorization header for a test user."""
    return {"Authorization": f"Bearer {token(login)}"}


def _village(
    conn: psycopg.Connection[Any],
    chain: list[tuple[str, str, str, str | None]],
    box: tuple[float, float, float, float],
) -> None:
    for code, level, name, parent in chain:
        geom = SQUARE if level in ("county", "township", "village") else "NULL"
        params: tuple[Any, ...] = (code, level, name, parent)
        if geom != "NULL":
            params = (*params, *box)
        conn.execute(
            f"INSERT INTO admin_division (code, level, name, parent_code, boundary, source)"
            f" VALUES (%s, %s, %s, %s, {geom}, 'test') ON CONFLICT (code) DO NOTHING",
            params,
        )


def add_foreign_county(url: str) -> None:
    """Rows in 440304 (another province) and in 430202 (a sibling county of 石峰区)."""
    with psycopg.connect(psycopg_conninfo(url)) as conn:
        b = (114.03, 22.52, 114.07, 22.56)
        _village(
            conn,
            [
                ("440000", "province", "广东省", None),
                ("440300", "prefecture", "深圳市", "440000"),
                ("440304", "county", "福田区", "440300"),
                ("440304001", "township", "南园街道", "440304"),
                ("440304001001", "village", "南园社区", "440304001"),
            ],
            b,
        )
        conn.execute(
            "INSERT INTO grid (grid_code, name, community_code, geom, households, source)"
            f" VALUES ('440304001001001', '南园社区第1网格', '440304001001', {SQUARE}, 400, 'test')",
            b,
        )
        conn.execute(
            "INSERT INTO enterprise (uscc, name, sector, risk_level, geom, source) VALUES"
            " ('91440300TEST00001B', '福田测试化工有限公司', 'hazchem', 'red',"
            " ST_SetSRID(ST_MakePoint(114.05, 22.54), 4490), 'test')"
        )
        # A village of the sibling county 荷塘区 (430202), inside its real outline.
        row = conn.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(boundary) p"
            " FROM admin_division WHERE code = '430202') s"
        ).fetchone()
        assert row is not None, "the demo must include the neighbour county 430202"
        x, y = row
        s = (x - 0.002, y - 0.002, x + 0.002, y + 0.002)
        _village(
            conn,
            [
                ("430202001", "township", "荷塘测试街道", "430202"),
                ("430202001001", "village", "荷塘测试社区", "430202001"),
            ],
            s,
        )
        conn.execute(
            "INSERT INTO enterprise (uscc, name, sector, risk_level, geom, source) VALUES"
            " ('91430202TEST00001S', '荷塘测试机械有限公司', 'industry_trade', 'orange',"
            " ST_SetSRID(ST_MakePoint(%s, %s), 4490), 'test')",
            (x, y),
        )
        for login, (role, scope) in USERS.items():
            conn.execute(
                "INSERT INTO app_user (login, role, scope_code, token_hash, active, source)"
                " VALUES (%s, %s, %s, %s, %s, 'test')",
                (login, role, scope, hash_token(token(login)), login != "disabled_user"),
            )
        conn.commit()


def demo_without_buildings(make_database: Any, demo_city: Any, prefix: str) -> str:
    """A migrated database with the demo's divisions, grids and ledgers but no buildings:
    for tests that import buildings into it."""
    import dataclasses

    from gis_service.db import migrate
    from gis_service.demo import loader

    url: str = make_database(prefix)
    migrate.upgrade(url)
    empty = {k: v[:0] for k, v in demo_city.buildings.items()}
    loader.load(url, dataclasses.replace(demo_city, buildings=empty))
    return url


def private_demo(make_database: Any, demo_city: Any, prefix: str = "demo") -> str:
    """A migrated copy of the demo with the test users, for tests that write to it.

    The session's ``demo_url`` is shared by every test of a run, and several suites check
    the demo's own figures (379 enterprises, 1,056 隐患): writers get their own copy.
    """
    from gis_service.db import migrate
    from gis_service.demo import loader

    url: str = make_database(prefix)
    migrate.upgrade(url)
    loader.load(url, demo_city)
    add_foreign_county(url)
    return url


def staffed_grid_point(url: str) -> tuple[float, float]:
    """A point inside the first current grid of 石峰区 that has a grid worker."""
    with psycopg.connect(psycopg_conninfo(url)) as c:
        row = c.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(g.geom) p FROM grid g"
            " WHERE g.grid_code LIKE '430204%' AND g.valid_to IS NULL AND EXISTS ("
            "   SELECT 1 FROM grid_assignment ga WHERE ga.grid_id = g.id"
            "   AND ga.role = 'grid_worker' AND ga.end_date IS NULL)"
            " ORDER BY g.grid_code LIMIT 1) s"
        ).fetchone()
    assert row is not None
    return float(row[0]), float(row[1])
