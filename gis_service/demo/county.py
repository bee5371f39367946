"""The working state of one county while it is generated, and how that state is set up.

A county is generated in a local Gauss-Krüger plane (metres). Its state holds the outline, the
urban centres (which define the distance ratio ``rho`` that every stage uses to tell city from
countryside), the relief (Gaussian hills), the barrier lines drawn so far and the township
seats; each later stage reads it and adds to it, in a fixed order, from one random generator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon

from gis_service.demo import names as nm
from gis_service.demo.geometry import Arr
from gis_service.demo.plans import Plan

__all__ = ["County", "setup_county"]


@dataclass
class County:
    """Working state of one county while it is generated (metric coordinates)."""

    plan: Plan
    name: str
    poly: Any
    inner: Any
    rng: np.random.Generator
    to_m: Callable[[Arr, Arr], tuple[Arr, Arr]]
    centres: Arr = field(default_factory=lambda: np.zeros((0, 7)))
    hills: Arr = field(default_factory=lambda: np.zeros((0, 4)))
    lines: list[tuple[str, str | None, Any]] = field(default_factory=list)
    river_mask: Any = None
    b: dict[str, Arr] = field(default_factory=dict)
    blocks: Arr = field(default_factory=lambda: np.zeros(0, dtype=object))
    block_typ: Arr = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    road_tree: Any = None
    rural_nodes: Arr = field(default_factory=lambda: np.zeros((0, 2)))
    major_roads: list[Any] = field(default_factory=list)
    township_seeds: list[tuple[str, str, float, float]] = field(default_factory=list)
    urban_zone: Any = None
    n_urban_lines: int = 0

    def rho(self, x: Arr, y: Arr) -> tuple[Arr, Arr]:
        """Distance ratio to the nearest urban centre's (star-shaped) outline, and its index."""
        c = self.centres
        dx = x[:, None] - c[None, :, 0]
        dy = y[:, None] - c[None, :, 1]
        phi = np.arctan2(dy, dx)
        reff = c[None, :, 2] * (
            1.0 + 0.2 * np.sin(2 * phi + c[None, :, 4]) + 0.12 * np.sin(3 * phi + c[None, :, 5])
        )
        r = np.hypot(dx, dy) / reff
        k = r.argmin(1)
        return r[np.arange(len(x)), k], k

    def elevation(self, x: Arr, y: Arr) -> Arr:
        """Relative relief 0..1: a sum of Gaussian hills, flattened near the urban centres."""
        out = np.zeros(len(x))
        h = self.hills
        step = 200_000
        for s in range(0, len(x), step):
            xs, ys = x[s : s + step, None], y[s : s + step, None]
            d2 = (xs - h[None, :, 0]) ** 2 + (ys - h[None, :, 1]) ** 2
            out[s : s + step] = (h[None, :, 3] * np.exp(-d2 / (2 * h[None, :, 2] ** 2))).sum(1)
        rho, _ = self.rho(x, y)
        result: Arr = np.clip(out, 0, 1) * np.clip((rho - 0.9) / 1.2, 0, 1)
        return result


def setup_county(plan: Plan, name: str, outline: MultiPolygon, seed: int, to_m: Any) -> County:
    """Project the outline, place the urban centres, township seats and hills of a county.

    The county's random generator is seeded from the global seed and the county code, so its
    draws do not depend on which counties were generated before it.

    Args:
        plan: What the county should contain.
        name: Its Chinese name.
        outline: Its outline in lon/lat.
        seed: The global seed.
        to_m: A pyproj transformer from lon/lat to the Gauss-Krüger plane.

    Returns:
        The county state, with no lines or buildings yet.
    """
    rng = np.random.default_rng([seed, int(plan.code)])

    def fwd(x: Arr, y: Arr) -> tuple[Arr, Arr]:
        a, b = to_m.transform(x, y)
        return np.asarray(a), np.asarray(b)

    poly = shapely.transform(outline, lambda c: np.column_stack(fwd(c[:, 0], c[:, 1])))
    poly = shapely.make_valid(poly)
    cty = County(plan, name, poly, poly.buffer(-3.0), rng, fwd)
    shapely.prepare(cty.inner)
    cs = []
    for c in plan.centres:
        x, y = fwd(np.array([c.lon]), np.array([c.lat]))
        kind = 1.0 if c.kind == "town" else 0.0
        cs.append([x[0], y[0], c.radius, np.deg2rad(c.angle), *rng.uniform(0, 6.28, 2), kind])
    cty.centres = np.array(cs)
    _seed_townships(cty)
    zones = []
    phi = np.linspace(0, 2 * np.pi, 96, endpoint=False)
    for c in cty.centres:
        reff = 0.97 * c[2] * (1.0 + 0.2 * np.sin(2 * phi + c[4]) + 0.12 * np.sin(3 * phi + c[5]))
        zones.append(
            Polygon(np.column_stack([c[0] + reff * np.cos(phi), c[1] + reff * np.sin(phi)]))
        )
    cty.urban_zone = shapely.union_all(zones)
    # Hills: Gaussian bumps placed in the county, fewer and lower close to the centres.
    minx, miny, maxx, maxy = poly.bounds
    area_km2 = poly.area / 1e6
    n_hills = max(6, int(area_km2 / 12 * plan.hilliness))
    hx = rng.uniform(minx, maxx, n_hills * 3)
    hy = rng.uniform(miny, maxy, n_hills * 3)
    rho, _ = cty.rho(hx, hy)
    keep = np.flatnonzero(rho > 1.3)[:n_hills]
    sig = rng.uniform(500, 1800, len(keep)) * (0.7 + 0.6 * plan.hilliness)
    hgt = rng.uniform(0.35, 0.9, len(keep)) * (0.6 + 0.5 * plan.hilliness)
    cty.hills = np.column_stack([hx[keep], hy[keep], sig, hgt])
    return cty


def _seed_townships(cty: County) -> None:
    """Place township seats: explicit for the quoted district, else around the seat + towns.

    Every town (镇) gets a small urban centre of its own, so its seat has a 镇区 with streets.
    """
    plan, rng = cty.plan, cty.rng
    seeds: list[tuple[str, str, float, float]] = []
    if plan.townships:
        for t in plan.townships:
            x, y = cty.to_m(np.array([t.lon]), np.array([t.lat]))
            seeds.append((t.name, t.kind, float(x[0]), float(y[0])))
        cty.township_seeds = seeds
        return
    taken: set[str] = set()
    main = cty.centres[0]
    sub_names = nm.place_names(rng, plan.n_subdistricts, urban=True, taken=taken)
    for i, nme in enumerate(sub_names):
        ang = 2 * np.pi * i / max(plan.n_subdistricts, 1) + rng.uniform(-0.3, 0.3)
        r = 0.0 if (i == 0 and plan.n_subdistricts >= 4) else main[2] * rng.uniform(0.35, 0.6)
        seeds.append(
            (nme + "街道", "subdistrict", main[0] + r * np.cos(ang), main[1] + r * np.sin(ang))
        )
    # Towns: farthest-point sampling of valley sites outside the main city.
    minx, miny, maxx, maxy = cty.poly.bounds
    step = 1500.0
    gx, gy = np.meshgrid(np.arange(minx, maxx, step), np.arange(miny, maxy, step))
    cx = gx.ravel() + rng.uniform(-0.4, 0.4, gx.size) * step
    cy = gy.ravel() + rng.uniform(-0.4, 0.4, gx.size) * step
    inside = shapely.contains_xy(cty.poly.buffer(-1500.0), cx, cy)
    rho, _ = cty.rho(cx, cy)
    ok = inside & (rho > 1.6)
    cand = np.column_stack([cx[ok], cy[ok]])
    chosen: list[int] = []
    if plan.n_subdistricts == 0 and len(cand):
        # The seat itself is a town (e.g. 渌口镇): its centre is the county's urban centre.
        town_names = nm.place_names(rng, plan.n_towns, urban=False, taken=taken)
        seeds.append((town_names[0] + "镇", "town", float(main[0]), float(main[1])))
        n_more, town_names = plan.n_towns - 1, town_names[1:]
    else:
        n_more = plan.n_towns
        town_names = nm.place_names(rng, plan.n_towns, urban=False, taken=taken)
    d = np.hypot(cand[:, 0] - main[0], cand[:, 1] - main[1]) if len(cand) else np.zeros(0)
    for _ in range(min(n_more, len(cand))):
        i = int(np.argmax(d))
        chosen.append(i)
        d = np.minimum(d, np.hypot(cand[:, 0] - cand[i, 0], cand[:, 1] - cand[i, 1]))
    new_centres = []
    for nme, i in zip(town_names, chosen, strict=False):
        x, y = cand[i]
        seeds.append((nme + "镇", "town", float(x), float(y)))
        r = rng.uniform(380, 700)
        new_centres.append([x, y, r, rng.uniform(0, np.pi), *rng.uniform(0, 6.28, 2), 1.0])
    if new_centres:
        cty.centres = np.vstack([cty.centres, np.array(new_centres)])
    cty.township_seeds = seeds
