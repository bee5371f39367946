"""Nearest shelters through the geography indexes of migration 0018, against pyproj.

The open shelters have their own partial index: a shelter that fills up leaves it and one
that opens joins it, and the next answer (single point and batch) must follow at once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.fixtures import auth
from tests.test_query_oracle import in_scope, metres, read, scope_villages

OPEN = "status IN ('open', 'opening') AND capacity > current_occupancy"


@pytest.fixture(scope="module")
def points(demo_url: str) -> list[tuple[float, float]]:
    """A point inside each of 40 grids of 石峰区."""
    from gis_service.demo.loader import psycopg_conninfo

    with psycopg.connect(psycopg_conninfo(demo_url)) as c:
        rows = c.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p, grid_code FROM grid"
            " WHERE grid_code LIKE '430204%' ORDER BY md5(grid_code || 'x') LIMIT 40) s"
        ).fetchall()
    return [(float(x), float(y)) for x, y in rows]


def _expected(
    conn: psycopg.Connection[Any], pts: list[tuple[float, float]], where: str
) -> list[tuple[int, float]]:
    shelters = in_scope(
        read(conn, "shelter", ("admin_code",), where), scope_villages(conn, "430204")
    )
    out = []
    for lon, lat in pts:
        d = metres(lon, lat, shelters.geoms)
        i = int(np.lexsort((shelters.ids, d))[0])
        out.append((int(shelters.ids[i]), float(d[i])))
    return out


def _check(got: list[dict[str, Any] | None], want: list[tuple[int, float]]) -> None:
    for g, (sid, m) in zip(got, want, strict=True):
        assert g is not None
        assert g["id"] == sid
        assert g["distance_m"] == pytest.approx(m, abs=0.06)


def test_nearest_and_open_shelters_follow_the_partial_index(
    client: TestClient,
    demo_url: str,
    points: list[tuple[float, float]],
    conn: psycopg.Connection[Any],
) -> None:
    from gis_service.demo.loader import psycopg_conninfo

    headers = auth("a_commander")
    body = {"crs": "cgcs2000", "points": [[x, y] for x, y in points]}

    def answers() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        single = [
            client.get(
                "/query/locate", params={"lon": x, "lat": y, "crs": "cgcs2000"}, headers=headers
            ).json()
            for x, y in points[:5]
        ]
        r = client.post("/query/locate", json=body, headers=headers)
        assert r.status_code == 200, r.text
        return single, r.json()["results"]

    def check(c: psycopg.Connection[Any]) -> None:
        single, batch = answers()
        any_ = _expected(c, points, "TRUE")
        open_ = _expected(c, points, OPEN)
        _check([s["nearest_shelter"] for s in single], any_[:5])
        _check([s["nearest_open_shelter"] for s in single], open_[:5])
        assert [(r["nearest_shelter"], r["nearest_open_shelter"]) for r in batch[:5]] == [
            (s["nearest_shelter"]["name"], s["nearest_open_shelter"]["name"]) for s in single
        ]
        for r, (_, m_any), (_, m_open) in zip(batch, any_, open_, strict=True):
            assert r["nearest_shelter_m"] == pytest.approx(m_any, abs=0.06)
            assert r["nearest_open_shelter_m"] == pytest.approx(m_open, abs=0.06)

    check_any = _expected(conn, points, "TRUE")
    shelters = [
        int(r[0])
        for r in conn.execute(
            "SELECT id FROM shelter WHERE admin_code LIKE '430204%' ORDER BY md5(id::text) LIMIT 4"
        ).fetchall()
    ]
    with psycopg.connect(psycopg_conninfo(demo_url), autocommit=True) as c:
        old = c.execute(
            "SELECT id, status, capacity, current_occupancy FROM shelter WHERE id = ANY(%s)",
            (shelters,),
        ).fetchall()
        try:
            # Four shelters open (join the partial index) ...
            c.execute(
                "UPDATE shelter SET status = 'open', current_occupancy = 0,"
                " capacity = greatest(capacity, 10) WHERE id = ANY(%s)",
                (shelters,),
            )
            check(conn)
            # ... then the nearest open one of the first point fills up (leaves it).
            first = _expected(conn, points[:1], OPEN)[0][0]
            c.execute("UPDATE shelter SET current_occupancy = capacity WHERE id = %s", (first,))
            check(conn)
            assert _expected(conn, points[:1], OPEN)[0][0] != first
            assert _expected(conn, points, "TRUE") == check_any
        finally:
            for sid, status, capacity, occupancy in old:
                c.execute(
                    "UPDATE shelter SET status = %s, capacity = %s, current_occupancy = %s"
                    " WHERE id = %s",
                    (status, capacity, occupancy, sid),
                )
