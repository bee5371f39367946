"""BAD_INPUTS section B (and D for query geometries) on the query endpoints: every hostile
input is a 4xx problem+json naming the field, with no SQL run; timeouts are 503 + Retry-After."""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg
import pytest
from fastapi.testclient import TestClient

from gis_service.api.app import create_app
from gis_service.demo.loader import psycopg_conninfo
from gis_service.settings import load_settings
from tests.fixtures import auth
from tests.test_query_oracle import counting_sql

H = auth("a_viewer")
OK = {"lon": "113.15", "lat": "27.88"}


@pytest.fixture
def count_sql(client: TestClient) -> Any:
    return lambda: counting_sql(client)


def _assert_refused(
    r: Any, statements: list[str], status: int | tuple[int, ...] = (400, 422)
) -> dict[str, Any]:
    allowed = (status,) if isinstance(status, int) else status
    assert r.status_code in allowed, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/problem+json")
    assert statements == [], statements
    body = r.json()
    assert body["code"]
    text = r.text.lower()
    for leak in ("select ", "traceback", "psycopg", "/work/"):
        assert leak not in text
    return body


GET_CASES = [
    # B15 / B14 / D2: non-finite, lax, out of range, outside China, swapped
    ("/query/locate", {"lon": "nan", "lat": "27.88"}),
    ("/query/locate", {"lon": "inf", "lat": "27.88"}),
    ("/query/locate", {"lon": "1e400", "lat": "27.88"}),
    ("/query/locate", {"lon": "false", "lat": "27.88"}),
    ("/query/locate", {"lon": "113,15", "lat": "27.88"}),
    ("/query/locate", {"lon": "181", "lat": "27.88"}),
    ("/query/locate", {"lon": "0", "lat": "0"}),
    ("/query/locate", {"lon": "27.88", "lat": "113.15"}),
    ("/query/locate", {"lon": "2.35", "lat": "48.85"}),
    ("/query/locate", {"lat": "27.88"}),
    ("/query/locate", {**OK, "crs": "epsg:3857"}),
    ("/query/locate", {**OK, "crs": "http://evil/"}),
    # B3: unknown / repeated
    ("/query/locate", {**OK, "foo": "1"}),
    ("/query/locate?lon=113.1&lon=113.2&lat=27.88", None),
    # B7: radius
    ("/query/nearby", {**OK, "radius_m": "-1", "layers": "enterprises"}),
    ("/query/nearby", {**OK, "radius_m": "0", "layers": "enterprises"}),
    ("/query/nearby", {**OK, "radius_m": "1e9", "layers": "enterprises"}),
    ("/query/nearby", {**OK, "radius_m": "NaN", "layers": "enterprises"}),
    ("/query/nearby", {**OK, "radius_m": "far", "layers": "enterprises"}),
    # layers: unknown, hostile, too many, empty
    ("/query/nearby", {**OK, "radius_m": "100", "layers": "app_user"}),
    ("/query/nearby", {**OK, "radius_m": "100", "layers": 'enterprise";drop table x;--'}),
    ("/query/nearby", {**OK, "radius_m": "100", "layers": "../../etc/passwd"}),
    ("/query/nearby", {**OK, "radius_m": "100", "layers": ",".join(["enterprises"] * 1000)}),
    ("/query/nearby", {**OK, "radius_m": "100", "layers": ","}),
    # B1/B4 paging
    ("/query/nearby", {**OK, "radius_m": "100", "layers": "enterprises", "limit": "-1"}),
    ("/query/nearby", {**OK, "radius_m": "100", "layers": "enterprises", "limit": "1.5"}),
    ("/query/nearby", {**OK, "radius_m": "100", "layers": "enterprises", "limit": "unlimited"}),
    ("/query/nearby", {**OK, "radius_m": "100", "layers": "enterprises", "offset": "1000000000"}),
    ("/query/nearest", {**OK, "layer": "enterprises", "k": "0"}),
    ("/query/nearest", {**OK, "layer": "enterprises", "k": "1000000"}),
    ("/query/nearest", {**OK, "layer": "enterprises,shelters"}),
    ("/query/nearest", {**OK, "layer": "person"}),
    # stats
    ("/stats/divisions", {"parent": "4302"}),
    ("/stats/divisions", {"parent": "430204' OR '1'='1"}),
    ("/stats/grids", {"month": "2026-00"}),
    ("/stats/grids", {"format": "pdf"}),
]


@pytest.mark.parametrize(("path", "params"), GET_CASES)
def test_hostile_query_parameters(
    client: TestClient, count_sql: Any, path: str, params: dict[str, str] | None
) -> None:
    with count_sql() as statements:
        r = client.get(path, params=params, headers=H)
    _assert_refused(r, statements)


SQUARE = [[113.10, 27.85], [113.12, 27.85], [113.12, 27.87], [113.10, 27.87], [113.10, 27.85]]
BOWTIE = [[113.10, 27.85], [113.12, 27.87], [113.12, 27.85], [113.10, 27.87], [113.10, 27.85]]


def _ring(n: int) -> list[list[float]]:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    pts = np.column_stack([113.1 + 0.01 * np.cos(t), 27.9 + 0.01 * np.sin(t)]).tolist()
    return [*pts, pts[0]]


AREA_CASES: list[tuple[Any, int | tuple[int, ...]]] = [
    ({"geometry": {"type": "Polygon", "coordinates": [BOWTIE]}}, 422),  # B8 self-intersection
    ({"geometry": {"type": "Polygon", "coordinates": [_ring(10_001)]}}, 413),  # vertex cap
    ({"geometry": {"type": "Polygon", "coordinates": [SQUARE[:-1]]}}, 422),  # unclosed
    ({"geometry": {"type": "Polygon", "coordinates": [SQUARE[:2]]}}, 422),  # too few points
    ({"geometry": {"type": "Polygon", "coordinates": []}}, 422),  # D7 empty
    ({"geometry": {"type": "Point", "coordinates": [113.1, 27.9]}}, 422),
    ({"geometry": {"type": "GeometryCollection", "geometries": []}}, 422),  # D4
    (
        {
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [[27.85, 113.10], [27.85, 113.12], [27.87, 113.12], [27.85, 113.10]]
                ],
            }
        },
        422,
    ),  # D8 swapped
    (
        {
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[80, 20], [130, 20], [130, 50], [80, 20]]],
            }
        },
        413,
    ),  # huge
    ({"geometry": {"type": "Polygon", "coordinates": [[["a", 1], [2, 3], [4, 5], ["a", 1]]]}}, 422),
    (
        {"geometry": {"type": "Polygon", "coordinates": [SQUARE]}, "admin_code": "430204"},
        422,
    ),  # two areas
    ({}, 422),
    (
        {"geometry": {"type": "Polygon", "coordinates": [SQUARE]}, "sql": "1"},
        422,
    ),  # mass assignment
    ({"geometry": {"type": "Polygon", "coordinates": [SQUARE]}, "lists": ["app_user"]}, 422),
    ({"geometry": {"type": "Polygon", "coordinates": [SQUARE]}, "crs": "epsg:3857"}, 422),
    ({"around": {"layer": "geohazard_points", "id": 1, "radius_m": 1e9}}, 422),
    ({"around": {"layer": "geohazard_points", "id": 1, "radius_m": -5}}, 422),
    ({"around": {"layer": "person", "id": 1, "radius_m": 100}}, 422),
    ({"admin_code": "43020x"}, 422),
    ({"grid_code": "1" * 16}, 422),
]


@pytest.mark.parametrize(("body", "status"), AREA_CASES)
def test_hostile_area_bodies(client: TestClient, count_sql: Any, body: Any, status: int) -> None:
    with count_sql() as statements:
        r = client.post("/query/area", json=body, headers=H)
    _assert_refused(r, statements, status)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"geometry": {"type": "Polygon", "coordinates": [[[113.1, NaN], [113.2, 27.9], [113.1, 27.8], [113.1, NaN]]]}}',
        b'{"geometry": {"type": "Polygon", "coordinates": [[[113.1, Infinity], [113.2, 27.9], [113.1, 27.8], [113.1, 27.9]]]}}',
        b'{"geometry": {"type": "Polygon", "coordinates": [[[1e400, 27.8], [113.2, 27.9], [113.1, 27.8], [1e400, 27.8]]]}}',
        b'{"geometry": ',
    ],
)
def test_non_finite_json_is_refused(client: TestClient, count_sql: Any, raw: bytes) -> None:
    with count_sql() as statements:
        r = client.post(
            "/query/area", content=raw, headers={**H, "Content-Type": "application/json"}
        )
    _assert_refused(r, statements, 422)


def test_body_over_one_megabyte_is_413(client: TestClient) -> None:
    big = {
        "geometry": {"type": "Polygon", "coordinates": [_ring(9_000)]},
        "lists": [],
        "pad": "x" * 1_100_000,
    }
    assert client.post("/query/area", json=big, headers=H).status_code == 413


def test_out_of_scope_targets_are_404_not_empty(client: TestClient) -> None:
    r = client.post(
        "/query/area",
        json={"around": {"layer": "enterprises", "id": 2**40, "radius_m": 100}},
        headers=H,
    )
    assert r.status_code == 404


def test_statement_timeout_is_503_with_retry_after(demo_url: str) -> None:
    """A query stuck past the statement budget (here: behind a lock) answers 503 + Retry-After."""
    settings = load_settings(
        environment="test", db={"statement_timeout_ms": 300, "lock_timeout_ms": 10_000}
    )
    app = create_app(settings, database_url=demo_url)
    with (
        TestClient(app, raise_server_exceptions=False) as c,
        psycopg.connect(psycopg_conninfo(demo_url)) as blocker,
    ):
        assert c.get("/query/locate", params=OK, headers=H).status_code == 200
        blocker.execute("LOCK TABLE shelter IN ACCESS EXCLUSIVE MODE")
        try:
            for path, params in (
                ("/query/locate", OK),
                ("/query/nearest", {**OK, "layer": "shelters"}),
            ):
                r = c.get(path, params=params, headers=H)
                assert r.status_code == 503, r.text[:300]
                assert r.json()["code"] == "query_timeout"
                assert r.headers["retry-after"]
        finally:
            blocker.rollback()
        # The pool is healthy afterwards.
        assert c.get("/query/locate", params=OK, headers=H).status_code == 200


def test_cql2_literals_are_bound_not_spliced(client: TestClient, demo_url: str) -> None:
    """B10: quotes, backslashes and LIKE wildcards in data and filters give exact answers."""
    names = ["O'Brien化工", "百分之100%公司", "下划_线厂", "反斜\\杠厂"]
    with psycopg.connect(psycopg_conninfo(demo_url), autocommit=True) as c:
        ids = [
            c.execute(
                "INSERT INTO enterprise (name, sector, risk_level, geom, source) VALUES"
                " (%s, 'other', 'blue', ST_SetSRID(ST_MakePoint(113.13, 27.87), 4490), 'test') RETURNING id",
                (n,),
            ).fetchone()[0]  # type: ignore[index]
            for n in names
        ]
        try:

            def q(f: str) -> set[int]:
                r = client.get(
                    "/ogc/collections/enterprises/items",
                    params={"filter": f, "limit": "1000"},
                    headers=H,
                )
                assert r.status_code == 200, r.text
                return {x["id"] for x in r.json()["features"]}

            assert q("name = 'O''Brien化工'") == {ids[0]}
            assert q("name LIKE '%\\%%'") == {ids[1]}
            assert q("name LIKE '%\\_%'") == {ids[2]}
            assert q("name = '反斜\\杠厂'") == {ids[3]}
            r = client.get(
                "/ogc/collections/enterprises/items", params={"name": "O'Brien化工"}, headers=H
            )
            assert [x["id"] for x in r.json()["features"]] == [ids[0]]
            assert (
                client.get(
                    "/ogc/collections/enterprises/items",
                    params={"filter": "name = 'a\x00b'"},
                    headers=H,
                ).status_code
                == 400
            )
            assert (
                client.get(
                    "/ogc/collections/enterprises/items", params={"name": "a\x00b"}, headers=H
                ).status_code
                == 400
            )
        finally:
            c.execute("DELETE FROM enterprise WHERE id = ANY(%s)", (ids,))
