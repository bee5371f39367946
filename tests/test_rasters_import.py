"""``gis-service hazards add``: a GeoTIFF in another CRS keeps its values and nodata through
the COG conversion; spoofed, ungeoreferenced, multi-band and oversized files are refused
before any full read; polygon files become classed zones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
import rasterio
from fastapi.testclient import TestClient
from pyproj import Transformer
from rasterio.transform import from_origin

from gis_service.db.rasters import LayerMeta
from gis_service.errors import Conflict, InvalidInput, TooLarge
from gis_service.impact import importer
from tests.fixtures import auth

KEY = "test_depth_utm"
#: A 2 km × 1.5 km patch of 石峰区 in UTM 49N (WGS84), 10 m cells.
UTM = "EPSG:32649"
X0, Y0 = Transformer.from_crs(4326, 32649, always_xy=True).transform(113.12, 27.95)


def _meta(key: str = KEY) -> LayerMeta:
    return LayerMeta(
        key, "测试水深", "flood", "hazard", "flood_depth", unit="m", admin_code="430204"
    )


def _tif(path: Path, **over: Any) -> Path:
    rows, cols = np.mgrid[0:150, 0:200]
    data = ((rows + cols) % 50 / 10.0).astype("float32")
    data[:20, :] = -1.0
    profile = {
        "driver": "GTiff",
        "width": 200,
        "height": 150,
        "count": 1,
        "dtype": "float32",
        "crs": UTM,
        "transform": from_origin(round(X0), round(Y0), 10, 10),
        "nodata": -1.0,
        **over,
    }
    count = profile["count"]
    with rasterio.open(path, "w", **profile) as ds:
        for b in range(1, count + 1):
            ds.write(data, b)
    return path


@pytest.fixture
def cleanup(demo_url: str) -> Iterator[None]:
    yield
    with psycopg.connect("postgresql://" + demo_url.split("://", 1)[1]) as conn:
        conn.execute("DELETE FROM hazard_layer WHERE key LIKE 'test_%'")
        conn.commit()


@pytest.mark.usefixtures("cleanup")
def test_utm_geotiff_keeps_values_and_nodata(
    tmp_path: Path, demo_url: str, client: TestClient
) -> None:
    src = _tif(tmp_path / "depth.tif")
    done = importer.add(demo_url, src, _meta(), max_pixels=10**6)
    assert done.data_type == "raster"
    assert done.sha256
    to_ll = Transformer.from_crs(32649, 4326, always_xy=True)
    with rasterio.open(src) as ds:
        data = ds.read(1)
        for r, c in ((60, 40), (100, 150), (140, 10), (75, 199)):
            x, y = ds.xy(r, c)
            lon, lat = to_ll.transform(x, y)
            doc = client.get(
                f"/rasters/{KEY}/point", params={"lon": lon, "lat": lat}, headers=auth("a_viewer")
            ).json()
            assert doc["value"] == pytest.approx(float(data[r, c]), abs=1e-6), (r, c)
        x, y = ds.xy(5, 100)
    lon, lat = to_ll.transform(x, y)
    doc = client.get(
        f"/rasters/{KEY}/point", params={"lon": lon, "lat": lat}, headers=auth("a_viewer")
    ).json()
    assert doc["value"] is None
    with pytest.raises(Conflict):
        importer.add(demo_url, src, _meta(), max_pixels=10**6)
    again = importer.add(demo_url, src, _meta(), max_pixels=10**6, replace=True)
    assert again.sha256 == done.sha256


def test_refused_files(tmp_path: Path, demo_url: str) -> None:
    vrt = tmp_path / "evil.tif"
    vrt.write_text('<VRTDataset rasterXSize="1" rasterYSize="1"></VRTDataset>')
    with pytest.raises(InvalidInput, match="magic"):
        importer.add(demo_url, vrt, _meta("test_vrt"), max_pixels=10**6)
    bare = _tif(tmp_path / "bare.tif", crs=None, transform=rasterio.Affine.identity())
    with pytest.raises(InvalidInput, match="georeference"):
        importer.add(demo_url, bare, _meta("test_bare"), max_pixels=10**6)
    three = _tif(tmp_path / "three.tif", count=3)
    with pytest.raises(InvalidInput, match="bands"):
        importer.add(demo_url, three, _meta("test_three"), max_pixels=10**6)
    big = tmp_path / "big.tif"
    with rasterio.open(
        big,
        "w",
        driver="GTiff",
        width=100_000,
        height=100_000,
        count=1,
        dtype="uint8",
        crs=UTM,
        transform=from_origin(X0, Y0, 1, 1),
        tiled=True,
        compress="deflate",
        sparse_ok=True,
    ):
        pass
    assert big.stat().st_size < 10_000_000
    with pytest.raises(TooLarge):
        importer.add(demo_url, big, _meta("test_big"), max_pixels=10**8)
    with pytest.raises(InvalidInput, match="--name"):
        importer.add(demo_url, _tif(tmp_path / "ok.tif"), _meta("../etc"), max_pixels=10**6)
    with psycopg.connect("postgresql://" + demo_url.split("://", 1)[1]) as conn:
        (n,) = conn.execute(
            "SELECT count(*) FROM hazard_layer WHERE key LIKE 'test_%'"
        ).fetchone() or (0,)
    assert n == 0


@pytest.mark.usefixtures("cleanup")
def test_polygon_zones_and_cli(tmp_path: Path, demo_url: str, client: TestClient) -> None:
    gj = tmp_path / "zones.geojson"
    gj.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"depth": d, "name": f"淹没区{i}"},
                        "geometry": {
                            "type": "Polygon",
                            "coordinates": [
                                [
                                    [113.1 + i * 0.01, 27.9],
                                    [113.105 + i * 0.01, 27.9],
                                    [113.105 + i * 0.01, 27.905],
                                    [113.1 + i * 0.01, 27.9],
                                ]
                            ],
                        },
                    }
                    for i, d in enumerate((0.3, 1.2, 3.5))
                ],
            }
        )
    )
    env = {**os.environ, "DATABASE_URL": demo_url, "COLUMNS": "200"}
    cmd = [sys.executable, "-m", "gis_service.cli", "hazards", "add", str(gj), "--type", "flood"]
    ok = subprocess.run(
        [
            *cmd,
            "--scheme",
            "flood_depth",
            "--name",
            "test_zones",
            "--value-field",
            "depth",
            "--admin",
            "430204",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert "3 zones" in ok.stdout
    doc = client.get("/hazard-layers/test_zones/zones", headers=auth("a_viewer")).json()
    assert [f["properties"]["class_key"] for f in doc["features"]] == ["d005", "d10", "d30"]
    assert doc["features"][0]["properties"]["color"] == "#c6dbef"
    entry = next(
        x
        for x in client.get("/hazard-layers", headers=auth("a_viewer")).json()["layers"]
        if x["key"] == "test_zones"
    )
    assert entry["geojson"] == "/hazard-layers/test_zones/zones"
    bad = subprocess.run(
        [*cmd, "--scheme", "no_such_scheme", "--name", "test_bad"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 1
    assert "--scheme" in bad.stderr
