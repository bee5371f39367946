"""The hazard-layer registry as the service reads it: layers, their schemes and rasters.

A layer is addressed by its key only (BAD_INPUTS A10): the key is checked against a pattern,
looked up in ``hazard_layer``, and the raster behind it is the COG stored with it; no path or
URL from a request ever reaches GDAL. A layer is visible to a caller whose area overlaps the
layer's area (a township user sees its county's flood map; another county sees nothing: 404).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gis_service.domain.schemes import list_schemes
from gis_service.domain.scope import Principal
from gis_service.errors import FieldProblem, NotFound

KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@dataclass(frozen=True)
class SchemeClass:
    """One class of a layer's scheme; a value belongs to the last class whose ``min`` it reaches."""

    key: str
    zh_name: str
    en_name: str
    color: str
    min: float | None
    max: float | None

    def rgba(self) -> tuple[int, int, int, int]:
        """The class colour as an opaque RGBA tuple."""
        c = self.color.lstrip("#")
        return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16), 255

    def as_dict(self) -> dict[str, Any]:
        """JSON form (legend entry)."""
        return {
            "key": self.key,
            "zh_name": self.zh_name,
            "en_name": self.en_name,
            "color": self.color,
            "min": self.min,
            "max": self.max,
        }


@dataclass(frozen=True)
class Scheme:
    """A classification scheme (classes in display order)."""

    key: str
    title_zh: str
    classes: tuple[SchemeClass, ...]

    def intervals(self) -> list[tuple[float, float, SchemeClass]]:
        """``[lo, hi)`` per graded class, ascending: each class ends where the next begins."""
        graded = sorted((c for c in self.classes if c.min is not None), key=lambda c: c.min or 0)
        out = []
        for i, c in enumerate(graded):
            assert c.min is not None
            nxt = graded[i + 1].min if i + 1 < len(graded) else None
            hi = nxt if nxt is not None else (c.max + 1 if c.max is not None else math.inf)
            out.append((c.min, float(hi), c))
        return out

    def classify(self, value: float | None) -> SchemeClass | None:
        """The class of one value (None below the first class or for no value)."""
        if value is None or not math.isfinite(value):
            return None
        for lo, hi, c in self.intervals():
            if lo <= value < hi:
                return c
        return None

    def bound_of(self, class_key: str) -> float | None:
        """Lower bound of a class (for "this class and worse" thresholds)."""
        for lo, _, c in self.intervals():
            if c.key == class_key:
                return lo
        return None

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "key": self.key,
            "title_zh": self.title_zh,
            "classes": [c.as_dict() for c in self.classes],
        }


@dataclass(frozen=True)
class RasterRef:
    """The COG behind a raster layer."""

    sha256: str
    crs: str
    dtype: str
    nodata: float | None
    width: int
    height: int
    res_x: float
    res_y: float
    bounds: tuple[float, float, float, float]
    min_value: float | None
    max_value: float | None


@dataclass(frozen=True)
class HazardLayer:
    """One registered hazard layer with its scheme (and raster, for raster layers)."""

    id: int
    key: str
    title: str
    hazard_type: str
    layer_kind: str
    data_type: str
    scenario: str | None
    return_period: int | None
    unit: str | None
    year: int | None
    admin_code: str | None
    tile_layer: str | None
    class_property: str | None
    scheme: Scheme | None
    raster: RasterRef | None

    def bounds(self) -> tuple[float, float, float, float] | None:
        """Lon/lat bounds of a raster layer."""
        return self.raster.bounds if self.raster else None


def visible_sql(column: str, scope: str | None) -> str:
    """SQL: the layer's area overlaps the caller's (``:scope`` bound when ``scope`` is set)."""
    if scope is None:
        return "true"
    return (
        f"({column} IS NULL"
        f" OR {column} IN (SELECT a.code FROM admin_division a"
        " WHERE a.ancestors @> ARRAY[CAST(:scope AS text)])"
        f" OR {column} = ANY(CAST((SELECT a.ancestors FROM admin_division a"
        " WHERE a.code = :scope) AS text[])))"
    )


_LAYER_SQL = """
SELECT l.id, l.key, l.title, l.hazard_type, l.layer_kind, l.data_type, l.scenario,
       l.return_period, l.unit, l.year, l.admin_code, l.tile_layer, l.class_property,
       l.scheme_key, r.sha256, r.crs, r.dtype, r.nodata, r.width, r.height, r.res_x, r.res_y,
       r.west, r.south, r.east, r.north, r.min_value, r.max_value
FROM hazard_layer l LEFT JOIN hazard_raster r ON r.layer_id = l.id
WHERE {where} AND {visible}
ORDER BY l.hazard_type, l.key"""


async def _schemes(conn: AsyncConnection) -> dict[str, Scheme]:
    out = {}
    for s in await list_schemes(conn):
        classes = tuple(
            SchemeClass(c["key"], c["zh_name"], c["en_name"], c["color"], c["min"], c["max"])
            for c in s["classes"]
        )
        out[s["key"]] = Scheme(s["key"], s["title_zh"], classes)
    return out


def _layer(row: Any, schemes: dict[str, Scheme]) -> HazardLayer:
    m = row._mapping
    raster = None
    if m["sha256"] is not None:
        raster = RasterRef(
            sha256=m["sha256"],
            crs=m["crs"],
            dtype=m["dtype"],
            nodata=m["nodata"],
            width=m["width"],
            height=m["height"],
            res_x=m["res_x"],
            res_y=m["res_y"],
            bounds=(m["west"], m["south"], m["east"], m["north"]),
            min_value=m["min_value"],
            max_value=m["max_value"],
        )
    return HazardLayer(
        id=int(m["id"]),
        key=m["key"],
        title=m["title"],
        hazard_type=m["hazard_type"],
        layer_kind=m["layer_kind"],
        data_type=m["data_type"],
        scenario=m["scenario"],
        return_period=m["return_period"],
        unit=m["unit"],
        year=m["year"],
        admin_code=m["admin_code"],
        tile_layer=m["tile_layer"],
        class_property=m["class_property"],
        scheme=schemes.get(m["scheme_key"] or ""),
        raster=raster,
    )


def _params(principal: Principal) -> dict[str, Any]:
    return {"scope": principal.scope_code} if principal.scope_code else {}


async def list_layers(conn: AsyncConnection, principal: Principal) -> list[HazardLayer]:
    """Every hazard layer the caller may see."""
    sql = _LAYER_SQL.format(where="true", visible=visible_sql("l.admin_code", principal.scope_code))
    rows = (await conn.execute(text(sql), _params(principal))).all()
    schemes = await _schemes(conn)
    return [_layer(r, schemes) for r in rows]


def not_found(key: str, field: str = "path.layer") -> NotFound:
    """The one answer for unknown, malformed and out-of-scope layer keys."""
    shown = key[:64]
    return NotFound(
        detail=f"hazard layer {shown} not found",
        detail_zh=f"致灾图层 {shown} 不存在",
        fields=[FieldProblem(field, "unknown layer")],
    )


async def get_layer(
    conn: AsyncConnection,
    principal: Principal,
    key: str,
    *,
    raster: bool = False,
    field: str = "path.layer",
) -> HazardLayer:
    """One visible layer by key (a raster layer when ``raster``), else 404."""
    if not KEY_PATTERN.match(key):
        raise not_found(key, field)
    sql = _LAYER_SQL.format(
        where="l.key = :key", visible=visible_sql("l.admin_code", principal.scope_code)
    )
    row = (await conn.execute(text(sql), {"key": key, **_params(principal)})).first()
    if row is None:
        raise not_found(key, field)
    layer = _layer(row, await _schemes(conn))
    if raster and layer.raster is None:
        raise not_found(key, field)
    return layer


async def raster_bytes(conn: AsyncConnection, sha256: str) -> bytes | None:
    """The stored COG with this digest."""
    value = (
        await conn.execute(
            text("SELECT cog FROM hazard_raster WHERE sha256 = :s LIMIT 1"), {"s": sha256}
        )
    ).scalar_one_or_none()
    return None if value is None else bytes(value)


async def zones(
    conn: AsyncConnection,
    principal: Principal,
    by: str,
    admin: str | None,
    bounds: tuple[float, float, float, float],
) -> list[dict[str, Any]]:
    """Current grids or villages meeting ``bounds`` inside the caller's area (and ``admin``)."""
    import shapely

    from gis_service.impact.scoping import code_scope_sql

    scope = principal.scope_code
    params: dict[str, Any] = {"w": bounds[0], "s": bounds[1], "e": bounds[2], "n": bounds[3]}
    if scope:
        params["scope"] = scope
    if admin is not None:
        ok = (
            await conn.execute(
                text(
                    "SELECT 1 FROM admin_division a WHERE a.code = :admin"
                    f" AND {code_scope_sql('a.code', scope)}"
                ),
                {**params, "admin": admin},
            )
        ).first()
        if ok is None:
            raise NotFound(
                detail=f"admin unit {admin} not found",
                detail_zh=f"区划 {admin} 不存在",
                fields=[FieldProblem("query.admin", "not found")],
            )
        params["admin"] = admin
    code_col = "g.community_code" if by == "grid" else "g.code"
    within = (
        f" AND {code_col} IN (SELECT u.code FROM admin_division u"
        " WHERE u.ancestors @> ARRAY[CAST(:admin AS text)])"
        if admin
        else ""
    )
    if by == "grid":
        sql = (
            "SELECT g.grid_code AS code, g.name, g.community_code AS village_code,"
            " ST_AsBinary(g.geom) AS wkb, ST_Area(g.geom::geography) / 1e6 AS km2 FROM grid g"
            " WHERE g.valid_to IS NULL AND g.geom && ST_MakeEnvelope(:w, :s, :e, :n, 4490)"
            f" AND {code_scope_sql('g.community_code', scope)}{within} ORDER BY g.grid_code"
        )
    else:
        sql = (
            "SELECT g.code, g.name, g.code AS village_code, ST_AsBinary(g.boundary) AS wkb,"
            " ST_Area(g.boundary::geography) / 1e6 AS km2 FROM admin_division g"
            " WHERE g.level = 'village' AND g.valid_to IS NULL AND g.boundary IS NOT NULL"
            " AND g.boundary && ST_MakeEnvelope(:w, :s, :e, :n, 4490)"
            f" AND {code_scope_sql('g.code', scope)}{within} ORDER BY g.code"
        )
    return [
        {
            "code": r.code,
            "name": r.name,
            "village_code": r.village_code,
            "area_km2": round(float(r.km2), 6),
            "geom": shapely.from_wkb(bytes(r.wkb)),
        }
        for r in await conn.execute(text(sql), params)
    ]


async def zone_features(
    conn: AsyncConnection, principal: Principal, key: str, *, limit: int = 5000
) -> dict[str, Any]:
    """The polygons of a vector hazard layer kept in ``hazard_zone``, as GeoJSON."""
    layer = await get_layer(conn, principal, key)
    if layer.data_type != "vector" or layer.tile_layer is not None:
        raise not_found(key)
    rows = await conn.execute(
        text(
            "SELECT z.id, z.class_key, z.value, z.name,"
            " ST_AsGeoJSON(ST_SimplifyPreserveTopology(z.geom, 0.00002), 6, 0)::json AS g"
            " FROM hazard_zone z WHERE z.layer_id = :l ORDER BY z.id LIMIT :n"
        ),
        {"l": layer.id, "n": limit},
    )
    colours = {c.key: c.color for c in layer.scheme.classes} if layer.scheme else {}
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": int(r.id),
                "geometry": r.g,
                "properties": {
                    "class_key": r.class_key,
                    "value": r.value,
                    "name": r.name,
                    "color": colours.get(r.class_key or ""),
                },
            }
            for r in rows
        ],
    }
