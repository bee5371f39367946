"""Hazard rasters of the demo, painted from the same synthetic terrain the city was built on.

Each fully generated county's relief is rebuilt with :func:`setup_county` (same seed, same
hills: its random generator depends only on the seed and the county code), sampled on a grid
in the county's Gauss-Krüger plane, and turned into three plausible layers:

- ``flood_depth_p50`` 洪水淹没水深 (50-year scenario): water spreading from the demo's rivers
  over the low, flat ground, shallower with distance and relief;
- ``landslide_susceptibility`` 滑坡易发性: the slope of the relief, where the demo placed its
  geohazard points;
- ``forest_fire_danger`` 森林火险气象等级: a daily index (0–100) high in forest patches and on
  hills, low in towns;

plus the vector layer ``geohazard_risk_zones`` (the demo's 地质灾害风险区, already loaded).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import psycopg
import shapely
from rasterio import features
from rasterio.transform import from_origin
from scipy import ndimage

from gis_service.crs import gk_zone_epsg, gk_zone_transformer
from gis_service.db.rasters import LayerMeta, cog_from_array, register_raster, register_vector
from gis_service.demo.county import setup_county
from gis_service.demo.generator import DemoCity
from gis_service.demo.geometry import Arr
from gis_service.demo.outline import load_counties
from gis_service.demo.plans import AS_OF, SHIFENG, city_plans

__all__ = ["DEMO_LAYERS", "load_hazard_layers", "paint"]

SEED = 20261122
FLOAT_NODATA = -9999.0
UINT8_NODATA = 255
#: Keys of the demo's hazard layers (removed and re-added with the demo).
DEMO_LAYERS = (
    "flood_depth_p50",
    "landslide_susceptibility",
    "forest_fire_danger",
    "geohazard_risk_zones",
)


def _full_counties(city: DemoCity) -> list[str]:
    """Codes of the counties generated in full (those with buildings)."""
    codes = {str(c)[:6] for c in city.buildings.get("admin_code", []) if c}
    if not codes:  # the generator leaves stamping to the loader: use the grids instead
        codes = {str(c)[:6] for c in city.grids.get("grid_code", [])}
    return sorted(codes)


def _rasterize(geoms: Iterable[Any], shape: tuple[int, int], transform: Any) -> Arr:
    shapes = [(g, 1) for g in geoms if g is not None and not g.is_empty]
    if not shapes:
        return np.zeros(shape, dtype=bool)
    out: Arr = features.rasterize(shapes, out_shape=shape, transform=transform, all_touched=True)
    return out.astype(bool)


def paint(city: DemoCity, res: float | None = None) -> dict[str, Any]:
    """The three hazard grids of ``city`` (numpy arrays) and their shared georeference."""
    counties = load_counties()
    union = shapely.union_all([g for _, g in counties.values()])
    epsg = gk_zone_epsg(union.centroid.x)
    fwd = gk_zone_transformer(epsg)
    codes = _full_counties(city)
    plans = {p.code: p for p in [SHIFENG, *city_plans()] if p.code in codes}

    def to_m(g: Any) -> Any:
        return shapely.transform(g, lambda c: np.column_stack(fwd.transform(c[:, 0], c[:, 1])))

    polys = {c: to_m(counties[c][1]) for c in plans}
    minx, miny, maxx, maxy = shapely.union_all(list(polys.values())).bounds
    area_km2 = sum(p.area for p in polys.values()) / 1e6
    res = res or float(max(20.0, round(np.sqrt(area_km2 * 1e6 / 6e6) / 5) * 5))
    width, height = int(np.ceil((maxx - minx) / res)), int(np.ceil((maxy - miny) / res))
    transform = from_origin(np.floor(minx), np.ceil(maxy), res, res)
    cols, rows = np.meshgrid(np.arange(width), np.arange(height))
    xs = transform.c + (cols + 0.5) * res
    ys = transform.f - (rows + 0.5) * res
    elev = np.full((height, width), np.nan)
    urban = np.zeros((height, width), dtype=bool)
    for code, plan in plans.items():
        inside = _rasterize([polys[code]], (height, width), transform)
        cty = setup_county(plan, counties[code][0], counties[code][1], SEED, fwd)
        x, y = xs[inside], ys[inside]
        elev[inside] = cty.elevation(x, y)
        rho, _ = cty.rho(x, y)
        urban[inside] = rho < 1.0
    inside = np.isfinite(elev)
    e = np.where(inside, elev, 0.0)
    bl = city.barrier_lines
    rivers = [to_m(g) for g, k in zip(bl["geom"], bl["kind"], strict=True) if k == "river"]
    river = _rasterize(rivers, (height, width), transform)
    dist = ndimage.distance_transform_edt(~river) * res if river.any() else np.full(e.shape, 1e9)
    # Flood: a water surface falling away from the channel, cut by the relief.
    depth = 3.0 * np.exp(-dist / 300.0) + 0.8 * np.exp(-dist / 900.0) - 0.9 - 30.0 * e
    depth = np.where(river, depth + 1.5, depth)
    flood = np.where(inside & (depth >= 0.05), np.round(depth, 2), FLOAT_NODATA)
    # Landslide susceptibility: normalised slope, damped on the flat valley floors.
    gy, gx = np.gradient(ndimage.gaussian_filter(e, 1.0), res)
    slope = np.hypot(gx, gy)
    ref = float(np.percentile(slope[inside], 99)) if inside.any() else 1.0
    sus = np.clip(slope / max(ref, 1e-12), 0, 1) ** 0.8 * np.clip(e / 0.08, 0, 1)
    slide = np.where(inside, np.round(sus, 2), FLOAT_NODATA)
    # Forest-fire danger of the day: forests and hills high, towns low, a weather field on top.
    forest = _rasterize(
        [to_m(g) for g in city.forest_patches.get("geom", [])], (height, width), transform
    )
    rng = np.random.default_rng([SEED, 9])
    weather = ndimage.gaussian_filter(rng.normal(size=e.shape), max(4.0, 1500.0 / res))
    weather = (weather - weather.mean()) / (weather.std() or 1.0)
    index = 22 + 38 * forest + 35 * np.clip(e * 2.5, 0, 1) + 12 * weather - 18 * urban
    fire = np.where(inside, np.clip(np.round(index), 0, 100), UINT8_NODATA).astype(np.uint8)
    return {
        "crs": f"EPSG:{epsg}",
        "transform": transform,
        "res": res,
        "flood_depth_p50": flood.astype(np.float32),
        "landslide_susceptibility": slide.astype(np.float32),
        "forest_fire_danger": fire,
        "admin_code": next(iter(plans)) if len(plans) == 1 else "430200",
    }


def load_hazard_layers(conn: psycopg.Connection[Any], city: DemoCity) -> int:
    """Paint the demo's hazard layers and register them in the caller's transaction."""
    conn.execute("DELETE FROM hazard_layer WHERE key = ANY(%s)", (list(DEMO_LAYERS),))
    if not _full_counties(city):
        return 0
    grids = paint(city)
    crs, transform, admin = grids["crs"], grids["transform"], grids["admin_code"]
    day = AS_OF.date().isoformat()
    layers = (
        (
            LayerMeta(
                "flood_depth_p50",
                "洪水淹没水深（50年一遇）",
                "flood",
                "hazard",
                "flood_depth",
                unit="m",
                scenario="50年一遇",
                return_period=50,
                year=AS_OF.year,
                producer="演示数据",
                admin_code=admin,
            ),
            FLOAT_NODATA,
        ),
        (
            LayerMeta(
                "landslide_susceptibility",
                "滑坡易发性",
                "landslide",
                "hazard",
                "landslide_susceptibility",
                unit="指数",
                year=AS_OF.year,
                producer="演示数据",
                admin_code=admin,
            ),
            FLOAT_NODATA,
        ),
        (
            LayerMeta(
                "forest_fire_danger",
                f"森林火险气象等级（{day}）",
                "forest_fire",
                "hazard",
                "forest_fire_danger_5",
                unit="指数",
                scenario=day,
                year=AS_OF.year,
                producer="演示数据",
                admin_code=admin,
            ),
            float(UINT8_NODATA),
        ),
    )
    for meta, nodata in layers:
        cog = cog_from_array(grids[meta.key], transform, crs, nodata)
        register_raster(conn, meta, cog, source="demo", replace=True)
    register_vector(
        conn,
        LayerMeta(
            "geohazard_risk_zones",
            "地质灾害风险区",
            "geohazard",
            "risk",
            "geohazard_risk_zone",
            year=AS_OF.year,
            producer="演示数据",
            admin_code=admin,
        ),
        tile_layer="geohazard_zones",
        class_property="risk_level",
        source="demo",
        replace=True,
    )
    return len(DEMO_LAYERS)
