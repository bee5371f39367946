"""Raster hazard layers: catalogue, TileJSON, tiles decoded to the scheme's colours at known
pixels, point values and zonal statistics against a direct numpy computation, bad knobs."""

from __future__ import annotations

import io
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import morecantile
import numpy as np
import psycopg
import pytest
import rasterio
import shapely
from fastapi.testclient import TestClient
from PIL import Image
from rasterio import features
from rasterio.io import MemoryFile
from rasterio.warp import transform_geom

from tests.fixtures import auth

TMS = morecantile.tms.get("WebMercatorQuad")
FLOOD = "flood_depth_p50"


@pytest.fixture(scope="module")
def flood(demo_url: str) -> dict[str, Any]:
    """The demo's flood COG read straight from the database, with its scheme classes."""
    with psycopg.connect("postgresql://" + demo_url.split("://", 1)[1]) as conn:
        row = conn.execute(
            "SELECT r.cog, r.nodata FROM hazard_raster r JOIN hazard_layer l ON l.id = r.layer_id"
            " WHERE l.key = %s",
            (FLOOD,),
        ).fetchone()
        assert row is not None
        classes = conn.execute(
            "SELECT c.key, c.color, c.min_value FROM classification_class c"
            " JOIN classification_scheme s ON s.id = c.scheme_id WHERE s.key = 'flood_depth'"
            " ORDER BY c.min_value"
        ).fetchall()
    with MemoryFile(bytes(row[0])) as mem, mem.open() as ds:
        return {
            "array": ds.read(1),
            "transform": ds.transform,
            "crs": ds.crs,
            "nodata": row[1],
            "classes": classes,
        }


def _expected_colour(value: float, classes: list[Any], nodata: float) -> tuple[int, ...]:
    if value == nodata or not math.isfinite(value):
        return (0, 0, 0, 0)
    colour = None
    for _, c, lo in classes:
        if value >= lo:
            colour = c
    if colour is None:
        return (0, 0, 0, 0)
    return (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16), 255)


def test_catalogue_lists_the_demo_layers(client: TestClient) -> None:
    doc = client.get("/hazard-layers", headers=auth("a_commander")).json()
    by_key = {layer["key"]: layer for layer in doc["layers"]}
    assert {FLOOD, "landslide_susceptibility", "forest_fire_danger", "geohazard_risk_zones"} <= set(
        by_key
    )
    fl = by_key[FLOOD]
    assert fl["data_type"] == "raster"
    assert fl["unit"] == "m"
    assert fl["return_period"] == 50
    assert fl["tiles"] == f"/rasters/{FLOOD}/{{z}}/{{x}}/{{y}}.png"
    assert [c["key"] for c in fl["scheme"]["classes"]][:2] == ["d005", "d05"]
    zones = by_key["geohazard_risk_zones"]
    assert zones["data_type"] == "vector"
    assert zones["vector_layer"] == "geohazard_zones"
    assert zones["scheme_property"] == "risk_level"
    # Another county sees none of them.
    other = client.get("/hazard-layers", headers=auth("b_surveyor")).json()
    assert not {layer["key"] for layer in other["layers"]} & set(by_key)


def test_tilejson_has_the_legend(client: TestClient) -> None:
    doc = client.get(f"/rasters/{FLOOD}.json", headers=auth("a_viewer")).json()
    assert doc["tilejson"] == "3.0.0"
    assert doc["tiles"][0].endswith(f"/rasters/{FLOOD}/{{z}}/{{x}}/{{y}}.png")
    assert len(doc["legend"]) == 5
    assert doc["legend"][0]["color"].startswith("#")
    w, s, e, n = doc["bounds"]
    assert 113.0 < w < e < 113.4
    assert 27.7 < s < n < 28.1


def test_tile_pixels_have_the_class_colours(client: TestClient, flood: dict[str, Any]) -> None:
    """At native resolution (z where a pixel ≈ a raster cell) every PNG pixel's colour is the
    class colour of the raster value under its centre, and nodata is transparent."""
    arr, tr = flood["array"], flood["transform"]
    rows, cols = np.nonzero(arr >= 1.0)
    i = len(rows) // 2
    x, y = tr @ (cols[i] + 0.5, rows[i] + 0.5)
    lon, lat = TMS.lnglat(x, y)
    z = 15
    tile = TMS.tile(lon, lat, z)
    r = client.get(f"/rasters/{FLOOD}/{z}/{tile.x}/{tile.y}.png", headers=auth("a_viewer"))
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/png"
    img = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGBA"))
    assert img.shape == (256, 256, 4)
    bounds = TMS.xy_bounds(tile)
    size = (bounds.right - bounds.left) / 256
    inv = ~tr
    checked = coloured = 0
    for py in range(0, 256, 7):
        for px in range(0, 256, 7):
            mx = bounds.left + (px + 0.5) * size
            my = bounds.top - (py + 0.5) * size
            c, rr = inv @ (mx, my)
            c, rr = math.floor(c), math.floor(rr)
            # skip pixels whose centre sits on a raster cell edge (nearest could go either way)
            fc, fr = (inv @ (mx, my))[0] % 1, (inv @ (mx, my))[1] % 1
            if min(fc, 1 - fc, fr, 1 - fr) < 0.05:
                continue
            if 0 <= rr < arr.shape[0] and 0 <= c < arr.shape[1]:
                want = _expected_colour(float(arr[rr, c]), flood["classes"], flood["nodata"])
            else:
                want = (0, 0, 0, 0)
            got = tuple(int(v) for v in img[py, px])
            if want[3] == 0:
                assert got[3] == 0, (px, py)
            else:
                assert got == want, (px, py, arr[rr, c])
                coloured += 1
            checked += 1
    assert checked > 1000
    assert coloured > 50


def test_tile_at_the_raster_edge(client: TestClient, flood: dict[str, Any]) -> None:
    """A tile straddling the raster's edge (a boundless read) renders, half transparent."""
    doc = client.get(f"/rasters/{FLOOD}.json", headers=auth("a_viewer")).json()
    w, s, _, n = doc["bounds"]
    tile = TMS.tile(w, (s + n) / 2, 11)
    r = client.get(f"/rasters/{FLOOD}/11/{tile.x}/{tile.y}.png", headers=auth("a_viewer"))
    assert r.status_code == 200, r.text
    img = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGBA"))
    assert img[:, 0, 3].max() == 0


def test_edge_tiles_survive_the_import_sandbox_env(tmp_path: Path, flood: dict[str, Any]) -> None:
    """The import sandbox switches GDAL's VRT driver off in its children only: with it
    imported first (as in the API server), boundless reads at a raster's edge still work."""
    cog = tmp_path / "flood.tif"
    with rasterio.open(
        cog, "w", driver="GTiff", width=flood["array"].shape[1], height=flood["array"].shape[0],
        count=1, dtype=flood["array"].dtype, crs=flood["crs"], transform=flood["transform"],
        nodata=flood["nodata"],
    ) as ds:  # fmt: skip
        ds.write(flood["array"], 1)
    lon, lat = TMS.lnglat(*(flood["transform"] @ (0, flood["array"].shape[0] / 2)))
    t = TMS.tile(lon, lat, 11)
    script = (
        "import etl.sandbox\n"
        "from pathlib import Path\n"
        "from gis_service.impact import rasters\n"
        f"png = rasters.render_tile(Path({str(cog)!r}), None, {t.z}, {t.x}, {t.y}, tilesize=256)\n"
        "print('ok' if png else 'empty')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.stdout.strip() == "ok", done.stderr[-2000:]


def test_tile_outside_and_bad_knobs(client: TestClient) -> None:
    h = auth("a_viewer")
    assert client.get(f"/rasters/{FLOOD}/10/0/0.png", headers=h).status_code == 204
    for bad in ("tilesize=100000", "tilesize=1000000", "tilesize=NaN", "tilesize=255"):
        r = client.get(f"/rasters/{FLOOD}/12/3335/1716.png?{bad}", headers=h)
        assert r.status_code == 422, bad
        assert "tilesize" in r.text
    assert (
        client.get(f"/rasters/{FLOOD}/12/3335/1716.png?url=/etc/passwd", headers=h).status_code
        == 400
    )
    r = client.get(f"/rasters/{FLOOD}/3/9/1.png", headers=h)
    assert r.status_code == 400
    assert "path.x" in r.text
    assert client.get(f"/rasters/{FLOOD}/25/1/1.png", headers=h).status_code == 422
    for key in ("nope", "..%2F..%2Fetc%2Fpasswd", "FLOOD", "a" * 80):
        assert client.get(f"/rasters/{key}/12/3335/1716.png", headers=h).status_code in (404, 422)
    # Another county's user: the layer does not exist for them.
    assert client.get(f"/rasters/{FLOOD}.json", headers=auth("b_surveyor")).status_code == 404
    assert client.get("/rasters/geohazard_risk_zones.json", headers=h).status_code == 404


def test_no_route_takes_a_path_or_url(client: TestClient) -> None:
    """BAD_INPUTS A10: raster routes address rasters by layer key only."""
    spec = client.get("/openapi.json").json()
    for path, ops in spec["paths"].items():
        if not path.startswith("/rasters"):
            continue
        for op in ops.values():
            for p in op.get("parameters", []):
                assert p["name"] not in ("url", "path", "file", "src", "dataset"), (path, p)


def test_point_value_matches_the_raster(client: TestClient, flood: dict[str, Any]) -> None:
    arr, tr = flood["array"], flood["transform"]
    rows, cols = np.nonzero(arr >= 0.5)
    for i in (0, len(rows) // 3, len(rows) - 1):
        x, y = tr @ (cols[i] + 0.5, rows[i] + 0.5)
        lon, lat = TMS.lnglat(x, y)
        doc = client.get(
            f"/rasters/{FLOOD}/point", params={"lon": lon, "lat": lat}, headers=auth("a_viewer")
        ).json()
        assert doc["value"] == pytest.approx(float(arr[rows[i], cols[i]]), abs=1e-6)
        assert doc["class"] is not None
        assert doc["unit"] == "m"
    # nodata and outside
    rows, cols = np.nonzero(arr == flood["nodata"])
    x, y = tr @ (cols[0] + 0.5, rows[0] + 0.5)
    lon, lat = TMS.lnglat(x, y)
    doc = client.get(
        f"/rasters/{FLOOD}/point", params={"lon": lon, "lat": lat}, headers=auth("a_viewer")
    ).json()
    assert doc["value"] is None
    assert doc["nodata"] is True
    assert doc["class"] is None
    r = client.get(
        f"/rasters/{FLOOD}/point", params={"lon": "NaN", "lat": 28}, headers=auth("a_viewer")
    )
    assert r.status_code == 422


def test_zonal_matches_numpy(client: TestClient, flood: dict[str, Any], demo_url: str) -> None:
    """exactextract's coverage-weighted figures against numpy on a 10×-supersampled raster:
    the coverage of a grid equals its covered area and the mean agrees within 1 %."""
    doc = client.get(
        f"/rasters/{FLOOD}/zonal", params={"by": "grid"}, headers=auth("a_planner")
    ).json()
    rows = {r["code"]: r for r in doc["rows"]}
    assert len(rows) == 232
    wet = sorted((r for r in rows.values() if r["coverage_km2"] > 0.05), key=lambda r: r["code"])
    assert wet
    with psycopg.connect("postgresql://" + demo_url.split("://", 1)[1]) as conn:
        geoms = dict(
            conn.execute(
                "SELECT grid_code, ST_AsGeoJSON(geom)::json FROM grid WHERE valid_to IS NULL"
                " AND grid_code = ANY(%s)",
                ([r["code"] for r in wet[:5]],),
            ).fetchall()
        )
    arr, tr = flood["array"], flood["transform"]
    k = 10
    fine = np.repeat(np.repeat(arr, k, axis=0), k, axis=1)
    ftr = tr @ rasterio.Affine.scale(1 / k)
    for code, gj in geoms.items():
        g = transform_geom("EPSG:4490", flood["crs"], gj)
        inside = features.rasterize([(g, 1)], out_shape=fine.shape, transform=ftr).astype(bool)
        valid = inside & (fine != flood["nodata"])
        lat = shapely.geometry.shape(gj).centroid.y
        cell_km2 = abs(ftr.a * ftr.e) / 1e6 * math.cos(math.radians(lat)) ** 2
        want_cov = valid.sum() * cell_km2
        want_mean = float(fine[valid].mean())
        got = rows[code]
        assert got["coverage_km2"] == pytest.approx(want_cov, rel=0.02, abs=0.002)
        assert got["mean"] == pytest.approx(want_mean, rel=0.01)
        assert got["max"] == pytest.approx(float(fine[valid].max()))
        assert sum(got["classes"].values()) == pytest.approx(got["coverage_km2"], abs=1e-5)
    # villages, CSV, scope
    v = client.get(
        f"/rasters/{FLOOD}/zonal", params={"by": "village"}, headers=auth("a_planner")
    ).json()
    assert v["rows"]
    assert all(len(r["code"]) == 12 for r in v["rows"])
    csv = client.get(
        f"/rasters/{FLOOD}/zonal", params={"by": "grid", "format": "csv"}, headers=auth("a_planner")
    )
    assert csv.status_code == 200
    assert csv.text.count("\n") >= 233
    town = next(iter(rows))[:9]
    part = client.get(
        f"/rasters/{FLOOD}/zonal", params={"by": "grid", "admin": town}, headers=auth("a_planner")
    ).json()
    assert part["rows"]
    assert all(r["code"].startswith(town) for r in part["rows"])
    r = client.get(
        f"/rasters/{FLOOD}/zonal",
        params={"by": "grid", "admin": "440304"},
        headers=auth("a_planner"),
    )
    assert r.status_code == 404
    r = client.get(f"/rasters/{FLOOD}/zonal", params={"by": "county"}, headers=auth("a_planner"))
    assert r.status_code == 422
