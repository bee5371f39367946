"""Shapefile, GeoPackage and GeoJSON through pyogrio (GDAL), with the checks GDAL skips.

GDAL is lenient where an import must not be: it reads a truncated ``.shp`` as rows with
empty geometries, recodes undecodable DBF bytes into look-alike characters, opens
whatever driver recognises the bytes, and accepts ``NaN`` in GeoJSON. Each reader here
therefore checks first (sidecars and index consistency, strict encoding, GeoJSON
tokens, the driver GDAL actually chose) and only then lets pyogrio read.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

from etl.encoding import (
    corrupt_shapefile,
    detect_dbf_encoding,
    gdal_encoding_name,
    read_dbf_layout,
)
from etl.model import FileRejected, SourceTable
from etl.parallel import split_map
from etl.readers.common import (
    Caps,
    check_columns,
    check_rows,
    is_debris,
    library_errors,
    refuse_replacement_chars,
    row_numbers,
    unique_names,
)
from etl.readers.geojson_guard import check_geojson

log = logging.getLogger(__name__)

#: Set before every open. Config options are process-wide, and an import worker reads
#: nothing else, so setting them globally is both simplest and safest.
GDAL_SAFETY_OPTIONS = {
    # A missing .shx is an error to report, not something to rebuild from a guess.
    "SHAPE_RESTORE_SHX": "NO",
    # GeoPackage views/triggers may not call functions unless SQLite trusts them.
    "OGR_SQLITE_PRAGMA": "trusted_schema=OFF",
}
_SHP_HEADER = 100
_RECODE_FAILED = "couldn't be converted correctly"

#: Features per Arrow batch GDAL reads (pyogrio's default).
BATCH_ROWS = 65_536

#: Where a read sends its WKB as GDAL yields it, instead of keeping it in the table:
#: ``sink("crs", wkt or None)`` once, then ``sink("wkb", batch's WKB array)`` per batch (at
#: least one, empty for an empty layer). The sandboxed child sets it (``etl.portable``),
#: so its parent rounds and parses one batch while the child reads the next.
WKB_SINK: ContextVar[Callable[[str, Any], None] | None] = ContextVar("wkb_sink", default=None)


def _configure_gdal() -> None:
    pyogrio.set_gdal_config_options(GDAL_SAFETY_OPTIONS)


def _sidecar(shp: Path, suffix: str) -> Path | None:
    """The part of a shapefile beside ``shp`` (lower- or upper-case, as GDAL looks)."""
    for candidate in (shp.with_suffix(suffix), shp.with_suffix(suffix.upper())):
        if candidate.is_file():
            return candidate
    return None


def find_shapefile(folder: Path) -> Path | None:
    """The single ``.shp`` below ``folder`` (macOS ``__MACOSX``/``._`` debris ignored).

    Returns:
        None when there is no ``.shp`` at all.

    Raises:
        FileRejected: several ``.shp`` files, listed so the user can pick one.
    """
    found = sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() == ".shp" and p.is_file() and not is_debris(p.relative_to(folder))
    )
    if len(found) > 1:
        names = ", ".join(str(p.relative_to(folder)) for p in found[:20])
        raise FileRejected(
            f"{len(found)} shapefiles found ({names}); upload one at a time",
            f"找到 {len(found)} 个 shapefile（{names}），请一次只上传一个",
            code="ambiguous_input",
        )
    return found[0] if found else None


def _check_shape_index(shp: Path, shx: Path, dbf_records: int) -> None:
    """Check that the ``.shx`` index, the ``.shp`` and the ``.dbf`` agree.

    GDAL reads a truncated ``.shp`` without an error, as rows whose geometry is
    silently empty; comparing the index's record extents with the real file size
    catches that, and a record-count mismatch means attributes would be paired with the
    wrong shapes.
    """
    shp_size = shp.stat().st_size
    raw = shx.read_bytes()
    if len(raw) < _SHP_HEADER or (len(raw) - _SHP_HEADER) % 8 or shp_size < _SHP_HEADER:
        raise corrupt_shapefile(
            shp.name, "the .shp or .shx header is truncated", ".shp 或 .shx 文件头不完整"
        )
    index = np.frombuffer(raw, dtype=">i4", offset=_SHP_HEADER).reshape(-1, 2).astype(np.int64)
    ends = (index[:, 0] + 4 + index[:, 1]) * 2  # both counted in 16-bit words
    if len(index) and (index.min() < 0 or int(ends.max()) > shp_size):
        raise corrupt_shapefile(
            shp.name,
            "the .shp is truncated (the index points past its end)",
            ".shp 文件被截断（索引指向文件末尾之后）",
        )
    if len(index) != dbf_records:
        raise corrupt_shapefile(
            shp.name,
            f"the .shx lists {len(index)} shapes but the .dbf has {dbf_records} records",
            f".shx 记录 {len(index)} 个图形，而 .dbf 有 {dbf_records} 条记录",
        )


def read_shapefile(
    shp: Path, *, encoding: str | None, caps: Caps, parse: bool = True
) -> SourceTable:
    """Read a shapefile (``.shp`` with its ``.shx``, ``.dbf`` and optional parts).

    A missing ``.prj`` is not an error here (``crs`` is None and a note says so); the
    coordinate stage decides. The DBF encoding is decided strictly by
    ``etl.encoding.detect_dbf_encoding`` and handed to GDAL, so GDAL recodes bytes that
    are already known to be valid.

    Raises:
        FileRejected: a missing ``.shx``/``.dbf``, corrupt or truncated parts, an
            undecidable encoding.
        TooLarge: more than ``caps.max_rows`` shapes.
    """
    parts = {suffix: _sidecar(shp, suffix) for suffix in (".shx", ".dbf", ".prj", ".cpg")}
    shx, dbf = parts[".shx"], parts[".dbf"]
    if shx is None or dbf is None:
        missing = ", ".join(
            shp.stem + suffix for suffix in (".shx", ".dbf") if parts[suffix] is None
        )
        raise FileRejected(
            f"{shp.name} is incomplete: missing {missing}",
            f"{shp.name} 不完整：缺少 {missing}",
            code="shapefile_incomplete",
        )
    layout = read_dbf_layout(dbf)
    check_columns(len(layout.names), caps, shp.name)
    check_rows(layout.records, caps, shp.name)
    _check_shape_index(shp, shx, layout.records)
    choice = detect_dbf_encoding(dbf, parts[".cpg"], encoding)
    notes = choice.report()
    if parts[".prj"] is None:
        notes.append("no .prj file: the coordinate system is not declared")
    table = _read_ogr(
        shp,
        fmt="shp",
        driver="ESRI Shapefile",
        layer=None,
        gdal_encoding=gdal_encoding_name(choice.codec),
        encoding_label=choice.label,
        caps=caps,
        notes=notes,
        parse=parse,
    )
    # Defence in depth: the bytes were checked in Python, GDAL's iconv decoded them.
    refuse_replacement_chars(table.frame, shp.name)
    return table


def gpkg_layers(path: Path) -> list[str]:
    """Layer (table) names of a GeoPackage, in file order.

    Raises:
        FileRejected: the file is not a readable GeoPackage.
    """
    _configure_gdal()
    with library_errors(path.name, "a GeoPackage", "GeoPackage"):
        layers = pyogrio.list_layers(path)
    return [str(row[0]) for row in layers]


def read_gpkg(path: Path, *, layer: str | None, caps: Caps, parse: bool = True) -> SourceTable:
    """Read one layer of a GeoPackage, opened read-only.

    With several layers the caller must choose: guessing would import the wrong table
    without anyone noticing.

    Raises:
        FileRejected: unreadable file, no layers, several layers and no ``layer``, or an
            unknown ``layer`` (the message lists the layers).
        TooLarge: more than ``caps.max_rows`` features.
    """
    names = gpkg_layers(path)
    listed = ", ".join(names[:50])
    if not names:
        raise FileRejected(
            f"{path.name} has no layers", f"{path.name} 中没有图层", code="no_layers"
        )
    if layer is None and len(names) > 1:
        raise FileRejected(
            f"{path.name} has {len(names)} layers: {listed}; pass --layer",
            f"{path.name} 含有 {len(names)} 个图层：{listed}；请用 --layer 指定",
            code="layer_required",
        )
    chosen = names[0] if layer is None else layer
    if chosen not in names:
        raise FileRejected(
            f"{path.name} has no layer {chosen!r}; layers: {listed}",
            f"{path.name} 中没有图层 {chosen!r}；现有图层：{listed}",
            code="unknown_layer",
        )
    return _read_ogr(
        path,
        fmt="gpkg",
        driver="GPKG",
        layer=chosen,
        gdal_encoding=None,
        encoding_label=None,
        caps=caps,
        notes=[],
        parse=parse,
    )


def read_geojson(path: Path, *, caps: Caps, parse: bool = True) -> SourceTable:
    """Read a GeoJSON file after ``check_geojson`` proved it bounded, finite and UTF-8.

    The CRS is the legacy ``crs`` member when present (GDAL understands both
    ``EPSG:4547`` and ``urn:ogc:def:crs:EPSG::4490``), otherwise RFC 7946's WGS 84
    longitude/latitude. Features with ``"geometry": null`` keep a None geometry.

    Raises:
        FileRejected: see ``check_geojson``; unreadable JSON.
        TooLarge: over 200 MB or more than ``caps.max_rows`` features.
    """
    check_geojson(path)
    return _read_ogr(
        path,
        fmt="geojson",
        driver="GeoJSON",
        layer=None,
        gdal_encoding=None,
        encoding_label=None,
        caps=caps,
        notes=[],
        parse=parse,
    )


def _crs(declared: str | None, notes: list[str]) -> CRS | None:
    if not declared:
        return None
    try:
        return CRS.from_user_input(declared)
    except CRSError:
        notes.append("the declared coordinate system could not be understood; treated as none")
        return None


def _column(array: pa.ChunkedArray, *, keep_text: bool = False) -> pd.Series[Any]:
    """One Arrow column as the readers' pandas column.

    Strings stay Python str/None (object dtype) as in the CSV/XLSX readers; dates and
    times become ISO text (``datetime_as_string`` covers only datetimes); integers with
    nulls become floats with NaN, as numpy has no integer NaN.

    ``keep_text``: text columns stay Arrow (``pd.ArrowDtype``) for the sandboxed child,
    which only hands them on (``etl.portable.pack_column``): a million ``str`` made there
    and turned back into Arrow cost about a second per column.
    """
    values = array.combine_chunks()
    kind = values.type
    if keep_text and (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        return pd.Series(values.cast(pa.large_string()), dtype=pd.ArrowDtype(pa.large_string()))
    if pa.types.is_date(kind) or pa.types.is_time(kind) or pa.types.is_timestamp(kind):
        texts = np.empty(len(values), dtype=object)
        texts[:] = [None if v is None else v.isoformat() for v in values.to_pylist()]
        return pd.Series(texts, dtype=object)
    if pa.types.is_dictionary(kind) or pa.types.is_nested(kind):
        items = np.empty(len(values), dtype=object)
        items[:] = values.to_pylist()
        return pd.Series(items, dtype=object)
    numbers = np.asarray(values.to_numpy(zero_copy_only=False))
    return pd.Series(numbers, dtype=object if numbers.dtype == object else numbers.dtype)


def parse_wkb(wkb: Any, notes: list[str]) -> np.ndarray[Any, np.dtype[np.object_]]:
    """Shapely geometries from the file's WKB; unparsable ones become None and are noted."""
    geometry = parse_wkb_values(wkb)
    note_unparsed(wkb, geometry, notes)
    return geometry


def parse_wkb_values(wkb: Any) -> np.ndarray[Any, np.dtype[np.object_]]:
    """Shapely geometries from WKB values, None where a value does not parse."""
    geometry = split_map(
        lambda part: shapely.from_wkb(part, on_invalid="ignore"), np.asarray(wkb, dtype=object)
    )
    return np.asarray(geometry, dtype=object)


def note_unparsed(wkb: Any, geometry: Any, notes: list[str]) -> None:
    """Say which rows' WKB did not parse (1-based positions of the whole file)."""
    unparsed = np.flatnonzero(pd.notna(wkb) & pd.isna(geometry)) + 1
    if len(unparsed):
        shown = ", ".join(str(n) for n in unparsed[:20])
        notes.append(f"{len(unparsed)} geometries could not be parsed (rows {shown})")


def _read_ogr(
    path: Path,
    *,
    fmt: str,
    driver: str,
    layer: str | None,
    gdal_encoding: str | None,
    encoding_label: str | None,
    caps: Caps,
    notes: list[str],
    parse: bool = True,
) -> SourceTable:
    """Open with pyogrio, insist on ``driver``, apply the caps, build the table.

    Read through GDAL's Arrow stream: for a million polygons 0.7 s instead of 10 s for
    the feature-by-feature path, and the WKB arrives without a parse/serialise round trip.
    """
    _configure_gdal()
    what, what_zh = f"a {driver} file", f" {driver} 文件"
    with library_errors(path.name, what, what_zh):
        info = pyogrio.read_info(path, layer=layer, encoding=gdal_encoding)
    if info["driver"] != driver:
        raise FileRejected(
            f"{path.name} was recognised as {info['driver']}, not {driver}",
            f"{path.name} 被识别为 {info['driver']}，而不是 {driver}",
            code="file_type_mismatch",
        )
    check_columns(len(info["fields"]), caps, path.name)
    check_rows(int(info["features"]), caps, path.name)
    sink = None if parse else WKB_SINK.get()
    with library_errors(path.name, what, what_zh), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pyogrio.raw.open_arrow(
            path,
            layer=layer,
            encoding=gdal_encoding,
            return_fids=True,
            datetime_as_string=True,
            use_pyarrow=True,
            batch_size=BATCH_ROWS,
        ) as (meta, reader):
            crs = _crs(meta["crs"], notes)
            fields = [str(name) for name in meta["fields"]]
            # Columns by position: the fid first, the fields in file order, the geometry last.
            has_geometry = len(reader.schema) == len(fields) + 2
            if sink is not None:
                sink("crs", None if crs is None else crs.to_wkt())
            table, wkb_arrow = _batches(reader, caps, geometry=has_geometry, sink=sink)
    for warning in caught:
        log.info("GDAL warning while reading %s: %s", path.name, warning.message)
        if _RECODE_FAILED in str(warning.message):  # GDAL says this once per process
            raise FileRejected(
                f"{path.name}: some text could not be decoded as {encoding_label}; pass --encoding",
                f"{path.name}：部分文字无法按 {encoding_label} 解码，请用 --encoding 指定编码",
                code="encoding_mismatch",
            )
    count = table.num_rows
    check_rows(count, caps, path.name)

    columns = table.columns
    names, name_notes = unique_names(fields)
    # Series, not arrays: pandas 3 would turn object arrays of text into its ``str`` dtype
    # (None → NaN, and back to objects for the column mapping: 1 s per million rows).
    frame = pd.DataFrame(
        {name: _column(columns[1 + i], keep_text=not parse) for i, name in enumerate(names)},
        columns=names,
        index=pd.RangeIndex(count),  # rows even when the file has no attribute column
    )
    wkb = None
    geometry = None
    if wkb_arrow is not None and parse:
        wkb = np.asarray(wkb_arrow.to_numpy(zero_copy_only=False), dtype=object)
        geometry = parse_wkb(wkb, notes)
        wkb_arrow = None
    return SourceTable(
        frame=frame,
        geometry=geometry,
        crs=crs,
        encoding=encoding_label,
        layer=layer,
        source_rows=row_numbers(range(1, count + 1)),
        fmt=fmt,
        notes=[*notes, *name_notes],
        wkb=wkb,
        wkb_arrow=wkb_arrow,
    )


def _batches(
    reader: pa.RecordBatchReader,
    caps: Caps,
    *,
    geometry: bool,
    sink: Callable[[str, Any], None] | None,
) -> tuple[pa.Table, pa.Array | None]:
    """GDAL's batches as one table of the attribute columns, and the WKB as one array.

    Reads at most one batch past ``caps.max_rows`` (the caller refuses the file then).
    With a ``sink`` each batch's WKB leaves as soon as GDAL has read it (:data:`WKB_SINK`)
    and None is returned for it.
    """
    schema = reader.schema
    last = len(schema) - 1
    batches: list[pa.RecordBatch] = []
    wkb: list[pa.Array] = []
    count = 0
    for batch in reader:
        count += batch.num_rows
        if geometry:
            if sink is None:
                wkb.append(batch.column(last))
            else:
                sink("wkb", batch.column(last))
            batch = batch.drop_columns([schema.field(last).name])  # noqa: PLW2901
        batches.append(batch)
        if count > caps.max_rows:
            break
    if not geometry:
        return pa.Table.from_batches(batches, schema=schema), None
    if sink is not None and not batches:
        sink("wkb", pa.array([], type=schema.field(last).type))
    table = pa.Table.from_batches(batches, schema=schema.remove(last))
    if sink is not None:
        return table, None
    return table, pa.chunked_array(wkb, type=schema.field(last).type).combine_chunks()
