"""The 湘江, the trunk railways, local streams and the 湘江 levee: lines nothing is built on.

The 湘江 and the railways cross several counties, so they are drawn once for the whole city and
then clipped per county; the union of their buffers is the county's river mask, which blocks,
buildings and village sites avoid.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import shapely
from shapely.geometry import LineString, Polygon

from gis_service.demo import names as nm
from gis_service.demo.county import County
from gis_service.demo.geometry import Arr, smooth_path

__all__ = ["trunk_lines", "water_and_rail"]


def trunk_lines(
    to_m: Callable[[Arr, Arr], tuple[Arr, Arr]], counties: dict[str, Any]
) -> dict[str, LineString]:
    """The 湘江 and the two trunk railways, in metres, shared by all counties.

    The 湘江 follows the county boundaries between 天元区 (west bank) and 石峰/荷塘/芦淞
    (east bank) — the outlines were drawn on its median — and is extended south through 渌口 and
    north-west towards 湘潭 with hand-placed control points. Rails follow hand-placed points
    through 株洲站 and 田心 (京广) and east to 醴陵 (沪昆).
    """
    rng = np.random.default_rng(11)

    def m(pts: list[tuple[float, float]]) -> Arr:
        a = np.asarray(pts, dtype=float)
        x, y = to_m(a[:, 0], a[:, 1])
        return np.column_stack([x, y])

    tianyuan = counties["430211"]
    east = shapely.union_all([counties[c] for c in ("430202", "430203", "430204")])
    shared = shapely.line_merge(shapely.intersection(tianyuan.boundary, east.buffer(200.0)))
    parts = sorted(shapely.get_parts(shared), key=lambda g: -g.length)
    core = np.asarray(parts[0].coords) if parts else m([(113.14, 27.80), (113.05, 27.856)])
    if core[0, 1] > core[-1, 1]:
        core = core[::-1]  # south to north
    south = m(
        [
            (113.02, 27.25),
            (113.07, 27.38),
            (113.10, 27.52),
            (113.12, 27.62),
            (113.142, 27.70),
            (113.143, 27.745),
        ]
    )
    north = m([(112.99, 27.866), (112.93, 27.875)])
    pts = np.vstack([south, core[:: max(1, len(core) // 40)], north])
    xiang = smooth_path(pts, rng, amp=60.0, step=150.0)
    jingguang = smooth_path(
        m(
            [
                (113.16, 27.50),
                (113.152, 27.70),
                (113.146, 27.79),
                (113.148, 27.835),
                (113.156, 27.872),
                (113.162, 27.905),
                (113.150, 27.950),
                (113.120, 28.000),
                (113.090, 28.060),
            ]
        ),
        rng,
        amp=30.0,
        step=120.0,
    )
    hukun = smooth_path(
        m(
            [
                (113.148, 27.835),
                (113.20, 27.815),
                (113.30, 27.765),
                (113.40, 27.705),
                (113.49, 27.655),
                (113.60, 27.625),
                (113.78, 27.62),
            ]
        ),
        rng,
        amp=30.0,
        step=120.0,
    )
    return {"湘江": xiang, "京广铁路": jingguang, "沪昆铁路": hukun}


def water_and_rail(cty: County, city: dict[str, LineString]) -> None:
    """Clip the shared lines to the county, add local streams and the 湘江 levee."""
    rng = cty.rng
    masks = []
    for nme, line in city.items():
        clipped = shapely.intersection(line, cty.poly.buffer(400.0))
        if clipped.is_empty:
            continue
        if nme == "湘江":
            inside = shapely.intersection(line, cty.poly)
            if not inside.is_empty and inside.length > 50:
                cty.lines.append(("river", nme, inside))
            masks.append(line.buffer(260.0))
            levee = shapely.intersection(line.buffer(300.0).boundary, cty.inner)
            if not levee.is_empty and levee.length > 200:
                cty.lines.append(("wall", "湘江防洪堤", levee))
        else:
            inside = shapely.intersection(line, cty.poly)
            if not inside.is_empty:
                cty.lines.append(("rail", nme, inside))
                masks.append(line.buffer(22.0))
    # Streams: from one side of the county to another, meandering.
    stream_names = list(cty.plan.streams) or [
        n + "河" for n in nm.place_names(rng, 2, urban=False, taken=set())
    ]
    ring = cty.poly.buffer(-200.0)
    ring = max(shapely.get_parts(ring), key=lambda g: g.area).exterior
    for nme in stream_names:
        t0 = rng.uniform(0, 1)
        t1 = (t0 + rng.uniform(0.3, 0.6)) % 1.0
        a = ring.interpolate(t0, normalized=True)
        b = ring.interpolate(t1, normalized=True)
        mid = shapely.Point((a.x + b.x) / 2, (a.y + b.y) / 2)
        pts = np.array([[a.x, a.y], [mid.x, mid.y], [b.x, b.y]])
        line = smooth_path(pts, rng, amp=220.0, step=80.0)
        inside = shapely.intersection(line, cty.inner)
        if not inside.is_empty and inside.length > 500:
            cty.lines.append(("river", nme, inside))
            masks.append(inside.buffer(14.0))
    cty.river_mask = shapely.union_all(masks) if masks else Polygon()
    shapely.prepare(cty.river_mask)
