"""PMTiles: export our own MVT, validate archives, read them with cached directories.

Export renders every tile of the requested area with the very statements the server uses
(same generalisation, caps and scope), gzips it and hands it to the ``pmtiles`` writer in
tile-id order (a clustered archive). Validation walks the whole archive before it is
served (BAD_INPUTS A12): magic and version, every section inside the file, root directory
inside the first 16 KiB, directories decompressed under a size bound (no gzip bombs), leaf
depth bounded (no pointer cycles), tile entries inside the tile-data section.
The reader keeps decoded directories in an LRU: the stock ``Reader`` re-decodes the root
directory on every call (37 vs 32,000 tiles/s, TILE_SERVING.md).
"""

from __future__ import annotations

import functools
import gzip
import json
import math
import mmap
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from pmtiles.tile import (
    Compression,
    Entry,
    TileType,
    deserialize_header,
    find_tile,
    read_varint,
    zxy_to_tileid,
)
from pmtiles.writer import Writer

from gis_service.errors import InvalidInput
from gis_service.registry import LayerSpec
from gis_service.tiles.metadata import vector_layer
from gis_service.tiles.sql import tile_query
from gis_service.tiles.tilemath import Tile

BBox = tuple[float, float, float, float]
HEADER_LEN = 127
ROOT_LIMIT = 16_384
#: A decoded directory may not exceed this (a 16 KiB root holds ~20k entries ≈ 200 KiB).
DIRECTORY_LIMIT = 32 * 1024 * 1024
MAX_DEPTH = 4
MERCATOR_LAT = 85.0511287798066


# ------------------------------------------------------------------------ export
def tiles_covering(bbox: BBox, z: int) -> Iterator[Tile]:
    """Every tile of zoom ``z`` that intersects a lon/lat ``bbox``."""
    west, south, east, north = bbox
    n = 1 << z

    def col(lon: float) -> int:
        return min(n - 1, max(0, int((lon + 180.0) / 360.0 * n)))

    def row(lat: float) -> int:
        lat = max(-MERCATOR_LAT, min(MERCATOR_LAT, lat))
        merc = math.asinh(math.tan(math.radians(lat)))
        return min(n - 1, max(0, int((1 - merc / math.pi) / 2 * n)))

    for x in range(col(west), col(east) + 1):
        for y in range(row(north), row(south) + 1):
            yield Tile(z, x, y)


@dataclass
class ExportReport:
    """What an export wrote."""

    path: Path
    tiles: int
    empty: int
    bytes: int
    seconds: float
    capped: int


_AREA_SQL = (
    "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM"
    " (SELECT ST_Extent(boundary) AS e FROM admin_division WHERE code = %s) s"
)


def area_bbox(conn: psycopg.Connection[Any], code: str) -> BBox:
    """The lon/lat bounds of an admin unit's boundary (422 when it has none)."""
    row = conn.execute(_AREA_SQL, (code,)).fetchone()
    if row is None or row[0] is None:
        raise InvalidInput(detail=f"no boundary for admin code {code}", detail_zh="区划无边界")
    return float(row[0]), float(row[1]), float(row[2]), float(row[3])


def export(  # noqa: PLR0917 - the export spec is positional by nature
    conn: psycopg.Connection[Any],
    layers: tuple[LayerSpec, ...],
    bbox: BBox,
    minzoom: int,
    maxzoom: int,
    out: Path,
    *,
    scope: str | None = None,
    progress: Callable[[int, int], object] | None = None,
) -> ExportReport:
    """Render ``layers`` over ``bbox`` for zooms ``minzoom..maxzoom`` into ``out``.

    Args:
        conn: a connection (autocommit; parallel query is switched off here).
        layers: the layers, each kept to its own zoom range.
        bbox: lon/lat bounds to cover.
        minzoom: first zoom.
        maxzoom: last zoom.
        out: the archive to write.
        scope: an admin code: only that area's features (as a scoped user would see them).
        progress: called with (done, total) tiles.
    """
    import time

    started = time.perf_counter()
    conn.execute("SET max_parallel_workers_per_gather = 0")
    conn.execute("SET jit = off")
    zooms = [
        (z, tuple(s for s in layers if s.minzoom <= z <= s.maxzoom))
        for z in range(minzoom, maxzoom + 1)
    ]
    work = sorted(
        (
            (zxy_to_tileid(t.z, t.x, t.y), t, shown)
            for z, shown in zooms
            if shown
            for t in tiles_covering(bbox, z)
        ),
        key=lambda item: item[0],
    )
    written = empty = capped = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as fh:
        writer = Writer(fh)  # type: ignore[no-untyped-call]
        for done, (tile_id, tile, shown) in enumerate(work, 1):
            raw, hit_cap = render_sync(conn, shown, tile, scope)
            capped += hit_cap
            if raw:
                tile_gz = gzip.compress(raw, compresslevel=6, mtime=0)
                writer.write_tile(tile_id, tile_gz)  # type: ignore[no-untyped-call]
                written += 1
            else:
                empty += 1
            if progress is not None:
                progress(done, len(work))
        if written == 0:
            raise InvalidInput(detail="nothing to export in that area", detail_zh="该范围内无数据")
        header = _header(bbox, minzoom, maxzoom)
        metadata = {
            "name": ",".join(s.name for s in layers),
            "description": "; ".join(s.title for s in layers),
            "attribution": layers[0].attribution,
            "vector_layers": [vector_layer(s) for s in layers],
            "gis-service:scope": scope,
            "gis-service:bbox": list(bbox),
        }
        writer.finalize(header, metadata)  # type: ignore[no-untyped-call]
    return ExportReport(
        out, written, empty, out.stat().st_size, time.perf_counter() - started, capped
    )


def render_sync(
    conn: psycopg.Connection[Any], layers: tuple[LayerSpec, ...], tile: Tile, scope: str | None
) -> tuple[bytes, int]:
    """One tile through the serving statements (sync; for exports and the SQL benchmark)."""
    parts: list[bytes] = []
    capped = 0
    for spec in layers:
        query = tile_query(spec, tile.z, scope is not None)
        params: dict[str, Any] = {"z": tile.z, "x": tile.x, "y": tile.y, "scope": scope}
        params.update(query.params)
        row = conn.execute(query.sql, params, prepare=True).fetchone()
        if row is None:
            continue
        if row[0]:
            parts.append(bytes(row[0]))
        capped += int(row[1] is not None and row[1] >= query.cap)
    return b"".join(parts), capped


def _header(bbox: BBox, minzoom: int, maxzoom: int) -> dict[str, Any]:
    west, south, east, north = bbox
    return {
        "tile_type": TileType.MVT,
        "tile_compression": Compression.GZIP,
        "min_zoom": minzoom,
        "max_zoom": maxzoom,
        "min_lon_e7": int(west * 1e7),
        "min_lat_e7": int(south * 1e7),
        "max_lon_e7": int(east * 1e7),
        "max_lat_e7": int(north * 1e7),
        "center_zoom": min(maxzoom, max(minzoom, 12)),
        "center_lon_e7": int((west + east) / 2 * 1e7),
        "center_lat_e7": int((south + north) / 2 * 1e7),
    }


# -------------------------------------------------------------------- validation
def _bad(reason: str) -> InvalidInput:
    return InvalidInput(detail=f"invalid PMTiles archive: {reason}", detail_zh="PMTiles 文件无效")


def _inflate(buf: bytes, compression: Compression) -> bytes:
    if compression == Compression.NONE:
        return buf
    if compression != Compression.GZIP:
        raise _bad(f"unsupported internal compression {compression.name}")
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(buf, DIRECTORY_LIMIT + 1)
    except zlib.error as exc:
        raise _bad("directory is not valid gzip") from exc
    if len(out) > DIRECTORY_LIMIT or inflater.unconsumed_tail:
        raise _bad("directory expands beyond the size limit")
    return out


def parse_directory(buf: bytes) -> list[Entry]:
    """Decode an uncompressed directory with bounds checks (no trust in the counts)."""
    import io

    stream = io.BytesIO(buf)
    try:
        count = read_varint(stream)
        if count > len(buf):
            raise _bad("directory entry count exceeds its size")
        entries: list[Entry] = []
        last = 0
        for _ in range(count):
            last += read_varint(stream)
            entries.append(Entry(last, 0, 0, 0))
        for e in entries:
            e.run_length = read_varint(stream)
        for e in entries:
            e.length = read_varint(stream)
        for i, e in enumerate(entries):
            value = read_varint(stream)
            if i > 0 and value == 0:
                e.offset = entries[i - 1].offset + entries[i - 1].length
            else:
                e.offset = value - 1
    except EOFError as exc:
        raise _bad("truncated directory") from exc
    return entries


@dataclass(frozen=True)
class ArchiveInfo:
    """A validated archive's header and metadata."""

    header: dict[str, Any]
    metadata: dict[str, Any]
    tiles: int


def validate(path: Path) -> ArchiveInfo:
    """Walk the whole archive; :class:`InvalidInput` with the reason on the first fault."""
    size = path.stat().st_size
    if size < HEADER_LEN:
        raise _bad("file shorter than the header")
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if data[:7] != b"PMTiles":
            raise _bad("bad magic number")
        if data[7] != 3:
            raise _bad(f"unsupported version {data[7]}")
        try:
            header: dict[str, Any] = dict(deserialize_header(data[:HEADER_LEN]))
        except ValueError as exc:
            raise _bad("header holds unknown enumeration values") from exc
        sections = {
            "root directory": ("root_offset", "root_length"),
            "metadata": ("metadata_offset", "metadata_length"),
            "leaf directories": ("leaf_directory_offset", "leaf_directory_length"),
            "tile data": ("tile_data_offset", "tile_data_length"),
        }
        for name, (off, length) in sections.items():
            if header[off] < HEADER_LEN and header[length] > 0:
                raise _bad(f"{name} overlaps the header")
            if header[off] + header[length] > size:
                raise _bad(f"{name} extends past the end of the file")
        if header["root_offset"] + header["root_length"] > ROOT_LIMIT:
            raise _bad("root directory outside the first 16 KiB")
        if header["min_zoom"] > header["max_zoom"] or header["max_zoom"] > 30:
            raise _bad("zoom range")
        compression = header["internal_compression"]
        meta_raw = data[
            header["metadata_offset"] : header["metadata_offset"] + header["metadata_length"]
        ]
        try:
            metadata = json.loads(_inflate(meta_raw, compression) or b"{}")
        except json.JSONDecodeError as exc:
            raise _bad("metadata is not JSON") from exc
        if not isinstance(metadata, dict):
            raise _bad("metadata is not a JSON object")
        tiles = _walk(data, header, header["root_offset"], header["root_length"], 0)
    return ArchiveInfo(header, metadata, tiles)


def _walk(data: mmap.mmap, header: dict[str, Any], offset: int, length: int, depth: int) -> int:
    if depth >= MAX_DEPTH:
        raise _bad("leaf directories nested too deep (a pointer cycle?)")
    entries = parse_directory(
        _inflate(data[offset : offset + length], header["internal_compression"])
    )
    tiles = 0
    data_end = header["tile_data_length"]
    leaf_end = header["leaf_directory_length"]
    for e in entries:
        if e.run_length == 0:
            if e.offset < 0 or e.offset + e.length > leaf_end or e.length == 0:
                raise _bad("leaf pointer outside the leaf section")
            tiles += _walk(
                data, header, header["leaf_directory_offset"] + e.offset, e.length, depth + 1
            )
        else:
            if e.offset < 0 or e.offset + e.length > data_end:
                raise _bad("tile outside the tile-data section")
            tiles += e.run_length
    return tiles


# ------------------------------------------------------------------------ reading
class CachedArchive:
    """A validated archive, memory-mapped, with decoded directories kept in an LRU."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.info = validate(path)
        self.header = self.info.header
        stat = path.stat()
        self.signature = (stat.st_mtime_ns, stat.st_size)
        self._fh = path.open("rb")
        self._data = mmap.mmap(self._fh.fileno(), 0, access=mmap.ACCESS_READ)
        self._directory = functools.lru_cache(maxsize=1024)(self._read_directory)

    @property
    def gzipped(self) -> bool:
        """Whether stored tiles are gzip-compressed."""
        return bool(self.header["tile_compression"] == Compression.GZIP)

    def _read_directory(self, offset: int, length: int) -> list[Entry]:
        raw = self._data[offset : offset + length]
        return parse_directory(_inflate(raw, self.header["internal_compression"]))

    def get(self, z: int, x: int, y: int) -> bytes | None:
        """The stored bytes of one tile (as stored: usually gzip), or None."""
        h = self.header
        if z < h["min_zoom"] or z > h["max_zoom"]:
            return None
        tile_id = zxy_to_tileid(z, x, y)
        offset, length = h["root_offset"], h["root_length"]
        for _ in range(MAX_DEPTH):
            entry = find_tile(self._directory(offset, length), tile_id)
            if entry is None:
                return None
            if entry.run_length == 0:
                offset, length = h["leaf_directory_offset"] + entry.offset, entry.length
                continue
            start = h["tile_data_offset"] + entry.offset
            return self._data[start : start + entry.length]
        return None

    def close(self) -> None:
        """Release the mapping."""
        self._data.close()
        self._fh.close()
