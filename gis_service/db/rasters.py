"""Cloud-Optimised GeoTIFFs of hazard layers: made from arrays, described, registered.

Shared by the demo (which paints its hazard rasters from the synthetic terrain) and the
impact package (which imports a user's GeoTIFF): both end in :func:`register_raster`, so a
raster layer is always a ``hazard_layer`` row plus a ``hazard_raster`` row holding the COG.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.io import MemoryFile
from rasterio.transform import Affine
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rio_cogeo.cogeo import cog_translate
from rio_cogeo.profiles import cog_profiles

#: Every stored COG is in web mercator: tiles are then read without any datum
#: transformation (CGCS2000 → WGS84 costs PROJ ~150 ms per call), as titiler recommends.
STORED_CRS = "EPSG:3857"


@dataclass(frozen=True)
class RasterInfo:
    """What the database keeps about a COG besides its bytes."""

    sha256: str
    width: int
    height: int
    crs: str
    dtype: str
    nodata: float | None
    res_x: float
    res_y: float
    bounds_lonlat: tuple[float, float, float, float]
    min_value: float | None
    max_value: float | None


def crs_text(crs: CRS) -> str:
    """``EPSG:nnnn`` when the CRS has a code, its WKT otherwise."""
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_wkt()


def describe(cog: bytes) -> RasterInfo:
    """Grid, CRS, nodata, lon/lat bounds and value range of a single-band COG."""
    with MemoryFile(cog) as mem, mem.open() as ds:
        band = ds.read(1, masked=True)
        valid = band.compressed()
        finite = valid[np.isfinite(valid)] if valid.dtype.kind == "f" else valid
        west, south, east, north = transform_bounds(ds.crs, "EPSG:4490", *ds.bounds, densify_pts=21)
        return RasterInfo(
            sha256=hashlib.sha256(cog).hexdigest(),
            width=ds.width,
            height=ds.height,
            crs=crs_text(ds.crs),
            dtype=str(ds.dtypes[0]),
            nodata=None if ds.nodata is None else float(ds.nodata),
            res_x=float(ds.res[0]),
            res_y=float(ds.res[1]),
            bounds_lonlat=(float(west), float(south), float(east), float(north)),
            min_value=float(finite.min()) if finite.size else None,
            max_value=float(finite.max()) if finite.size else None,
        )


def mercator_cog(src: Any) -> bytes:
    """A COG (deflate, 512 px blocks, nearest overviews) of an open single-band dataset.

    Warped to web mercator with nearest resampling so class values and nodata survive.
    """
    profile = cog_profiles.get("deflate")  # type: ignore[no-untyped-call]
    profile.update(blockxsize=512, blockysize=512)
    if src.dtypes[0].startswith("float"):
        profile["predictor"] = 3
    with (
        WarpedVRT(src, crs=STORED_CRS, resampling=Resampling.nearest, nodata=src.nodata) as vrt,
        MemoryFile() as mem,
    ):
        cog_translate(
            vrt,
            mem.name,
            profile,
            nodata=src.nodata,
            overview_resampling="nearest",
            in_memory=True,
            quiet=True,
        )
        return bytes(mem.read())


def cog_from_array(
    array: npt.NDArray[Any], transform: Affine, crs: str | CRS, nodata: float | None
) -> bytes:
    """The stored COG of ``array`` given on its own grid and CRS."""
    height, width = array.shape
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 1,
        "dtype": str(array.dtype),
        "crs": CRS.from_user_input(crs),
        "transform": transform,
        "nodata": nodata,
    }
    with MemoryFile() as mem:
        with mem.open(**profile) as ds:
            ds.write(array, 1)
        with mem.open() as ds:
            return mercator_cog(ds)


@dataclass(frozen=True)
class LayerMeta:
    """The descriptive fields of a ``hazard_layer`` row."""

    key: str
    title: str
    hazard_type: str
    layer_kind: str
    scheme_key: str
    unit: str | None = None
    scenario: str | None = None
    return_period: int | None = None
    year: int | None = None
    producer: str | None = None
    admin_code: str | None = None


def register_raster(
    conn: psycopg.Connection[Any], meta: LayerMeta, cog: bytes, *, source: str, replace: bool
) -> int:
    """Insert (or, with ``replace``, overwrite) a raster layer and its COG; returns its id."""
    info = describe(cog)
    layer_id = _upsert_layer(
        conn,
        meta,
        data_type="raster",
        file_path=info.sha256 + ".tif",
        source=source,
        replace=replace,
    )
    conn.execute("DELETE FROM hazard_raster WHERE layer_id = %s", (layer_id,))
    conn.execute(
        "INSERT INTO hazard_raster (layer_id, cog, sha256, width, height, crs, dtype, nodata,"
        " res_x, res_y, west, south, east, north, min_value, max_value, source)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            layer_id,
            cog,
            info.sha256,
            info.width,
            info.height,
            info.crs,
            info.dtype,
            info.nodata,
            info.res_x,
            info.res_y,
            *info.bounds_lonlat,
            info.min_value,
            info.max_value,
            source,
        ),
    )
    return layer_id


def register_vector(
    conn: psycopg.Connection[Any],
    meta: LayerMeta,
    *,
    tile_layer: str | None,
    class_property: str | None,
    source: str,
    replace: bool,
) -> int:
    """Insert (or overwrite) a vector hazard layer drawn by a published tile layer."""
    layer_id = _upsert_layer(
        conn, meta, data_type="vector", file_path=None, source=source, replace=replace
    )
    conn.execute(
        "UPDATE hazard_layer SET tile_layer = %s, class_property = %s WHERE id = %s",
        (tile_layer, class_property, layer_id),
    )
    return layer_id


def _upsert_layer(
    conn: psycopg.Connection[Any],
    meta: LayerMeta,
    *,
    data_type: str,
    file_path: str | None,
    source: str,
    replace: bool,
) -> int:
    values = (
        meta.title,
        meta.hazard_type,
        meta.layer_kind,
        data_type,
        meta.scenario,
        meta.return_period,
        meta.scheme_key,
        file_path,
        meta.unit,
        meta.year,
        meta.producer,
        meta.admin_code,
        source,
    )
    conflict = (
        " ON CONFLICT (key) DO UPDATE SET title = EXCLUDED.title, hazard_type ="
        " EXCLUDED.hazard_type, layer_kind = EXCLUDED.layer_kind, data_type = EXCLUDED.data_type,"
        " scenario = EXCLUDED.scenario, return_period = EXCLUDED.return_period, scheme_key ="
        " EXCLUDED.scheme_key, file_path = EXCLUDED.file_path, unit = EXCLUDED.unit, year ="
        " EXCLUDED.year, producer = EXCLUDED.producer, admin_code = EXCLUDED.admin_code,"
        " source = EXCLUDED.source"
        if replace
        else ""
    )
    row = conn.execute(
        "INSERT INTO hazard_layer (key, title, hazard_type, layer_kind, data_type, scenario,"
        " return_period, scheme_key, file_path, unit, year, producer, admin_code, source)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        + conflict
        + " RETURNING id",
        (meta.key, *values),
    ).fetchone()
    assert row is not None
    return int(row[0])
