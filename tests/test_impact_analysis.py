"""Impact analysis: totals against an independent geopandas computation on the same rows,
reconciliation of totals with the per-grid rows, footprints from warnings, zones and raster
thresholds, shelter assignment within capacity, contacts masked by role, the 转移清单."""

from __future__ import annotations

import csv
import io
import random
from typing import Any

import geopandas as gpd
import numpy as np
import openpyxl
import psycopg
import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import mapping

from gis_service.impact.analysis import COLUMNS, assign_shelters
from tests.fixtures import auth

STRUCTS = ("masonry", "reinforced_concrete", "steel", "wood", "other")


def _conninfo(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


def _frame(conn: psycopg.Connection[Any], sql: str) -> gpd.GeoDataFrame:
    cur = conn.execute(sql)
    cols = [d.name for d in cur.description or []]
    rows = cur.fetchall()
    data = {c: [r[i] for r in rows] for i, c in enumerate(cols) if c != "wkb"}
    geoms = shapely.from_wkb([bytes(r[cols.index("wkb")]) for r in rows])
    return gpd.GeoDataFrame(data, geometry=list(geoms), crs="EPSG:4490")


@pytest.fixture(scope="module")
def exposure(demo_url: str) -> dict[str, gpd.GeoDataFrame]:
    """The exposure rows of 石峰区 (the commander's area), read straight from PostGIS."""
    scope = "admin_code LIKE '430204%'"
    with psycopg.connect(_conninfo(demo_url)) as conn:
        return {
            "building": _frame(
                conn,
                "SELECT grid_code, admin_code, structure, households, population,"
                f" ST_AsBinary(geom) AS wkb FROM building WHERE {scope}",
            ),
            "facility": _frame(
                conn,
                "SELECT grid_code, admin_code, kind, coalesce(people, 0) AS people,"
                f" ST_AsBinary(geom) AS wkb FROM facility WHERE {scope}",
            ),
            "enterprise": _frame(
                conn,
                "SELECT grid_code, admin_code, risk_level, ST_AsBinary(geom) AS wkb"
                f" FROM enterprise WHERE {scope}",
            ),
            "geohazard_point": _frame(
                conn,
                "SELECT grid_code, admin_code, threatened_people, threatened_households,"
                f" ST_AsBinary(geom) AS wkb FROM geohazard_point WHERE NOT closed AND {scope}",
            ),
        }


@pytest.fixture(scope="module")
def area(exposure: dict[str, gpd.GeoDataFrame]) -> shapely.Polygon:
    """A ~10 km² polygon around a threatened geohazard point and the nearest orange firm."""
    gp = exposure["geohazard_point"].sort_values("threatened_people").iloc[-1].geometry
    ent = exposure["enterprise"]
    firms = ent[ent.risk_level.isin(["red", "orange"])]
    metric = firms.to_crs(4547).distance(gpd.GeoSeries([gp], crs=4490).to_crs(4547).iloc[0])
    firm = firms.geometry.iloc[int(np.argmin(metric))]
    hull = shapely.MultiPoint([gp, firm]).convex_hull.buffer(0.012)
    return shapely.Polygon(np.round(np.asarray(hull.exterior.coords), 6))


def _expected(exposure: dict[str, gpd.GeoDataFrame], poly: Any) -> dict[str, dict[str, int]]:
    """Per-grid counts computed with geopandas (intersects), independent of the service."""
    out: dict[str, dict[str, int]] = {}

    def row(g: str | None, v: str | None) -> dict[str, int]:
        return out.setdefault(g or f"-{v}", dict.fromkeys(COLUMNS, 0))

    b = exposure["building"]
    for r in b[b.intersects(poly)].itertuples():
        d = row(r.grid_code, r.admin_code)
        d["buildings"] += 1
        d[f"buildings_{r.structure if r.structure in STRUCTS else 'unknown'}"] += 1
        d["households"] += r.households
        d["population"] += r.population
    f = exposure["facility"]
    for r in f[f.intersects(poly)].itertuples():
        d = row(r.grid_code, r.admin_code)
        d["facilities"] += 1
        kind = r.kind if r.kind in ("school", "hospital", "welfare_home") else "other"
        d[f"facilities_{kind}"] += 1
        d["facilities_people"] += r.people
    e = exposure["enterprise"]
    for r in e[e.intersects(poly)].itertuples():
        d = row(r.grid_code, r.admin_code)
        d["enterprises"] += 1
        d[f"enterprises_{r.risk_level}"] += 1
    g = exposure["geohazard_point"]
    for r in g[g.intersects(poly)].itertuples():
        d = row(r.grid_code, r.admin_code)
        d["geohazard_points"] += 1
        d["geohazard_threatened_people"] += r.threatened_people
        d["geohazard_threatened_households"] += r.threatened_households
    return out


def _post(client: TestClient, body: dict[str, Any], login: str = "a_commander", **kw: Any) -> Any:
    return client.post("/analysis/impact", json=body, headers=auth(login), **kw)


def test_polygon_impact_matches_geopandas(
    client: TestClient, exposure: dict[str, gpd.GeoDataFrame], area: shapely.Polygon
) -> None:
    r = _post(client, {"geometry": mapping(area)})
    assert r.status_code == 200, r.text
    doc = r.json()
    want = _expected(exposure, area)
    got = {g["grid_code"] or f"-{g['village_code']}": g for g in doc["by_grid"]}
    assert set(got) == set(want)
    for key, w in want.items():
        assert {c: got[key][c] for c in COLUMNS} == w, key
    totals = {c: sum(w[c] for w in want.values()) for c in COLUMNS}
    assert doc["totals"] == totals
    assert totals["buildings"] > 100
    assert totals["geohazard_points"] >= 1
    assert totals["enterprises_red"] + totals["enterprises_orange"] >= 1
    # Reconciliation: totals = Σ per grid = Σ per village, exactly.
    for c in COLUMNS:
        assert sum(g[c] for g in doc["by_grid"]) == doc["totals"][c]
        assert sum(v[c] for v in doc["by_village"]) == doc["totals"][c]
    assert len(doc["enterprises"]) == totals["enterprises_red"] + totals["enterprises_orange"]
    assert len(doc["geohazard_points"]) == totals["geohazard_points"]
    assert doc["footprint"]["kind"] == "geometry"
    assert doc["footprint"]["area_km2"] == pytest.approx(
        gpd.GeoSeries([area], crs=4490).to_crs(4547).area.iloc[0] / 1e6, rel=0.01
    )


def test_contacts_and_masking(client: TestClient, area: shapely.Polygon) -> None:
    doc = _post(client, {"geometry": mapping(area)}).json()
    roles = {c["role"] for c in doc["contacts"]}
    assert {"grid_worker", "responsible"} <= roles
    duties = {c["duty"] for c in doc["contacts"] if c["role"] == "responsible"}
    assert "monitor" in duties
    assert "prevention_lead" in duties
    grids = {g["grid_code"] for g in doc["by_grid"] if g["grid_code"]}
    workers = {c["grid_code"] for c in doc["contacts"] if c["role"] == "grid_worker"}
    assert workers <= grids
    assert workers
    assert any(c["phone"] and "*" not in c["phone"] for c in doc["contacts"])
    masked = _post(client, {"geometry": mapping(area)}, login="a_viewer").json()
    assert masked["totals"] == doc["totals"]
    assert all("*" in (c["phone"] or "*") for c in masked["contacts"])


def test_shelters_outside_and_within_capacity(client: TestClient, area: shapely.Polygon) -> None:
    doc = _post(client, {"geometry": mapping(area), "shelters": 5}).json()
    assert doc["shelters"]
    for s in doc["shelters"]:
        assert not area.intersects(shapely.Point(s["lon"], s["lat"]))
        assert s["assigned"] <= s["remaining"]
    listed = {s["id"]: s for s in doc["shelters"]}
    per_shelter: dict[int, int] = {}
    for a in doc["assignment"]:
        per_shelter[a["shelter_id"]] = per_shelter.get(a["shelter_id"], 0) + a["people"]
    for sid, n in per_shelter.items():
        assert n == listed[sid]["assigned"] <= listed[sid]["remaining"]
    placed = sum(a["people"] for a in doc["assignment"]) + sum(
        u["people"] for u in doc["unassigned"]
    )
    assert placed == doc["totals"]["population"] - sum(
        g["population"] for g in doc["by_grid"] if not g["village_code"]
    )


def test_assignment_never_exceeds_capacity() -> None:
    rng = random.Random(7)
    for _ in range(300):
        villages = [(f"v{i}", rng.randint(0, 3000)) for i in range(rng.randint(1, 12))]
        capacity = {s: rng.randint(0, 2500) for s in range(rng.randint(0, 10))}
        distance = {
            (v, s): rng.uniform(10, 9000)
            for v, _ in villages
            for s in capacity
            if rng.random() < 0.8
        }
        plan, short = assign_shelters(villages, capacity, distance)
        used: dict[int, int] = {}
        for v, s, n in plan:
            assert n > 0
            assert (v, s) in distance
            used[s] = used.get(s, 0) + n
        assert all(used[s] <= capacity[s] for s in used)
        need = dict(villages)
        for v, n in need.items():
            moved = sum(p for vv, _, p in plan if vv == v)
            assert moved + short.get(v, 0) == n
        # nobody is left short while a reachable shelter still has room
        for v in short:
            assert all(capacity[s] - used.get(s, 0) == 0 for (vv, s) in distance if vv == v)


def test_zone_and_raster_footprints(client: TestClient, demo_url: str) -> None:
    with psycopg.connect(_conninfo(demo_url)) as conn:
        zone_id, people = conn.execute(
            "SELECT id, people FROM geohazard_zone ORDER BY people DESC LIMIT 1"
        ).fetchone() or (0, 0)
        conn.execute("DELETE FROM hazard_footprint")
        conn.commit()
    doc = _post(client, {"zone_id": zone_id}).json()
    assert doc["footprint"]["kind"] == "zone"
    assert doc["totals"]["population"] >= people
    raster = {"raster": {"layer": "flood_depth_p50", "min": 0.5}}
    first = _post(client, raster)
    assert first.status_code == 200, first.text
    by_class = _post(client, {"raster": {"layer": "flood_depth_p50", "class": "d05"}}).json()
    assert by_class["totals"] == first.json()["totals"]
    assert first.json()["totals"]["buildings"] > 0
    with psycopg.connect(_conninfo(demo_url)) as conn:
        (n,) = conn.execute("SELECT count(*) FROM hazard_footprint").fetchone() or (0,)
    assert n == 1  # polygonised once, reused by the class request
    deeper = _post(client, {"raster": {"layer": "flood_depth_p50", "min": 2.0}}).json()
    assert deeper["totals"]["buildings"] <= first.json()["totals"]["buildings"]
    # Independent check: the footprint's area equals the area of the cells at ≥ 0.5 m.
    zonal = client.get(
        "/rasters/flood_depth_p50/zonal", params={"by": "village"}, headers=auth("a_planner")
    ).json()
    wet = sum(v for r in zonal["rows"] for k, v in r["classes"].items() if k != "d005")
    assert first.json()["footprint"]["area_km2"] == pytest.approx(wet, rel=0.05)


def test_downloads(client: TestClient, area: shapely.Polygon) -> None:
    body = {"geometry": mapping(area)}
    doc = _post(client, body).json()
    r = _post(client, body, params={"format": "csv"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][:2] == ["村社区代码", "村（社区）"]
    populated = [g for g in doc["by_grid"] if g["population"] or g["households"]]
    assert len(rows) - 1 == len(populated)
    assert sum(int(x[5]) for x in rows[1:]) == doc["totals"]["population"]
    x = _post(client, body, params={"format": "xlsx"})
    wb = openpyxl.load_workbook(io.BytesIO(x.content))
    assert wb.sheetnames[:3] == ["转移清单", "按村社区", "按网格"]


def test_scope(client: TestClient, area: shapely.Polygon, demo_url: str) -> None:
    other = _post(client, {"geometry": mapping(area)}, login="b_surveyor").json()
    assert all(v == 0 for v in other["totals"].values())
    assert other["contacts"] == []
    assert other["shelters"] == []
    with psycopg.connect(_conninfo(demo_url)) as conn:
        (zone_id,) = conn.execute("SELECT min(id) FROM geohazard_zone").fetchone() or (0,)
    assert _post(client, {"zone_id": zone_id}, login="b_surveyor").status_code == 404
    r = _post(client, {"raster": {"layer": "flood_depth_p50", "min": 0.5}}, login="b_surveyor")
    assert r.status_code == 404


BOWTIE = {"type": "Polygon", "coordinates": [[[113.1, 27.9], [113.2, 28.0], [113.2, 27.9], [113.1, 28.0], [113.1, 27.9]]]}  # fmt: skip


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"geometry": BOWTIE}, 422, "body.geometry"),
        (
            {
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[100, 20], [120, 20], [120, 40], [100, 20]]],
                }
            },
            413,
            "body.geometry",
        ),
        ({"geometry": {"type": "Point", "coordinates": [113.1, 27.9]}}, 422, "body.geometry"),
        ({"raster": {"layer": "nope", "min": 1}}, 404, "body.raster.layer"),
        ({"raster": {"layer": "geohazard_risk_zones", "min": 1}}, 404, "body.raster.layer"),
        ({"raster": {"layer": "flood_depth_p50", "min": 99}}, 422, "body.raster.min"),
        ({"raster": {"layer": "flood_depth_p50", "class": "zzz"}}, 422, "body.raster.class"),
        ({"raster": {"layer": "flood_depth_p50"}}, 422, "body.raster"),
        ({"raster": {"layer": "flood_depth_p50", "min": 2, "max": 1}}, 422, "body.raster"),
        ({"warning_id": 999999999}, 404, "body.warning_id"),
        ({"zone_id": 0}, 422, "body.zone_id"),
        ({}, 422, "body"),
        ({"zone_id": 1, "warning_id": 1}, 422, "body"),
        ({"zone_id": 1, "extra": 1}, 422, "body.extra"),
    ],
)
def test_bad_inputs(client: TestClient, body: dict[str, Any], status: int, field: str) -> None:
    r = _post(client, body)
    assert r.status_code == status, r.text
    assert field in r.text


def test_nan_threshold_is_refused(client: TestClient) -> None:
    r = client.post(
        "/analysis/impact",
        content=b'{"raster": {"layer": "flood_depth_p50", "min": NaN}}',
        headers={**auth("a_commander"), "content-type": "application/json"},
    )
    assert r.status_code == 422
    assert "min" in r.text
