"""Pure parts of the tile stack: tile math, cache bound and invalidation, change payloads, SQL."""

from __future__ import annotations

import pytest
from pyproj import Transformer

from gis_service.errors import BadParameter, NotFound
from gis_service.registry import load_registry
from gis_service.tiles.cache import TileCache, TileEntry, etag_of
from gis_service.tiles.changes import parse_payload
from gis_service.tiles.pmtiles_store import tiles_covering
from gis_service.tiles.sql import tile_query
from gis_service.tiles.tilemath import Tile, parse_tile

HALF = 20037508.342789244


def test_tile_bounds_agree_with_pyproj() -> None:
    to_lonlat = Transformer.from_crs(3857, 4326, always_xy=True)
    tile = Tile(14, 13341, 6866)
    size = 2 * HALF / 2**14
    x0, y1 = -HALF + tile.x * size, HALF - tile.y * size
    (w, e), (s, n) = to_lonlat.transform([x0, x0 + size], [y1 - size, y1])
    assert tile.bounds() == pytest.approx((w, s, e, n), abs=1e-9)


@pytest.mark.parametrize(
    ("z", "x", "y", "error"),
    [
        ("31", "0", "0", BadParameter),
        ("3", "8", "0", NotFound),
        ("3", "0", "8", NotFound),
        ("3", "-1", "0", BadParameter),
        ("٣", "0", "0", BadParameter),
        ("3 ", "0", "0", BadParameter),
        ("", "0", "0", BadParameter),
    ],
)
def test_parse_tile_refuses(z: str, x: str, y: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_tile(z, x, y)


def test_parse_tile_accepts_the_matrix_corners() -> None:
    assert parse_tile("0", "0", "0") == Tile(0, 0, 0)
    assert parse_tile("30", str(2**30 - 1), "0") == Tile(30, 2**30 - 1, 0)


def _entry(size: int, bounds: tuple[float, float, float, float], tables: set[str]) -> TileEntry:
    raw = b"x" * size
    return TileEntry(raw, etag_of(raw, "s"), frozenset(tables), bounds)


def test_cache_is_bounded_by_bytes_lru() -> None:
    cache = TileCache(10_000)
    for i in range(10):
        assert cache.put(((f"l{i}",), 1, 0, 0, "*"), _entry(2_000, (0, 0, 1, 1), {"t"}), 0)
        assert cache.nbytes <= 10_000
    assert len(cache) == 4
    assert cache.get((("l9",), 1, 0, 0, "*")) is not None
    assert cache.get((("l0",), 1, 0, 0, "*")) is None


def test_cache_invalidates_by_table_and_bbox() -> None:
    cache = TileCache(1 << 20)
    near = (("a",), 14, 1, 1, "*")
    far = (("a",), 14, 2, 2, "*")
    other = (("b",), 14, 1, 1, "*")
    cache.put(near, _entry(10, (113.0, 27.0, 113.1, 27.1), {"enterprise"}), 0)
    cache.put(far, _entry(10, (114.0, 22.0, 114.1, 22.1), {"enterprise"}), 0)
    cache.put(other, _entry(10, (113.0, 27.0, 113.1, 27.1), {"grid"}), 0)
    assert cache.invalidate("enterprise", (113.05, 27.05, 113.06, 27.06)) == 1
    assert cache.get(near) is None
    assert cache.get(far) is not None
    assert cache.get(other) is not None
    assert cache.invalidate("grid", None) == 1
    # a render that started before an invalidation may not store its (stale) bytes
    stale_generation = cache.generation - 1
    assert not cache.put(
        near, _entry(10, (113.0, 27.0, 113.1, 27.1), {"enterprise"}), stale_generation
    )


def test_disabled_cache_stores_nothing() -> None:
    cache = TileCache(0)
    assert not cache.enabled
    assert not cache.put((("a",), 1, 0, 0, "*"), _entry(1, (0, 0, 1, 1), {"t"}), 0)


def test_etag_depends_on_bytes_and_salt() -> None:
    assert etag_of(b"a", "s") == etag_of(b"a", "s")
    assert etag_of(b"a", "s") != etag_of(b"b", "s")
    assert etag_of(b"a", "s") != etag_of(b"a", "t")


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ("7|enterprise|113.1,27.9,113.2,28", ("enterprise", (113.1, 27.9, 113.2, 28.0))),
        ("8|grid|", ("grid", None)),
        ("9|grid|nan,x", ("grid", None)),
        ("garbage", None),
        ("1||", None),
    ],
)
def test_change_payloads(payload: str, expected: object) -> None:
    assert parse_payload(payload) == expected


def test_tiles_covering_a_bbox() -> None:
    tiles = list(tiles_covering((113.0, 27.8, 113.3, 28.1), 10))
    assert Tile(10, 833, 429) in tiles
    for t in tiles:
        w, s, e, n = t.bounds()
        assert w <= 113.3
        assert e >= 113.0
        assert s <= 28.1
        assert n >= 27.8


def test_tile_sql_binds_values_and_quotes_names() -> None:
    spec = load_registry().get("grids")
    q = tile_query(spec, 14, scoped=True)
    assert '"grid"' in q.sql
    assert "%(scope)s" in q.sql
    assert "%(f0)s" not in q.sql  # valid_to IS NULL needs no value
    assert "ORDER BY" not in q.sql
    assert "LIMIT 10000" in q.sql
    unscoped = tile_query(spec, 14, scoped=False)
    assert "%(scope)s" not in unscoped.sql
    ent = tile_query(load_registry().get("enterprises"), 8, scoped=False)
    assert "GROUP BY" in ent.sql
    towns = tile_query(load_registry().get("townships"), 10, scoped=False)
    assert towns.params == {"f0": "township"}


def _transform_targets(sql: str) -> set[int]:
    """The target SRID (last argument) of every ``ST_Transform(...)`` call in ``sql``."""
    targets = set()
    start = sql.find("ST_Transform(")
    while start != -1:
        depth, end = 0, start + len("ST_Transform")
        while True:
            depth += {"(": 1, ")": -1}.get(sql[end], 0)
            if depth == 0:
                break
            end += 1
        targets.add(int(sql[start:end].rsplit(",", 1)[1].strip()))
        start = sql.find("ST_Transform(", start + 1)
    return targets


def test_connection_warm_up_covers_every_projection_of_the_tile_sql() -> None:
    """PostGIS sets PROJ up per backend and per direction (~120 ms CPU each): the warm-up
    must cover every direction a tile statement uses, else a fresh connection's first
    tile pays it (it did for storage SRID → 3857 until 2026-11-23)."""
    from gis_service.tiles.service import _WARM
    from gis_service.types import STORAGE_SRID

    used = set()
    for spec in load_registry():
        for z in range(spec.minzoom, spec.maxzoom + 1):
            for scoped in (False, True):
                used |= _transform_targets(tile_query(spec, z, scoped).sql)
    assert used == {STORAGE_SRID, 3857}
    assert _transform_targets(_WARM) == used
    assert f"ST_SetSRID(ST_MakePoint(113.1, 27.8), {STORAGE_SRID}), 3857)" in _WARM
