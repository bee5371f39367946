"""Readiness checks find the defects seeded into a private copy of the demo: a broken
responsibility chain, a route across a risk zone, a route to a full shelter, a shelter whose
catchment exceeds its capacity; and they respect scope."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from gis_service.api.app import create_app
from gis_service.settings import Settings
from tests.fixtures import auth, private_demo


@pytest.fixture(scope="module")
def seeded(make_database: Any, demo_city: Any, settings: Settings) -> Iterator[dict[str, Any]]:
    """A private demo with a baseline report taken, then defects seeded."""
    url = private_demo(make_database, demo_city, prefix="ready")
    app = create_app(settings, database_url=url)
    with TestClient(app, raise_server_exceptions=False) as c:
        before = c.get("/readiness", params={"admin": "430204"}, headers=auth("a_commander"))
        assert before.status_code == 200, before.text
        seeds: dict[str, Any] = {}
        with psycopg.connect("postgresql://" + url.split("://", 1)[1]) as conn:
            # 1. a complete point loses its county-level person and its monitor
            pid = conn.execute(
                "SELECT p.id FROM geohazard_point p WHERE NOT p.closed AND left(p.admin_code, 6) ="
                " '430204' AND (SELECT count(DISTINCT r.level) FROM responsibility r"
                " WHERE r.target_type = 'geohazard_point' AND r.target_id = p.id"
                " AND r.level IN ('county', 'township', 'village')) = 3 ORDER BY p.id LIMIT 1"
            ).fetchone()
            assert pid is not None
            seeds["point"] = pid[0]
            conn.execute(
                "DELETE FROM responsibility WHERE target_type = 'geohazard_point'"
                " AND target_id = %s AND (level = 'county' OR duty = 'monitor')",
                (pid[0],),
            )
            # 2. a route whose shelter is full, 3. a route bent through a foreign risk zone
            routes = conn.execute(
                "SELECT e.id, e.shelter_id FROM evacuation_route e WHERE e.shelter_id IS NOT NULL"
                " AND left(e.admin_code, 6) = '430204' ORDER BY e.id LIMIT 40"
            ).fetchall()
            full_route, full_shelter = routes[0]
            conn.execute("UPDATE shelter SET status = 'full' WHERE id = %s", (full_shelter,))
            seeds["full_route"], seeds["full_shelter"] = full_route, full_shelter
            zone = conn.execute(
                "SELECT z.id, ST_X(ST_PointOnSurface(z.geom)), ST_Y(ST_PointOnSurface(z.geom))"
                " FROM geohazard_zone z WHERE left(z.admin_code, 6) = '430204' ORDER BY z.id LIMIT 1"
            ).fetchone()
            assert zone is not None
            bent = next(
                rid
                for rid, _ in routes[1:]
                if conn.execute(
                    "SELECT NOT EXISTS (SELECT 1 FROM geohazard_zone z, evacuation_route e"
                    " WHERE e.id = %s AND ST_Intersects(z.geom, e.geom))",
                    (rid,),
                ).fetchone()[0]  # type: ignore[index]
            )
            conn.execute(
                "UPDATE evacuation_route SET geom = ST_MakeLine(ARRAY[ST_StartPoint(geom),"
                " ST_SetSRID(ST_MakePoint(%s, %s), 4490), ST_EndPoint(geom)]) WHERE id = %s",
                (zone[1], zone[2], bent),
            )
            seeds["bent_route"] = bent
            # 4. a shelter whose catchment exceeds its capacity
            catch = conn.execute(
                "SELECT e.shelter_id, sum(p.threatened_people) FROM (SELECT DISTINCT shelter_id,"
                " geohazard_point_id FROM evacuation_route WHERE shelter_id IS NOT NULL) e"
                " JOIN geohazard_point p ON p.id = e.geohazard_point_id AND NOT p.closed"
                " JOIN shelter s ON s.id = e.shelter_id WHERE left(s.admin_code, 6) = '430204'"
                " AND s.id <> %s GROUP BY 1 HAVING sum(p.threatened_people) > 1"
                " ORDER BY 1 LIMIT 1",
                (full_shelter,),
            ).fetchone()
            assert catch is not None
            conn.execute(
                "UPDATE shelter SET capacity = %s, current_occupancy = 0 WHERE id = %s",
                (catch[1] - 1, catch[0]),
            )
            seeds["small_shelter"], seeds["catchment"] = catch
            conn.commit()
        after = c.get("/readiness", params={"admin": "430204"}, headers=auth("a_commander"))
        yield {"before": before.json(), "after": after.json(), "seeds": seeds, "client": c}


def test_seeded_defects_are_found(seeded: dict[str, Any]) -> None:
    before, after, s = seeded["before"], seeded["after"], seeded["seeds"]
    point = next(
        i
        for i in after["incomplete"]
        if i["target_type"] == "geohazard_point" and i["id"] == s["point"]
    )
    assert set(point["missing"]) == {"county", "monitor"}
    assert not any(
        i["id"] == s["point"] and i["target_type"] == "geohazard_point"
        for i in before["incomplete"]
    )
    routes = {r["id"]: r for r in after["routes"]}
    assert "shelter_without_capacity" in routes[s["full_route"]]["problems"]
    assert "crosses_hazard" in routes[s["bent_route"]]["problems"]
    assert s["bent_route"] not in {r["id"] for r in before["routes"]}
    small = next(x for x in after["shelters"] if x["id"] == s["small_shelter"])
    assert small["catchment_people"] == s["catchment"]
    assert small["excess"] == 1
    assert after["summary"]["points_incomplete"] == before["summary"]["points_incomplete"] + 1
    # The demo's risk zones carry the chain of their hazard point: none is incomplete.
    assert before["summary"]["zones_incomplete"] == 0
    assert after["summary"]["shelters_over_capacity"] >= 1
    assert after["admin"] == {"code": "430204", "name": after["admin"]["name"]}


def test_scope_and_bad_inputs(seeded: dict[str, Any]) -> None:
    c: TestClient = seeded["client"]
    assert (
        c.get("/readiness", params={"admin": "430204"}, headers=auth("b_surveyor")).status_code
        == 404
    )
    r = c.get("/readiness", params={"admin": "4302"}, headers=auth("a_commander"))
    assert r.status_code == 422
    assert "admin" in r.text
    # default: my own area
    mine = c.get("/readiness", headers=auth("a_commander")).json()
    assert mine["admin"]["code"] == "430204"
    r = c.get("/readiness", headers=auth("national_admin"))
    assert r.status_code == 400
    assert "query.admin" in r.text
    town = seeded["after"]["incomplete"][0]["code"][:9]
    part = c.get("/readiness", params={"admin": town}, headers=auth("a_commander")).json()
    assert part["summary"]["points_incomplete"] <= seeded["after"]["summary"]["points_incomplete"]
