"""``gis-service hazards add``: register a hazard file as a layer.

A GeoTIFF becomes a raster layer (its COG in the database), a polygon file (GeoJSON,
GeoPackage, Shapefile) a vector layer of ``hazard_zone`` rows.

Everything is checked before the first write and written in one transaction: a file that
fails leaves the registry as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import shapely

from gis_service.db.rasters import LayerMeta, register_raster, register_vector
from gis_service.errors import Conflict, FieldProblem, InvalidInput
from gis_service.impact import rasters
from gis_service.impact.catalog import KEY_PATTERN, Scheme, SchemeClass

HAZARD_TYPES = (
    "flood",
    "waterlogging",
    "landslide",
    "geohazard",
    "forest_fire",
    "earthquake",
    "typhoon",
    "drought",
    "other",
)
RASTER_SUFFIXES = (".tif", ".tiff")
VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp")


def _refuse(field: str, message: str, zh: str) -> InvalidInput:
    return InvalidInput(
        detail=f"{field}: {message}", detail_zh=zh, fields=[FieldProblem(field, message)]
    )


@dataclass(frozen=True)
class AddResult:
    """What ``hazards add`` did."""

    key: str
    layer_id: int
    data_type: str
    features: int
    sha256: str | None


def _scheme(conn: psycopg.Connection[Any], key: str) -> Scheme:
    rows = conn.execute(
        "SELECT c.key, c.zh_name, c.en_name, c.color, c.min_value, c.max_value"
        " FROM classification_class c JOIN classification_scheme s ON s.id = c.scheme_id"
        " WHERE s.key = %s AND s.version = (SELECT max(version) FROM classification_scheme"
        " WHERE key = %s) ORDER BY c.ord",
        (key, key),
    ).fetchall()
    if not rows:
        raise _refuse("--scheme", f"unknown scheme {key[:40]}", "分级方案不存在")
    return Scheme(key, key, tuple(SchemeClass(*r) for r in rows))


def check_meta(meta: LayerMeta) -> None:
    """Key, hazard type and admin code of a new layer (before the file is read)."""
    if not KEY_PATTERN.match(meta.key):
        raise _refuse("--name", "use lower-case letters, digits and _ (≤ 64)", "图层名格式错误")
    if meta.hazard_type not in HAZARD_TYPES:
        raise _refuse("--type", f"one of {', '.join(HAZARD_TYPES)}", "灾种不支持")


def add(
    url: str,
    path: Path,
    meta: LayerMeta,
    *,
    max_pixels: int,
    replace: bool = False,
    class_field: str | None = None,
    value_field: str | None = None,
) -> AddResult:
    """Register ``path`` as hazard layer ``meta.key`` in the database at ``url``."""
    check_meta(meta)
    suffix = path.suffix.lower()
    if suffix not in RASTER_SUFFIXES + VECTOR_SUFFIXES:
        raise _refuse("file", "a GeoTIFF or a GeoJSON/GeoPackage/Shapefile", "文件格式不支持")
    cog = rasters.to_cog(path, max_pixels=max_pixels) if suffix in RASTER_SUFFIXES else None
    conninfo = "postgresql://" + url.split("://", 1)[1]
    with psycopg.connect(conninfo) as conn:
        scheme = _scheme(conn, meta.scheme_key)
        exists = conn.execute("SELECT 1 FROM hazard_layer WHERE key = %s", (meta.key,)).fetchone()
        if exists and not replace:
            raise Conflict(
                detail=f"hazard layer {meta.key} exists (use --replace)",
                detail_zh="图层已存在",
                fields=[FieldProblem("--name", "exists")],
            )
        if cog is not None:
            layer_id = register_raster(conn, meta, cog, source="cli", replace=True)
            sha = conn.execute(
                "SELECT sha256 FROM hazard_raster WHERE layer_id = %s", (layer_id,)
            ).fetchone()
            conn.commit()
            return AddResult(meta.key, layer_id, "raster", 0, sha[0] if sha else None)
        zones = _read_zones(path, scheme, class_field, value_field)
        layer_id = register_vector(
            conn, meta, tile_layer=None, class_property="class_key", source="cli", replace=True
        )
        conn.execute("DELETE FROM hazard_zone WHERE layer_id = %s", (layer_id,))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO hazard_zone (layer_id, class_key, value, name, geom, admin_code,"
                " source) VALUES (%s, %s, %s, %s, ST_Multi(ST_GeomFromWKB(%s, 4490)), %s, 'cli')",
                [(layer_id, c, v, n, shapely.to_wkb(g), meta.admin_code) for c, v, n, g in zones],
            )
        conn.commit()
        return AddResult(meta.key, layer_id, "vector", len(zones), None)


def _read_zones(
    path: Path, scheme: Scheme, class_field: str | None, value_field: str | None
) -> list[tuple[str | None, float | None, str | None, Any]]:
    """Polygons in CGCS2000 with their class (from a class or a value column)."""
    import geopandas as gpd

    frame = gpd.read_file(path)
    if frame.crs is None:
        raise _refuse("file", "the file has no CRS", "文件缺少坐标参考")
    frame = frame.to_crs("EPSG:4490")
    for name in (class_field, value_field):
        if name is not None and name not in frame.columns:
            raise _refuse(
                "--class-field" if name == class_field else "--value-field",
                f"no column {name[:40]}",
                "字段不存在",
            )
    keys = {c.key for c in scheme.classes}
    out: list[tuple[str | None, float | None, str | None, Any]] = []
    for i, row in enumerate(frame.itertuples(index=False)):
        geom = row.geometry
        if geom is None or geom.is_empty:
            continue
        coords = shapely.get_coordinates(geom)
        if not np.isfinite(coords).all():
            raise _refuse(f"file row {i + 1}", "coordinates must be finite", "坐标必须是有限数值")
        geom = shapely.make_valid(shapely.force_2d(geom))
        polys = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon"]
        if not polys:
            raise _refuse(f"file row {i + 1}", "not a polygon", "不是面要素")
        value = float(getattr(row, value_field)) if value_field else None
        if class_field:
            raw = str(getattr(row, class_field))
            if raw not in keys:
                raise _refuse(
                    f"file row {i + 1}", f"class {raw[:20]} not in the scheme", "分级不存在"
                )
            cls: str | None = raw
        else:
            found = scheme.classify(value)
            cls = found.key if found else None
        name = getattr(row, "name", None)
        out.append((cls, value, None if name is None else str(name), shapely.MultiPolygon(polys)))
    if not out:
        raise _refuse("file", "no polygon", "文件没有面要素")
    return out
