"""Label-point layers: every grid, community and township is labelled once, inside itself.

The label point is checked against the polygon with shapely and placed in tiles computed
here (pyproj tile maths from tests/test_tiles.py), so an off-by-a-tile or a label drawn in
every tile of a polygon (what polygon symbol labels do) would fail.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import psycopg
import shapely
from fastapi.testclient import TestClient

from tests.test_tiles import (
    CENTRE,
    decode,
    get_tile,
    rows,
    tile_of,
    tile_point_to_lonlat,
)

LABELS = ("grid_labels", "community_labels", "township_labels")
Z = 12
#: One pixel of a z12 tile (4096 extent) is ~2.4 m; quantisation moves a label at most that.
PX_DEG = 360 / 2**Z / 4096 * 1.5


def _district_tiles(conn: Any) -> list[tuple[int, int, int]]:
    (w, s, e, n) = rows(
        conn,
        "SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM"
        " (SELECT ST_Extent(boundary) b FROM admin_division WHERE code = '430204') q",
    )[0]
    _, x0, y0 = tile_of(w, n, Z)
    _, x1, y1 = tile_of(e, s, Z)
    return [(Z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


def _labels_seen(
    client: TestClient, tiles: list[tuple[int, int, int]], login: str = "national_admin"
) -> dict[str, list[tuple[int, dict[str, Any], tuple[float, float]]]]:
    """layer → (id, properties, lon/lat) of every label anchored inside its own tile."""
    seen: dict[str, list[tuple[int, dict[str, Any], tuple[float, float]]]] = {n: [] for n in LABELS}
    for z, x, y in tiles:
        r = get_tile(client, f"/tiles/{','.join(LABELS)}/{z}/{x}/{y}.mvt", login)
        assert r.status_code in {200, 204}
        if r.status_code == 204:
            continue
        for name, layer in decode(r.content).items():
            for f in layer["features"]:
                assert f["geometry"]["type"] == "Point"
                px, py = f["geometry"]["coordinates"]
                if 0 <= px < 4096 and 0 <= py < 4096:  # the buffer repeats edge labels
                    seen[name].append(
                        (f["id"], f["properties"], tile_point_to_lonlat(z, x, y, px, py))
                    )
    return seen


def test_each_unit_is_labelled_once_inside_itself(client: TestClient, conn: Any) -> None:
    seen = _labels_seen(client, _district_tiles(conn))
    expected = {
        "grid_labels": rows(
            conn,
            "SELECT g.id, g.grid_code, g.name, ST_AsBinary(g.geom) FROM grid g"
            " JOIN admin_division d ON d.code = g.community_code"
            " WHERE g.valid_to IS NULL AND d.ancestors @> ARRAY['430204']",
        ),
        "community_labels": rows(
            conn,
            "SELECT id, code, name, ST_AsBinary(boundary) FROM admin_division"
            " WHERE level = 'village' AND ancestors @> ARRAY['430204']",
        ),
        "township_labels": rows(
            conn,
            "SELECT id, code, name, ST_AsBinary(boundary) FROM admin_division"
            " WHERE level = 'township' AND ancestors @> ARRAY['430204']",
        ),
    }
    for name, db in expected.items():
        assert db, name
        counts = Counter(fid for fid, _, _ in seen[name])
        by_id = {r[0]: r for r in db}
        assert set(by_id) <= set(counts), f"{name}: unlabelled units"
        assert all(counts[i] == 1 for i in by_id), f"{name}: a unit labelled twice"
        code_key = "grid_code" if name == "grid_labels" else "code"
        for fid, props, (lon, lat) in seen[name]:
            if fid not in by_id:
                continue  # a neighbouring county's unit in an edge tile
            _, code, label, wkb = by_id[fid]
            assert props[code_key] == code
            assert props["name"] == label
            polygon = shapely.from_wkb(bytes(wkb))
            assert polygon.distance(shapely.Point(lon, lat)) < PX_DEG, (name, code)


def test_scoped_user_gets_only_their_labels(client: TestClient, conn: Any) -> None:
    tiles = _district_tiles(conn)
    sibling = _labels_seen(client, tiles, "sibling_surveyor")  # 430202 borders the district
    codes = [
        p["grid_code" if n == "grid_labels" else "code"] for n in LABELS for _, p, _ in sibling[n]
    ]
    assert codes
    assert all(c.startswith("430202") for c in codes)
    mine = _labels_seen(client, tiles, "a_surveyor")
    allowed = {
        r[0]
        for r in rows(
            conn,
            "SELECT g.id FROM grid g JOIN admin_division d ON d.code = g.community_code"
            " WHERE g.valid_to IS NULL AND d.ancestors @> ARRAY['430204']",
        )
    }
    assert {fid for fid, _, _ in mine["grid_labels"]} == allowed


def test_grid_edit_moves_its_label_on_the_next_request(client: TestClient, demo_url: str) -> None:
    """The trigger recomputes the point and the change feed drops the cached tile."""
    from gis_service.demo.loader import psycopg_conninfo

    with psycopg.connect(psycopg_conninfo(demo_url), autocommit=True) as other:
        gid, original, lon, lat = other.execute(
            "SELECT id, ST_AsEWKB(geom), ST_X(label_point), ST_Y(label_point) FROM grid"
            " WHERE valid_to IS NULL AND ST_Contains(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4490))",
            CENTRE,
        ).fetchone()
        z, x, y = tile_of(lon, lat, 16)
        path = f"/tiles/grid_labels/{z}/{x}/{y}.mvt"

        def where() -> tuple[float, float] | None:
            r = get_tile(client, path)
            if r.status_code == 204:
                return None
            for f in decode(r.content)["grid_labels"]["features"]:
                if f["id"] == gid:
                    return tile_point_to_lonlat(z, x, y, *f["geometry"]["coordinates"])
            return None

        before = where()
        assert before is not None
        assert abs(before[0] - lon) < 1e-5
        assert abs(before[1] - lat) < 1e-5
        assert get_tile(client, path).headers["x-tile-cache"] == "hit"
        # Shift the grid 3 m east: the label follows at once, without any cache wait.
        other.execute("UPDATE grid SET geom = ST_Translate(geom, 0.00003, 0) WHERE id = %s", (gid,))
        try:
            moved = other.execute(
                "SELECT ST_X(label_point), ST_Y(label_point),"
                " ST_Equals(label_point, ST_PointOnSurface(geom)) FROM grid WHERE id = %s",
                (gid,),
            ).fetchone()
            assert moved[2] is True
            assert abs(moved[0] - (lon + 0.00003)) < 1e-9
            after = where()
            assert after is not None
            assert abs(after[0] - moved[0]) < 1e-5
            assert abs(after[1] - moved[1]) < 1e-5
            assert after[0] - before[0] > 2e-5
        finally:
            other.execute("UPDATE grid SET geom = %s::geometry WHERE id = %s", (original, gid))
        assert where() == before
