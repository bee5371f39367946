"""The ASGI fast path of GET /query/locate and /query/nearest answers exactly as the routes do.

Same JSON for every role and area (PII masking, scope), the same problem+json for refusals
(which the fast path leaves to the route, or renders with the app's own handler), and the
read pool's answers equal to a transaction's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import numpy as np
import psycopg
import pytest
from fastapi.testclient import TestClient

from gis_service.api.app import create_app
from gis_service.api.routes.query import _plain_query
from gis_service.demo.loader import psycopg_conninfo
from gis_service.errors import InvalidInput
from gis_service.query import params as qp
from gis_service.settings import Settings
from tests.fixtures import auth


@pytest.fixture(scope="module")
def fast(demo_url: str, settings: Settings) -> Iterator[TestClient]:
    """A client of an app whose fast path can be switched off (``app.state``)."""
    with TestClient(create_app(settings, database_url=demo_url)) as c:
        yield c


@pytest.fixture(scope="module")
def points(demo_url: str) -> list[tuple[float, float]]:
    """Building points of the district, plus one in the foreign county 440304."""
    with psycopg.connect(psycopg_conninfo(demo_url)) as c:
        rows = c.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM building"
            " WHERE admin_code LIKE '430204%' ORDER BY id LIMIT 12) s"
        ).fetchall()
        foreign = c.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(boundary) p"
            " FROM admin_division WHERE code = '440304') s"
        ).fetchone()
    assert foreign is not None
    return [(float(x), float(y)) for x, y in [*rows, foreign]]


def _both(client: TestClient, url: str, headers: dict[str, str]) -> tuple[Any, Any]:
    """(fast answer, route answer) for ``url``; asserts which path served each."""
    state: Any = client.app.state  # type: ignore[attr-defined]
    before = getattr(state, "query_fast_served", 0)
    fast = client.get(url, headers=headers)
    served_fast = getattr(state, "query_fast_served", 0) - before
    state.query_fast_path = False
    try:
        route = client.get(url, headers=headers)
    finally:
        state.query_fast_path = True
    assert getattr(state, "query_fast_served", 0) - before == served_fast  # route path only
    return (fast, served_fast), route


def _body(r: Any) -> Any:
    body = r.json()
    if isinstance(body, dict):
        body.pop("request_id", None)
    return body


@pytest.mark.parametrize("login", ["a_commander", "a_viewer", "b_surveyor", "city_surveyor"])
def test_locate_fast_equals_route(
    fast: TestClient, points: list[tuple[float, float]], login: str
) -> None:
    served = 0
    for x, y in points:
        url = f"/query/locate?lon={x:.7f}&lat={y:.7f}&crs=cgcs2000"
        (f, n), r = _both(fast, url, auth(login))
        assert f.status_code == r.status_code, url
        assert f.headers["content-type"] == r.headers["content-type"]
        assert _body(f) == _body(r), url
        served += n
    assert served > 0, "the fast path answered some"


@pytest.mark.parametrize(
    "query",
    [
        "layer=shelters&k=5",
        "layer=geohazard_points&k=3&crs=cgcs2000",
        "layer=enterprises",
        "layer=buildings&k=100&crs=gcj02",
    ],
)
def test_nearest_fast_equals_route(
    fast: TestClient, points: list[tuple[float, float]], query: str
) -> None:
    for login in ("a_planner", "a_viewer", "b_admin"):
        for x, y in points[::3]:
            url = f"/query/nearest?lon={x:.6f}&lat={y:.6f}&{query}"
            (f, n), r = _both(fast, url, auth(login))
            assert n == 1, url
            assert f.status_code == r.status_code == 200, f.text
            assert _body(f) == _body(r)


def test_refusals_are_the_routes(fast: TestClient, points: list[tuple[float, float]]) -> None:
    x, y = points[0]
    cases = {
        f"/query/locate?lon={x}&lat={y}&extra=1": 400,
        f"/query/locate?lon={x}&lon={x}&lat={y}": 400,
        f"/query/locate?lon=abc&lat={y}": 422,
        f"/query/locate?lon=1e2&lat={y}": None,  # pydantic's reading, whatever it is
        f"/query/locate?lon=nan&lat={y}": 422,
        f"/query/locate?lon={x}&lat=95": 422,
        "/query/locate?lon=0.5&lat=0.5": 422,  # outside China
        f"/query/locate?lon={x}&lat={y}&crs=utm": 422,
        f"/query/nearest?lon={x}&lat={y}&layer=app_user": 422,
        f"/query/nearest?lon={x}&lat={y}&layer=shelters&k=0": 422,
        f"/query/nearest?lon={x}&lat={y}&layer=shelters&k=101": 422,
        f"/query/nearest?lon={x}&lat={y}": 422,
        f"/query/locate?lon={points[-1][0]}&lat={points[-1][1]}&crs=cgcs2000": 404,
    }
    for url, status in cases.items():
        (f, n), r = _both(fast, url, auth("a_commander"))
        assert f.status_code == r.status_code, url
        if status is not None:
            assert f.status_code == status, url
            assert n == 0, url
            assert f.headers["content-type"] == "application/problem+json"
        assert _body(f) == _body(r), url


def test_authentication_is_the_same(fast: TestClient, points: list[tuple[float, float]]) -> None:
    x, y = points[0]
    url = f"/query/nearest?lon={x}&lat={y}&layer=shelters"
    for headers in (
        {},
        {"Authorization": "Bearer gis_not_a_token"},
        {"Authorization": "Basic abc"},
        auth("disabled_user"),
    ):
        (f, _), r = _both(fast, url, headers)
        assert f.status_code == r.status_code == 401
        assert f.headers["www-authenticate"] == r.headers["www-authenticate"]
        assert _body(f) == _body(r)
    f = fast.get(url, headers={**auth("a_viewer"), "X-Request-ID": "fastpath-0001"})
    assert f.headers["x-request-id"] == "fastpath-0001"


@pytest.mark.parametrize(
    "raw",
    [
        b"lon=113.1&lat=27.8",
        b"lon=1&&lat=2&",
        b"lon&lat=2",
        b"lon=1=2&lat=3",
        b"",
        b"&",
        b"=x&lon=1",
        b"lon=1;lat=2",
        b"lon=%31&lat=2",
        b"lon=1+2&lat=2",
        b"lon=1&lon=2",
        b"lon=1&layer=x",
        b"lat=\xe4",
    ],
)
def test_query_string_split_is_parse_qsl(raw: bytes) -> None:
    """The direct split of an escape-free query string answers what parse_qsl answers."""
    allowed = frozenset({"lon", "lat", ""})
    expected: dict[str, str] | None = {}
    for key, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        if expected is None or key not in allowed or key in expected:
            expected = None
            break
        expected[key] = value
    assert _plain_query(raw, allowed) == expected


@pytest.mark.parametrize(
    ("lon", "lat"),
    [(113.1, 27.8), (73.0, 3.0), (136.0, 54.0), (72.999, 30.0), (113.0, 54.001), (27.8, 113.1)],
)
def test_storage_point_plain_floats_are_numpy_check(lon: float, lat: float) -> None:
    """wgs84/cgcs2000 points checked on plain floats: same point, same refusal as gcj02's path."""
    inside = not qp.bad_points(np.array([lon]), np.array([lat]))[0]
    for system in (qp.InputCrs.wgs84, qp.InputCrs.cgcs2000):
        if inside:
            assert qp.storage_point(lon, lat, system) == (lon, lat)
        else:
            with pytest.raises(InvalidInput) as refused:
                qp.storage_point(lon, lat, system)
            assert [f.field for f in refused.value.fields] == ["query.lon", "query.lat"]
