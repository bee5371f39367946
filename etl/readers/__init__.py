"""Read one uploaded file into a ``SourceTable``: the first stage of every import.

``read_file`` accepts a Shapefile (folder, ``.shp`` or ``.zip``), a GeoPackage, a GeoJSON,
a CSV/TSV or an ``.xlsx`` ledger. The format is decided from the extension *and* the
magic bytes (``etl.readers.sniff``); archives are proven safe before anything is
extracted (``etl.archive``); text encodings are decided strictly
(``etl.encoding``). Whatever is wrong with a file ends as ``FileRejected`` (HTTP 422)
or ``TooLarge`` (413) with a message that names the file part or the choice to make.

Readers take no request and open no database connection: they are called by the import
worker, which runs them in a separate process with memory and time limits.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from etl.archive import extract_zip
from etl.model import FileRejected, SourceTable
from etl.readers.common import Caps, is_debris
from etl.readers.delimited import read_csv
from etl.readers.sniff import EXTENSIONS, SIDECARS, Kind, checked_path, sniff
from etl.readers.vector import find_shapefile, gpkg_layers, read_geojson, read_gpkg, read_shapefile
from etl.readers.workbook import read_xlsx, sheet_names

__all__ = ["list_layers", "read_file"]


def read_file(
    path: Path,
    *,
    layer: str | None = None,
    sheet: str | None = None,
    encoding: str | None = None,
    max_rows: int = 2_000_000,
    max_columns: int = 500,
    parse_geometry: bool = True,
) -> SourceTable:
    """Read one file (or shapefile folder, or zip of one) into a ``SourceTable``.

    Args:
        path: a file, a folder holding one shapefile, or a ``.zip`` holding one dataset.
        layer: the GeoPackage layer to read (required when there are several).
        sheet: the Excel worksheet to read (required when several hold data).
        encoding: text encoding of a shapefile's DBF or of a CSV; overrides detection
            but is still checked strictly against the bytes.
        max_rows: more data rows → ``TooLarge``.
        max_columns: more columns → ``FileRejected``.
        parse_geometry: build shapely geometries; False leaves ``geometry`` None and only
            ``wkb`` set (the import worker ships the WKB to its parent, which parses it).

    Returns:
        The table, with ``notes`` saying what was decided (encoding, header row …).

    Raises:
        FileRejected: unsupported, disguised, corrupt, incomplete or ambiguous input.
        TooLarge: a row, size or archive cap was exceeded.
    """
    options = _Options(
        layer, sheet, encoding, Caps(max_rows=max_rows, max_columns=max_columns), parse_geometry
    )
    path = checked_path(path)
    if path.is_dir():
        return _read_folder(path, path.name, options)
    path = _shapefile_for_sidecar(path)
    kind = sniff(path)
    if kind != "zip":
        return _read_kind(path, kind, options)
    with tempfile.TemporaryDirectory(prefix="gis-import-") as tmp:
        extract_zip(path, Path(tmp))
        table = _read_folder(Path(tmp), path.name, options)
    table.notes.insert(0, f"read from the zip archive {path.name}")
    return table


def list_layers(path: Path) -> list[str]:
    """The choices a file offers: GeoPackage layers or worksheet names.

    Returns:
        Layer or sheet names in file order; an empty list for single-table formats
        (Shapefile, GeoJSON, CSV, zip archives), where there is nothing to choose.

    Raises:
        FileRejected: the file cannot be identified or opened.
    """
    path = checked_path(path)
    if path.is_dir():
        return []
    kind = sniff(_shapefile_for_sidecar(path))
    if kind == "gpkg":
        return gpkg_layers(path)
    if kind == "xlsx":
        return sheet_names(path)
    return []


def _shapefile_for_sidecar(path: Path) -> Path:
    """A user who picks ``x.dbf`` or ``x.prj`` means the shapefile ``x.shp`` beside it."""
    if path.suffix.lower() in SIDECARS:
        for suffix in (".shp", ".SHP"):
            if path.with_suffix(suffix).is_file():
                return path.with_suffix(suffix)
    return path


@dataclass(frozen=True)
class _Options:
    layer: str | None
    sheet: str | None
    encoding: str | None
    caps: Caps
    parse_geometry: bool


def _read_kind(path: Path, kind: Kind, options: _Options) -> SourceTable:
    if kind == "shp":
        return read_shapefile(
            path, encoding=options.encoding, caps=options.caps, parse=options.parse_geometry
        )
    if kind == "gpkg":
        return read_gpkg(path, layer=options.layer, caps=options.caps, parse=options.parse_geometry)
    if kind == "geojson":
        return read_geojson(path, caps=options.caps, parse=options.parse_geometry)
    if kind == "csv":
        return read_csv(path, encoding=options.encoding, caps=options.caps)
    if kind == "xlsx":
        return read_xlsx(path, sheet=options.sheet, caps=options.caps)
    raise FileRejected(  # a zip inside an extracted zip never gets here (check_zip)
        f"{path.name}: archives inside archives are not read",
        f"{path.name}：不读取压缩包中的压缩包",
        code="archive_nested",
    )


def _read_folder(folder: Path, shown: str, options: _Options) -> SourceTable:
    """Read the one dataset in a folder: its shapefile, else its single data file."""
    shp = find_shapefile(folder)
    if shp is not None:
        return read_shapefile(
            shp, encoding=options.encoding, caps=options.caps, parse=options.parse_geometry
        )
    candidates = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in EXTENSIONS and not is_debris(p.relative_to(folder))
    )
    if len(candidates) != 1:
        found = ", ".join(p.name for p in candidates[:20]) or "none"
        raise FileRejected(
            f"{shown} must hold exactly one dataset; found: {found}",
            f"{shown} 中必须只有一个数据文件；找到：{found}",
            code="ambiguous_input",
        )
    return _read_kind(candidates[0], sniff(candidates[0]), options)
