"""POST /query/area against shapely on the same rows: counts, sums, by grid and village, scope."""

from __future__ import annotations

import csv
import io
from collections import Counter
from typing import Any

import numpy as np
import openpyxl
import psycopg
import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import box, mapping

from gis_service import crs
from tests.fixtures import auth
from tests.test_query_oracle import Rows, in_scope, metres, read, scope_villages

#: layer → (table, category column, sums, where)
SPEC: dict[str, tuple[str, str, tuple[str, ...], str]] = {
    "buildings": ("building", "structure", ("households", "population"), "TRUE"),
    "enterprises": ("enterprise", "risk_level", (), "TRUE"),
    "safety_hazards": ("safety_hazard", "status", (), "TRUE"),
    "geohazard_points": ("geohazard_point", "danger_grade", ("threatened_people",), "NOT closed"),
    "shelters": ("shelter", "status", ("capacity",), "TRUE"),
    "facilities": ("facility", "kind", ("people",), "TRUE"),
}


def _rows(conn: psycopg.Connection[Any], layer: str, scope: str | None) -> Rows:
    table, cat, sums, where = SPEC[layer]
    return in_scope(
        read(conn, table, ("admin_code", "grid_code", cat, *sums), where),
        scope_villages(conn, scope),
    )


def _expect(rows: Rows, layer: str, mask: np.ndarray[Any, Any]) -> dict[str, int]:
    _, cat, sums, _ = SPEC[layer]
    sel = rows.where(mask)
    out: dict[str, int] = {layer: len(sel.ids)}
    for c, n in Counter(v if v is not None else "unknown" for v in sel.cols[cat]).items():
        out[f"{layer}_{c}"] = n
    for s in sums:
        out[f"{layer}_{s}"] = int(sum(v or 0 for v in sel.cols[s]))
    return out


def _check(got: dict[str, int], want: dict[str, int]) -> None:
    for k, v in want.items():
        assert got.get(k, 0) == v, (k, got.get(k), v)


@pytest.fixture(scope="module")
def square(demo_url: str) -> shapely.Polygon:
    """About 2 km × 2 km around the densest enterprise cluster of 石峰区."""
    from gis_service.demo.loader import psycopg_conninfo

    with psycopg.connect(psycopg_conninfo(demo_url)) as c:
        row = c.execute(
            "SELECT ST_X(e.geom), ST_Y(e.geom) FROM enterprise e WHERE e.admin_code LIKE '430204%'"
            " ORDER BY (SELECT count(*) FROM building b WHERE ST_DWithin(b.geom, e.geom, 0.01)) DESC, e.id LIMIT 1"
        ).fetchone()
    assert row is not None
    x, y = float(row[0]), float(row[1])
    return box(x - 0.01, y - 0.009, x + 0.01, y + 0.009)


def test_polygon_area_matches_shapely(
    client: TestClient, conn: psycopg.Connection[Any], square: shapely.Polygon
) -> None:
    r = client.post(
        "/query/area",
        json={"geometry": mapping(square), "lists": ["enterprises"]},
        headers=auth("a_commander"),
    )
    assert r.status_code == 200, r.text
    doc = r.json()
    for layer in SPEC:
        rows = _rows(conn, layer, "430204")
        mask = shapely.intersects(rows.geoms, square)
        want = _expect(rows, layer, mask)
        _check(doc["totals"], want)
        # per grid and per village
        for key, col, ukey in (
            ("by_grid", "grid_code", "grid_code"),
            ("by_village", "admin_code", "village_code"),
        ):
            units = {u[ukey]: u for u in doc[key]}
            for code in set(np.array(rows.cols[col], dtype=object)[mask]):
                _check(
                    units[code],
                    _expect(rows, layer, mask & np.array([c == code for c in rows.cols[col]])),
                )
    ent = _rows(conn, "enterprises", "430204")
    assert {f["id"] for f in doc["lists"]["enterprises"]["features"]} == set(
        ent.ids[shapely.intersects(ent.geoms, square)].tolist()
    )
    # grids touched: the current grids of my area meeting the square, with their staff unmasked
    grids = in_scope(
        read(conn, "grid", ("grid_code", "community_code"), "valid_to IS NULL"),
        scope_villages(conn, "430204"),
        "community_code",
    )
    touched = {
        c for c, g in zip(grids.cols["grid_code"], grids.geoms, strict=True) if g.intersects(square)
    }
    assert {g["grid_code"] for g in doc["grids"]} == touched
    assert all(len(g["staff"]) == 2 for g in doc["grids"])
    assert doc["area"]["area_km2"] == pytest.approx(crs.area_m2(square) / 1e6, rel=1e-3)


def test_gcj02_polygon_gives_the_same_answer(client: TestClient, square: shapely.Polygon) -> None:
    a = client.post(
        "/query/area", json={"geometry": mapping(square)}, headers=auth("a_viewer")
    ).json()
    x, y = np.asarray(square.exterior.coords).T
    gx, gy = crs.wgs84_to_gcj02(x, y)
    g = {"type": "Polygon", "coordinates": [list(zip(gx.tolist(), gy.tolist(), strict=True))]}
    b = client.post(
        "/query/area", json={"geometry": g, "crs": "gcj02"}, headers=auth("a_viewer")
    ).json()
    assert a["totals"] == b["totals"]
    bx, by = crs.wgs84_to_bd09(x, y)
    g = {"type": "Polygon", "coordinates": [list(zip(bx.tolist(), by.tolist(), strict=True))]}
    c = client.post(
        "/query/area", json={"geometry": g, "crs": "bd09"}, headers=auth("a_viewer")
    ).json()
    assert a["totals"] == c["totals"]


def test_viewer_sees_masked_staff(client: TestClient, square: shapely.Polygon) -> None:
    doc = client.post(
        "/query/area", json={"geometry": mapping(square)}, headers=auth("a_viewer")
    ).json()
    assert all("*" in s["phone"] for g in doc["grids"] for s in g["staff"])


def test_admin_and_grid_code_areas_follow_the_stamps(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    town = "430204001"
    doc = client.post("/query/area", json={"admin_code": town}, headers=auth("a_planner")).json()
    units = scope_villages(conn, town)
    for layer in SPEC:
        rows = _rows(conn, layer, "430204")
        _check(
            doc["totals"],
            _expect(
                rows, layer, np.array([c in units for c in rows.cols["admin_code"]], dtype=bool)
            ),
        )
    grid = doc["by_grid"][0]["grid_code"]
    doc = client.post("/query/area", json={"grid_code": grid}, headers=auth("a_planner")).json()
    rows = _rows(conn, "buildings", "430204")
    _check(
        doc["totals"],
        _expect(
            rows, "buildings", np.array([c == grid for c in rows.cols["grid_code"]], dtype=bool)
        ),
    )
    assert [g["grid_code"] for g in doc["grids"]] == [grid]


def test_buffer_around_a_geohazard_point(client: TestClient, conn: psycopg.Connection[Any]) -> None:
    pts = read(conn, "geohazard_point", ("admin_code",), "NOT closed")
    pid, p = int(pts.ids[0]), pts.geoms[0]
    r = client.post(
        "/query/area",
        json={
            "around": {"layer": "geohazard_points", "id": pid, "radius_m": 1000},
            "lists": ["buildings"],
        },
        headers=auth("a_commander"),
    )
    assert r.status_code == 200, r.text
    got = {f["id"] for f in r.json()["lists"]["buildings"]["features"]}
    b = _rows(conn, "buildings", "430204")
    d = metres(p.x, p.y, b.geoms)
    # ST_Buffer's polygon is inscribed in the circle: a 1 km radius loses at most ~5 m at chords.
    assert set(b.ids[d <= 990].tolist()) <= got <= set(b.ids[d <= 1001].tolist())
    assert r.json()["area"]["around"]["id"] == pid


def test_scope_filters_aggregates(client: TestClient, demo_url: str) -> None:
    from gis_service.demo.loader import psycopg_conninfo

    with psycopg.connect(psycopg_conninfo(demo_url)) as c:
        row = c.execute(
            "SELECT ST_X(geom), ST_Y(geom) FROM enterprise WHERE uscc = '91430202TEST00001S'"
        ).fetchone()
    assert row is not None
    sq = mapping(box(row[0] - 0.02, row[1] - 0.02, row[0] + 0.02, row[1] + 0.02))
    counts = {
        login: client.post("/query/area", json={"geometry": sq}, headers=auth(login)).json()[
            "totals"
        ]["enterprises_orange"]
        for login in ("a_viewer", "sibling_surveyor", "city_surveyor", "b_surveyor")
    }
    test_orange = 1  # the sibling county's test enterprise is orange
    assert counts["sibling_surveyor"] == test_orange
    assert counts["b_surveyor"] == 0
    assert counts["city_surveyor"] == counts["a_viewer"] + test_orange
    # Codes and features outside my area answer 404, not an empty summary.
    assert (
        client.post(
            "/query/area", json={"admin_code": "430202"}, headers=auth("a_viewer")
        ).status_code
        == 404
    )
    assert (
        client.post(
            "/query/area", json={"grid_code": "440304001001001"}, headers=auth("a_viewer")
        ).status_code
        == 404
    )


def test_area_downloads(client: TestClient, square: shapely.Polygon) -> None:
    body = {"geometry": mapping(square), "lists": ["shelters", "enterprises"]}
    doc = client.post("/query/area", json=body, headers=auth("a_planner")).json()
    r = client.post("/query/area?format=csv", json=body, headers=auth("a_planner"))
    assert r.status_code == 200
    assert r.headers["content-disposition"].endswith('.csv"')
    table = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [t["网格编码"] for t in table] == [g["grid_code"] or "" for g in doc["by_grid"]]
    assert sum(int(t["户数"]) for t in table) == doc["totals"]["buildings_households"]
    r = client.post("/query/area?format=xlsx", json=body, headers=auth("a_planner"))
    wb = openpyxl.load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames[:4] == ["汇总", "按网格", "按村社区", "网格员网格长"]
    assert wb["网格员网格长"].max_row == 1 + sum(len(g["staff"]) for g in doc["grids"])
    assert wb["生产经营单位"].max_row == 1 + len(doc["lists"]["enterprises"]["features"])
