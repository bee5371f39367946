"""OGC API Features (/ogc) in-process: documents, items against shapely/Python on the same rows,
CRS (Part 2), CQL2 (Part 3), scope, and the section-B hostile inputs."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import psycopg
import pyproj
import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import box

from gis_service.registry import load_registry
from tests.fixtures import auth
from tests.test_query_oracle import counting_sql, in_scope, read, scope_villages

H = auth("a_viewer")


@pytest.fixture
def count_sql(client: TestClient) -> Any:
    """``with count_sql() as statements:`` lists the SQL the app runs (auth excluded)."""
    return lambda: counting_sql(client)


BOX = (113.10, 27.85, 113.16, 27.90)


def _all_pages(
    client: TestClient, url: str, headers: dict[str, str] = H
) -> tuple[list[dict[str, Any]], int]:
    feats: list[dict[str, Any]] = []
    pages = 0
    while url:
        r = client.get(url, headers=headers)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/geo+json")
        doc = r.json()
        feats.extend(doc["features"])
        nxt = [x["href"] for x in doc["links"] if x["rel"] == "next"]
        url = f"{urlsplit(nxt[0]).path}?{urlsplit(nxt[0]).query}" if nxt else ""
        pages += 1
        assert pages < 200
    return feats, pages


def test_landing_conformance_collections(client: TestClient) -> None:
    land = client.get("/ogc", headers=H).json()
    rels = {x["rel"] for x in land["links"]}
    assert {"self", "conformance", "data", "service-desc"} <= rels
    conf = client.get("/ogc/conformance", headers=H).json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conf
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in conf
    cols = client.get("/ogc/collections", headers=H).json()["collections"]
    want = {s.name for s in load_registry() if s.table is not None}
    assert {c["id"] for c in cols} == want
    ent = client.get("/ogc/collections/enterprises", headers=H).json()
    assert "http://www.opengis.net/def/crs/EPSG/0/3857" in ent["crs"]
    assert ent["extent"]["spatial"]["bbox"][0][0] == pytest.approx(113.033, abs=0.01)  # 石峰区
    q = client.get("/ogc/collections/enterprises/queryables", headers=H).json()
    assert q["properties"]["risk_level"]["type"] == "string"
    for path in (
        "/ogc?f=html",
        "/ogc/collections?f=html",
        "/ogc/collections/grids?f=html",
        "/ogc/collections/grids/items?f=html&limit=3",
    ):
        r = client.get(path, headers=H)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/html")
    assert (
        "网格"
        in client.get(
            "/ogc/collections/grids/items?limit=2", headers={**H, "Accept": "text/html"}
        ).text
    )


def test_items_bbox_paging_matches_shapely(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    rows = in_scope(
        read(conn, "building", ("admin_code", "households")), scope_villages(conn, "430204")
    )
    want = set(rows.ids[shapely.intersects(rows.geoms, box(*BOX))].tolist())
    bbox = ",".join(map(str, BOX))
    feats, pages = _all_pages(client, f"/ogc/collections/buildings/items?bbox={bbox}&limit=1000")
    assert {f["id"] for f in feats} == want
    assert len(feats) == len(want)
    assert pages == len(want) // 1000 + 1
    first = client.get(f"/ogc/collections/buildings/items?bbox={bbox}&limit=5", headers=H).json()
    assert first["numberMatched"] == len(want)
    assert first["numberReturned"] == 5
    g = shapely.geometry.shape(feats[0]["geometry"])
    assert g.intersects(box(*BOX))


def test_property_filters_sort_properties_and_cql2(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    rows = in_scope(
        read(conn, "enterprise", ("admin_code", "risk_level", "employees", "sector", "name")),
        scope_villages(conn, "430204"),
    )
    c = rows.cols
    orange = {int(i) for i, r in zip(rows.ids, c["risk_level"], strict=True) if r == "orange"}
    feats, _ = _all_pages(client, "/ogc/collections/enterprises/items?risk_level=orange&limit=50")
    assert {f["id"] for f in feats} == orange
    expr = {
        int(i)
        for i, r, e, s in zip(rows.ids, c["risk_level"], c["employees"], c["sector"], strict=True)
        if (r in ("red", "orange") or (e is not None and e > 200)) and s != "other"
    }
    cql = "(risk_level IN ('red','orange') OR employees > 200) AND NOT sector = 'other'"
    feats, _ = _all_pages(client, f"/ogc/collections/enterprises/items?filter={cql}&limit=100")
    assert {f["id"] for f in feats} == expr
    like = {int(i) for i, n in zip(rows.ids, c["name"], strict=True) if "化工" in n}
    feats, _ = _all_pages(
        client, "/ogc/collections/enterprises/items?filter=name LIKE '%化工%'&limit=100"
    )
    assert {f["id"] for f in feats} == like
    r = client.get(
        "/ogc/collections/enterprises/items?sortby=-employees,id&properties=name,employees&limit=20",
        headers=H,
    ).json()
    emp = [f["properties"]["employees"] for f in r["features"]]
    known = sorted((e for e in c["employees"] if e is not None), reverse=True)[:20]
    assert emp == known
    assert set(r["features"][0]["properties"]) == {"name", "employees"}


def test_datetime_on_a_time_column(client: TestClient, conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute(
        "SELECT id, found_at FROM safety_hazard WHERE admin_code LIKE '430204%'"
    ).fetchall()
    lo, hi = dt.datetime(2025, 1, 1, tzinfo=dt.UTC), dt.datetime(2025, 7, 1, tzinfo=dt.UTC)
    want = {i for i, t in rows if lo <= t < hi}
    feats, _ = _all_pages(
        client,
        "/ogc/collections/safety_hazards/items?datetime=2025-01-01T00:00:00Z/2025-06-30T23:59:59.999999Z&limit=1000",
    )
    assert {f["id"] for f in feats} == want
    since = {i for i, t in rows if t >= lo}
    feats, _ = _all_pages(
        client, "/ogc/collections/safety_hazards/items?datetime=2025-01-01T00:00:00Z/..&limit=1000"
    )
    assert {f["id"] for f in feats} == since
    assert (
        client.get("/ogc/collections/townships/items?datetime=2025-01-01", headers=H).status_code
        == 400
    )


def test_crs_part2(client: TestClient, conn: psycopg.Connection[Any]) -> None:
    one = client.get("/ogc/collections/shelters/items?limit=1", headers=H).json()["features"][0]
    lon, lat = one["geometry"]["coordinates"]
    r = client.get(
        f"/ogc/collections/shelters/items/{one['id']}?crs=http://www.opengis.net/def/crs/EPSG/0/4490",
        headers=H,
    )
    assert r.headers["content-crs"] == "<http://www.opengis.net/def/crs/EPSG/0/4490>"
    assert r.json()["geometry"]["coordinates"] == pytest.approx([lat, lon])
    r = client.get(
        f"/ogc/collections/shelters/items/{one['id']}?crs=http://www.opengis.net/def/crs/EPSG/0/3857",
        headers=H,
    )
    x, y = pyproj.Transformer.from_crs(4490, 3857, always_xy=True).transform(lon, lat)
    assert r.json()["geometry"]["coordinates"] == pytest.approx([x, y], abs=0.01)
    # bbox given in EPSG:4490 (lat, lon order) and in 3857 select the same shelters as CRS84.
    a = client.get(
        f"/ogc/collections/shelters/items?bbox={','.join(map(str, BOX))}", headers=H
    ).json()
    b = client.get(
        f"/ogc/collections/shelters/items?bbox={BOX[1]},{BOX[0]},{BOX[3]},{BOX[2]}&bbox-crs=http://www.opengis.net/def/crs/EPSG/0/4490",
        headers=H,
    ).json()
    assert [f["id"] for f in a["features"]] == [f["id"] for f in b["features"]]
    t = pyproj.Transformer.from_crs(4490, 3857, always_xy=True)
    x0, y0 = t.transform(BOX[0], BOX[1])
    x1, y1 = t.transform(BOX[2], BOX[3])
    c = client.get(
        f"/ogc/collections/shelters/items?bbox={x0},{y0},{x1},{y1}&bbox-crs=EPSG:3857", headers=H
    ).json()
    assert [f["id"] for f in a["features"]] == [f["id"] for f in c["features"]]


def test_scope_of_items(client: TestClient, conn: psycopg.Connection[Any]) -> None:
    mine = client.get("/ogc/collections/enterprises/items?limit=1000", headers=H).json()
    assert mine["numberMatched"] == 379
    foreign = client.get(
        "/ogc/collections/enterprises/items?limit=1000", headers=auth("b_surveyor")
    ).json()
    assert [f["properties"]["name"] for f in foreign["features"]] == ["福田测试化工有限公司"]
    fid = mine["features"][0]["id"]
    assert (
        client.get(
            f"/ogc/collections/enterprises/items/{fid}", headers=auth("b_surveyor")
        ).status_code
        == 404
    )
    assert client.get(f"/ogc/collections/enterprises/items/{fid}", headers=H).status_code == 200
    towns = client.get("/ogc/collections/townships/items", headers=H).json()
    assert sorted(f["properties"]["code"] for f in towns["features"]) == [
        f"4302040{n:02d}" for n in (1, 2, 3, 4, 5)
    ] + ["430204100"]
    grids = client.get("/ogc/collections/grids/items?limit=1000", headers=auth("b_surveyor")).json()
    assert [f["properties"]["grid_code"] for f in grids["features"]] == ["440304001001001"]


@pytest.mark.parametrize(
    "query",
    [
        "limit=unlimited",
        "limit=-1",
        "limit=1.5",
        "limit=0",
        "foo=1",
        "limit=1&limit=9999",
        "bbox=1,2,3",
        "bbox=a,b,c,d",
        "bbox=113,27,nan,28",
        "bbox=113,28,112,27",
        "bbox=113,27,114,28&bbox-crs=EPSG:999",
        "crs=EPSG:4326x",
        "offset=99999999999",
        "sortby=password",
        "sortby=name;drop table enterprise",
        "properties=uscc,geom",
        "risk_level=red&risk_level=blue",
        "employees=many",
        "datetime=yesterday",
        "filter=name = 'a' OR 1=1",
        "filter=pg_sleep(10) = 1",
        "filter=id = 1; DROP TABLE enterprise",
        "filter=employees > 'x'",
        "filter=" + "(" * 40 + "id = 1" + ")" * 40,
        "filter=" + " OR ".join(["id = 1"] * 200),
        "filter=admin_code = '430204'",
        "filter=name = 'unterminated",
        "filter-lang=cql2-json&filter=id=1",
        "f=xml",
    ],
)
def test_hostile_items_queries_are_400_without_sql(
    client: TestClient, query: str, count_sql: Any
) -> None:
    with count_sql() as statements:
        r = client.get(f"/ogc/collections/enterprises/items?{query}", headers=H)
    assert r.status_code == 400, (query, r.status_code, r.text[:200])
    assert r.headers["content-type"].startswith("application/problem+json")
    assert statements == [], statements
    body = r.text.lower()
    assert "select" not in body
    assert "traceback" not in body


def test_limit_is_clamped_not_refused(client: TestClient) -> None:
    r = client.get("/ogc/collections/buildings/items?limit=1000000000000", headers=H)
    assert r.status_code == 200
    doc = r.json()
    assert doc["numberReturned"] == 1000
    nxt = next(x["href"] for x in doc["links"] if x["rel"] == "next")
    assert "limit=1000" in nxt


@pytest.mark.parametrize(
    "path",
    [
        "/ogc/collections/x%22%3Bdrop/items",
        "/ogc/collections/..%2F..%2Fetc/items",
        "/ogc/collections/app_user/items",
        "/ogc/collections/nope",
    ],
)
def test_unknown_collections(client: TestClient, path: str) -> None:
    assert client.get(path, headers=H).status_code in (404, 422)


def test_no_token_is_401(client: TestClient) -> None:
    assert client.get("/ogc/collections/enterprises/items").status_code == 401


def test_geometry_is_rfc7946(client: TestClient, conn: psycopg.Connection[Any]) -> None:
    feat = client.get("/ogc/collections/grids/items?limit=1", headers=H).json()["features"][0]
    got = shapely.geometry.shape(feat["geometry"])
    (wkb,) = conn.execute(
        "SELECT ST_AsBinary(geom) FROM grid WHERE id = %s", (feat["id"],)
    ).fetchone() or (None,)
    assert wkb is not None
    assert shapely.equals_exact(got, shapely.from_wkb(bytes(wkb)), tolerance=1e-7)
    assert (
        np.asarray(
            got.exterior.coords if got.geom_type == "Polygon" else got.geoms[0].exterior.coords
        )[0][0]
        > 100
    )
