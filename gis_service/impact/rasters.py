"""Raster hazard layers: COG files, tiles, values, zonal statistics, footprints, imports.

Tiles and point values with rio-tiler, zonal statistics with exactextract, thresholded
footprints with rasterio, the import of a user's GeoTIFF with rio-cogeo.

The COG lives in the database; :func:`ensure_file` writes it once into the raster folder
under ``<sha256>.tif`` (content-addressed, so a changed raster is a new file and a stale
cache is impossible). Readers are cached per thread (rasterio datasets are not shared
between threads) and rendered PNGs in a small LRU per process.
"""

from __future__ import annotations

import math
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio
import shapely
from rasterio import features
from rasterio.io import MemoryFile
from rasterio.warp import transform_geom
from rio_tiler.errors import PointOutsideBounds, TileOutsideBounds
from rio_tiler.io import Reader
from shapely.geometry.base import BaseGeometry

from gis_service.db.rasters import mercator_cog
from gis_service.errors import FieldProblem, InvalidInput, TooLarge
from gis_service.impact.catalog import RasterRef, Scheme

#: Tile sizes a client may ask for (BAD_INPUTS A9); anything else is refused before reading.
TILE_SIZES = (256, 512)
MIN_ZOOM, MAX_ZOOM = 0, 20
#: Bands and size limits of an imported raster (BAD_INPUTS C12).
MAX_BANDS = 1
#: GeoTIFF magic numbers (little/big endian, classic/BigTIFF): anything else is refused.
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
#: GDAL drivers allowed to open imported files.
ALLOWED_DRIVERS = ("GTiff", "COG")

_local = threading.local()
_png_lock = threading.Lock()
_png_cache: OrderedDict[tuple[Any, ...], bytes | None] = OrderedDict()
_limits = {"tile_cache_entries": 4096}


def ensure_file(folder: Path, sha256: str, load: bytes | None) -> Path:
    """The COG's path in ``folder``, written from ``load`` first when missing."""
    path = folder / f"{sha256}.tif"
    if path.exists():
        return path
    if load is None:
        msg = f"raster {sha256} is not in the database"
        raise FileNotFoundError(msg)
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".part")
    with os.fdopen(fd, "wb") as f:
        f.write(load)
    os.replace(tmp, path)
    return path


def _reader(path: Path) -> Reader:
    cache: dict[Path, Reader] | None = getattr(_local, "readers", None)
    if cache is None:
        cache = _local.readers = {}
    reader = cache.get(path)
    if reader is None:
        if len(cache) > 32:
            for r in cache.values():
                r.close()  # type: ignore[no-untyped-call]
            cache.clear()
        reader = cache[path] = Reader(str(path))
    return reader


def colormap(scheme: Scheme | None) -> list[tuple[tuple[float, float], tuple[int, int, int, int]]]:
    """rio-tiler intervals colormap of a scheme: ``[lo, hi)`` → the class colour."""
    if scheme is None:
        return []
    return [((lo, min(hi, 3.0e38)), c.rgba()) for lo, hi, c in scheme.intervals()]


def cached_tile(
    path: Path, scheme: Scheme | None, z: int, x: int, y: int, *, tilesize: int
) -> tuple[bool, bytes | None]:
    """``(hit, png)`` from the rendered-tile cache, without rendering (cheap, no thread hop)."""
    key = (str(path), scheme.key if scheme else "", z, x, y, tilesize)
    with _png_lock:
        if key in _png_cache:
            _png_cache.move_to_end(key)
            return True, _png_cache[key]
    return False, None


def render_tile(
    path: Path, scheme: Scheme | None, z: int, x: int, y: int, *, tilesize: int
) -> bytes | None:
    """A PNG of one web-mercator tile coloured by class (nodata transparent); None outside."""
    key = (str(path), scheme.key if scheme else "", z, x, y, tilesize)
    hit, png = cached_tile(path, scheme, z, x, y, tilesize=tilesize)
    if hit:
        return png
    reader = _reader(path)
    try:
        img = reader.tile(x, y, z, tilesize=tilesize, resampling_method="nearest")
    except TileOutsideBounds:
        png = None
    else:
        png = img.render(img_format="PNG", colormap=colormap(scheme) or None)
    with _png_lock:
        _png_cache[key] = png
        while len(_png_cache) > _cache_size():
            _png_cache.popitem(last=False)
    return png


def _cache_size() -> int:
    return _limits["tile_cache_entries"]


def set_cache_size(entries: int) -> None:
    """Size of the per-process PNG cache (from settings)."""
    _limits["tile_cache_entries"] = entries


def point_value(path: Path, lon: float, lat: float, nodata: float | None) -> float | None:
    """The pixel value under a lon/lat point (None for nodata or outside the raster)."""
    reader = _reader(path)
    try:
        pt = reader.point(lon, lat, coord_crs="EPSG:4326")
    except PointOutsideBounds:
        return None
    value = float(np.asarray(pt.array).ravel()[0])
    if not np.isfinite(value) or (nodata is not None and value == nodata):
        return None
    return value


def zonal(
    path: Path,
    raster: RasterRef,
    scheme: Scheme | None,
    zones: Sequence[tuple[str, BaseGeometry]],
) -> list[dict[str, Any]]:
    """Coverage-weighted statistics per zone with exactextract.

    Returns per zone: ``coverage_km2`` (area of valid pixels inside), ``min``, ``max``,
    ``mean`` and the area of each class of the scheme (km²). Zones come in lon/lat and are
    transformed to the raster's CRS first, so areas are in its (metric) units.
    """
    import geopandas as gpd
    from exactextract import exact_extract

    if not zones:
        return []
    frame = gpd.GeoDataFrame(
        {"zid": list(range(len(zones)))},
        geometry=[g for _, g in zones],
        crs="EPSG:4490",
    ).to_crs(raster.crs)
    # Web-mercator pixels shrink by cos²(lat) on the ground: a zone is small enough for one.
    pixel_km2 = [
        abs(raster.res_x * raster.res_y) / 1e6 * math.cos(math.radians(g.centroid.y)) ** 2
        for _, g in zones
    ]
    ops = ["count", "min", "max", "mean"]
    with rasterio.open(path) as src:
        stats = exact_extract(src, frame, ops, include_cols=["zid"], output="pandas")
        classes = _class_areas(src, frame, scheme, pixel_km2)
    out = []
    for i, (code, _) in enumerate(zones):
        row = stats.iloc[i]
        count = float(row["count"])
        valid = count > 0
        out.append(
            {
                "code": code,
                "coverage_km2": round(count * pixel_km2[i], 6),
                "min": float(row["min"]) if valid else None,
                "max": float(row["max"]) if valid else None,
                "mean": round(float(row["mean"]), 6) if valid else None,
                "classes": classes[i],
            }
        )
    return out


def _class_areas(
    src: Any, frame: Any, scheme: Scheme | None, pixel_km2: list[float]
) -> list[dict[str, float]]:
    """Area per class and zone: exactextract's weighted count on a class-index raster."""
    from exactextract import exact_extract

    intervals = scheme.intervals() if scheme else []
    empty: list[dict[str, float]] = [
        {c.key: 0.0 for _, _, c in intervals} for _ in range(len(frame))
    ]
    if not intervals:
        return empty
    band = src.read(1, masked=True)
    index = np.full(band.shape, 255, dtype=np.uint8)
    data = np.ma.filled(band.astype(np.float64), np.nan)
    for i, (lo, hi, _) in enumerate(intervals):
        index[(data >= lo) & (data < hi)] = i
    profile = {
        "driver": "GTiff",
        "width": src.width,
        "height": src.height,
        "count": 1,
        "dtype": "uint8",
        "crs": src.crs,
        "transform": src.transform,
        "nodata": 255,
    }
    with MemoryFile() as mem:
        with mem.open(**profile) as ds:
            ds.write(index, 1)
        with mem.open() as ds:
            res = exact_extract(ds, frame, ["unique", "frac", "count"], output="pandas")
    for i in range(len(frame)):
        row = res.iloc[i]
        uniques, fracs, count = row["unique"], row["frac"], float(row["count"])
        for u, f in zip(np.asarray(uniques).ravel(), np.asarray(fracs).ravel(), strict=True):
            key = intervals[int(u)][2].key
            empty[i][key] = round(float(f) * count * pixel_km2[i], 6)
    return empty


def threshold_polygons(
    path: Path, lo: float, hi: float | None, simplify_px: float = 0.5
) -> BaseGeometry:
    """The area where ``lo <= value < hi`` as one (Multi)Polygon in lon/lat.

    Polygonised once with ``rasterio.features.shapes`` in the raster's CRS (pixel edges,
    slightly simplified), then transformed to CGCS2000 lon/lat.
    """
    with rasterio.open(path) as src:
        band = src.read(1, masked=True)
        data = np.ma.filled(band.astype(np.float64), np.nan)
        hit = np.isfinite(data) & (data >= lo)
        if hi is not None:
            hit &= data < hi
        mask: npt.NDArray[np.uint8] = hit.astype(np.uint8)
        parts = [
            shapely.geometry.shape(g)
            for g, v in features.shapes(mask, mask=hit, transform=src.transform)
            if v == 1
        ]
        if not parts:
            return shapely.Polygon()
        # the connected regions of ``shapes`` are disjoint already: no union needed
        merged = shapely.MultiPolygon(
            [q for p in parts for q in shapely.get_parts(p) if q.geom_type == "Polygon"]
        )
        if simplify_px:
            merged = shapely.make_valid(merged.simplify(abs(src.res[0]) * simplify_px))
        gj = transform_geom(src.crs, "EPSG:4490", shapely.geometry.mapping(merged))
    geom = shapely.make_valid(shapely.geometry.shape(gj))
    polys = [g for g in shapely.get_parts(geom) if g.geom_type == "Polygon" and not g.is_empty]
    return shapely.MultiPolygon(polys) if polys else shapely.Polygon()


def _refuse(field: str, message: str, zh: str) -> InvalidInput:
    return InvalidInput(
        detail=f"{field}: {message}", detail_zh=zh, fields=[FieldProblem(field, message)]
    )


def to_cog(path: Path, *, max_pixels: int) -> bytes:
    """A user's GeoTIFF checked and converted to a COG (its CRS and nodata kept).

    Refused before any full read (BAD_INPUTS C11, C12): not a TIFF by its magic bytes (a VRT
    disguised as ``.tif``), opened by another driver, no georeference, more than one band,
    or more than ``max_pixels`` pixels.
    """
    with path.open("rb") as f:
        head = f.read(4)
    if head not in TIFF_MAGIC:
        raise _refuse("file", "not a GeoTIFF (magic bytes)", "不是 GeoTIFF 文件")
    with (
        rasterio.Env(GDAL_SKIP="VRT", CPL_VSIL_CURL_ALLOWED_EXTENSIONS="none"),
        rasterio.open(path, driver="GTiff") as src,
    ):
        if src.driver not in ALLOWED_DRIVERS:
            raise _refuse("file", "not a GeoTIFF", "不是 GeoTIFF 文件")
        if src.count != MAX_BANDS:
            raise _refuse("file", f"{src.count} bands; one is expected", "只支持单波段栅格")
        if src.width * src.height > max_pixels:
            raise TooLarge(
                detail=f"file: {src.width}×{src.height} pixels exceed {max_pixels}",
                detail_zh="栅格像元数超过上限",
                fields=[FieldProblem("file", "too many pixels")],
            )
        if src.crs is None or src.transform.is_identity:
            raise _refuse("file", "the raster has no georeference", "栅格缺少坐标参考")
        return mercator_cog(src)
