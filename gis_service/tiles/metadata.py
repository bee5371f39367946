"""TileJSON 3.0, the layer catalogue and MapLibre styles: pure builders over the registry.

The database supplies only two facts: the bounds of the caller's area and the colours of
the classification schemes (``classification_scheme``/``classification_class``), so the
map, its legend and the printed 通报 use one palette.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from gis_service.registry import LayerSpec
from gis_service.registry.model import VIEWS, View

BBox = tuple[float, float, float, float]
#: scheme key → [(class key, colour, Chinese name)] in display order.
Palette = dict[str, list[tuple[str, str, str]]]

WORLD: BBox = (-180.0, -85.051129, 180.0, 85.051129)

VIEW_TITLES: dict[View, str] = {
    "planner": "规划视图",
    "survey": "普查视图",
    "commander": "指挥视图",
}

BOUNDS_SQL = """
SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (
  SELECT ST_Extent(boundary) AS e FROM admin_division
  WHERE CASE WHEN %(scope)s::text IS NULL THEN level = 'county' ELSE code = %(scope)s::text END
) s
"""

PALETTE_SQL = """
SELECT s.key, c.key, c.color, c.zh_name
FROM classification_class c JOIN classification_scheme s ON s.id = c.scheme_id
WHERE s.version = (SELECT max(v.version) FROM classification_scheme v WHERE v.key = s.key)
ORDER BY s.key, c.ord
"""


def palette_from_rows(rows: Iterable[Sequence[Any]]) -> Palette:
    """Group (scheme, class, colour, name) rows by scheme."""
    out: Palette = {}
    for scheme, key, color, name in rows:
        out.setdefault(str(scheme), []).append((str(key), str(color), str(name)))
    return out


def tiles_url(base: str, names: Sequence[str]) -> str:
    """The XYZ template of one or several layers."""
    return f"{base.rstrip('/')}/tiles/{','.join(names)}/{{z}}/{{x}}/{{y}}.mvt"


def vector_layer(spec: LayerSpec) -> dict[str, Any]:
    """A TileJSON ``vector_layers`` entry (fields: name → Chinese label and type)."""
    fields = {p.column: f"{p.label} ({p.type})" for p in spec.properties}
    if spec.aggregate is not None:
        fields[spec.aggregate.count_property] = f"{spec.aggregate.count_label} (integer)"
    return {
        "id": spec.name,
        "description": spec.title,
        "minzoom": spec.minzoom,
        "maxzoom": spec.maxzoom,
        "fields": fields,
    }


def tilejson(layers: Sequence[LayerSpec], base: str, bounds: BBox | None) -> dict[str, Any]:
    """TileJSON 3.0.0 for one or several layers (composite tiles)."""
    box = bounds or WORLD
    minzoom = min(s.minzoom for s in layers)
    maxzoom = max(s.maxzoom for s in layers)
    center_zoom = max(minzoom, min(12, maxzoom))
    return {
        "tilejson": "3.0.0",
        "name": "，".join(s.title for s in layers),
        "description": "; ".join(s.title_en for s in layers),
        "version": "1.0.0",
        "attribution": layers[0].attribution,
        "scheme": "xyz",
        "tiles": [tiles_url(base, [s.name for s in layers])],
        "minzoom": minzoom,
        "maxzoom": maxzoom,
        "bounds": [round(v, 6) for v in box],
        "center": [round((box[0] + box[2]) / 2, 6), round((box[1] + box[3]) / 2, 6), center_zoom],
        "vector_layers": [vector_layer(s) for s in layers],
    }


def _aggregated_below(spec: LayerSpec) -> int | None:
    """The first zoom at which an aggregated point layer shows single features."""
    if spec.aggregate is None:
        return None
    return next((r.minzoom for r in spec.zoom_rules if not r.aggregate_px), spec.maxzoom + 1)


def catalogue(layers: Iterable[LayerSpec], base: str) -> list[dict[str, Any]]:
    """``GET /layers``: what the web map may show, with labels, zooms, URLs and style hints."""
    root = base.rstrip("/")
    return [
        {
            "name": s.name,
            "title": s.title,
            "title_en": s.title_en,
            "description": s.description,
            "geometry_type": s.geometry_type,
            "minzoom": s.minzoom,
            "maxzoom": s.maxzoom,
            "properties": [
                {"name": p.column, "label": p.label, "type": p.type} for p in s.properties
            ],
            "aggregated_below": _aggregated_below(s),
            "tilejson": f"{root}/tiles/{s.name}.json",
            "tiles": tiles_url(root, [s.name]),
            "style": {
                "kind": s.style.kind,
                "color": s.style.color,
                "color_by": s.style.color_by,
                "scheme": s.style.scheme,
                "views": list(s.style.views),
            },
        }
        for s in layers
    ]


def _color(spec: LayerSpec, palette: Palette) -> Any:
    style = spec.style
    if style.color_by is None or style.scheme is None or not palette.get(style.scheme):
        return style.color
    expr: list[Any] = ["match", ["to-string", ["get", style.color_by]]]
    for key, color, _ in palette[style.scheme]:
        expr.extend([key, color])
    expr.append(style.color)
    return expr


def _style_layer(spec: LayerSpec, palette: Palette, source: str) -> dict[str, Any]:
    style = spec.style
    color = _color(spec, palette)
    base: dict[str, Any] = {
        "id": spec.name,
        "source": source,
        "source-layer": spec.name,
        "minzoom": spec.minzoom,
        "maxzoom": spec.maxzoom + 1,
        "metadata": {"title": spec.title, "scheme": style.scheme, "label": style.label_column},
    }
    if style.kind == "circle":
        radius: Any = style.radius
        if spec.aggregate is not None:
            count = ["coalesce", ["get", spec.aggregate.count_property], 1]
            radius = ["interpolate", ["linear"], count, 1, style.radius, 100, style.radius * 3]
        paint: dict[str, Any] = {
            "circle-color": color,
            "circle-radius": radius,
            "circle-opacity": style.opacity,
        }
        if style.outline_color:
            paint["circle-stroke-color"] = style.outline_color
            paint["circle-stroke-width"] = 1
        return {**base, "type": "circle", "paint": paint}
    if style.kind == "symbol":
        # A label-point layer: one point per feature. The text itself (font stack, glyphs,
        # CJK rendering) is the client's choice; the style names the field in metadata.label.
        return {**base, "type": "symbol", "layout": {"symbol-placement": "point"}}
    if style.kind == "fill":
        paint = {"fill-color": color, "fill-opacity": style.opacity}
        if style.outline_color:
            paint["fill-outline-color"] = style.outline_color
        return {**base, "type": "fill", "paint": paint}
    paint = {"line-color": color, "line-width": style.width, "line-opacity": style.opacity}
    return {**base, "type": "line", "paint": paint}


def style(
    view: View, layers: Iterable[LayerSpec], palette: Palette, base: str, bounds: BBox | None
) -> dict[str, Any]:
    """A complete MapLibre style (spec v8) for one user view, one composite vector source."""
    if view not in VIEWS:
        raise ValueError(view)
    chosen = sorted((s for s in layers if view in s.style.views), key=lambda s: s.style.order)
    box = bounds or WORLD
    source = "gis"
    return {
        "version": 8,
        "name": VIEW_TITLES[view],
        "metadata": {"gis-service:view": view},
        "center": [round((box[0] + box[2]) / 2, 6), round((box[1] + box[3]) / 2, 6)],
        "zoom": 11,
        "sources": {
            source: {
                "type": "vector",
                "tiles": [tiles_url(base, [s.name for s in chosen])],
                "minzoom": min(s.minzoom for s in chosen),
                "maxzoom": max(s.maxzoom for s in chosen),
                "bounds": [round(v, 6) for v in box],
                "attribution": chosen[0].attribution,
            }
        },
        "layers": [
            {"id": "background", "type": "background", "paint": {"background-color": "#f4f1ea"}},
            *(_style_layer(s, palette, source) for s in chosen),
        ],
    }
