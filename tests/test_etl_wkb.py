"""Rounding coordinates inside WKB (``etl.wkb``) against shapely's own reading of the values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import psycopg
import pyarrow as pa
import pytest
import shapely
from shapely.geometry.base import BaseGeometry

from etl.pipeline import ImportOptions, read_sandboxed, run_import
from etl.wkb import MAX_STEPS, round_wkb, round_wkb_split
from gis_service.demo import loader
from gis_service.settings import load_settings
from tests.fixtures import demo_without_buildings

RNG = np.random.default_rng(7)


def _xy() -> tuple[float, float]:
    return 113.0 + RNG.random() * 0.1, 27.0 + RNG.random() * 0.1


def _rounded(geom: BaseGeometry) -> BaseGeometry:
    """What the importer stores: every coordinate rounded to 1e-7 (numpy's rounding)."""
    return shapely.set_coordinates(geom, np.round(shapely.get_coordinates(geom), 7))


def _samples() -> list[bytes | None]:
    ring = [_xy() for _ in range(3)]
    hole = [(113.05, 27.05), (113.051, 27.05), (113.051, 27.051), (113.05, 27.05)]
    simple = [
        shapely.Point(*_xy()),
        shapely.LineString([_xy() for _ in range(5)]),
        shapely.Polygon([*ring, ring[0]], [hole]),
        shapely.MultiPoint([_xy(), _xy()]),
        shapely.MultiLineString([[_xy(), _xy()], [_xy(), _xy(), _xy()]]),
        shapely.MultiPolygon(
            [shapely.box(113.11111111111, 27.1, 113.2, 27.2), shapely.box(113.3, 27.3, 113.4, 27.4)]
        ),
        shapely.Point(),
        shapely.Polygon(),
        shapely.MultiPolygon(),
    ]
    values: list[bytes | None] = [shapely.to_wkb(g) for g in simple]
    polygon = values[2]
    assert polygon is not None
    values += [
        None,
        shapely.to_wkb(shapely.Point(113.123456789, 27.2, 5.0)),  # Z
        shapely.to_wkb(shapely.GeometryCollection([shapely.Point(*_xy())])),
        shapely.to_wkb(shapely.Point(*_xy()), byte_order=0),  # big-endian
        polygon[:-3],  # truncated
        b"",
        polygon[:5] + (10**6).to_bytes(4, "little") + polygon[9:],  # ring count too big
        polygon + b"\x00",  # trailing byte
        shapely.to_wkb(shapely.MultiPoint([_xy() for _ in range(MAX_STEPS + 1)])),
    ]
    return values


def _check(source: list[bytes | None], result: list[bytes | None], done: np.ndarray) -> None:
    for i, (before, after) in enumerate(zip(source, result, strict=True)):
        if not done[i]:
            assert after == before, f"value {i} changed although not done"
            continue
        if before is None:
            assert after is None
            continue
        got, want = shapely.from_wkb(after), _rounded(shapely.from_wkb(before))
        assert got.geom_type == want.geom_type
        assert np.array_equal(shapely.get_coordinates(got), shapely.get_coordinates(want)), i


@pytest.mark.parametrize("kind", [pa.binary(), pa.large_binary()])
def test_located_values_are_rounded_exactly_and_the_rest_left_byte_for_byte(
    kind: pa.DataType,
) -> None:
    source = _samples()
    array = pa.array(source, type=kind)
    result, done = round_wkb(array, 7)
    _check(source, result.to_pylist(), done)
    # Plain 2D little-endian values (and the missing one) are done; the others are not.
    assert done.tolist() == [True] * 10 + [False] * 8
    assert array.to_pylist() == source  # the input is not written to


@pytest.mark.parametrize("kind", [pa.binary(), pa.large_binary()])
def test_slices_and_chunks_are_read_at_their_offsets(kind: pa.DataType) -> None:
    """Also: the input is left as it was (a large_binary slice's offsets are a view of the
    parent's; halves of one array are rounded at once in two threads)."""
    source = _samples()
    array = pa.array(source, type=kind)
    for sub in (array.slice(2), array.slice(1, 7)):
        before = sub.to_pylist()
        result, done = round_wkb(sub, 7)
        assert sub.to_pylist() == before
        assert array.to_pylist() == source
        _check(before, result.to_pylist(), done)
    chunked = pa.chunked_array([array.slice(0, 4), array.slice(4)])
    result, done = round_wkb(chunked, 7)
    _check(source, result.to_pylist(), done)


@pytest.mark.parametrize("kind", [pa.binary(), pa.large_binary()])
def test_split_over_cores_gives_the_one_call_answer(kind: pa.DataType) -> None:
    """120,000 values: two slices rounded in two threads at once, joined in order."""
    polys = shapely.polygons(RNG.random((120_000, 4, 2)) * 0.1 + [113.0, 27.0])
    source = pa.array(shapely.to_wkb(polys).tolist(), type=kind)
    kept = source.to_pylist()
    whole, whole_done = round_wkb(source, 7)
    split, split_done = round_wkb_split(source, 7)
    assert split.num_chunks == 2
    assert split.to_pylist() == whole.to_pylist()
    assert split_done.tolist() == whole_done.tolist()
    assert source.to_pylist() == kept


def test_a_million_vertices_round_like_numpy() -> None:
    geoms = shapely.polygons(RNG.random((20_000, 6, 2)) * 0.1 + [113.0, 27.0])
    geoms = shapely.make_valid(geoms)  # mixed Polygon / MultiPolygon / collections
    source = shapely.to_wkb(geoms).tolist()
    result, done = round_wkb(pa.array(source, type=pa.binary()), 7)
    assert done.mean() > 0.5
    _check(source, result.to_pylist(), done)


def test_a_file_stored_as_read_is_rounded_before_parsing(tmp_path: Path) -> None:
    """GeoPackage in CGCS2000: rounded in the WKB, so the parsed geometries are the stored
    ones; the same file read as GCJ-02 (converted later) is parsed as it is."""
    path = tmp_path / "b.gpkg"
    polys = [
        shapely.box(113.123456789 + i / 1000, 27.1, 113.2 + i / 1000, 27.187654321)
        for i in range(5)
    ]
    gpd.GeoDataFrame({"名称": list("甲乙丙丁戊")}, geometry=polys, crs=4490).to_file(
        path, engine="pyogrio"
    )
    limits = load_settings(environment="test").etl
    table = read_sandboxed(path, ImportOptions(target="building"), limits, round_to=7)
    assert table.rounded is not None
    assert table.rounded.all()
    assert table.geometry is not None
    for got, raw in zip(table.geometry, polys, strict=True):
        assert np.array_equal(
            shapely.get_coordinates(got), np.round(shapely.get_coordinates(raw), 7)
        )
    converted = read_sandboxed(
        path, ImportOptions(target="building", crs="gcj02"), limits, round_to=7
    )
    assert converted.rounded is None
    assert converted.geometry is not None
    assert all(a.equals_exact(b, 0) for a, b in zip(converted.geometry, polys, strict=True))


@pytest.fixture(scope="module")
def no_buildings(make_database: Any, demo_city: Any) -> str:
    """The district's divisions and grids, without buildings."""
    return demo_without_buildings(make_database, demo_city, "wkb")


def test_import_stores_the_rounded_file_wkb_and_encodes_what_validation_changed(
    no_buildings: str, demo_city: Any, tmp_path: Path
) -> None:
    """Rows validation keeps go to COPY as the file's rounded WKB; a repaired bow-tie and a
    3D polygon (not located in its WKB) are encoded from their geometries as before."""
    plain = list(demo_city.buildings["geom"][:3])
    x, y = shapely.get_coordinates(plain[0])[0]
    bowtie = shapely.Polygon([(x, y), (x + 2e-4, y + 2e-4), (x + 2e-4, y), (x, y + 2e-4), (x, y)])
    solid = shapely.force_3d(plain[1], 12.5)
    path = tmp_path / "mixed.gpkg"
    gpd.GeoDataFrame({"层数": [1, 2, 3, 4, 5]}, geometry=[*plain, bowtie, solid], crs=4490).to_file(
        path, engine="pyogrio"
    )
    limits = load_settings(environment="test").etl
    report = run_import(no_buildings, path, ImportOptions(target="building"), limits=limits)
    assert report.status == "succeeded", report.as_dict()
    assert report.rows_repaired == 1
    assert any("Z/M" in note for note in report.notes)
    with psycopg.connect(loader.psycopg_conninfo(no_buildings)) as c:
        stored = [
            (shapely.from_wkb(bytes(r[0])), r[1])
            for r in c.execute(
                "SELECT ST_AsBinary(geom), ST_IsValid(geom) FROM building ORDER BY id"
            )
        ]
    assert [s[1] for s in stored] == [True] * 5
    assert all(g.geom_type == "MultiPolygon" for g, _ in stored)
    for (got, _), raw in zip(stored, [*plain[:3], None, shapely.force_2d(solid)], strict=True):
        if raw is None:
            continue
        want = np.round(shapely.get_coordinates(raw), 7)
        assert np.array_equal(shapely.get_coordinates(got), want)
    repaired = stored[3][0]
    rounded_bowtie = shapely.make_valid(
        shapely.set_coordinates(bowtie, np.round(shapely.get_coordinates(bowtie), 7))
    )
    assert repaired.symmetric_difference(rounded_bowtie).area < 1e-14
