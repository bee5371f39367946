"""One import from file to table: read → map columns → coordinates → validate → load.

The ``import_batch`` row is written before the import transaction and finished after it,
so a refused file still leaves its report; the rows themselves are all or nothing
(``skip_bad_rows`` loads the good ones and reports the rest). Importing the same file
again into the same target and area returns the earlier report and changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import shapely
from pyproj import CRS

from etl import coords, mapping, parallel
from etl.forkserver import warm_up
from etl.load import LoadInput, geometry_kind, load_rows, value_types
from etl.model import FileRejected, RowProblem, SourceTable
from etl.portable import STREAMED, read_portable, unpack_frame, unpack_wkb
from etl.readers.vector import note_unparsed, parse_wkb_values
from etl.sandbox import run_limited
from etl.wkb import round_wkb_split
from gis_service.errors import BadParameter, GisError
from gis_service.settings import EtlSettings

#: Problems kept in the batch row and shown in reports (the count is always complete).
MAX_REPORTED_PROBLEMS = 1000

Progress = Callable[[str, int, int], None]


def _quiet(step: str, done: int, total: int) -> None:
    return None


@dataclass
class ImportOptions:
    """What the user asked for (CLI flags or API form fields)."""

    target: str
    crs: str | None = None
    encoding: str | None = None
    layer: str | None = None
    sheet: str | None = None
    mapping: dict[str, str] = field(default_factory=dict)
    #: Values for fields the file lacks (``--set kind=school``).
    constants: dict[str, str] = field(default_factory=dict)
    skip_bad_rows: bool = False
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        """For the batch row."""
        return {
            "crs": self.crs,
            "encoding": self.encoding,
            "layer": self.layer,
            "sheet": self.sheet,
            "mapping": self.mapping,
            "constants": self.constants,
            "skip_bad_rows": self.skip_bad_rows,
            "dry_run": self.dry_run,
        }


@dataclass
class ImportReport:
    """What an import did (or would do, for a dry run)."""

    target: str
    file_name: str
    status: str = "pending"
    batch_id: int | None = None
    fmt: str | None = None
    layer: str | None = None
    encoding: str | None = None
    source_crs: str | None = None
    crs_label: str | None = None
    rows_read: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_rejected: int = 0
    rows_repaired: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    reused: bool = False
    error_code: str | None = None
    error_detail: str | None = None
    error_detail_zh: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON form (``--json`` and the API)."""
        return {
            "batch_id": self.batch_id,
            "status": self.status,
            "target": self.target,
            "file_name": self.file_name,
            "format": self.fmt,
            "layer": self.layer,
            "encoding": self.encoding,
            "source_crs": self.source_crs,
            "crs": self.crs_label,
            "rows_read": self.rows_read,
            "rows_inserted": self.rows_inserted,
            "rows_updated": self.rows_updated,
            "rows_rejected": self.rows_rejected,
            "rows_repaired": self.rows_repaired,
            "problems": [p.as_dict() for p in self.problems[:MAX_REPORTED_PROBLEMS]],
            "notes": self.notes,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "reused": self.reused,
            "error_code": self.error_code,
            "error_detail": self.error_detail,
            "error_detail_zh": self.error_detail_zh,
        }


# ----------------------------------------------------------------------------- reading
def read_sandboxed(
    path: Path, options: ImportOptions, limits: EtlSettings, *, round_to: int | None = None
) -> SourceTable:
    """Parse ``path`` in a memory- and time-limited child process.

    ``round_to``: decimals to round the coordinates to in the WKB, before parsing, when the
    file's numbers will be stored as read (``SourceTable.rounded`` says which rows were).
    The child sends a vector file's WKB batch by batch, rounded there; each is parsed here
    while the child reads and rounds the next.
    """
    wkb = _WkbParts(round_to, options.crs)
    try:
        parts = run_limited(
            read_portable,
            str(path),
            layer=options.layer,
            sheet=options.sheet,
            encoding=options.encoding,
            max_rows=limits.max_rows,
            max_columns=limits.max_columns,
            memory_mb=limits.parse_memory_mb,
            seconds=limits.parse_seconds,
            on_part=wkb.receive,
            round_to=round_to,
            user_crs=options.crs,
        )
        notes = list(parts["notes"])
        crs = None if parts["crs"] is None else CRS.from_wkt(parts["crs"])
        if parts["wkb"] is not None and parts["wkb"] != STREAMED:
            wkb.receive(("crs", parts["crs"]))
            wkb.receive(("wkb", parts["wkb"]))
        values, geometry, rounded = wkb.whole(notes)
        valid = wkb.validity() if rounded is not None else None
    finally:
        wkb.close()
    return SourceTable(
        frame=unpack_frame(parts["columns"], len(parts["rows"])),
        geometry=geometry,
        crs=crs,
        encoding=parts["encoding"],
        layer=parts["layer"],
        source_rows=np.asarray(parts["rows"], dtype=np.int64),
        fmt=parts["fmt"],
        notes=notes,
        wkb=values,
        rounded=rounded,
        valid=valid,
    )


class _WkbParts:
    """A file's WKB as the sandboxed child sends it: rounded and parsed batch by batch.

    A rounded batch (the numbers stored as read) is also tested for GEOS validity in a side
    thread while the next one is parsed: ``is_valid`` releases the GIL, the parse does not,
    and the test was 0.9-1.7 s of the prepare step for a million buildings.
    """

    def __init__(self, round_to: int | None, user_crs: str | None) -> None:
        self.round_to = round_to
        self.user_crs = user_crs
        self.rounding = False
        self.values: list[np.ndarray[Any, Any]] = []
        self.geometry: list[np.ndarray[Any, Any]] = []
        self.rounded: list[np.ndarray[Any, Any]] = []
        self.testing = ThreadPoolExecutor(1, thread_name_prefix="etl-valid")
        self.valid: list[Future[np.ndarray[Any, Any]]] = []

    def receive(self, part: tuple[str, Any]) -> None:
        """One part: ``("crs", wkt)`` first (whether to round), then ``("wkb", array)``s.

        Or ``("rounded", (array, done))``: rounded by the child (``read_portable``), by the
        same rule.
        """
        kind, value = part
        if kind == "crs":
            crs = None if value is None else CRS.from_wkt(value)
            self.rounding = self.round_to is not None and coords.stored_as_read(crs, self.user_crs)
            return
        if kind == "rounded":
            packed, rounded = value
            self.rounding = True
            self.rounded.append(rounded)
        else:
            packed = value
            if self.rounding:
                assert self.round_to is not None
                packed, rounded = round_wkb_split(packed, self.round_to)
                self.rounded.append(rounded)
        values = unpack_wkb(packed)
        self.values.append(values)
        geometry = parse_wkb_values(values)
        self.geometry.append(geometry)
        if self.rounding:
            self.valid.append(self.testing.submit(shapely.is_valid, geometry))

    def whole(
        self, notes: list[str]
    ) -> tuple[np.ndarray[Any, Any] | None, np.ndarray[Any, Any] | None, Any]:
        """(WKB values, geometries, rounded) of the whole file; Nones without geometry."""
        if not self.values:
            return None, None, None
        values = _joined(self.values)
        geometry = _joined(self.geometry)
        note_unparsed(values, geometry, notes)
        return values, geometry, _joined(self.rounded) if self.rounding else None

    def validity(self) -> np.ndarray[Any, Any]:
        """``is_valid`` of every geometry of a rounded read (False where missing)."""
        return _joined([np.asarray(f.result(), dtype=bool) for f in self.valid])

    def close(self) -> None:
        """Stop the side thread (its pending tests are dropped after a failed read)."""
        self.testing.shutdown(wait=True, cancel_futures=True)


def _joined(parts: list[np.ndarray[Any, Any]]) -> np.ndarray[Any, Any]:
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def file_digest(path: Path) -> tuple[str, int]:
    """SHA-256 and size of a file, or of every file of a folder (Shapefile folders)."""
    h = hashlib.sha256()
    size = 0
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode())
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
                size += len(chunk)
    return h.hexdigest(), size


# ------------------------------------------------------------------------- preparing
@dataclass
class Prepared:
    """Rows converted and validated, ready for :func:`etl.load.load_rows`."""

    data: LoadInput
    rows_read: int
    problems: list[RowProblem]
    notes: list[str]
    fmt: str
    layer: str | None
    encoding: str | None
    choice: coords.CrsChoice | None


def prepare(
    table: SourceTable,
    options: ImportOptions,
    *,
    hint_lon: float | None = None,
    source: str = "import",
) -> Prepared:
    """Map, convert, place and validate the rows of ``table`` for ``options.target``."""
    spec = mapping.TARGETS.get(options.target)
    if spec is None:
        names = sorted(mapping.TARGETS)
        raise BadParameter(
            detail=f"unknown target {options.target!r}; one of: {', '.join(names)}",
            detail_zh=f"未知的导入目标 {options.target}；可选：{'、'.join(names)}",
        )
    rows = table.source_rows
    notes = list(table.notes)
    match = mapping.match_columns(
        [str(c) for c in table.frame.columns],
        spec,
        options.mapping,
        constants=options.constants or None,
    )
    notes += match.notes
    kind = geometry_kind(spec.table)
    # The columns are converted (Python) while the geometries are checked (GEOS, which
    # releases the GIL): about 0.9 s of a million buildings' conversion runs alongside, and
    # the converted values' types (the binary-COPY check, 0.35 s that held COPY back).
    with ThreadPoolExecutor(1, thread_name_prefix="etl-convert") as side:
        converting = side.submit(_convert, table, match, spec)
        try:
            placed = _place(table, options, match, kind, spec.table, hint_lon)
        except Exception:
            converting.result()  # a refusal of the columns comes first, as it always did
            raise
        converted, types = converting.result()
    notes += placed.notes
    problems: list[RowProblem] = [*converted.problems, *placed.problems]
    ok = np.asarray(converted.ok, dtype=bool) & placed.ok
    geoms, ready, choice = placed.geoms, placed.ready, placed.choice

    keep = np.flatnonzero(ok)
    columns = list(converted.records)
    everything = len(keep) == len(ok)  # the common case: no copies
    data = LoadInput(
        table=spec.table,
        columns=columns,
        values=[
            converted.records[c] if everything else [converted.records[c][i] for i in keep]
            for c in columns
        ],
        attributes=(
            converted.attributes if everything else [converted.attributes[i] for i in keep]
        ),
        rows=rows.tolist() if everything else [int(rows[i]) for i in keep],
        natural_key=tuple(spec.natural_key),
        source=source,
        source_crs=None if choice is None else choice.source_crs,
        geometries=None if geoms is None else (geoms if everything else geoms[keep]),
        wkb=None if ready is None else (ready if everything else ready[keep]),
        geometries_valid=geoms is not None,
        # Of every row: a superset of the kept rows' types, which the check allows.
        types=[types[c] for c in columns],
    )
    return Prepared(
        data=data,
        rows_read=len(table),
        problems=sorted(problems, key=lambda p: (p.row, p.column or "")),
        notes=notes,
        fmt=table.fmt,
        layer=table.layer,
        encoding=table.encoding,
        choice=choice,
    )


def _convert(
    table: SourceTable, match: mapping.ColumnMatch, spec: mapping.TargetSpec
) -> tuple[mapping.Converted, dict[str, frozenset[type]]]:
    """:func:`etl.mapping.convert`, and the types of each converted column's values."""
    converted = mapping.convert(table, match, spec)
    return converted, {c: value_types(v) for c, v in converted.records.items()}


@dataclass
class _Placed:
    """The rows' geometries in storage coordinates, checked (see :func:`_place`)."""

    ok: np.ndarray[Any, Any]
    problems: list[RowProblem]
    notes: list[str]
    geoms: np.ndarray[Any, Any] | None = None
    ready: np.ndarray[Any, Any] | None = None
    choice: coords.CrsChoice | None = None


def _place(  # noqa: PLR0917 - prepare's own step
    table: SourceTable,
    options: ImportOptions,
    match: mapping.ColumnMatch,
    kind: str | None,
    target_table: str,
    hint_lon: float | None,
) -> _Placed:
    """Geometries (or lon/lat columns) → CRS chosen → storage lon/lat → validated."""
    rows = table.source_rows
    placed = _Placed(ok=np.ones(len(table), dtype=bool), problems=[], notes=[])
    geoms: np.ndarray[Any, Any] | None = None
    if table.geometry is not None:
        geoms = np.asarray(table.geometry, dtype=object)
    known_bad: np.ndarray[Any, Any] | None = None
    if table.geometry is None and match.lon is not None and match.lat is not None:
        geoms, point_problems = coords.points_from_columns(
            table.cells(match.lon),
            table.cells(match.lat),
            rows,
            lon_column=match.lon,
            lat_column=match.lat,
        )
        placed.problems += point_problems
        # Rows whose cells could not be read are already reported once.
        known_bad = np.array([g is None for g in geoms], dtype=bool)
    if geoms is None:
        if kind is not None and not _geometry_optional(target_table):
            raise FileRejected(
                "the file has no geometry and no longitude/latitude columns"
                " (name them, or use --map 列名=lon --map 列名=lat)",
                "文件没有几何，也没有经纬度列（请指定：--map 列名=lon --map 列名=lat）",
                code="no_coordinates",
            )
        return placed
    xy, vertices = _first_vertices(geoms)
    choice = coords.resolve_crs(table.crs, options.crs, xy, hint_lon=hint_lon)
    if choice.note:
        placed.notes.append(choice.note)
    geoms = coords.to_storage(geoms, choice)
    rounded = table.rounded if table.geometry is not None else None
    # Rounded before parsing only when the numbers are stored as read (stored_as_read).
    assert rounded is None or coords.is_lonlat_identity(choice)
    parsed = geoms
    geoms, geo_ok, geo_problems, geo_notes = coords.validate(
        geoms,
        rows,
        expect=None if kind is None else _expect(kind),
        allow_missing=_geometry_optional(target_table),
        known_bad=known_bad,
        rounded=rounded,
        # The same geometries when kept as read: their vertices need no second read, and
        # the read already tested their validity.
        vertices=vertices if coords.is_lonlat_identity(choice) else None,
        valid=table.valid if rounded is not None else None,
    )
    if rounded is not None and table.wkb is not None:
        placed.ready = _ready_wkb(table.wkb, rounded, parsed, geoms)
    placed.problems += geo_problems
    placed.notes += geo_notes
    placed.ok &= np.asarray(geo_ok, dtype=bool)
    placed.geoms, placed.choice = geoms, choice
    return placed


def _ready_wkb(
    wkb: np.ndarray[Any, Any],
    rounded: np.ndarray[Any, Any],
    parsed: np.ndarray[Any, Any],
    stored: np.ndarray[Any, Any],
) -> np.ndarray[Any, Any]:
    """The file's rounded WKB where validation kept the parsed geometry; None elsewhere.

    Validation replaces a geometry it changes (repair, Z/M, collections), so an unchanged
    row is the very object parsed from that WKB: COPY can take the bytes as they are.
    """
    same = coords.same_objects(stored, parsed) & np.asarray(rounded, dtype=bool)
    out = np.full(len(stored), None, dtype=object)
    out[same] = wkb[same]
    return out


def _first_vertices(
    geoms: np.ndarray[Any, Any],
) -> tuple[np.ndarray[Any, Any], tuple[Any, Any, Any] | None]:
    """First vertex of each geometry as (n, 2), NaN where absent: what CRS detection reads.

    Also returns what was read, ``(rows, vertices, owners)`` of the present geometries,
    for :func:`etl.coords.validate` (None if there are none).
    """
    out = np.full((len(geoms), 2), np.nan)
    present = np.flatnonzero(~shapely.is_missing(geoms))
    if not len(present):
        return out, None
    xy, index = parallel.coordinates(geoms[present])
    # ``index`` ascends: a geometry's first vertex is where the owner changes.
    first = np.flatnonzero(np.diff(index, prepend=-1))
    out[present[index[first]]] = xy[first]
    return out, (present, xy, index)


def _expect(kind: str) -> str:
    if "POLYGON" in kind:
        return "polygon"
    if "LINE" in kind:
        return "line"
    return "point"


def _geometry_optional(table: str) -> bool:
    from gis_service.db.models import Base

    column = Base.metadata.tables[table].c.get("geom")
    return column is not None and bool(column.nullable)


# --------------------------------------------------------------------------- running
@contextmanager
def _timed(timings: dict[str, float], name: str) -> Iterator[None]:
    t0 = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0


def _conninfo(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


def _reuse(
    conn: psycopg.Connection[Any], target: str, sha: str, scope: str | None
) -> ImportReport | None:
    row = conn.execute(
        "SELECT id, file_name, fmt, layer, encoding, source_crs, crs_label, rows_read,"
        " rows_inserted, rows_updated, rows_rejected, rows_repaired, notes, timings"
        " FROM import_batch WHERE target = %s AND file_sha256 = %s"
        " AND scope_code IS NOT DISTINCT FROM %s AND status = 'succeeded'"
        " ORDER BY id DESC LIMIT 1",
        (target, sha, scope),
    ).fetchone()
    if row is None:
        return None
    return ImportReport(
        target=target,
        file_name=row[1],
        status="succeeded",
        batch_id=row[0],
        fmt=row[2],
        layer=row[3],
        encoding=row[4],
        source_crs=row[5],
        crs_label=row[6],
        rows_read=row[7],
        rows_inserted=row[8],
        rows_updated=row[9],
        rows_rejected=row[10],
        rows_repaired=row[11],
        notes=[*row[12], "this file was already imported (same content): nothing changed"],
        timings=row[13],
        reused=True,
    )


def _finish(conn: psycopg.Connection[Any], report: ImportReport) -> None:
    conn.execute(
        "UPDATE import_batch SET status = %s, fmt = %s, layer = %s, encoding = %s,"
        " source_crs = %s, crs_label = %s, rows_read = %s, rows_inserted = %s,"
        " rows_updated = %s, rows_rejected = %s, rows_repaired = %s, problems = %s,"
        " notes = %s, timings = %s, error_code = %s, error_detail = %s, finished_at = now()"
        " WHERE id = %s",
        (
            report.status,
            report.fmt,
            report.layer,
            report.encoding,
            report.source_crs,
            report.crs_label,
            report.rows_read,
            report.rows_inserted,
            report.rows_updated,
            report.rows_rejected,
            report.rows_repaired,
            json.dumps(
                [p.as_dict() for p in report.problems[:MAX_REPORTED_PROBLEMS]], ensure_ascii=False
            ),
            json.dumps(report.notes, ensure_ascii=False),
            json.dumps({k: round(v, 3) for k, v in report.timings.items()}),
            report.error_code,
            report.error_detail,
            report.batch_id,
        ),
    )
    conn.commit()


def scope_hint_lon(conn: psycopg.Connection[Any], scope_code: str | None) -> float | None:
    """Longitude of the user's area: the Gauss-Krüger zone to assume when a file has none."""
    if scope_code is None:
        return None
    row = conn.execute(
        "SELECT ST_X(label_point) FROM admin_division WHERE code = %s", (scope_code,)
    ).fetchone()
    return None if row is None or row[0] is None else float(row[0])


def run_import(
    url: str,
    path: Path,
    options: ImportOptions,
    *,
    limits: EtlSettings,
    actor: str | None = None,
    scope_code: str | None = None,
    batch_id: int | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import ``path`` into ``options.target`` as ``actor`` limited to ``scope_code``.

    Args:
        url: database URL.
        path: the file (or Shapefile folder).
        options: target and choices.
        limits: caps and sandbox limits.
        actor: login recorded in the batch and audit rows.
        scope_code: the importer's area; rows outside it are refused (None: nationwide).
        batch_id: an ``import_batch`` row created earlier (API uploads); else one is made.
        progress: callback ``(step, done, total)``.
    """
    say = progress or _quiet
    warm_up()
    report = ImportReport(target=options.target, file_name=path.name)
    # The sandboxed child parses the file while this thread hashes it (0.4-0.8 s for a
    # 240 MB GeoPackage): a file imported before then waits for a parse it does not use.
    with ThreadPoolExecutor(1, thread_name_prefix="etl-read") as reader:
        reading = reader.submit(_read_timed, path, options, limits)
        sha, size = file_digest(path)
        _import(
            url,
            path,
            options,
            report=report,
            reading=reading,
            sha=sha,
            size=size,
            actor=actor,
            scope_code=scope_code,
            batch_id=batch_id,
            say=say,
        )
    return report


def _read_timed(
    path: Path, options: ImportOptions, limits: EtlSettings
) -> tuple[SourceTable, float]:
    """:func:`read_sandboxed` for the import (rounding where stored as read), and its time."""
    t0 = time.perf_counter()
    table = read_sandboxed(path, options, limits, round_to=coords.DECIMALS)
    return table, time.perf_counter() - t0


def _import(
    url: str,
    path: Path,
    options: ImportOptions,
    *,
    report: ImportReport,
    reading: Future[tuple[SourceTable, float]],
    sha: str,
    size: int,
    actor: str | None,
    scope_code: str | None,
    batch_id: int | None,
    say: Progress,
) -> None:
    """The batch row, the import transaction and the report (see :func:`run_import`)."""
    with psycopg.connect(_conninfo(url)) as conn:
        if not options.dry_run:
            reused = _reuse(conn, options.target, sha, scope_code)
            if reused is not None:
                if batch_id is not None:
                    conn.execute("DELETE FROM import_batch WHERE id = %s", (batch_id,))
                    conn.commit()
                _adopt(report, reused)
                return
        if batch_id is None:
            row = conn.execute(
                "INSERT INTO import_batch (target, file_name, file_sha256, file_bytes, options,"
                " status, actor, scope_code, started_at, source) VALUES"
                " (%s, %s, %s, %s, %s, 'running', %s, %s, now(), %s) RETURNING id",
                (
                    options.target,
                    path.name,
                    sha,
                    size,
                    json.dumps(options.as_dict(), ensure_ascii=False),
                    actor,
                    scope_code,
                    f"user:{actor}" if actor else "cli",
                ),
            ).fetchone()
            assert row is not None
            batch_id = int(row[0])
        else:
            conn.execute(
                "UPDATE import_batch SET status = 'running', file_sha256 = %s, file_bytes = %s,"
                " started_at = now() WHERE id = %s",
                (sha, size, batch_id),
            )
        conn.commit()
        report.batch_id = batch_id
        try:
            _run(
                conn,
                reading=reading,
                options=options,
                report=report,
                scope_code=scope_code,
                actor=actor,
                say=say,
            )
        except GisError as exc:
            conn.rollback()
            report.status = "failed"
            report.error_code = exc.code
            report.error_detail = exc.detail
            report.error_detail_zh = exc.detail_zh
        _finish(conn, report)


def _adopt(report: ImportReport, earlier: ImportReport) -> None:
    """Make ``report`` the earlier import's report (the same file again)."""
    for name in report.__dataclass_fields__:
        setattr(report, name, getattr(earlier, name))


def _run(
    conn: psycopg.Connection[Any],
    *,
    reading: Future[tuple[SourceTable, float]],
    options: ImportOptions,
    report: ImportReport,
    scope_code: str | None,
    actor: str | None,
    say: Progress,
) -> None:
    timings = report.timings
    say("reading", 0, 1)
    table, timings["read"] = reading.result()
    say("reading", 1, 1)
    report.fmt, report.layer, report.encoding = table.fmt, table.layer, table.encoding
    report.rows_read = len(table)
    say("checking", 0, 1)
    with _timed(timings, "prepare"):
        prepared = prepare(
            table,
            options,
            hint_lon=scope_hint_lon(conn, scope_code),
            source=f"import:{report.batch_id}",
        )
    say("checking", 1, 1)
    report.notes = prepared.notes
    if prepared.choice is not None:
        report.source_crs, report.crs_label = prepared.choice.source_crs, prepared.choice.label
    problems = list(prepared.problems)
    blocking = [p for p in problems if not p.repaired]
    if blocking and not options.skip_bad_rows:
        _refuse(report, problems)
        return
    say("loading", 0, 1)
    with _timed(timings, "load"):
        conn.execute(
            "SELECT set_config('gis.actor', %s, true), set_config('gis.scope', %s, true)",
            (actor or "", scope_code or ""),
        )
        result = load_rows(
            conn, prepared.data, scope_code=scope_code, skip_bad_rows=options.skip_bad_rows
        )
    say("loading", 1, 1)
    problems += result.problems
    report.notes += result.notes
    timings.update(result.timings)
    report.problems = sorted(problems, key=lambda p: (p.row, p.column or ""))
    report.rows_repaired = sum(1 for p in problems if p.repaired)
    report.rows_rejected = len({p.row for p in problems if not p.repaired})
    if result.problems and not options.skip_bad_rows:
        conn.rollback()
        _refuse(report, problems)
        return
    report.rows_inserted, report.rows_updated = result.inserted, result.updated
    if options.dry_run:
        conn.rollback()
        report.status = "checked"
        report.notes.append("dry run: nothing was written")
        return
    with _timed(timings, "commit"):  # a first load's new files are synced here
        conn.commit()
    report.status = "succeeded"


def _refuse(report: ImportReport, problems: list[RowProblem]) -> None:
    report.problems = sorted(problems, key=lambda p: (p.row, p.column or ""))
    report.rows_repaired = sum(1 for p in problems if p.repaired)
    report.rows_rejected = len({p.row for p in problems if not p.repaired})
    report.status = "failed"
    report.error_code = "rows_rejected"
    report.error_detail = (
        f"{report.rows_rejected} rows refused; nothing was written"
        " (fix them, or pass --skip-bad-rows to load the others)"
    )
    report.error_detail_zh = (
        f"{report.rows_rejected} 行数据不合格，未写入任何数据"
        "（可修正后重试，或使用 --skip-bad-rows 仅导入合格行）"
    )
