"""Every operation is either public or authenticated; concurrent edits never lose updates."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx2
import psycopg
from fastapi.testclient import TestClient

from gis_service.api.app import create_app
from gis_service.db.engine import make_async_engine
from gis_service.demo.loader import psycopg_conninfo
from gis_service.settings import Settings
from tests.fixtures import auth

PUBLIC = {
    ("GET", "/health/live"),
    ("GET", "/health/ready"),
    ("GET", "/version"),
    ("POST", "/auth/login"),  # how a token is obtained
    ("GET", "/web/config.json"),  # what the login page shows: base maps, password login
}
SAMPLE = {
    "code": "430204",
    "grid_code": "430204001001001",
    "enterprise_id": "1",
    "key": "hazard_level",
    "batch_id": "1",
    "target": "enterprise",
    "fmt": "csv",
    "hazard_id": "1",
    "month": "2026-10",
    "sha256": "0" * 64,
    "collection_id": "enterprises",
    "fid": "1",
    "layers": "grids",
    "z": "14",
    "x": "13304",
    "tile_y": "6925.mvt",
    "view": "planner",
    "name": "shifeng",
    "proposal_id": "1",
    "run_id": "1",
    "job_id": "1",
    "id": "1",
    "layer": "flood_depth_p50",
    "warning_id": "1",
    "y": "6925",
}


def test_every_non_public_operation_requires_a_token(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    checked = 0
    for path, ops in spec["paths"].items():
        for method in ops:
            if (method.upper(), path) in PUBLIC:
                continue
            url = re.sub(r"\{(\w+)\}", lambda m: SAMPLE[m.group(1)], path)
            r = client.request(method.upper(), url, json={})
            assert r.status_code == 401, (method, path, r.status_code)
            checked += 1
    assert checked >= 8


def test_concurrent_patches_have_exactly_one_winner(demo_url: str, settings: Settings) -> None:
    with psycopg.connect(psycopg_conninfo(demo_url)) as c:
        row = c.execute(
            "SELECT id, row_version FROM enterprise WHERE source = 'demo' ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert row is not None
    eid, version = row
    app = create_app(settings, database_url=demo_url)

    async def race(n: int) -> list[Any]:
        app.state.engine = make_async_engine(demo_url, settings.db)
        try:
            transport = httpx2.ASGITransport(app=app)
            async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as ac:
                return await asyncio.gather(
                    *(
                        ac.patch(
                            f"/enterprises/{eid}",
                            json={"employees": 1000 + i},
                            headers={**auth("a_surveyor"), "If-Match": f'"{version}"'},
                        )
                        for i in range(n)
                    )
                )
        finally:
            await app.state.engine.dispose()

    responses = asyncio.run(race(12))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1, statuses
    assert set(statuses) == {200, 412}, statuses
    winner = next(r for r in responses if r.status_code == 200).json()["employees"]
    with psycopg.connect(psycopg_conninfo(demo_url)) as c:
        final = c.execute(
            "SELECT employees, row_version FROM enterprise WHERE id = %s", (eid,)
        ).fetchone()
        audits = c.execute(
            "SELECT count(*) FROM audit_log WHERE table_name = 'enterprise' AND row_id = %s"
            " AND action = 'UPDATE'",
            (eid,),
        ).fetchone()
    assert final == (winner, version + 1)
    assert audits == (1,)
