"""Vector tiles against the demo database: content, positions, scope, cache and metadata.

Expected features are computed independently: rows fetched as WKB and tested with shapely
against tile bounds computed here with pyproj (not with PostGIS' ST_TileEnvelope).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from pathlib import Path
from typing import Any

import mapbox_vector_tile
import psycopg
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Transformer
from shapely.geometry import box

from tests.fixtures import auth

HALF = 20037508.342789244
TO_LONLAT = Transformer.from_crs(3857, 4326, always_xy=True)
TO_MERC = Transformer.from_crs(4326, 3857, always_xy=True)
CENTRE = (113.15, 27.95)  # inside 石峰区
FUTIAN = (114.05, 22.54)  # the foreign county of tests/fixtures.py


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


def merc_bounds(z: int, x: int, y: int, margin: float = 0.0) -> tuple[float, float, float, float]:
    size = 2 * HALF / 2**z
    x0, y1 = -HALF + x * size, HALF - y * size
    pad = size * margin
    return x0 - pad, y1 - size - pad, x0 + size + pad, y1 + pad


def lonlat_box(z: int, x: int, y: int, margin: float = 0.0) -> shapely.Polygon:
    x0, y0, x1, y1 = merc_bounds(z, x, y, margin)
    (w, e), (s, n) = TO_LONLAT.transform([x0, x1], [y0, y1])
    return box(w, s, e, n)


def decode(content: bytes) -> dict[str, Any]:
    return mapbox_vector_tile.decode(content, default_options={"y_coord_down": True})


def tile_point_to_lonlat(
    z: int, x: int, y: int, px: float, py: float, extent: int = 4096
) -> tuple[float, float]:
    x0, y0, x1, y1 = merc_bounds(z, x, y)
    mx = x0 + px / extent * (x1 - x0)
    my = y1 - py / extent * (y1 - y0)
    lon, lat = TO_LONLAT.transform(mx, my)
    return lon, lat


def rows(conn: psycopg.Connection[Any], sql: str, *params: Any) -> list[tuple[Any, ...]]:
    return conn.execute(sql, params).fetchall()


def get_tile(client: TestClient, path: str, login: str = "national_admin", **headers: str) -> Any:
    return client.get(path, headers={**auth(login), **headers})


# --------------------------------------------------------------------------- content
def test_grid_tile_holds_exactly_the_grids_it_covers(client: TestClient, conn: Any) -> None:
    z, x, y = tile_of(*CENTRE, 14)
    r = get_tile(client, f"/tiles/grids/{z}/{x}/{y}.mvt")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    layer = decode(r.content)["grids"]
    got = {f["id"]: f["properties"] for f in layer["features"]}
    db = rows(
        conn,
        "SELECT id, grid_code, name, households, ST_AsBinary(geom) FROM grid WHERE valid_to IS NULL",
    )
    geoms = {r[0]: shapely.from_wkb(bytes(r[4])) for r in db}
    inner, outer = lonlat_box(z, x, y), lonlat_box(z, x, y, margin=64 / 4096 + 0.001)
    must = {i for i, g in geoms.items() if g.intersects(inner)}
    may = {i for i, g in geoms.items() if g.intersects(outer)}
    assert must, "the test tile must hold grids"
    assert must <= set(got) <= may
    by_id = {r[0]: r for r in db}
    for fid, props in got.items():
        assert props["grid_code"] == by_id[fid][1]
        assert props["name"] == by_id[fid][2]
        assert props["households"] == by_id[fid][3]
        assert set(props) == {"grid_code", "name", "kind", "households", "population"}


def test_point_positions_match_the_database(client: TestClient, conn: Any) -> None:
    lon, lat = rows(
        conn, "SELECT ST_X(geom), ST_Y(geom) FROM enterprise WHERE source = 'demo' LIMIT 1"
    )[0]
    z, x, y = tile_of(lon, lat, 16)
    r = get_tile(client, f"/tiles/enterprises/{z}/{x}/{y}.mvt")
    assert r.status_code == 200
    features = decode(r.content)["enterprises"]["features"]
    db = {
        row[0]: row[1:]
        for row in rows(conn, "SELECT id, ST_X(geom), ST_Y(geom), name, risk_level FROM enterprise")
    }
    inner = lonlat_box(z, x, y)
    expected = {i for i, (px, py, *_) in db.items() if inner.contains(shapely.Point(px, py))}
    assert expected <= {f["id"] for f in features}
    metres_per_unit = 2 * HALF / 2**z / 4096
    for f in features:
        px, py = f["geometry"]["coordinates"]
        flon, flat = tile_point_to_lonlat(z, x, y, px, py)
        dlon, dlat, name, colour = db[f["id"]]
        (ax, bx), (ay, by) = TO_MERC.transform([flon, dlon], [flat, dlat])
        assert math.hypot(ax - bx, ay - by) <= 1.5 * metres_per_unit
        assert f["properties"]["name"] == name
        assert f["properties"]["risk_level"] == colour


def test_low_zoom_enterprises_are_aggregated_not_dropped(client: TestClient, conn: Any) -> None:
    z, x, y = tile_of(*CENTRE, 10)
    r = get_tile(client, f"/tiles/enterprises/{z}/{x}/{y}.mvt")
    assert r.status_code == 200
    features = decode(r.content)["enterprises"]["features"]
    got: Counter[str] = Counter()
    for f in features:
        got[f["properties"]["risk_level"]] += f["properties"]["count"]
    outer = lonlat_box(z, x, y, margin=64 / 4096)
    expected: Counter[str] = Counter(
        colour
        for px, py, colour in rows(
            conn, "SELECT ST_X(geom), ST_Y(geom), risk_level FROM enterprise"
        )
        if outer.contains(shapely.Point(px, py))
    )
    assert got == expected
    assert len(features) < sum(expected.values())


def test_composite_tile_and_duplicates(client: TestClient, conn: Any) -> None:
    lon, lat = rows(
        conn, "SELECT ST_X(geom), ST_Y(geom) FROM enterprise WHERE source = 'demo' LIMIT 1"
    )[0]
    z, x, y = tile_of(lon, lat, 14)
    both = decode(get_tile(client, f"/tiles/grids,enterprises/{z}/{x}/{y}.mvt").content)
    assert set(both) == {"grids", "enterprises"}
    single = get_tile(client, f"/tiles/grids/{z}/{x}/{y}.mvt")
    dup = get_tile(client, f"/tiles/grids,grids,grids/{z}/{x}/{y}.mvt")
    assert dup.status_code == 200
    assert dup.content == single.content
    # buildings start at z13: a composite at z12 still serves the grids part
    z12 = tile_of(*CENTRE, 12)
    part = get_tile(client, "/tiles/grids,buildings/{}/{}/{}.mvt".format(*z12))
    assert set(decode(part.content)) == {"grids"}


def test_every_layer_renders(client: TestClient) -> None:
    from gis_service.registry import load_registry

    for spec in load_registry():
        z = max(spec.minzoom, 12)
        r = get_tile(client, "/tiles/{}/{}/{}/{}.mvt".format(spec.name, *tile_of(*CENTRE, z)))
        assert r.status_code in (200, 204), (spec.name, r.text)
        if r.status_code == 200:
            assert set(decode(r.content)) == {spec.name}
            assert len(r.content) <= 500_000


def test_empty_tile_is_204(client: TestClient) -> None:
    r = get_tile(client, "/tiles/grids/14/0/0.mvt")
    assert r.status_code == 204
    assert r.content == b""
    assert r.headers["etag"]


def test_gzip_once(client: TestClient) -> None:
    import gzip

    z, x, y = tile_of(*CENTRE, 14)
    plain = get_tile(client, f"/tiles/buildings/{z}/{x}/{y}.mvt")
    zipped = get_tile(client, f"/tiles/buildings/{z}/{x}/{y}.mvt", **{"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["etag"] == plain.headers["etag"]
    # httpx decodes transparently; the bytes match the identity body
    assert zipped.content == plain.content
    assert gzip.decompress(gzip.compress(plain.content)) == plain.content


# --------------------------------------------------------------------------- scope
def test_scoped_users_see_only_their_area(client: TestClient, conn: Any) -> None:
    futian = "/tiles/grids,enterprises/{}/{}/{}.mvt".format(*tile_of(*FUTIAN, 14))
    district = "/tiles/grids,enterprises/{}/{}/{}.mvt".format(*tile_of(*CENTRE, 14))
    for _ in range(2):  # cold, then from the cache: bytes are never shared across scopes
        own = decode(get_tile(client, futian, "b_surveyor").content)
        assert {f["properties"]["grid_code"] for f in own["grids"]["features"]} == {
            "440304001001001"
        }
        assert get_tile(client, futian, "a_surveyor").status_code == 204
        assert get_tile(client, district, "b_surveyor").status_code == 204
        mine = decode(get_tile(client, district, "a_surveyor").content)
        allowed = {
            r[0]
            for r in rows(
                conn,
                "SELECT e.id FROM enterprise e JOIN admin_division d ON d.code = e.admin_code"
                " WHERE d.ancestors @> ARRAY['430204']",
            )
        }
        ids = {f["id"] for f in mine.get("enterprises", {"features": []})["features"]}
        assert ids <= allowed
        everyone = decode(get_tile(client, district, "national_admin").content)
        assert len(everyone["grids"]["features"]) >= len(mine["grids"]["features"])


def test_sibling_county_user_does_not_see_the_district(client: TestClient) -> None:
    r = get_tile(
        client, "/tiles/grids/{}/{}/{}.mvt".format(*tile_of(*CENTRE, 14)), "sibling_surveyor"
    )
    assert r.status_code == 204


# --------------------------------------------------------------------------- cache
def test_cache_hit_etag_and_304(client: TestClient) -> None:
    path = "/tiles/grids/{}/{}/{}.mvt".format(*tile_of(*CENTRE, 15))
    first = get_tile(client, path)
    second = get_tile(client, path)
    assert second.headers["x-tile-cache"] == "hit"
    assert second.headers["etag"] == first.headers["etag"]
    assert second.content == first.content
    assert "no-cache" in second.headers["cache-control"]
    assert "Authorization" in second.headers["vary"]
    cond = get_tile(client, path, **{"If-None-Match": first.headers["etag"]})
    assert cond.status_code == 304
    assert cond.content == b""
    stale = get_tile(client, path, **{"If-None-Match": '"not-the-tag"'})
    assert stale.status_code == 200


def test_edit_through_the_api_shows_on_the_next_request(client: TestClient, conn: Any) -> None:
    eid, lon, lat, name = rows(
        conn,
        "SELECT id, ST_X(geom), ST_Y(geom), name FROM enterprise WHERE admin_code LIKE '430204%%' LIMIT 1",
    )[0]
    path = "/tiles/enterprises/{}/{}/{}.mvt".format(*tile_of(lon, lat, 16))
    far = "/tiles/grids/{}/{}/{}.mvt".format(*tile_of(*FUTIAN, 14))
    before = get_tile(client, path)
    get_tile(client, far)
    assert get_tile(client, path).headers["x-tile-cache"] == "hit"
    current = client.get(f"/enterprises/{eid}", headers=auth("a_surveyor"))
    etag = current.headers["etag"]
    try:
        r = client.patch(
            f"/enterprises/{eid}",
            json={"name": "瓦片缓存测试企业"},
            headers={**auth("a_surveyor"), "If-Match": etag},
        )
        assert r.status_code == 200, r.text
        after = get_tile(client, path, **{"If-None-Match": before.headers["etag"]})
        assert after.status_code == 200
        assert after.headers["etag"] != before.headers["etag"]
        names = {
            f["id"]: f["properties"]["name"]
            for f in decode(after.content)["enterprises"]["features"]
        }
        assert names[eid] == "瓦片缓存测试企业"
        # a tile far from the edit stays cached (bbox invalidation, not a global flush)
        assert get_tile(client, far).headers["x-tile-cache"] == "hit"
    finally:
        etag = client.get(f"/enterprises/{eid}", headers=auth("a_surveyor")).headers["etag"]
        client.patch(
            f"/enterprises/{eid}",
            json={"name": name},
            headers={**auth("a_surveyor"), "If-Match": etag},
        )


def test_direct_sql_from_another_connection_invalidates(client: TestClient, demo_url: str) -> None:
    from gis_service.demo.loader import psycopg_conninfo

    lon, lat = CENTRE[0] + 0.0001, CENTRE[1] + 0.0001
    path = "/tiles/enterprises/{}/{}/{}.mvt".format(*tile_of(lon, lat, 16))

    def ids() -> set[int]:
        r = get_tile(client, path)
        return (
            {f["id"] for f in decode(r.content)["enterprises"]["features"]} if r.content else set()
        )

    before = ids()
    with psycopg.connect(psycopg_conninfo(demo_url), autocommit=True) as other:
        new_id = other.execute(
            "INSERT INTO enterprise (name, sector, risk_level, geom, source) VALUES"
            " ('直连插入测试', 'other', 'blue', ST_SetSRID(ST_MakePoint(%s, %s), 4490), 'test')"
            " RETURNING id",
            (lon, lat),
        ).fetchone()[0]
        try:
            assert ids() == before | {new_id}
        finally:
            other.execute("DELETE FROM enterprise WHERE id = %s", (new_id,))
        assert ids() == before


# --------------------------------------------------------------------------- metadata
def test_tilejson(client: TestClient) -> None:
    r = client.get("/tiles/grids,enterprises.json", headers=auth("a_surveyor"))
    assert r.status_code == 200
    tj = r.json()
    assert tj["tilejson"] == "3.0.0"
    assert tj["tiles"][0].endswith("/tiles/grids,enterprises/{z}/{x}/{y}.mvt")
    assert [v["id"] for v in tj["vector_layers"]] == ["grids", "enterprises"]
    assert tj["vector_layers"][1]["fields"]["risk_level"].startswith("风险等级")
    assert "count" in tj["vector_layers"][1]["fields"]
    w, s, e, n = tj["bounds"]
    assert 112 < w < e < 114.5
    assert 26 < s < n < 29
    assert tj["minzoom"] == 6
    assert tj["maxzoom"] == 22
    assert len(tj["center"]) == 3
    assert client.get("/tiles/nope.json", headers=auth("a_surveyor")).status_code == 404


def test_layers_catalogue(client: TestClient) -> None:
    body = client.get("/layers", headers=auth("a_viewer")).json()
    names = {layer["name"] for layer in body["layers"]}
    assert {"grids", "enterprises", "buildings", "safety_hazards"} <= names
    ent = next(layer for layer in body["layers"] if layer["name"] == "enterprises")
    assert ent["title"] == "企业（四色）"
    assert ent["aggregated_below"] == 13
    assert set(body["styles"]) == {"planner", "survey", "commander"}


@pytest.mark.parametrize("view", ["planner", "survey", "commander"])
def test_styles(client: TestClient, conn: Any, view: str) -> None:
    r = client.get(f"/styles/{view}.json", headers=auth("a_viewer"))
    assert r.status_code == 200
    style = r.json()
    assert style["version"] == 8
    (source,) = style["sources"].values()
    assert source["type"] == "vector"
    in_tiles = source["tiles"][0].split("/tiles/")[1].split("/")[0].split(",")
    for layer in style["layers"][1:]:
        assert layer["type"] in {"fill", "line", "circle", "symbol"}
        assert layer["source-layer"] in in_tiles
        assert layer["source"] in style["sources"]
    ids = [layer["id"] for layer in style["layers"]]
    assert len(ids) == len(set(ids))
    red = rows(
        conn,
        "SELECT c.color FROM classification_class c JOIN classification_scheme s ON s.id = c.scheme_id"
        " WHERE s.key = 'enterprise_risk_4color' AND c.key = 'red'",
    )[0][0]
    ent = next((layer for layer in style["layers"] if layer["id"] == "enterprises"), None)
    if ent is not None:
        expr = ent["paint"]["circle-color"]
        assert expr[0] == "match"
        assert expr[expr.index("red") + 1] == red
    assert client.get("/styles/other.json", headers=auth("a_viewer")).status_code == 404


def test_gdal_reads_a_served_tile(client: TestClient, tmp_path: Any, conn: Any) -> None:
    import pyogrio

    z, x, y = tile_of(*CENTRE, 14)
    r = get_tile(client, f"/tiles/grids/{z}/{x}/{y}.mvt")
    path = tmp_path / str(z) / str(x) / f"{y}.pbf"
    path.parent.mkdir(parents=True)
    path.write_bytes(r.content)
    frame = pyogrio.read_dataframe(path, layer="grids")
    expected = {f["properties"]["grid_code"] for f in decode(r.content)["grids"]["features"]}
    assert set(frame["grid_code"]) == expected
    # GDAL georeferences the tile from its z/x/y path: the features sit over the district
    cx, cy = TO_MERC.transform(*CENTRE)
    minx, miny, maxx, maxy = frame.total_bounds
    pad = 2 * HALF / 2**z
    assert minx - pad <= cx <= maxx + pad
    assert miny - pad <= cy <= maxy + pad


def test_bulk_copy_in_another_process_invalidates(client: TestClient, demo_url: str) -> None:
    """Imports run with gis.bulk = on (row triggers skipped): the statement trigger still fires."""
    from gis_service.demo.loader import psycopg_conninfo

    lon, lat = CENTRE[0] + 0.0003, CENTRE[1] - 0.0002
    path = "/tiles/enterprises/{}/{}/{}.mvt".format(*tile_of(lon, lat, 16))

    def names() -> set[str]:
        r = get_tile(client, path)
        feats = decode(r.content)["enterprises"]["features"] if r.content else []
        return {f["properties"]["name"] for f in feats}

    before = names()
    assert get_tile(client, path).headers["x-tile-cache"] == "hit"
    with psycopg.connect(psycopg_conninfo(demo_url)) as other:
        other.execute("SET gis.bulk = 'on'")
        with other.cursor().copy(
            "COPY enterprise (name, sector, risk_level, geom, source) FROM STDIN"
        ) as copy:
            copy.write_row(
                ("批量导入测试", "other", "red", f"SRID=4490;POINT({lon} {lat})", "test")
            )
        other.commit()
        try:
            assert names() == before | {"批量导入测试"}
        finally:
            other.execute("DELETE FROM enterprise WHERE name = '批量导入测试'")
            other.commit()
    assert names() == before


def test_lost_change_feed_never_serves_stale_tiles(client: TestClient, demo_url: str) -> None:
    """If the LISTEN connection dies, the cache is dropped and bypassed until it is back."""
    from gis_service.demo.loader import psycopg_conninfo

    lon, lat = CENTRE[0] - 0.0004, CENTRE[1] + 0.0003
    path = "/tiles/enterprises/{}/{}/{}.mvt".format(*tile_of(lon, lat, 16))

    def ids() -> set[int]:
        r = get_tile(client, path)
        return (
            {f["id"] for f in decode(r.content)["enterprises"]["features"]} if r.content else set()
        )

    before = ids()
    ids()
    with psycopg.connect(psycopg_conninfo(demo_url), autocommit=True) as other:
        killed = other.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = 'gis-tile-feed'"
        ).fetchone()[0]
        assert killed >= 1
        new_id = other.execute(
            "INSERT INTO enterprise (name, sector, risk_level, geom, source) VALUES"
            " ('断线测试', 'other', 'blue', ST_SetSRID(ST_MakePoint(%s, %s), 4490), 'test')"
            " RETURNING id",
            (lon, lat),
        ).fetchone()[0]
        try:
            time.sleep(0.2)
            assert ids() == before | {new_id}
        finally:
            other.execute("DELETE FROM enterprise WHERE id = %s", (new_id,))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and ids() != before:
        time.sleep(0.2)
    assert ids() == before


def test_styles_pass_the_maplibre_validator(client: TestClient, tmp_path: Any) -> None:
    """The official style-spec validator (npm @maplibre/maplibre-gl-style-spec, web/package.json)."""
    import os
    import shutil
    import subprocess

    validator = os.environ.get("GIS_STYLE_VALIDATOR") or shutil.which("gl-style-validate")
    local = Path(__file__).resolve().parents[1] / "web/node_modules/.bin/gl-style-validate"
    if validator is None and local.exists():
        validator = str(local)
    assert validator is not None, "gl-style-validate missing: `make install` runs npm ci in web/"
    for view in ("planner", "survey", "commander"):
        path = tmp_path / f"{view}.json"
        path.write_text(client.get(f"/styles/{view}.json", headers=auth("a_viewer")).text)
        result = subprocess.run([validator, str(path)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("freshness", ["strict", "notify"])
def test_change_feed_delivers_table_and_bbox(demo_url: str, freshness: str) -> None:
    """strict: a check right after another connection's commit already sees the change."""
    import asyncio

    from gis_service.demo.loader import psycopg_conninfo
    from gis_service.tiles.changes import ChangeFeed

    seen: list[tuple[str, Any]] = []
    resets: list[int] = []
    feed = ChangeFeed(
        psycopg_conninfo(demo_url),
        lambda t, b: seen.append((t, b)),
        lambda: resets.append(1),
        freshness=freshness,  # type: ignore[arg-type]
    )

    async def run() -> None:
        assert await feed.connect()
        with psycopg.connect(psycopg_conninfo(demo_url), autocommit=True) as other:
            other.execute(
                "UPDATE fire_point SET confidence = confidence WHERE id = (SELECT min(id) FROM fire_point)"
            )
            if freshness == "notify":
                await asyncio.sleep(0.5)
            assert await feed.check()
        await feed.close()

    asyncio.run(run())
    assert resets == [1]
    ((table, bbox),) = [s for s in seen if s[0] == "fire_point"]
    assert table == "fire_point"
    assert bbox is not None
    assert bbox[0] <= bbox[2]
    assert 112 < bbox[0] < 115


def test_connection_warm_up_projects_both_ways_like_pyproj(conn: psycopg.Connection[Any]) -> None:
    """The tile connections' warm-up statement runs and transforms as pyproj does."""
    from gis_service.tiles.service import _WARM

    envelope, px, py = conn.execute(
        f"SELECT ST_AsText(ST_Envelope(e)), ST_X(p), ST_Y(p) FROM ({_WARM}) AS w(e, p)"
    ).fetchone()  # type: ignore[misc]
    assert (px, py) == pytest.approx(
        Transformer.from_crs(4490, 3857, always_xy=True).transform(113.1, 27.8), abs=0.01
    )
    w, s, e, n = merc_bounds(10, 834, 421)
    (lon0, lon1), (lat0, lat1) = Transformer.from_crs(3857, 4490, always_xy=True).transform(
        [w, e], [s, n]
    )
    assert shapely.from_wkt(envelope).bounds == pytest.approx((lon0, lat0, lon1, lat1), abs=1e-7)
