"""Export a table (within an area) to the files bureaus exchange.

GeoJSON, GeoPackage, zipped Shapefile (GBK or UTF-8 text), CSV and XLSX (Chinese
headers, longitude/latitude columns for points, WKT otherwise). Coordinates are CGCS2000
by default; ``wgs84``, an EPSG code, or the display systems ``gcj02``/``bd09`` (for an
Amap/Baidu overlay) are possible and the file name and metadata say which.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pyogrio
import shapely
from openpyxl import Workbook
from psycopg import sql

from etl import coords, mapping
from etl.load import scope_predicate
from gis_service.errors import BadParameter

FORMATS = ("geojson", "gpkg", "shp", "csv", "xlsx")
_DRIVERS = {"geojson": "GeoJSON", "gpkg": "GPKG", "shp": "ESRI Shapefile"}
_MEDIA = {
    "geojson": "application/geo+json",
    "gpkg": "application/geopackage+sqlite3",
    "shp": "application/zip",
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
#: Spreadsheet cells that start like a formula are written as text (CSV injection, C9).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class ExportResult:
    """The written file and how to serve it."""

    path: Path
    media_type: str
    rows: int
    crs_label: str


def _safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _titles(spec: mapping.TargetSpec) -> dict[str, str]:
    """Column → the header bureaus use for it (the field's first Chinese alias)."""
    out = {}
    for f in spec.fields:
        zh = next((a for a in f.aliases if any("\u4e00" <= ch <= "\u9fff" for ch in a)), f.name)
        out[f.name] = zh
    return out


def fetch(
    conn: psycopg.Connection[Any],
    target: str,
    *,
    scope_code: str | None,
    admin_code: str | None = None,
) -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
    """Rows of ``target`` inside the scope (and under ``admin_code``), geometry in 4490."""
    spec = mapping.TARGETS.get(target)
    if spec is None:
        raise BadParameter(
            detail=f"unknown target {target!r}; one of: {', '.join(sorted(mapping.TARGETS))}",
            detail_zh=f"未知的导出对象 {target}",
        )
    area_col = sql.Identifier("community_code" if spec.table == "grid" else "admin_code")
    cols = [f.name for f in spec.fields]
    extra = ["admin_code", "grid_code"] if spec.table != "grid" else []
    where = [scope_predicate(area_col, scope_code)]
    if admin_code is not None:
        where.append(scope_predicate(area_col, admin_code))
    if spec.table == "grid":
        where.append(sql.SQL("valid_to IS NULL"))
    query = sql.SQL(
        "SELECT {cols}, attributes, ST_AsBinary(geom) FROM {table} WHERE {where} ORDER BY id"
    ).format(
        cols=sql.SQL(", ").join(map(sql.Identifier, ["id", *cols, *extra])),
        table=sql.Identifier(spec.table),
        where=sql.SQL(" AND ").join(where),
    )
    rows = conn.execute(query).fetchall()
    names = ["id", *cols, *extra, "attributes", "_wkb"]
    frame = pd.DataFrame(rows, columns=names)
    geoms = shapely.from_wkb(frame.pop("_wkb").to_numpy(dtype=object))
    return frame, np.asarray(geoms, dtype=object)


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Values every format can hold: lists joined, JSON attributes as text, dates as ISO."""
    out = frame.copy()
    for col in out.columns:
        out[col] = [
            "、".join(v)
            if isinstance(v, list)
            else (v.isoformat() if isinstance(v, dt.date | dt.datetime) else v)
            for v in out[col]
        ]
    if "attributes" in out:
        import json

        out["attributes"] = [
            json.dumps(v, ensure_ascii=False) if v else None for v in out["attributes"]
        ]
    return out


def export_table(
    conn: psycopg.Connection[Any],
    target: str,
    fmt: str,
    out_dir: Path,
    *,
    scope_code: str | None,
    admin_code: str | None = None,
    crs: str = "cgcs2000",
    encoding: str = "utf-8",
) -> ExportResult:
    """Write ``target`` rows in the caller's area to ``out_dir`` as ``fmt``."""
    if fmt not in FORMATS:
        raise BadParameter(detail=f"format must be one of {', '.join(FORMATS)}")
    if encoding.lower() not in ("utf-8", "gbk", "gb18030"):
        raise BadParameter(detail="encoding must be utf-8, gbk or gb18030")
    frame, geoms = fetch(conn, target, scope_code=scope_code, admin_code=admin_code)
    geoms, choice = coords.from_storage(geoms, crs)
    spec = mapping.TARGETS[target]
    suffix = (
        ""
        if choice.kind == "epsg" and choice.epsg in (4490, 4326)
        else f"_{crs.lower().replace(':', '')}"
    )
    stem = f"{target}{suffix}"
    frame = _plain(frame)
    if fmt in _DRIVERS:
        gdf = gpd.GeoDataFrame(frame, geometry=list(geoms), crs=None)
        if choice.kind == "epsg" and choice.epsg is not None:
            gdf = gdf.set_crs(epsg=choice.epsg, allow_override=True)
        if fmt == "shp":
            path = _write_shapefile(gdf, out_dir, stem, encoding)
        else:
            path = out_dir / f"{stem}.{fmt}"
            pyogrio.write_dataframe(
                gdf, path, driver=_DRIVERS[fmt], layer=target if fmt == "gpkg" else None
            )
    elif fmt == "csv":
        path = out_dir / f"{stem}.csv"
        _write_csv(frame, geoms, path, _titles(spec), encoding)
    else:
        path = out_dir / f"{stem}.xlsx"
        _write_xlsx(frame, geoms, path, _titles(spec), choice.label)
    return ExportResult(path=path, media_type=_MEDIA[fmt], rows=len(frame), crs_label=choice.label)


def _write_shapefile(gdf: gpd.GeoDataFrame, out_dir: Path, stem: str, encoding: str) -> Path:
    folder = out_dir / stem
    folder.mkdir(parents=True, exist_ok=True)
    # Shapefile field names are 10 bytes: keep English column names, they fit.
    pyogrio.write_dataframe(gdf, folder / f"{stem}.shp", driver="ESRI Shapefile", encoding=encoding)
    path = out_dir / f"{stem}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for part in sorted(folder.iterdir()):
            zf.write(part, arcname=part.name)
    return path


def _tabular(
    frame: pd.DataFrame, geoms: np.ndarray[Any, Any], titles: dict[str, str]
) -> pd.DataFrame:
    out = frame.rename(columns=titles)
    present = np.array([g is not None for g in geoms], dtype=bool)
    points_only = bool(present.any()) and bool((shapely.get_type_id(geoms[present]) == 0).all())
    if points_only:
        xy = np.full((len(geoms), 2), np.nan)
        xy[present] = shapely.get_coordinates(geoms[present])
        out["经度"] = np.round(xy[:, 0], 7)
        out["纬度"] = np.round(xy[:, 1], 7)
    else:
        out["WKT"] = [None if g is None else shapely.to_wkt(g, rounding_precision=7) for g in geoms]
    return out


def _write_csv(
    frame: pd.DataFrame,
    geoms: np.ndarray[Any, Any],
    path: Path,
    titles: dict[str, str],
    encoding: str,
) -> None:
    table = _tabular(frame, geoms, titles)
    enc = "utf-8-sig" if encoding.lower() == "utf-8" else encoding
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(table.columns)
    for row in table.itertuples(index=False):
        writer.writerow(["" if pd.isna(v) else _safe_cell(v) for v in row])
    path.write_bytes(buf.getvalue().encode(enc, errors="strict"))


def _write_xlsx(
    frame: pd.DataFrame,
    geoms: np.ndarray[Any, Any],
    path: Path,
    titles: dict[str, str],
    crs_label: str,
) -> None:
    table = _tabular(frame, geoms, titles)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("data")
    ws.append([f"坐标系 / CRS: {crs_label}"])
    ws.append(list(table.columns))
    for row in table.itertuples(index=False):
        ws.append([None if pd.isna(v) else _safe_cell(v) for v in row])
    wb.save(path)
