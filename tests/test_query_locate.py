"""Locate, nearby and nearest against an independent shapely/pyproj computation on the demo."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import openpyxl
import psycopg
import pytest
import shapely
from fastapi.testclient import TestClient

from gis_service import crs
from tests.fixtures import auth
from tests.test_query_oracle import in_scope, metres, read, scope_villages


@pytest.fixture(scope="module")
def places(demo_url: str) -> list[tuple[float, float]]:
    """Points inside 12 grids of 石峰区 spread over its townships, plus a geohazard point."""
    from gis_service.demo.loader import psycopg_conninfo

    with psycopg.connect(psycopg_conninfo(demo_url)) as c:
        rows = c.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p, grid_code FROM grid"
            " WHERE grid_code LIKE '430204%' ORDER BY md5(grid_code) LIMIT 12) s"
        ).fetchall()
        gh = c.execute(
            "SELECT ST_X(geom) + 0.001, ST_Y(geom) FROM geohazard_point ORDER BY id LIMIT 1"
        ).fetchone()
    assert gh is not None
    return [(float(x), float(y)) for x, y in rows] + [(float(gh[0]), float(gh[1]))]


def _expected_locate(
    conn: psycopg.Connection[Any], lon: float, lat: float, scope: str | None
) -> dict[str, Any]:
    codes = scope_villages(conn, scope)
    pt = shapely.Point(lon, lat)
    villages = in_scope(
        read(conn, "admin_division", ("code",), "level = 'village'", "boundary"), codes, "code"
    )
    hit = sorted(
        c for c, g in zip(villages.cols["code"], villages.geoms, strict=True) if g.intersects(pt)
    )
    grids = in_scope(
        read(conn, "grid", ("grid_code", "community_code"), "valid_to IS NULL"),
        codes,
        "community_code",
    )
    ghit = sorted(
        c for c, g in zip(grids.cols["grid_code"], grids.geoms, strict=True) if g.intersects(pt)
    )
    shelters = in_scope(read(conn, "shelter", ("admin_code", "name")), codes)
    d = metres(lon, lat, shelters.geoms)
    points = in_scope(read(conn, "geohazard_point", ("admin_code", "code"), "NOT closed"), codes)
    zones = in_scope(read(conn, "geohazard_zone", ("admin_code", "code")), codes)
    covering = [g for g in zones.geoms if g.intersects(pt)]
    dp = metres(lon, lat, points.geoms)
    near = {
        c
        for c, g, dist in zip(points.cols["code"], points.geoms, dp, strict=True)
        if dist <= 500 or any(z.intersects(g) for z in covering)
    }
    return {
        "village": hit[0] if hit else None,
        "grid": ghit[0] if ghit else None,
        "shelter": shelters.cols["name"][int(np.argmin(d))] if len(d) else None,
        "shelter_m": float(d.min()) if len(d) else None,
        "geohazards": near,
        "zones": {
            c for c, g in zip(zones.cols["code"], zones.geoms, strict=True) if g.intersects(pt)
        },
    }


def test_locate_matches_shapely(
    client: TestClient, conn: psycopg.Connection[Any], places: list[tuple[float, float]]
) -> None:
    for lon, lat in places:
        want = _expected_locate(conn, lon, lat, "430204")
        r = client.get(
            "/query/locate", params={"lon": lon, "lat": lat}, headers=auth("a_commander")
        )
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["village"]["code"] == want["village"]
        assert [u["level"] for u in got["admin"]] == [
            "province",
            "prefecture",
            "county",
            "township",
            "village",
        ]
        assert got["grid"]["grid_code"] == want["grid"]
        assert got["nearest_shelter"]["name"] == want["shelter"]
        assert got["nearest_shelter"]["distance_m"] == pytest.approx(want["shelter_m"], abs=0.2)
        assert {h["code"] for h in got["geohazards"]} == want["geohazards"]
        assert {z["code"] for z in got["risk_zones"]} == want["zones"]
        roles = {s["role"] for s in got["grid"]["staff"]}
        assert roles == {"grid_worker", "grid_leader"}
        assert all("*" not in s["phone"] for s in got["grid"]["staff"])


def test_geohazard_point_has_its_responsible_chain(
    client: TestClient, places: list[tuple[float, float]]
) -> None:
    lon, lat = places[-1]  # 100 m east of a geohazard point
    got = client.get(
        "/query/locate", params={"lon": lon, "lat": lat}, headers=auth("a_commander")
    ).json()
    assert got["geohazards"], "the point next to a hazard point must list it"
    first = got["geohazards"][0]
    assert 80 < first["distance_m"] < 120
    levels = {(p["level"], p["duty"]) for p in first["responsible"]}
    assert {
        ("county", "prevention_lead"),
        ("township", "prevention_lead"),
        ("village", "prevention_lead"),
    } <= levels


@pytest.mark.parametrize("system", ["gcj02", "bd09", "cgcs2000"])
def test_locate_accepts_gcj02_and_bd09(
    client: TestClient, places: list[tuple[float, float]], system: str
) -> None:
    for lon, lat in places[:4]:
        if system == "gcj02":
            x, y = crs.wgs84_to_gcj02(lon, lat)
        elif system == "bd09":
            x, y = crs.wgs84_to_bd09(lon, lat)
        else:
            x, y = lon, lat
        base = client.get(
            "/query/locate", params={"lon": lon, "lat": lat}, headers=auth("a_planner")
        ).json()
        got = client.get(
            "/query/locate", params={"lon": x, "lat": y, "crs": system}, headers=auth("a_planner")
        ).json()
        assert got["point"] == pytest.approx([lon, lat], abs=1e-6)
        assert got["grid"]["grid_code"] == base["grid"]["grid_code"]
        if system != "cgcs2000":
            # Taking the shifted numbers as WGS84 would land hundreds of metres away.
            naive = client.get(
                "/query/locate", params={"lon": x, "lat": y}, headers=auth("a_planner")
            )
            assert naive.status_code != 200 or naive.json()["point"] != got["point"]


def test_locate_masks_pii_for_viewers(
    client: TestClient, places: list[tuple[float, float]]
) -> None:
    lon, lat = places[0]
    full = client.get(
        "/query/locate", params={"lon": lon, "lat": lat}, headers=auth("a_commander")
    ).json()
    masked = client.get(
        "/query/locate", params={"lon": lon, "lat": lat}, headers=auth("a_viewer")
    ).json()
    for a, b in zip(full["grid"]["staff"], masked["grid"]["staff"], strict=True):
        assert b["name"] == a["name"][0] + "*" * (len(a["name"]) - 1)
        assert b["phone"] != a["phone"]
        assert b["phone"][-4:] == a["phone"][-4:]


@pytest.mark.parametrize(
    ("login", "status"),
    [
        ("b_surveyor", 404),
        ("sibling_surveyor", 404),
        ("city_surveyor", 200),
        ("national_admin", 200),
    ],
)
def test_locate_is_scoped(
    client: TestClient, places: list[tuple[float, float]], login: str, status: int
) -> None:
    lon, lat = places[1]
    r = client.get("/query/locate", params={"lon": lon, "lat": lat}, headers=auth(login))
    assert r.status_code == status
    if status == 404:
        assert r.json()["code"] == "not_found"


def test_nearest_open_shelter_skips_closed_ones(
    client: TestClient,
    demo_url: str,
    places: list[tuple[float, float]],
    conn: psycopg.Connection[Any],
) -> None:
    from gis_service.demo.loader import psycopg_conninfo

    lon, lat = places[2]
    shelters = in_scope(
        read(conn, "shelter", ("admin_code", "name")), scope_villages(conn, "430204")
    )
    order = np.argsort(metres(lon, lat, shelters.geoms))
    far_id = int(shelters.ids[order[3]])  # the 4th nearest becomes the only open one
    with psycopg.connect(psycopg_conninfo(demo_url), autocommit=True) as c:
        old = c.execute(
            "SELECT status, current_occupancy FROM shelter WHERE id = %s", (far_id,)
        ).fetchone()
        c.execute(
            "UPDATE shelter SET status = 'open', current_occupancy = 0 WHERE id = %s", (far_id,)
        )
        try:
            got = client.get(
                "/query/locate", params={"lon": lon, "lat": lat}, headers=auth("a_commander")
            ).json()
        finally:
            assert old is not None
            c.execute(
                "UPDATE shelter SET status = %s, current_occupancy = %s WHERE id = %s",
                (*old, far_id),
            )
    assert got["nearest_open_shelter"]["id"] == far_id
    assert got["nearest_shelter"]["id"] == int(shelters.ids[order[0]])


def test_batch_locate_json_csv_xlsx(client: TestClient, places: list[tuple[float, float]]) -> None:
    pts = [{"id": f"工单{i}", "lon": x, "lat": y} for i, (x, y) in enumerate(places)]
    singles = [
        client.get("/query/locate", params={"lon": x, "lat": y}, headers=auth("a_planner")).json()
        for x, y in places
    ]
    body = {
        "points": [
            *pts,
            {"id": "bad", "lon": 1e9, "lat": 2},
            [113.1, "x"],
            {"id": "foreign", "lon": 114.05, "lat": 22.54},
        ]
    }
    r = client.post("/query/locate", json=body, headers=auth("a_planner"))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["count"] == len(places) + 3
    assert doc["errors"] == 2
    res = doc["results"]
    for row, single in zip(res, singles, strict=False):
        assert row["grid_code"] == single["grid"]["grid_code"]
        assert row["village_code"] == single["village"]["code"]
    assert res[-3]["error"]
    assert res[-2]["error"]
    assert res[-1]["found"] is False
    assert res[-1]["error"] is None

    # The same points shifted to GCJ-02, sent as a CSV with Chinese headers (an Amap export).
    lines = ["编号,地址,经度,纬度"]
    for i, (x, y) in enumerate(places):
        gx, gy = crs.wgs84_to_gcj02(x, y)
        lines.append(f"{i},=HYPERLINK(1),{gx},{gy}")
    csv_body = "\n".join(lines).encode("gb18030")
    r = client.post(
        "/query/locate?crs=gcj02&format=csv",
        content=csv_body,
        headers={**auth("a_planner"), "Content-Type": "text/csv"},
    )
    assert r.status_code == 200, r.text
    text = r.content.decode("utf-8-sig").splitlines()
    assert text[0].startswith("行号,编号,地址")
    assert "'=HYPERLINK(1)" in text[1]
    assert [line.split(",")[13] for line in text[1:]] == [s["grid"]["grid_code"] for s in singles]

    files = {"file": ("points.csv", csv_body, "text/csv")}
    r = client.post("/query/locate?crs=gcj02&format=xlsx", files=files, headers=auth("a_planner"))
    assert r.status_code == 200
    ws = openpyxl.load_workbook(io.BytesIO(r.content)).active
    assert ws is not None
    grid_col = [c.value for c in ws[1]].index("网格编码")
    assert [row[grid_col].value for row in ws.iter_rows(min_row=2)] == [
        s["grid"]["grid_code"] for s in singles
    ]


def test_batch_limits(client: TestClient) -> None:
    many = {"points": [[113.1, 27.9]] * 10_001}
    r = client.post("/query/locate", json=many, headers=auth("a_planner"))
    assert r.status_code == 413
    for body, ctype in [
        (b'{"points": [[113.1, NaN]]}', "application/json"),
        (b'{"points": 5}', "application/json"),
        (b'{"points": [], "sql": "drop"}', "application/json"),
        (b'{"points": [], "crs": "epsg:3857"}', "application/json"),
        (b"a,b\n1,2\n", "text/csv"),
        (b"", "text/csv"),
        (b"<xml/>", "application/xml"),
    ]:
        r = client.post(
            "/query/locate", content=body, headers={**auth("a_planner"), "Content-Type": ctype}
        )
        assert r.status_code == 422, (body, r.status_code)
        assert r.headers["content-type"].startswith("application/problem+json")


def test_full_batch_of_10000_with_addresses(
    client: TestClient, places: list[tuple[float, float]]
) -> None:
    """The largest batch, as a hotline CSV with long addresses (over the 1 MB default body cap)."""
    address = "湖南省株洲市石峰区" + "某某路某某号某某小区某栋某单元" * 4
    rows = [
        f"{i},{address},{places[i % len(places)][0]},{places[i % len(places)][1]}"
        for i in range(10_000)
    ]
    body = ("工单号,事发地址,lng,lat\n" + "\n".join(rows)).encode()
    assert len(body) > 1_048_576
    r = client.post(
        "/query/locate", content=body, headers={**auth("a_planner"), "Content-Type": "text/csv"}
    )
    assert r.status_code == 200, r.text[:300]
    doc = r.json()
    assert doc["count"] == 10_000
    assert doc["found"] == 10_000
    assert doc["results"][len(places)]["grid_code"] == doc["results"][0]["grid_code"]
