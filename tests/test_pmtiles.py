"""PMTiles: export, validation of hostile archives, Range serving, scope, GDAL reading it back."""

from __future__ import annotations

import functools
import gzip
import io
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pmtiles.tile import Compression, Entry, TileType, serialize_directory, serialize_header
from typer.testing import CliRunner

from gis_service.cli import app
from gis_service.errors import InvalidInput
from gis_service.tiles.pmtiles_store import CachedArchive, validate
from tests.fixtures import auth
from tests.test_tiles import CENTRE, decode, tile_of

runner = CliRunner()


@pytest.fixture(scope="module")
def exported(demo_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """grids + enterprises of 石峰区, z12-z14, through the CLI."""
    out = tmp_path_factory.mktemp("pmtiles") / "shifeng.pmtiles"
    mp = pytest.MonkeyPatch()
    mp.setenv("DATABASE_URL", demo_url)
    try:
        result = runner.invoke(
            app,
            [
                "tiles", "export", "grids,enterprises", "--admin", "430204",
                "--minzoom", "12", "--maxzoom", "14", "-o", str(out),
            ],
        )  # fmt: skip
    finally:
        mp.undo()
    assert result.exit_code == 0, result.output
    assert "tiles" in result.output
    return out


@pytest.fixture
def published(
    client: TestClient, exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The export published as ``shifeng`` in a private archive directory."""
    folder = tmp_path / "pmtiles"
    monkeypatch.setenv("GIS_TILES_PMTILES_DIR", str(folder))
    result = runner.invoke(app, ["tiles", "import", str(exported), "--name", "shifeng"])
    assert result.exit_code == 0, result.output
    monkeypatch.setattr(client.app.state.tiles.settings, "pmtiles_dir", folder)  # type: ignore[attr-defined]
    return folder / "shifeng.pmtiles"


def test_export_matches_the_served_tiles(client: TestClient, exported: Path) -> None:
    info = validate(exported)
    assert info.header["tile_type"] == TileType.MVT
    assert info.header["min_zoom"] == 12
    assert info.header["max_zoom"] == 14
    assert info.metadata["gis-service:scope"] == "430204"
    assert [v["id"] for v in info.metadata["vector_layers"]] == ["grids", "enterprises"]
    archive = CachedArchive(exported)
    try:
        for z in (12, 13, 14):
            zxy = tile_of(*CENTRE, z)
            stored = archive.get(*zxy)
            assert stored is not None
            served = client.get(
                "/tiles/grids,enterprises/{}/{}/{}.mvt".format(*zxy), headers=auth("a_surveyor")
            )
            assert gzip.decompress(stored) == served.content
        assert archive.get(11, 0, 0) is None
        assert archive.get(14, 0, 0) is None
    finally:
        archive.close()


def test_gdal_reads_the_export(exported: Path, conn: Any) -> None:
    import pyogrio

    frame = pyogrio.read_dataframe(exported, layer="grids")
    expected = {
        r[0]
        for r in conn.execute(
            "SELECT g.grid_code FROM grid g JOIN admin_division d ON d.code = g.community_code"
            " WHERE g.valid_to IS NULL AND d.ancestors @> ARRAY['430204']"
        )
    }
    assert set(frame["grid_code"]) == expected


def test_range_requests(client: TestClient, published: Path) -> None:
    size = published.stat().st_size
    url = "/pmtiles/shifeng.pmtiles"
    h = auth("a_surveyor")
    full = client.get(url, headers=h)
    assert full.status_code == 200
    assert full.headers["accept-ranges"] == "bytes"
    assert full.content == published.read_bytes()
    t = time.perf_counter()
    head = client.get(url, headers={**h, "Range": "bytes=0-126"})
    assert head.status_code == 206
    assert head.content[:7] == b"PMTiles"
    assert len(head.content) == 127
    assert head.headers["content-range"] == f"bytes 0-126/{size}"
    multi = client.get(url, headers={**h, "Range": "bytes=0-6, 100-119"})
    assert multi.status_code == 206
    assert multi.headers["content-type"].startswith("multipart/byteranges")
    assert b"PMTiles" in multi.content
    beyond = client.get(url, headers={**h, "Range": f"bytes={size + 10}-{size + 20}"})
    assert beyond.status_code == 416
    many = client.get(
        url, headers={**h, "Range": "bytes=" + ",".join(f"{i}-{i}" for i in range(101))}
    )
    assert many.status_code == 200
    assert len(many.content) == size
    for bad in ("items=0-5", "bytes=5-1", "bytes=abc", "bytes=" + "9" * 10_000):
        r = client.get(url, headers={**h, "Range": bad})
        assert r.status_code in (200, 400, 416), bad
    assert (time.perf_counter() - t) / 9 < 0.05 * 5  # each well under a second on a busy box


def test_archive_tiles_and_scope(client: TestClient, published: Path) -> None:
    zxy = tile_of(*CENTRE, 14)
    path = "/pmtiles/shifeng/{}/{}/{}.mvt".format(*zxy)
    r = client.get(path, headers=auth("a_surveyor"))
    assert r.status_code == 200
    assert set(decode(r.content)) >= {"grids"}
    assert client.get("/pmtiles/shifeng/14/0/0.mvt", headers=auth("a_surveyor")).status_code == 204
    assert client.get("/pmtiles/shifeng/99/0/0.mvt", headers=auth("a_surveyor")).status_code == 400
    # another county, a sibling county: the archive does not exist for them
    for login in ("b_surveyor", "sibling_surveyor"):
        assert client.get("/pmtiles/shifeng.pmtiles", headers=auth(login)).status_code == 404
        assert client.get(path, headers=auth(login)).status_code == 404
    assert client.get("/pmtiles/shifeng.pmtiles", headers=auth("city_surveyor")).status_code == 200
    for name in ("../shifeng", "nope", "SHIFENG", "shifeng.pmtiles", "%2e%2e"):
        assert client.get(f"/pmtiles/{name}.pmtiles", headers=auth("a_surveyor")).status_code == 404


# --------------------------------------------------------------------- hostile archives
def _archive(root: bytes, leaves: bytes = b"", tiles: bytes = b"x", **over: Any) -> bytes:
    meta = gzip.compress(b"{}", mtime=0)
    header: dict[str, Any] = {
        "root_offset": 127,
        "root_length": len(root),
        "metadata_offset": 127 + len(root),
        "metadata_length": len(meta),
        "leaf_directory_offset": 127 + len(root) + len(meta),
        "leaf_directory_length": len(leaves),
        "tile_data_offset": 127 + len(root) + len(meta) + len(leaves),
        "tile_data_length": len(tiles),
        "addressed_tiles_count": 1,
        "tile_entries_count": 1,
        "tile_contents_count": 1,
        "clustered": True,
        "internal_compression": Compression.GZIP,
        "tile_compression": Compression.GZIP,
        "tile_type": TileType.MVT,
        "min_zoom": 0,
        "max_zoom": 0,
        "min_lon_e7": 0,
        "min_lat_e7": 0,
        "max_lon_e7": 0,
        "max_lat_e7": 0,
        "center_zoom": 0,
        "center_lon_e7": 0,
        "center_lat_e7": 0,
    }
    header.update(over)
    return serialize_header(header) + root + meta + leaves + tiles  # type: ignore[arg-type]


def _bomb() -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
        chunk = b"\x01" * (1 << 20)
        for _ in range(40):  # 40 MiB: past the 32 MiB directory bound
            gz.write(chunk)
    return buf.getvalue()


GOOD_ROOT = serialize_directory([Entry(0, 0, 1, 1)])


@functools.cache
def _cases() -> dict[str, bytes]:
    bomb = _bomb()
    leaf_self = serialize_directory([Entry(0, 0, 0, 0)])
    # a leaf that points at itself: patch its own length in after serialising once
    leaf_self = serialize_directory([Entry(0, 0, len(leaf_self), 0)])
    cases = {
        "bad magic": b"PMTilez" + _archive(GOOD_ROOT)[7:],
        "version 2": _archive(GOOD_ROOT)[:7] + b"\x02" + _archive(GOOD_ROOT)[8:],
        "tile data past EOF": _archive(GOOD_ROOT, tile_data_length=10_000),
        "root outside the first 16 KiB": _archive(GOOD_ROOT, root_offset=20_000),
        "tile outside the data section": _archive(serialize_directory([Entry(0, 5, 10, 1)])),
        "gzip bomb directory": _archive(
            serialize_directory([Entry(0, 0, len(bomb), 0)]), leaves=bomb
        ),
        "leaf pointer cycle": _archive(
            serialize_directory([Entry(0, 0, len(leaf_self), 0)]), leaves=leaf_self
        ),
        "truncated": _archive(GOOD_ROOT)[:100],
        "not gzip directory": _archive(b"\x1f\x8bnot-really"),
    }
    return cases


@pytest.mark.parametrize("case", list(_cases()))
def test_hostile_archives_are_refused(tmp_path: Path, case: str) -> None:
    path = tmp_path / "bad.pmtiles"
    path.write_bytes(_cases()[case])
    tracemalloc.start()
    t = time.perf_counter()
    try:
        with pytest.raises(InvalidInput):
            validate(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100 * 1024 * 1024, case
    assert time.perf_counter() - t < 2
    result = runner.invoke(app, ["tiles", "import", str(path), "--name", "bad"])
    assert result.exit_code == 1
    assert "invalid PMTiles archive" in result.output.replace("\n", " ")


def test_good_handmade_archive_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "ok.pmtiles"
    path.write_bytes(_archive(GOOD_ROOT))
    assert validate(path).tiles == 1
