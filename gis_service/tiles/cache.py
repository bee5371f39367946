"""An in-memory tile cache bounded by bytes, invalidated by table and bounding box.

Entries are keyed by (layer set, z, x, y, scope) so different areas never share bytes
(BAD_INPUTS A7). Each entry remembers the tables it was cut from and its lon/lat bounds
(with the render buffer), so a change to one table over one bbox drops exactly the
tiles that could show it. A generation counter lets a renderer refuse to store bytes
computed before an invalidation that arrived while it was running.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from gis_service.tiles.tilemath import intersects

BBox = tuple[float, float, float, float]
#: (layer names, z, x, y, scope code or "*")
CacheKey = tuple[tuple[str, ...], int, int, int, str]


@functools.lru_cache(maxsize=16)
def _salted(salt: str) -> Any:
    return hashlib.sha256(f"gis-tile:{salt}:".encode())


def etag_of(raw: bytes, salt: str) -> str:
    """A strong ETag from the tile bytes (identical bytes → identical tag across processes).

    SHA-256 of the salt then the bytes, the salted state copied (the CPU's SHA extensions
    make it about twice as fast as the keyed BLAKE2b it replaced, per cold tile).
    """
    hasher = _salted(salt).copy()
    hasher.update(raw)
    return f'"{hasher.hexdigest()[:24]}"'


@dataclass
class TileEntry:
    """One rendered tile: raw MVT, its gzip once computed, ETag and what it depends on."""

    raw: bytes
    etag: str
    tables: frozenset[str]
    bounds: BBox
    capped: tuple[str, ...] = ()
    gz: bytes | None = None
    _size: int = field(default=0, repr=False)
    #: Response header lists already built for this entry, by (cache hit, gzip).
    replies: dict[tuple[bool, bool], list[tuple[bytes, bytes]]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def gzipped(self, level: int) -> bytes:
        """The gzip body, compressed on first use and kept (gzip once)."""
        if self.gz is None:
            self.gz = gzip.compress(self.raw, compresslevel=level, mtime=0)
        return self.gz

    @property
    def size(self) -> int:
        """Bytes held (raw + gzip + a fixed overhead per entry)."""
        return len(self.raw) + (len(self.gz) if self.gz else 0) + 256


class TileCache:
    """LRU by bytes with table/bbox invalidation."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[CacheKey, TileEntry] = OrderedDict()
        self._bytes = 0
        #: Bumped by every invalidation; renderers compare it before storing.
        self.generation = 0
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        """False when the size bound is zero."""
        return self.max_bytes > 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        """Bytes currently held."""
        return self._bytes

    def get(self, key: CacheKey) -> TileEntry | None:
        """The entry (marked recently used) or None."""
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry

    def put(self, key: CacheKey, entry: TileEntry, generation: int) -> bool:
        """Store unless an invalidation happened since ``generation`` was read."""
        if not self.enabled or generation != self.generation or entry.size > self.max_bytes:
            return False
        self._drop(key)
        self._entries[key] = entry
        entry._size = entry.size
        self._bytes += entry._size
        while self._bytes > self.max_bytes and self._entries:
            self._drop(next(iter(self._entries)))
        return True

    def regzipped(self, key: CacheKey, entry: TileEntry) -> None:
        """Account for the gzip body added to a cached entry."""
        if self._entries.get(key) is entry:
            self._bytes += entry.size - entry._size
            entry._size = entry.size

    def _drop(self, key: CacheKey) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old._size

    def invalidate(self, table: str, bbox: BBox | None) -> int:
        """Drop the tiles cut from ``table`` over ``bbox`` (all of the table's when None)."""
        self.generation += 1
        doomed = [
            key
            for key, entry in self._entries.items()
            if table in entry.tables and (bbox is None or intersects(entry.bounds, bbox))
        ]
        for key in doomed:
            self._drop(key)
        return len(doomed)

    def clear(self) -> None:
        """Drop everything (the change feed was interrupted)."""
        self.generation += 1
        self._entries.clear()
        self._bytes = 0
