"""Load converted rows into their table: staging COPY, stamping, checks, one merge.

Everything happens in the caller's transaction, so an import is all or nothing:
1. stamp village and grid by the rule of ``gis_stamps`` (``etl.stamp``);
2. COPY the rows into a temporary staging table shaped like the target;
3. refuse rows outside the importer's area, rows whose natural key belongs to a row in
   another area, and repeated keys within the file (BAD_INPUTS C13, C14, E4);
4. ``INSERT … ON CONFLICT (natural key) DO UPDATE``: a re-import updates, never duplicates.

Append-only located tables (buildings, facilities …: no natural key) skip staging: their
only check, the importer's area, needs just the stamps, so the rows are copied straight
into the target after it (``Loader.direct``).

Table and column names come only from the declared target registry (``etl.mapping``) and
the models, quoted by psycopg; every value travels through COPY or a bound parameter.
"""

from __future__ import annotations

import functools
import json
import struct
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import pairwise, repeat
from typing import Any, LiteralString

import numpy as np
import psycopg
import shapely
from geoalchemy2 import Geometry
from psycopg import pq, sql
from psycopg.adapt import Buffer, Dumper
from psycopg.copy import QueuedLibpqWriter
from sqlalchemy import CheckConstraint, UniqueConstraint

from etl.model import RowProblem
from etl.stamp import Box, Stamper, around, covering_rows, stamps
from gis_service.db.models import LOCATED_TABLES, Base, ValueRule

_LOCATED = frozenset(m.__tablename__ for m in LOCATED_TABLES)

#: Why a row outside the importer's area is refused (English, Chinese).
_OUTSIDE = ("the feature lies outside your area", "该要素不在您的管辖范围内")

#: Loads at least this big into a table they at least double rebuild its indexes after.
BULK_REBUILD_MIN_ROWS = 100_000

#: Rows stamped and formatted per step of the direct path (about 40 MB of COPY text).
_CHUNK_ROWS = 100_000

#: The direct path's first step is smaller: the database waits for it.
_FIRST_CHUNK_ROWS = 10_000


def _spans(n: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of the direct path's chunks of ``n`` rows."""
    first = min(n, _FIRST_CHUNK_ROWS, _CHUNK_ROWS)
    cuts = [0, *range(first, n, _CHUNK_ROWS), n] if n else []
    return list(pairwise(cuts))


#: How a natural key is declared unique in the schema (the ON CONFLICT target).
_CONFLICT_TARGETS: dict[str, sql.Composable] = {
    "grid": sql.SQL("(grid_code) WHERE valid_to IS NULL"),
}


@dataclass
class LoadInput:
    """Rows ready for the database (already converted and validated).

    Attributes:
        table: target table (from the registry).
        columns: target columns provided by the file, in order (without geometry).
        values: one list per column, all of length n.
        attributes: per-row JSON-safe dicts of the file's unmatched columns.
        rows: the file's row numbers (for problems).
        natural_key: the columns identifying a row across imports (empty: append only).
        source: provenance written to ``source`` (``import:<batch id>``).
        source_crs: the CRS enum value the coordinates came in.
    """

    table: str
    columns: list[str]
    values: list[Sequence[Any]]
    attributes: list[dict[str, Any]]
    rows: list[int]
    natural_key: tuple[str, ...]
    source: str
    source_crs: str | None
    #: The geometries (shapely, lon/lat in SRID 4490, None where missing or where the
    #: file has none): stamped, and written as WKB chunk by chunk (:func:`wkb_hex`).
    geometries: np.ndarray[Any, np.dtype[np.object_]] | None = None
    #: The geometries passed :func:`etl.coords.validate` as they will be stored (rounded,
    #: repaired, GEOS-valid, non-empty, in range): a first load may then skip the table's
    #: ``ST_IsValid`` CHECK for these rows (see :meth:`Loader.indexes_rebuilt_after`).
    geometries_valid: bool = False
    #: Per row, the WKB to store when it is already at hand (the file's rounded WKB for a
    #: geometry validation left as it was, ``etl.wkb``); None where it must be encoded.
    wkb: np.ndarray[Any, np.dtype[np.object_]] | None = None
    #: Per column of ``values``, the Python types its values have (or a superset), when
    #: the caller collected them off the load's critical path (:func:`value_types`);
    #: None: the binary-COPY check collects them itself.
    types: list[frozenset[type]] | None = None


def value_types(values: Sequence[Any]) -> frozenset[type]:
    """The Python types among ``values``, collected at C speed.

    A generator over a million values per column cost ~1.5 s of the COPY loop's thread;
    ``map(type, …)`` into a set costs ~0.05 s per column.
    """
    return frozenset(map(type, values))


@dataclass
class LoadResult:
    """What the merge did, and which rows it refused."""

    inserted: int = 0
    updated: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


#: WKB type codes of the single-part types a Multi* column promotes, and their Multi*.
_PROMOTE = {"MULTIPOLYGON": (3, 6), "MULTILINESTRING": (2, 5)}


def wkb_bytes(
    geoms: np.ndarray[Any, Any], kind: str | None, ready: np.ndarray[Any, Any] | None = None
) -> list[bytes | None]:
    """WKB per row, promoted to Multi* where the column is Multi*.

    No SRID is written: PostGIS gives an SRID-less geometry the SRID of the column's type
    (all columns are SRID 4490). A single part is promoted by prepending the Multi* header
    to its WKB (byte order, type, one part), which is what ``ST_Multi`` writes, without
    building a million Multi* geometries. ``ready``: WKB already at hand per row (None
    where a geometry must be encoded), see ``LoadInput.wkb``.
    """
    out: list[bytes | None] = [None] * len(geoms)
    present = np.flatnonzero(~shapely.is_missing(geoms))
    if not len(present):
        return out
    geo = geoms[present]
    if ready is None:
        wkbs = shapely.to_wkb(geo)
    else:
        wkbs = np.asarray(ready, dtype=object)[present]
        todo = np.flatnonzero([w is None for w in wkbs])
        if len(todo):
            wkbs[todo] = shapely.to_wkb(geo[todo])
    promote = _PROMOTE.get(kind or "")
    if promote is None:
        blobs = wkbs.tolist()
    else:
        single, multi = promote
        header = b"\x01" + struct.pack("<II", multi, 1)
        lone = shapely.get_type_id(geo) == single
        blobs = [header + w if one else w for w, one in zip(wkbs, lone, strict=True)]
    for i, b in zip(present, blobs, strict=True):
        out[i] = b
    return out


def wkb_hex(
    geoms: np.ndarray[Any, Any], kind: str | None, ready: np.ndarray[Any, Any] | None = None
) -> list[str | None]:
    """:func:`wkb_bytes` as hex text, what a text-format COPY carries."""
    return [None if b is None else b.hex() for b in wkb_bytes(geoms, kind, ready)]


def geometry_kind(table: str) -> str | None:
    """The geometry type of ``table.geom`` (e.g. ``MULTIPOLYGON``), None without one."""
    column = Base.metadata.tables[table].c.get("geom")
    if column is None or not isinstance(column.type, Geometry):
        return None
    return str(column.type.geometry_type).upper()


def scope_predicate(column: sql.Composable, scope_code: str | None) -> sql.Composable:
    """SQL: the admin code in ``column`` lies inside ``scope_code`` (true when None)."""
    if scope_code is None:
        return sql.SQL("true")
    return sql.SQL(
        "{} IN (SELECT code FROM admin_division WHERE ancestors @> ARRAY[{}]::text[])"
    ).format(column, sql.Literal(scope_code))


def _problems(
    conn: psycopg.Connection[Any], query: sql.Composed, reason: str, zh: str
) -> list[RowProblem]:
    return [RowProblem(row=int(r[0]), reason=reason, reason_zh=zh) for r in conn.execute(query)]


@dataclass
class _Chunk:
    """Rows ``start:stop`` of the direct path, ready for COPY (see :meth:`Loader._chunk`)."""

    start: int
    stop: int
    admin: list[Any]
    grid: list[Any]
    #: File row numbers refused (outside the importer's area), ascending.
    refused: list[int]
    #: WKB (or hex WKB) per row, None if there are no geometries or nothing is written.
    wkb: list[Any] | None = None
    #: Box of the geometries written.
    box: tuple[float, float, float, float] | None = None


def _box(
    geometries: np.ndarray[Any, np.dtype[np.object_]],
) -> tuple[float, float, float, float] | None:
    """(min x, min y, max x, max y) of the present geometries, None if there are none."""
    if not len(geometries):
        return None
    box = shapely.total_bounds(geometries)
    if np.isnan(box).any():
        return None
    return (float(box[0]), float(box[1]), float(box[2]), float(box[3]))


class Loader:
    """Runs the staging → checks → merge sequence for one :class:`LoadInput`."""

    def __init__(
        self, conn: psycopg.Connection[Any], data: LoadInput, scope_code: str | None
    ) -> None:
        self.conn = conn
        self.data = data
        self.scope_code = scope_code
        self.target = sql.Identifier(data.table)
        self.stage = sql.Identifier(f"_import_{data.table}")
        self.located = data.table in _LOCATED
        self.scope_column = "admin_code" if self.located else "community_code"
        self.has_geom = geometry_kind(data.table) is not None
        #: What the checks and the merge read.
        self.rows = self.stage
        #: Village and grid per row (located tables), from :meth:`stamp`.
        self.admin_codes: Sequence[Any] = ()
        self.grid_codes: Sequence[Any] = ()
        #: The target was empty and was truncated in this transaction (a first load):
        #: COPY may FREEZE, and with ``wal_level=minimal`` writes no WAL for the rows.
        self.fresh = False
        #: Whether staging rows were updated (they may then no longer lie in file order).
        self.rewritten = False
        self.notes: list[str] = []
        #: The first of the ids reserved for a first load's rows (row i gets first + i).
        self.first_id: int | None = None
        #: Box (min x, min y, max x, max y) of the geometries the direct path wrote.
        self.written_box: tuple[float, float, float, float] | None = None
        #: Columns the row rules fill in staging although the file did not carry them.
        self.derived: list[str] = []
        #: The distinct stamps the direct path wrote (what the code CHECKs are proven on).
        self.stamped: dict[str, set[Any]] = {"admin_code": set(), "grid_code": set()}
        #: A natural key the schema does not declare unique (shelter names) identifies a
        #: row only within its village: matched on key + admin_code, never across areas.
        self.unique_key = bool(data.natural_key) and _declared_unique(data.table, data.natural_key)
        self.match_key: tuple[str, ...] = (
            data.natural_key
            if self.unique_key or not data.natural_key
            else (*data.natural_key, "admin_code")
        )

    @property
    def direct(self) -> bool:
        """Whether rows can be copied straight into the target, without staging.

        True for append-only located tables (no natural key to merge on, no row rules)
        whose rows need no column defaults filled in SQL: the checks then need only the
        stamps, which are known before anything is written, and the database inserts
        while this process is still formatting rows.
        """
        if not self.located or self.data.natural_key or self.data.table in _ROW_RULES:
            return False
        table = Base.metadata.tables[self.data.table]
        return not any(
            None in values
            for name, values in zip(self.data.columns, self.data.values, strict=True)
            if not table.c[name].nullable and table.c[name].server_default is not None
        )

    @functools.cached_property
    def default_attributes(self) -> bool:
        """Whether the direct path leaves ``attributes`` to its column default.

        True when the file has no unmatched column (every row's ``{}``, the default): a
        million ``{}`` cost 0.5 s of the COPY thread to send and a jsonb parse each.
        """
        column = Base.metadata.tables[self.data.table].c.get("attributes")
        return (
            column is not None
            and column.server_default is not None
            and not any(self.data.attributes)
        )

    def _copy_names(self, *, staging: bool) -> list[str]:
        """The columns :meth:`_rows` yields, in order."""
        attributes = [] if not staging and self.default_attributes else ["attributes"]
        names = [*self.data.columns, *attributes, "source"]
        if staging:
            names += ["id", "_row"]
        elif self.first_id is not None:
            names.append("id")
        if self.has_geom:
            names.append("geom")
        if self.located:
            names += ["source_crs", "admin_code", "grid_code"]
        return names

    def _copy_sql(
        self, into: sql.Identifier, *, staging: bool, binary: bool = False, freeze: bool = False
    ) -> sql.Composed:
        """``COPY into (columns) FROM STDIN`` for the rows :meth:`_rows` yields."""
        options = [sql.SQL("FORMAT BINARY")] if binary else []
        if freeze:
            options.append(sql.SQL("FREEZE"))
        return sql.SQL("COPY {} ({}) FROM STDIN{}").format(
            into,
            sql.SQL(", ").join(map(sql.Identifier, self._copy_names(staging=staging))),
            sql.SQL(" ({})").format(sql.SQL(", ").join(options)) if options else sql.SQL(""),
        )

    def _binary_types(self) -> list[int] | None:
        """Type oids for a binary COPY of the direct path's rows, None if text must do.

        Binary COPY hands PostGIS the WKB itself (``geometry_recv``): no hex text written
        here, none parsed there. Only types whose psycopg binary dumper takes exactly the
        Python values the converters produce qualify (checked column by column).
        """
        names = self._copy_names(staging=False)
        found = dict(
            self.conn.execute(
                "SELECT a.attname, a.atttypid::int FROM pg_attribute a"
                " WHERE a.attrelid = %s::regclass AND a.attname = ANY(%s) AND NOT a.attisdropped",
                (self.data.table, names),
            ).fetchall()
        )
        row = self.conn.execute("SELECT to_regtype('geometry')::int").fetchone()
        geometry_oid = None if row is None else row[0]
        oids = [found.get(name) for name in names]
        for name, oid in zip(names, oids, strict=True):
            if name == "geom":
                if oid is None or oid != geometry_oid:
                    return None
            elif name == "attributes":
                if oid != _JSONB_OID:
                    return None
            elif oid not in _BINARY_PY_TYPES:
                return None
        known = self.data.types
        for i, (name, values) in enumerate(zip(self.data.columns, self.data.values, strict=True)):
            kinds = value_types(values) if known is None else known[i]
            if not kinds <= {type(None), _BINARY_PY_TYPES[found[name]]}:
                return None
        return [int(oid) for oid in oids if oid is not None]

    def _rows(
        self,
        start: int,
        stop: int,
        admin: Sequence[Any],
        grid: Sequence[Any],
        *,
        staging: bool,
        binary: bool = False,
        wkb: Sequence[Any] | None = None,
    ) -> Iterator[tuple[Any, ...]]:
        """Rows ``start:stop`` in :meth:`_copy_sql`'s column order, with their stamps.

        Staging also gets a provisional id and the file's row number. Geometries are WKB
        bytes for a binary COPY, hex WKB for a text one (``wkb``: already encoded).
        """
        d = self.data
        n = stop - start
        columns: list[Iterable[Any]] = [*(values[start:stop] for values in d.values)]
        if staging or not self.default_attributes:
            columns.append([_json(a) for a in d.attributes[start:stop]])
        columns.append(repeat(d.source, n))
        if staging:
            columns += [range(start + 1, stop + 1), d.rows[start:stop]]
        elif self.first_id is not None:
            columns.append(range(self.first_id + start, self.first_id + stop))
        if self.has_geom:
            columns.append(
                repeat(None, n)
                if d.geometries is None
                else wkb
                if wkb is not None
                else (wkb_bytes if binary else wkb_hex)(
                    d.geometries[start:stop],
                    geometry_kind(d.table),
                    None if d.wkb is None else d.wkb[start:stop],
                )
            )
        if self.located:
            columns += [repeat(d.source_crs, n), admin, grid]
        return zip(*columns, strict=True)

    def stage_rows(self) -> None:
        """COPY the rows into a temporary table shaped like the target."""
        self.conn.execute(
            sql.SQL("CREATE TEMP TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP").format(
                self.stage, self.target
            )
        )
        self.conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN _row integer").format(self.stage))
        rows = self._rows(0, len(self.data.rows), self.admin_codes, self.grid_codes, staging=True)
        with self.conn.cursor().copy(self._copy_sql(self.stage, staging=True)) as copy:
            for row in rows:
                copy.write_row(row)
        self._fill_defaults()
        self.conn.execute(sql.SQL("ANALYZE {}").format(self.stage))

    def copy_direct(self, *, skip_bad_rows: bool, box: Box | None) -> tuple[int, list[RowProblem]]:
        """The direct path: stamp, check and COPY chunk by chunk; returns (written, problems).

        Three things run at once: a helper thread stamps chunk k+1 and encodes its WKB
        (GEOS releases the GIL), this thread hands chunk k's rows to COPY, and psycopg's
        queued writer sends them from its own thread while the database inserts. Stamping
        and encoding on this thread left the database waiting: a million buildings spent
        about 6 s of CPU in them here. The only check is the importer's area, known from
        the stamps. Once a row is refused without ``skip_bad_rows`` nothing more is
        written, but every chunk is still checked so the report names all refused rows
        (the caller rolls back). ``box``: the rows' box (:func:`etl.stamp.around`), which
        the stamps' villages and grids are read by.
        """
        d = self.data
        n = len(d.rows)
        geometries = self.geometries()
        stamping = Stamper(*covering_rows(self.conn, box))
        inside = self._inside_codes()
        problems: list[RowProblem] = []
        written = 0
        cursor = self.conn.cursor()
        if self.fresh:
            self.first_id = self._reserve_ids(n)
        types = self._binary_types()
        binary = types is not None
        if types is not None:
            names = self._copy_names(staging=False)
            if "geom" in names:
                oid = types[names.index("geom")]
                cursor.adapters.register_dumper(
                    None, type("_GeometryWkb", (_RawBinary,), {"oid": oid})
                )
            cursor.adapters.register_dumper(None, _JsonbText)
        copy_sql = self._copy_sql(self.target, staging=False, binary=binary, freeze=self.fresh)
        writing = threading.Event()
        writing.set()

        def chunk(span: tuple[int, int]) -> _Chunk:
            return self._chunk(
                stamping, inside, geometries, *span, binary=binary, encode=writing.is_set()
            )

        starts = _spans(n)
        with (
            ThreadPoolExecutor(1, thread_name_prefix="etl-chunk") as helper,
            cursor.copy(copy_sql, writer=QueuedLibpqWriter(cursor)) as copy,
        ):
            if types is not None:
                copy.set_types(types)
            ahead = [helper.submit(chunk, starts[0])] if starts else []
            for k in range(len(starts)):
                part = ahead.pop().result()
                if k + 1 < len(starts):
                    ahead.append(helper.submit(chunk, starts[k + 1]))
                problems += [
                    RowProblem(row=row, reason=_OUTSIDE[0], reason_zh=_OUTSIDE[1])
                    for row in part.refused
                ]
                if problems and not skip_bad_rows:
                    writing.clear()
                    continue
                rows = self._rows(
                    part.start,
                    part.stop,
                    part.admin,
                    part.grid,
                    staging=False,
                    binary=binary,
                    wkb=part.wkb,
                )
                if part.refused:
                    refused = set(part.refused)
                    numbers = d.rows[part.start : part.stop]
                    rows = (r for r, row in zip(rows, numbers, strict=True) if row not in refused)
                for row in rows:
                    copy.write_row(row)
                self.stamped["admin_code"].update(part.admin)
                self.stamped["grid_code"].update(part.grid)
                written += part.stop - part.start - len(part.refused)
                self._widen_box(part.box)
        return written, problems

    def _chunk(
        self,
        stamper: Stamper,
        inside: set[str] | None,
        geometries: np.ndarray[Any, np.dtype[np.object_]],
        start: int,
        stop: int,
        *,
        binary: bool,
        encode: bool,
    ) -> _Chunk:
        """Rows ``start:stop`` made ready for COPY off the COPY thread (no connection use)."""
        admin, grid = stamper.stamp(geometries[start:stop])
        numbers = self.data.rows[start:stop]
        refused = (
            []
            if inside is None
            else sorted(
                int(row)
                for row, code in zip(numbers, admin, strict=True)
                if code is None or code not in inside
            )
        )
        part = _Chunk(start, stop, admin.tolist(), grid.tolist(), refused)
        if encode:
            mine = geometries[start:stop]
            if refused:
                out = set(refused)
                mine = mine[np.array([int(r) not in out for r in numbers], dtype=bool)]
            part.box = _box(mine)
            if self.has_geom and self.data.geometries is not None:
                ready = None if self.data.wkb is None else self.data.wkb[start:stop]
                part.wkb = (wkb_bytes if binary else wkb_hex)(
                    geometries[start:stop], geometry_kind(self.data.table), ready
                )
        return part

    def _reserve_ids(self, n: int) -> int | None:
        """Take ``n`` ids from the table's id sequence at once; None without one.

        Only for a first load, which holds the table exclusively: nobody else draws from
        the sequence meanwhile, and the rows need no ``nextval`` each (identity and defaults
        cost 2.0 s of backend CPU on a million-row insert, measured at load 8). A rollback
        leaves the ids unused, as sequences do.
        """
        row = self.conn.execute(
            "SELECT pg_get_serial_sequence(%s, 'id')", (self.data.table,)
        ).fetchone()
        if row is None or row[0] is None or n == 0:
            return None
        first = self.conn.execute("SELECT nextval(%s::regclass)", (row[0],)).fetchone()
        assert first is not None
        self.conn.execute("SELECT setval(%s::regclass, %s)", (row[0], int(first[0]) + n - 1))
        return int(first[0])

    def _widen_box(self, box: tuple[float, float, float, float] | None) -> None:
        """Grow :attr:`written_box` by ``box``."""
        if box is None:
            return
        if self.written_box is not None:
            old = self.written_box
            box = (
                min(old[0], box[0]),
                min(old[1], box[1]),
                max(old[2], box[2]),
                max(old[3], box[3]),
            )
        self.written_box = box

    def geometries(self) -> np.ndarray[Any, np.dtype[np.object_]]:
        """The rows' geometries; all None for a 隐患 ledger without coordinates (no stamps)."""
        if self.data.geometries is None:
            return np.full(len(self.data.rows), None, dtype=object)
        return np.asarray(self.data.geometries, dtype=object)

    def _inside_codes(self) -> set[str] | None:
        """The village codes of the importer's area (None: no area limit)."""
        if self.scope_code is None:
            return None
        return {
            str(r[0])
            for r in self.conn.execute(
                sql.SQL("SELECT a.code FROM admin_division a WHERE {}").format(
                    scope_predicate(sql.SQL("a.code"), self.scope_code)
                )
            )
        }

    def _fill_defaults(self) -> None:
        """A blank cell in a NOT NULL column with a default gets the default, not an error."""
        table = Base.metadata.tables[self.data.table]
        for name, values in zip(self.data.columns, self.data.values, strict=True):
            column = table.c[name]
            if not column.nullable and column.server_default is not None and None in values:
                self.conn.execute(
                    sql.SQL("UPDATE {stage} SET {c} = DEFAULT WHERE {c} IS NULL").format(
                        stage=self.stage, c=sql.Identifier(name)
                    )
                )
                self.rewritten = True
        for derived, rule in _ROW_RULES.get(self.data.table, ()):
            if derived not in self.data.columns:
                self.derived.append(derived)
            self.notes += rule(self.conn, self.stage, self.data.columns)
            self.rewritten = True

    def stamp(self) -> None:
        """Village and grid of every row, before staging (see :mod:`etl.stamp`)."""
        if not self.located:
            return
        admin, grid = stamps(self.conn, self.geometries())
        self.admin_codes, self.grid_codes = admin.tolist(), grid.tolist()

    def check(self) -> list[RowProblem]:
        """Rows that must not be written: outside the area, foreign keys, repeated keys."""
        problems: list[RowProblem] = []
        scope_col = sql.SQL("s.") + sql.Identifier(self.scope_column)
        if self.scope_code is not None:
            problems += _problems(
                self.conn,
                sql.SQL("SELECT _row FROM {} s WHERE {} IS NULL OR NOT ({})").format(
                    self.rows, scope_col, scope_predicate(scope_col, self.scope_code)
                ),
                *_OUTSIDE,
            )
        key = self.match_key
        if key:
            on = sql.SQL(" AND ").join(
                sql.SQL("t.{k} = s.{k}").format(k=sql.Identifier(k)) for k in key
            )
            live = sql.SQL(" AND t.valid_to IS NULL") if self.data.table == "grid" else sql.SQL("")
            if self.scope_code is not None and self.unique_key:
                t_col = sql.SQL("t.") + sql.Identifier(self.scope_column)
                problems += _problems(
                    self.conn,
                    sql.SQL(
                        "SELECT s._row FROM {stage} s JOIN {target} t ON {on}{live}"
                        " WHERE {tcol} IS NULL OR NOT ({pred})"
                    ).format(
                        stage=self.rows,
                        target=self.target,
                        on=on,
                        live=live,
                        tcol=t_col,
                        pred=scope_predicate(t_col, self.scope_code),
                    ),
                    "this code belongs to a record outside your area",
                    "该编码已属于您管辖范围外的记录",
                )
            keys = sql.SQL(", ").join(map(sql.Identifier, key))
            problems += _problems(
                self.conn,
                sql.SQL(
                    "SELECT _row FROM (SELECT _row, row_number() OVER"
                    " (PARTITION BY {keys} ORDER BY _row) AS n FROM {stage}) d WHERE n > 1"
                ).format(keys=keys, stage=self.rows),
                f"repeats the {'/'.join(key)} of an earlier row in this file",
                f"与本文件前面的行 {'/'.join(key)} 重复",
            )
        return problems

    def drop_rows(self, rows: Sequence[int]) -> None:
        """Remove refused rows from staging (``--skip-bad-rows``)."""
        self.conn.execute(
            sql.SQL("DELETE FROM {} WHERE _row = ANY(%s)").format(self.stage), (list(rows),)
        )

    @contextmanager
    def indexes_rebuilt_after(self) -> Iterator[None]:
        """Around a big first load: drop the target's secondary indexes, rebuild them after.

        Maintaining a GiST index row by row cost 20 of the 36 s of inserting a million
        buildings; building it afterwards (sorted build) costs 2.4 s. That needs the table to
        itself, so it happens only when this load at least doubles the table and the lock is
        free within two seconds; otherwise the indexes are maintained as usual.

        When the locked table is empty (a first load) it is also truncated, which changes
        no row but gives it new files: COPY then writes its rows frozen and, on a cluster
        with ``wal_level=minimal`` (the embedded one), without WAL (the files are synced at
        commit); its primary key is rebuilt after the load too, and the rows' ids are
        reserved at once (:meth:`_reserve_ids`). If the rows' geometries were proven by
        :func:`etl.coords.validate` (``LoadInput.geometries_valid``), the table's
        ``ST_IsValid`` CHECK is dropped for the load and added back ``NOT VALID``: in force
        again for every later write (other writers, later updates of these rows) but not
        re-run over rows the importer already checked with the same GEOS predicates (valid,
        non-empty, inside ±180/±90), which cost ~5 s of backend CPU per million buildings.
        ``pg_constraint.convalidated`` then honestly says the database itself did not scan
        them; ``ALTER TABLE … VALIDATE CONSTRAINT`` proves them any time without blocking
        writers.
        """
        n = len(self.data.rows)
        existing = self.conn.execute(
            sql.SQL("SELECT count(*) FROM (SELECT 1 FROM {} LIMIT %s) s").format(self.target),
            (max(n, 1),),
        ).fetchone()
        if n < BULK_REBUILD_MIN_ROWS or existing is None or int(existing[0]) >= n:
            yield
            return
        before = self.conn.execute("SELECT current_setting('lock_timeout')").fetchone()
        try:
            with self.conn.transaction():
                self.conn.execute("SET LOCAL lock_timeout = '2s'")
                self.conn.execute(
                    sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(self.target)
                )
        except psycopg.errors.LockNotAvailable:
            self.notes.append("the table is in use: its indexes were maintained row by row")
            yield
            return
        self.conn.execute(
            "SELECT set_config('lock_timeout', %s, true)", (None if before is None else before[0],)
        )
        self.fresh = self._truncate_if_empty()
        # The primary key too, on a first load (nothing references the empty table): its
        # btree filled row by row cost 2.4 s of backend CPU on a million-row insert (load 8);
        # built after the load it is one sort.
        primary = self._drop_constraints("contype = 'p'") if self.fresh else []
        checks: list[tuple[str, str]] = []
        if self.fresh and self.data.geometries_valid:
            checks = self._drop_constraints(
                "contype = 'c' AND pg_get_constraintdef(oid) ILIKE '%%st_isvalid(geom)%%'"
            )
        # Plain value CHECKs with a ValueRule, on a first direct load: proven on the
        # written values after the load (below), else added back and validated.
        rules = self._value_rules() if self.fresh and self.direct else {}
        valued = self._drop_constraints("contype = 'c' AND conname = ANY(%s)", list(rules))
        found = self.conn.execute(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE i.indrelid = %s::regclass AND NOT i.indisunique AND NOT i.indisprimary",
            (self.data.table,),
        ).fetchall()
        for name, _ in found:
            self.conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
        # Row triggers that skip bulk loads by their WHEN, and the tile-change trigger the
        # direct path replaces by one announcement, are dropped for the load and created
        # again from their catalogue definitions (the table is ours until commit; a
        # rollback brings them back as they were). Disabling is not enough: PostgreSQL
        # still makes COPY insert row by row for a disabled BEFORE row trigger, and still
        # fills a disabled trigger's transition table with every row (spilled to a temp
        # file: 10.5 % of the backend's COPY samples for a million buildings, perf).
        quiet = self.conn.execute(
            "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger"
            " WHERE tgrelid = %s::regclass AND NOT tgisinternal AND tgenabled = 'O'"
            " AND (tgtype & 5) = 5"  # ROW | INSERT
            " AND pg_get_triggerdef(oid) LIKE '%%gis.bulk%%'",
            (self.data.table,),
        ).fetchall()
        tile_triggers = self._quiet_tile_triggers()
        quiet += tile_triggers
        for name, _ in quiet:
            self.conn.execute(
                sql.SQL("DROP TRIGGER {} ON {}").format(sql.Identifier(name), self.target)
            )
        yield
        for _, ddl in quiet:  # definitions read back from the catalogue, not from input
            self.conn.execute(sql.SQL(ddl))
        if tile_triggers and self.written_box is not None:
            self.conn.execute(
                "SELECT gis_tile_changed(%s, 'INSERT', ST_MakeBox2D(ST_Point(%s, %s),"
                " ST_Point(%s, %s)))",
                (self.data.table, *self.written_box),
            )
        # The value rules are tested on the written values (Python) while the database
        # builds the indexes (0.2-0.3 s of a million buildings, off the critical path).
        with ThreadPoolExecutor(1, thread_name_prefix="etl-proofs") as side:
            proving = side.submit(
                lambda: [(n, c) for n, c in valued if rules[n].holds(self._written(rules[n]))]
            )
            self._rebuild(primary, found, checks)
            proven = proving.result()
        for name, check in valued:  # definitions read back from the catalogue
            self.conn.execute(
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}{}").format(
                    self.target,
                    sql.Identifier(name),
                    sql.SQL(check),
                    sql.SQL(" NOT VALID" if (name, check) in proven else ""),
                )
            )
        if proven:
            self.notes.append(
                f"{len(proven)} value checks ({', '.join(n for n, _ in proven)}) were proven"
                " by the importer on the values written; they apply to every later write"
            )

    def _rebuild(
        self,
        primary: list[tuple[str, str]],
        indexes: list[tuple[str, str]],
        checks: list[tuple[str, str]],
    ) -> None:
        """Add back the primary key, the indexes and the proven geometry CHECK of a big load.

        Every definition was read back from the catalogue before it was dropped, never
        taken from input.
        """
        for name, definition in primary:
            self.conn.execute(
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                    self.target, sql.Identifier(name), sql.SQL(definition)
                )
            )
        for _, ddl in indexes:
            self.conn.execute(sql.SQL(ddl))
        for name, check in checks:
            self.conn.execute(
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {} NOT VALID").format(
                    self.target, sql.Identifier(name), sql.SQL(check)
                )
            )
        if checks:
            self.notes.append(
                "geometry validity was proven by the importer for these rows; the table's"
                " check applies to every later write"
            )

    def _drop_constraints(self, where: LiteralString, *params: Any) -> list[tuple[str, str]]:
        """Drop the target's constraints matching ``where``; their names and definitions.

        The definitions are read back from the catalogue (never from input), without a
        ``NOT VALID`` an earlier load left: the caller decides how each comes back.
        """
        found = [
            (str(r[0]), str(r[1]).removesuffix(" NOT VALID"))
            for r in self.conn.execute(
                sql.SQL(
                    "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
                    " WHERE conrelid = %s::regclass AND {}"
                ).format(sql.SQL(where)),
                (self.data.table, *params),
            )
        ]
        for name, _ in found:
            self.conn.execute(
                sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                    self.target, sql.Identifier(name)
                )
            )
        return found

    def _value_rules(self) -> dict[str, ValueRule]:
        """The target's value CHECKs whose columns this load writes, by constraint name."""
        found: dict[str, ValueRule] = {}
        for constraint in Base.metadata.tables[self.data.table].constraints:
            rule = constraint.info.get("rule") if isinstance(constraint, CheckConstraint) else None
            if isinstance(rule, ValueRule) and all(self._written_column(c) for c in rule.columns):
                found[str(constraint.name)] = rule
        return found

    def _written_column(self, column: str) -> bool:
        return column in self.data.columns or (
            self.located and column in ("source_crs", *self.stamped)
        )

    def _written(self, rule: ValueRule) -> Iterator[Any]:
        """Every value the direct path wrote into ``rule``'s columns (stamps: distinct)."""
        d = self.data
        for column in rule.columns:
            if column in d.columns:
                yield from d.values[d.columns.index(column)]
            elif column == "source_crs":
                yield d.source_crs
            else:
                yield from self.stamped[column]

    def _quiet_tile_triggers(self) -> list[tuple[str, str]]:
        """Tile-change INSERT triggers the direct path replaces by one announcement.

        The direct path announces its change itself (``gis_tile_changed`` with
        :attr:`written_box`). The trigger reads the new rows' extent from its transition
        table, which for a first load holds every row written (+0.24 s of backend CPU on
        a 250k-row insert, +60 %). Names and definitions.
        """
        if not (self.direct and self.has_geom):
            return []
        return [
            (str(r[0]), str(r[1]))
            for r in self.conn.execute(
                "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger"
                " WHERE tgrelid = %s::regclass AND NOT tgisinternal"
                " AND tgenabled = 'O' AND (tgtype & 7) = 4"  # STATEMENT | AFTER | INSERT
                " AND tgfoid = 'gis_tile_change'::regproc"
                " AND to_regprocedure('gis_tile_changed(text, text, box2d)') IS NOT NULL",
                (self.data.table,),
            )
        ]

    def _truncate_if_empty(self) -> bool:
        """TRUNCATE the locked target if it holds no row and nothing references it."""
        row = self.conn.execute(
            sql.SQL(
                "SELECT NOT EXISTS (SELECT 1 FROM {})"
                " AND NOT EXISTS (SELECT 1 FROM pg_constraint"
                " WHERE confrelid = %s::regclass AND contype = 'f')"
            ).format(self.target),
            (self.data.table,),
        ).fetchone()
        if row is None or not row[0]:
            return False
        try:
            with self.conn.transaction():
                self.conn.execute(sql.SQL("TRUNCATE {}").format(self.target))
        except psycopg.errors.InsufficientPrivilege:
            return False
        # The new files are written without WAL (wal_level=minimal) and synced at commit:
        # ~250 MB for a million buildings, 1.0-1.3 s of commit. Handing the written pages to
        # the kernel's writeback as they go leaves 0.3-0.4 s (A/B, 3 pairs; COPY and the
        # index builds alike within the noise).
        self.conn.execute("SET LOCAL backend_flush_after = '256kB'")
        return True

    def merge(self) -> tuple[int, int]:
        """Insert new rows and update existing ones by natural key; returns (inserted, updated)."""
        cols = [*self.data.columns, *self.derived, "attributes", "source"]
        if self.has_geom:
            cols.append("geom")
        if self.located:
            cols += ["source_crs", "admin_code", "grid_code"]
        names = sql.SQL(", ").join(map(sql.Identifier, cols))
        selected = sql.SQL(", ").join(sql.SQL("s.") + sql.Identifier(c) for c in cols)
        key = self.data.natural_key
        if key and not self.unique_key:
            return self._merge_by_lookup(cols)
        if key:
            conflict = _CONFLICT_TARGETS.get(
                self.data.table,
                sql.SQL("({})").format(sql.SQL(", ").join(map(sql.Identifier, key))),
            )
            sets = [
                sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c))
                for c in cols
                if c not in key and c != "attributes"
            ]
            sets.append(
                sql.SQL("attributes = {}.attributes || EXCLUDED.attributes").format(self.target)
            )
            on_conflict = sql.SQL(" ON CONFLICT {} DO UPDATE SET {}").format(
                conflict, sql.SQL(", ").join(sets)
            )
        else:
            on_conflict = sql.Composed([])
        # New ids follow the file's order. COPY wrote the rows in that order, so only a
        # staging table rewritten by UPDATEs needs sorting (a million-row sort spills to disk).
        order = sql.SQL(" ORDER BY s._row") if self.rewritten else sql.SQL("")
        query = sql.SQL(
            "WITH merged AS (INSERT INTO {target} ({names}) SELECT {selected} FROM {stage} s"
            "{order}{on_conflict} RETURNING (xmax = 0) AS inserted)"
            " SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)"
            " FROM merged"
        ).format(
            target=self.target,
            names=names,
            selected=selected,
            stage=self.rows,
            order=order,
            on_conflict=on_conflict,
        )
        row = self.conn.execute(query).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    def _merge_by_lookup(self, cols: list[str]) -> tuple[int, int]:
        """Update rows matching key + village, insert the rest (no unique index to lean on)."""
        on = sql.SQL(" AND ").join(
            sql.SQL("t.{k} IS NOT DISTINCT FROM s.{k}").format(k=sql.Identifier(k))
            for k in self.match_key
        )
        sets = sql.SQL(", ").join(
            sql.SQL("{c} = s.{c}").format(c=sql.Identifier(c))
            if c != "attributes"
            else sql.SQL("attributes = t.attributes || s.attributes")
            for c in cols
            if c not in self.match_key
        )
        updated = self.conn.execute(
            sql.SQL("UPDATE {target} t SET {sets} FROM {stage} s WHERE {on} AND ({pred})").format(
                target=self.target,
                sets=sets,
                stage=self.rows,
                on=on,
                pred=scope_predicate(sql.SQL("t.admin_code"), self.scope_code),
            )
        ).rowcount
        names = sql.SQL(", ").join(map(sql.Identifier, cols))
        selected = sql.SQL(", ").join(sql.SQL("s.") + sql.Identifier(c) for c in cols)
        inserted = self.conn.execute(
            sql.SQL(
                "INSERT INTO {target} ({names}) SELECT {selected} FROM {stage} s"
                " WHERE NOT EXISTS (SELECT 1 FROM {target} t WHERE {on}) ORDER BY s._row"
            ).format(target=self.target, names=names, selected=selected, stage=self.rows, on=on)
        ).rowcount
        return inserted, updated


def _declared_unique(table: str, key: tuple[str, ...]) -> bool:
    """Whether the schema has a unique constraint or index on exactly ``key``."""
    t = Base.metadata.tables[table]
    wanted = set(key)
    for c in t.constraints:
        if isinstance(c, UniqueConstraint) and {col.name for col in c.columns} == wanted:
            return True
    if len(key) == 1 and t.c[key[0]].unique:
        return True
    return any(i.unique and {col.name for col in i.columns} == wanted for i in t.indexes)


def _closed_needs_a_date(
    conn: psycopg.Connection[Any], stage: sql.Identifier, columns: list[str]
) -> list[str]:
    """A 隐患 marked closed (销号) without a closing time gets the import time, said aloud."""
    if "status" not in columns and "closed_at" not in columns:
        return []
    n = conn.execute(
        sql.SQL(
            "UPDATE {} SET closed_at = now() WHERE status = 'closed' AND closed_at IS NULL"
        ).format(stage)
    ).rowcount
    m = conn.execute(
        sql.SQL(
            "UPDATE {} SET closed_at = NULL WHERE status <> 'closed' AND closed_at IS NOT NULL"
        ).format(stage)
    ).rowcount
    notes = []
    if n:
        notes.append(f"{n} closed hazards had no closing time: set to the import time")
    if m:
        notes.append(f"{m} hazards not closed carried a closing time: cleared")
    return notes


def _grid_community(
    conn: psycopg.Connection[Any], stage: sql.Identifier, columns: list[str]
) -> list[str]:
    """A grid's community is the first 12 digits of its code (the schema checks it)."""
    conn.execute(
        sql.SQL(
            "UPDATE {} SET community_code = substr(grid_code, 1, 12) WHERE community_code IS NULL"
        ).format(stage)
    )
    return []


def _hazard_history(conn: psycopg.Connection[Any], source: str) -> list[str]:
    """Imported 隐患 get the event history the monthly statistics count (``gis_hazard_history``)."""
    row = conn.execute(
        "SELECT gis_hazard_history(array(SELECT id FROM safety_hazard WHERE source = %s),"
        " coalesce(nullif(current_setting('gis.actor', true), ''), 'import'))",
        (source,),
    ).fetchone()
    n = 0 if row is None else int(row[0])
    return [f"{n} ledger events reconstructed for the new hazards"] if n else []


#: Per-table steps after the merge, in the same transaction.
_AFTER_MERGE = {"safety_hazard": _hazard_history}

#: Per-table fixes applied in staging: (the column each fills, the rule).
_ROW_RULES = {
    "safety_hazard": (("closed_at", _closed_needs_a_date),),
    "grid": (("community_code", _grid_community),),
}


#: Python type of the values each binary-COPY column type takes (see ``_binary_types``).
_BINARY_PY_TYPES: dict[int, type] = {
    16: bool,  # boolean
    20: int,  # bigint
    21: int,  # smallint
    23: int,  # integer
    25: str,  # text
    701: float,  # double precision
    1043: str,  # character varying
}
_JSONB_OID = 3802


class _RawBinary(Dumper):
    """Bytes that already are the column type's binary input (WKB for ``geometry_recv``)."""

    format = pq.Format.BINARY

    def dump(self, obj: Any) -> Buffer:
        """The bytes as they are."""
        value: Buffer = obj
        return value


class _JsonbText(Dumper):
    """``attributes`` text (:func:`_json`) as binary jsonb: version byte 1, then the text."""

    format = pq.Format.BINARY
    oid = _JSONB_OID

    def dump(self, obj: Any) -> Buffer:
        """Prefix the version byte."""
        return b"\x01" + str(obj).encode()


def _json(attributes: dict[str, Any]) -> str:
    """The ``attributes`` JSONB text of one row."""
    return json.dumps(attributes, ensure_ascii=False) if attributes else "{}"


class _Refused(Exception):
    """Rows were refused mid-COPY: leave the index rebuild undone (the caller rolls back)."""


def load_rows(
    conn: psycopg.Connection[Any],
    data: LoadInput,
    *,
    scope_code: str | None,
    skip_bad_rows: bool,
) -> LoadResult:
    """Stage, stamp, check and merge ``data`` inside the caller's transaction.

    When rows are refused and ``skip_bad_rows`` is False nothing is written (the result
    carries the problems; the caller rolls back).
    """
    conn.execute("SET LOCAL gis.bulk = 'on'")
    loader = Loader(conn, data, scope_code)
    timings: dict[str, float] = {}
    result = LoadResult(notes=loader.notes, timings=timings)
    t = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        timings[name] = now - t
        t = now

    if loader.direct:
        # The rows' box, which the villages and grids for the stamps are read by (0.15 s of
        # GEOS for a million buildings), is taken beside the load's first statements.
        with ThreadPoolExecutor(1, thread_name_prefix="etl-box") as side:
            box = side.submit(around, loader.geometries())
            try:
                with loader.indexes_rebuilt_after():
                    # (Here the load's first statements have run.)
                    result.inserted, problems = loader.copy_direct(
                        skip_bad_rows=skip_bad_rows, box=box.result()
                    )
                    result.problems = problems
                    if problems and not skip_bad_rows:
                        raise _Refused
                    lap("load.copy")
            except _Refused:
                return result
        lap("load.index")
    else:
        loader.stamp()
        lap("load.stamp")
        loader.stage_rows()
        lap("load.copy")
        result.problems = loader.check()
        lap("load.check")
        if result.problems and not skip_bad_rows:
            return result
        refused = {p.row for p in result.problems}
        if refused:
            loader.drop_rows(sorted(refused))
        with loader.indexes_rebuilt_after():
            result.inserted, result.updated = loader.merge()
            lap("load.merge")
        lap("load.index")
    after = _AFTER_MERGE.get(data.table)
    if after is not None:
        result.notes += after(conn, data.source)
    conn.execute(
        "INSERT INTO audit_log (table_name, action, actor, scope, row_count, after)"
        " VALUES (%s, 'BULK', nullif(current_setting('gis.actor', true), ''),"
        " nullif(current_setting('gis.scope', true), ''), %s, %s)",
        (
            data.table,
            result.inserted + result.updated,
            json.dumps(
                {"source": data.source, "inserted": result.inserted, "updated": result.updated}
            ),
        ),
    )
    return result
