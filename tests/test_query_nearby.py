"""/query/nearby and /query/nearest against geodesic distances computed independently."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import numpy as np
import psycopg
import pytest
from fastapi.testclient import TestClient

from gis_service import crs
from tests.fixtures import auth
from tests.test_query_oracle import in_scope, metres, read, scope_villages

TABLES = {
    "enterprises": ("enterprise", "TRUE"),
    "shelters": ("shelter", "TRUE"),
    "geohazard_points": ("geohazard_point", "NOT closed"),
    "buildings": ("building", "TRUE"),
    "facilities": ("facility", "TRUE"),
}


@pytest.fixture(scope="module")
def centre(demo_url: str) -> tuple[float, float]:
    """The enterprise with the most enterprises within 1 km (a dense spot)."""
    from gis_service.demo.loader import psycopg_conninfo

    with psycopg.connect(psycopg_conninfo(demo_url)) as c:
        row = c.execute(
            "SELECT ST_X(e.geom), ST_Y(e.geom) FROM enterprise e WHERE e.admin_code LIKE '430204%'"
            " ORDER BY (SELECT count(*) FROM enterprise o WHERE ST_DWithin(o.geom::geography, e.geom::geography, 1000)) DESC, e.id LIMIT 1"
        ).fetchone()
    assert row is not None
    return float(row[0]), float(row[1])


def _oracle(
    conn: psycopg.Connection[Any], layer: str, lon: float, lat: float, scope: str | None
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    table, where = TABLES[layer]
    rows = in_scope(read(conn, table, ("admin_code",), where), scope_villages(conn, scope))
    return rows.ids, metres(lon, lat, rows.geoms)


@pytest.mark.parametrize("layer", sorted(TABLES))
def test_nearby_matches_geodesic_oracle(
    client: TestClient, conn: psycopg.Connection[Any], centre: tuple[float, float], layer: str
) -> None:
    lon, lat = centre
    radius = 1500.0
    ids, d = _oracle(conn, layer, lon, lat, "430204")
    tol = 0.05 if layer != "buildings" else 3.0  # polygons: GK-zone distance vs spheroid
    inside = {int(i) for i, dist in zip(ids, d, strict=True) if dist <= radius - tol}
    maybe = {int(i) for i, dist in zip(ids, d, strict=True) if dist <= radius + tol}
    got: list[dict[str, Any]] = []
    url: str | None = (
        f"/query/nearby?lon={lon}&lat={lat}&radius_m={radius}&layers={layer}&limit=200"
    )
    pages = 0
    while url:
        r = client.get(url, headers=auth("a_viewer"))
        assert r.status_code == 200, r.text
        (page,) = r.json()["layers"]
        assert page["total"] >= len(inside)
        got.extend(page["features"])
        nxt = page["next"]
        url = None if nxt is None else f"{urlsplit(nxt).path}?{urlsplit(nxt).query}"
        pages += 1
        assert pages < 100
    got_ids = [f["id"] for f in got]
    assert len(got_ids) == len(set(got_ids)) == page["total"]
    assert inside <= set(got_ids) <= maybe
    dist = [f["distance_m"] for f in got]
    assert dist == sorted(dist)
    by_id = dict(zip(ids.tolist(), d, strict=True))
    for f in got:
        assert f["distance_m"] == pytest.approx(by_id[f["id"]], abs=tol + 0.1)


def test_nearby_several_layers_with_caps_and_next_links(
    client: TestClient, centre: tuple[float, float]
) -> None:
    lon, lat = centre
    r = client.get(
        "/query/nearby",
        params={
            "lon": lon,
            "lat": lat,
            "radius_m": 2000,
            "layers": "buildings,enterprises,buildings",
            "limit": 3,
        },
        headers=auth("a_viewer"),
    )
    assert r.status_code == 200
    layers = r.json()["layers"]
    assert [x["layer"] for x in layers] == ["buildings", "enterprises"]
    for x in layers:
        assert len(x["features"]) == 3
        assert x["next"].startswith("http://127.0.0.1:8000/query/nearby?")
        assert "offset=3" in x["next"]


@pytest.mark.parametrize(
    ("layer", "k"), [("shelters", 5), ("enterprises", 7), ("geohazard_points", 3), ("buildings", 4)]
)
def test_nearest_is_the_true_k_nearest(
    client: TestClient,
    conn: psycopg.Connection[Any],
    centre: tuple[float, float],
    layer: str,
    k: int,
) -> None:
    lon, lat = centre
    ids, d = _oracle(conn, layer, lon, lat, "430204")
    order = np.argsort(d, kind="stable")[:k]
    r = client.get(
        "/query/nearest",
        params={"lon": lon, "lat": lat, "layer": layer, "k": k},
        headers=auth("a_viewer"),
    )
    assert r.status_code == 200, r.text
    feats = r.json()["features"]
    tol = 0.05 if layer != "buildings" else 3.0
    assert [f["distance_m"] for f in feats] == pytest.approx(d[order].tolist(), abs=tol + 0.1)
    if layer != "buildings":
        assert [f["id"] for f in feats] == [int(i) for i in ids[order]]


def test_nearest_in_gcj02_and_scope(client: TestClient, centre: tuple[float, float]) -> None:
    lon, lat = centre
    gx, gy = crs.wgs84_to_gcj02(lon, lat)
    a = client.get(
        "/query/nearest",
        params={"lon": lon, "lat": lat, "layer": "enterprises", "k": 3},
        headers=auth("a_viewer"),
    ).json()
    b = client.get(
        "/query/nearest",
        params={"lon": gx, "lat": gy, "crs": "gcj02", "layer": "enterprises", "k": 3},
        headers=auth("a_viewer"),
    ).json()
    assert [f["id"] for f in a["features"]] == [f["id"] for f in b["features"]]
    # A user of another province gets its own (far) enterprise, never one of 石峰区.
    far = client.get(
        "/query/nearest",
        params={"lon": lon, "lat": lat, "layer": "enterprises", "k": 5},
        headers=auth("b_surveyor"),
    ).json()
    assert [f["properties"]["admin_code"][:6] for f in far["features"]] == ["440304"]
    assert far["features"][0]["distance_m"] > 500_000
    near = client.get(
        "/query/nearby",
        params={"lon": lon, "lat": lat, "radius_m": 20000, "layers": "enterprises"},
        headers=auth("b_surveyor"),
    ).json()
    assert near["layers"][0]["total"] == 0
