"""A deterministic synthetic city on the real outlines of 株洲市, for demos, tests and benchmarks.

Why synthetic: the bureau's real ledgers hold personal data and cannot leave its network, yet
the service must be shown, tested and load-tested on something that *looks* like its data at
every zoom — streets, blocks, clustered buildings, grids of ~400 households, enterprises by risk
colour, hazards, geological hazards, shelters. This module builds such a city in memory, with no
database and no I/O beyond the packaged county outlines.

How: each county is generated in a local Gauss-Krüger plane (metres), then converted to lon/lat
(EPSG:4490). Urban fabric comes from a warped quadrilateral lattice of arterial roads around each
urban centre; every superblock is subdivided bilinearly into blocks (the internal streets) and
filled with a lattice of rotated rectangles whose size and spacing depend on the block's
typology (residential compound, old town, urban village, industrial, public, commercial, park).
Rural fabric is a road graph (a spanning tree of a Delaunay triangulation of village sites plus a
few loops) with houses strung along the roads near each village. Divisions are Voronoi cells
clipped to their parent; grids are a recursive household-weighted bisection of each community's
buildings, with the cut boxes intersected with the community, so they tile it exactly. The
households of each grid are set last, from the grid's actual membership in lon/lat, which is why
the totals the bureau quotes (232 grids, 92 800 households...) are reproduced exactly.

Everything is vectorised (numpy + shapely 2): the per-building work is array arithmetic and
``shapely.polygons``; Python loops run over counties, centres, townships and communities only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon

from gis_service.crs import gk_zone_epsg, gk_zone_transformer
from gis_service.demo import names as nm
from gis_service.demo.outline import load_counties, load_seats

__all__ = ["AS_OF", "DemoCity", "Table", "generate", "uscc"]

_LOG = logging.getLogger(__name__)

Arr = npt.NDArray[Any]
Column = npt.NDArray[Any] | list[Any]
Table = dict[str, Column]

CST = timezone(timedelta(hours=8))
#: The "today" of the demo: ledgers are dated relative to it so that results never depend on
#: the day the generator runs.
AS_OF = datetime(2026, 11, 22, 10, 0, tzinfo=CST)
HOUSEHOLDS_PER_GRID = 400
PERSONS_PER_HOUSEHOLD = 3.0

STRUCTURES = ("masonry", "reinforced_concrete", "steel", "wood", "other")
USES = ("residential", "commercial", "industrial", "public", "mixed", "other")
YEARS = ("pre1980", "1980s", "1990s", "2000s", "2010s", "2020s")
_S_MAS, _S_RC, _S_STEEL, _S_WOOD, _S_OTHER = range(5)
_U_RES, _U_COMM, _U_IND, _U_PUB, _U_MIX, _U_OTHER = range(6)

# Block typologies (urban) and rural building kinds.
T_COMPOUND, T_OLD, T_VILLAGE, T_IND, T_PUBLIC, T_COMM, T_GREEN = range(7)
T_RHOUSE, T_SHED, T_RIND, T_RPUB = range(7, 11)
_N_URBAN_T = 7

# Per urban typology: target block side (m), footprint length/width ranges, gaps, occupancy.
_BLOCK_LEN = np.array([250.0, 130.0, 85.0, 230.0, 190.0, 140.0, 380.0])
_L_RANGE = np.array([[40, 66], [24, 44], [10, 15], [40, 110], [30, 60], [30, 70], [8, 12.0]])
_W_RANGE = np.array([[12, 15], [10, 13], [8, 11], [20, 50], [12, 18], [18, 36], [6, 8.0]])
_GU_RANGE = np.array([[14, 22], [8, 14], [2, 5], [12, 25], [25, 45], [10, 18], [80, 120.0]])
_GV_RANGE = np.array([[24, 34], [10, 16], [3, 6], [12, 25], [25, 45], [10, 18], [80, 120.0]])
_OCCUPANCY = np.array([0.93, 0.85, 0.8, 0.8, 0.7, 0.85, 0.3])
# Typology weights by distance ratio to the centre: inner, middle, outer, and small towns.
_TYPO_W = np.array(
    [
        [30, 25, 8, 3, 12, 16, 6],
        [32, 12, 16, 15, 8, 8, 9],
        [14, 5, 34, 27, 5, 5, 10],
        [8, 30, 42, 8, 6, 6, 0],
    ],
    dtype=float,
)
_BLOCK_INSET = 10.0


# --------------------------------------------------------------------------------------------
# Output container


@dataclass
class DemoCity:
    """All tables of a generated city; each table maps column name → equal-length column.

    Geometry columns hold numpy object arrays of shapely geometries in lon/lat (EPSG:4490);
    ``person_key`` columns are row indexes into ``persons``.
    """

    divisions: Table = field(default_factory=dict)
    barrier_lines: Table = field(default_factory=dict)
    buildings: Table = field(default_factory=dict)
    grids: Table = field(default_factory=dict)
    persons: Table = field(default_factory=dict)
    grid_assignments: Table = field(default_factory=dict)
    enterprises: Table = field(default_factory=dict)
    safety_hazards: Table = field(default_factory=dict)
    geohazard_points: Table = field(default_factory=dict)
    geohazard_zones: Table = field(default_factory=dict)
    shelters: Table = field(default_factory=dict)
    evacuation_routes: Table = field(default_factory=dict)
    forest_patches: Table = field(default_factory=dict)
    fire_points: Table = field(default_factory=dict)
    facilities: Table = field(default_factory=dict)
    responsibilities: Table = field(default_factory=dict)

    def tables(self) -> dict[str, Table]:
        """Tables by name, in loading order (parents before children)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def summary(self) -> dict[str, int]:
        """Row counts per table plus the headline figures a bureau quotes."""
        out = {name: _nrows(t) for name, t in self.tables().items()}
        out["households"] = int(np.sum(self.buildings["households"]))
        out["population"] = int(np.sum(self.buildings["population"]))
        colours = np.asarray(self.enterprises["risk_level"])
        for c in ("red", "orange", "yellow", "blue"):
            out[f"enterprises_{c}"] = int(np.sum(colours == c))
        out["hazards_closed"] = int(np.sum(np.asarray(self.safety_hazards["status"]) == "closed"))
        return out


def _nrows(t: Table) -> int:
    return len(next(iter(t.values()))) if t else 0


# --------------------------------------------------------------------------------------------
# County plans


@dataclass(frozen=True)
class _Centre:
    lon: float
    lat: float
    radius: float
    angle: float
    kind: Literal["city", "town"] = "city"


@dataclass(frozen=True)
class _TownshipSeed:
    name: str
    kind: Literal["subdistrict", "town"]
    lon: float
    lat: float


@dataclass(frozen=True)
class _Targets:
    """Ledger sizes of a county: enterprises per colour, hazards, and the survey layers."""

    colours: tuple[int, int, int, int]  # red, orange, yellow, blue
    hazards: int
    hazards_closed: int
    geohazards: int
    zones: int
    shelters: int
    forests: int
    fires: int
    facilities: int


@dataclass(frozen=True)
class _Plan:
    code: str
    households: int
    urban_share: float
    hilliness: float
    centres: tuple[_Centre, ...]
    townships: tuple[_TownshipSeed, ...] = ()
    n_subdistricts: int = 0
    n_towns: int = 0
    industrial_spots: tuple[tuple[float, float, float, bool], ...] = ()
    sector_weights: tuple[float, float, float, float, float, float] = (6, 1, 1, 0, 82, 10)
    streams: tuple[str, ...] = ()
    targets: _Targets | None = None
    grids: int | None = None
    #: Outbuildings (杂屋, sheds) per rural house, and households per rural house.
    outbuildings: float = 0.95
    households_per_house: float = 0.95


_SECTORS = ("hazchem", "fireworks", "non_coal_mine", "coal_mine", "industry_trade", "other")

_SHIFENG = _Plan(
    code="430204",
    households=92_800,
    urban_share=0.85,
    hilliness=0.55,
    centres=(
        _Centre(113.110, 27.876, 3700.0, 18.0),
        _Centre(113.160, 27.899, 1500.0, -8.0),
        _Centre(113.158, 27.972, 600.0, 25.0, "town"),
    ),
    townships=(
        _TownshipSeed("清水塘街道", "subdistrict", 113.068, 27.886),
        _TownshipSeed("铜塘湾街道", "subdistrict", 113.094, 27.864),
        _TownshipSeed("响石岭街道", "subdistrict", 113.120, 27.868),
        _TownshipSeed("井墩街道", "subdistrict", 113.122, 27.897),
        _TownshipSeed("田心街道", "subdistrict", 113.160, 27.902),
        _TownshipSeed("龙头铺镇", "town", 113.158, 27.972),
    ),
    industrial_spots=((113.066, 27.889, 1900.0, True), (113.168, 27.905, 750.0, False)),
    sector_weights=(7, 1.5, 1, 0, 81, 9.5),
    streams=("霞湾港", "白石港"),
    targets=_Targets(
        colours=(1, 37, 229, 112),
        hazards=1056,
        hazards_closed=986,
        geohazards=42,
        zones=14,
        shelters=28,
        forests=18,
        fires=34,
        facilities=150,
    ),
    grids=232,
    outbuildings=0.25,
    households_per_house=1.3,
)


#: Counties other than 石峰区: households (≈ 2020 census population / 3), urban share,
#: hilliness, seat town radius (m) and street angle (°), 街道 and 镇 counts, sector weights
#: (hazchem, fireworks, non-coal mine, coal mine, industry & trade, other; 醴陵 makes fireworks).
_COUNTY_SPECS: dict[str, tuple[int, float, float, float, float, int, int, tuple[float, ...]]] = {
    "430202": (120_000, 0.88, 0.35, 4200, 15, 5, 1, (5, 1, 1, 0, 83, 10)),
    "430203": (107_000, 0.86, 0.45, 4000, 22, 6, 2, (5, 1, 1, 0, 78, 15)),
    "430211": (147_000, 0.85, 0.40, 5000, 5, 4, 3, (6, 1, 1, 0, 82, 10)),
    "430212": (90_000, 0.38, 0.55, 2200, 30, 0, 8, (5, 6, 4, 0, 75, 10)),
    "430223": (233_000, 0.42, 0.70, 3000, 10, 3, 14, (4, 5, 5, 4, 72, 10)),
    "430224": (183_000, 0.40, 0.80, 2600, 0, 3, 13, (3, 4, 6, 3, 74, 10)),
    "430225": (60_000, 0.36, 1.00, 1800, 20, 1, 9, (3, 2, 6, 1, 78, 10)),
    "430281": (317_000, 0.50, 0.60, 3800, 15, 5, 19, (4, 22, 4, 0, 60, 10)),
}


def _generic_plan(code: str) -> _Plan:
    hh, urban, hills, radius, angle, n_sub, n_towns, sectors = _COUNTY_SPECS[code]
    seat = load_seats()[code]
    w = tuple(float(v) for v in sectors)
    return _Plan(
        code=code,
        households=hh,
        urban_share=urban,
        hilliness=hills,
        centres=(_Centre(seat[0], seat[1], radius, angle),),
        n_subdistricts=n_sub,
        n_towns=n_towns,
        sector_weights=(w[0], w[1], w[2], w[3], w[4], w[5]),
    )


def _city_plans() -> list[_Plan]:
    return [
        _SHIFENG if code == _SHIFENG.code else _generic_plan(code)
        for code in sorted([*_COUNTY_SPECS, _SHIFENG.code])
    ]


def _scaled_targets(households: int, sectors_weight_industry: float) -> _Targets:
    """Ledger sizes for counties the bureau did not quote: proportional to 石峰区's."""
    f = households / _SHIFENG.households
    base = _SHIFENG.targets
    assert base is not None
    n_ent = max(40, round(379 * f * sectors_weight_industry))
    red = max(1, round(n_ent * 0.004))
    orange = round(n_ent * 0.098)
    yellow = round(n_ent * 0.604)
    blue = n_ent - red - orange - yellow
    hazards = round(n_ent * 1056 / 379)
    return _Targets(
        colours=(red, orange, yellow, blue),
        hazards=hazards,
        hazards_closed=round(hazards * 986 / 1056),
        geohazards=max(10, round(base.geohazards * f * 1.6)),
        zones=max(4, round(base.zones * f * 1.4)),
        shelters=max(10, round(base.shelters * f)),
        forests=max(8, round(base.forests * f * 1.8)),
        fires=max(10, round(base.fires * f * 1.5)),
        facilities=max(40, round(base.facilities * f)),
    )


# --------------------------------------------------------------------------------------------
# Small vectorised helpers


def _polygonal(geoms: Arr) -> Arr:
    """Keep only the polygonal parts of each geometry, as MultiPolygons (empty if none)."""
    geoms = np.asarray(geoms, dtype=object)
    parts, idx = shapely.get_parts(geoms, return_index=True)
    keep = (shapely.get_type_id(parts) == 3) & (shapely.area(parts) > 1e-3)
    out = np.full(len(geoms), MultiPolygon(), dtype=object)
    if keep.any():
        uniq, first = np.unique(idx[keep], return_index=True)
        mp = shapely.multipolygons(parts[keep], indices=np.searchsorted(uniq, idx[keep]))
        out[uniq] = mp
        del first
    return out


def _rects(cx: Arr, cy: Arr, ux: Arr, uy: Arr, length: Arr, width: Arr) -> Arr:  # noqa: PLR0917
    """Rotated rectangles (long side along unit vector u) as a polygon array."""
    hl, hw = length / 2.0, width / 2.0
    vx, vy = -uy, ux
    sx = np.array([1.0, -1.0, -1.0, 1.0, 1.0])
    sy = np.array([1.0, 1.0, -1.0, -1.0, 1.0])
    x = cx[:, None] + sx[None] * (hl * ux)[:, None] + sy[None] * (hw * vx)[:, None]
    y = cy[:, None] + sx[None] * (hl * uy)[:, None] + sy[None] * (hw * vy)[:, None]
    result: Arr = shapely.polygons(np.stack([x, y], axis=-1))
    return result


def _wobbly_lines(p0: Arr, p1: Arr, rng: np.random.Generator, amp: float, nseg: int = 6) -> Arr:
    """Straight segments bent by a smooth perpendicular offset (roads, rivers)."""
    t = np.linspace(0.0, 1.0, nseg + 1)
    d = p1 - p0
    length = np.hypot(d[:, 0], d[:, 1])
    nx, ny = -d[:, 1] / np.maximum(length, 1e-9), d[:, 0] / np.maximum(length, 1e-9)
    a1 = rng.normal(0.0, amp, len(p0))[:, None] * length[:, None]
    a2 = rng.normal(0.0, amp * 0.5, len(p0))[:, None] * length[:, None]
    off = a1 * np.sin(np.pi * t)[None] + a2 * np.sin(2 * np.pi * t)[None]
    x = p0[:, 0:1] + d[:, 0:1] * t[None] + nx[:, None] * off
    y = p0[:, 1:2] + d[:, 1:2] * t[None] + ny[:, None] * off
    result: Arr = shapely.linestrings(np.stack([x, y], axis=-1))
    return result


def _smooth_path(pts: Arr, rng: np.random.Generator, amp: float, step: float) -> LineString:
    """A densified polyline through control points with gentle meanders."""
    segs = np.hypot(*np.diff(pts, axis=0).T)
    s = np.r_[0.0, np.cumsum(segs)]
    n = max(int(s[-1] / step), 4)
    ss = np.linspace(0.0, s[-1], n)
    x = np.interp(ss, s, pts[:, 0])
    y = np.interp(ss, s, pts[:, 1])
    k = 9
    kernel = np.ones(k) / k
    xs = np.convolve(np.pad(x, k // 2, mode="edge"), kernel, mode="valid")
    ys = np.convolve(np.pad(y, k // 2, mode="edge"), kernel, mode="valid")
    dx, dy = np.gradient(xs), np.gradient(ys)
    norm = np.maximum(np.hypot(dx, dy), 1e-9)
    phase = rng.uniform(0, 2 * np.pi, 3)
    w = amp * (
        np.sin(ss / 2300.0 + phase[0])
        + 0.5 * np.sin(ss / 900.0 + phase[1])
        + 0.25 * np.sin(ss / 400.0 + phase[2])
    )
    w[:k] *= np.linspace(0, 1, k)
    w[-k:] *= np.linspace(1, 0, k)
    return LineString(np.column_stack([xs - dy / norm * w, ys + dx / norm * w]))


def _largest_remainder(weights: Arr, total: int, minimum: int = 0) -> Arr:
    """Integers proportional to ``weights`` summing exactly to ``total`` (each ≥ minimum)."""
    w = np.asarray(weights, dtype=float)
    n = len(w)
    out = np.full(n, minimum, dtype=np.int64)
    rest = total - minimum * n
    if n == 0 or rest <= 0:
        return out
    if w.sum() <= 0:
        w = np.ones(n)
    raw = w / w.sum() * rest
    base = np.floor(raw).astype(np.int64)
    short = rest - int(base.sum())
    if short > 0:
        order = np.argsort(-(raw - base), kind="stable")
        base[order[:short]] += 1
    result: Arr = out + base
    return result


def _weighted_kmeans(pts: Arr, w: Arr, k: int, rng: np.random.Generator, iters: int = 12) -> Arr:
    """Lloyd's algorithm on weighted points; seeds drawn by weight (deterministic per rng)."""
    k = min(k, len(pts))
    p = w / w.sum()
    centres = pts[rng.choice(len(pts), size=k, replace=False, p=p)].astype(float)
    for _ in range(iters):
        lab = _nearest(pts, centres)
        sw = np.bincount(lab, weights=w, minlength=k)
        sx = np.bincount(lab, weights=w * pts[:, 0], minlength=k)
        sy = np.bincount(lab, weights=w * pts[:, 1], minlength=k)
        ok = sw > 0
        centres[ok, 0] = sx[ok] / sw[ok]
        centres[ok, 1] = sy[ok] / sw[ok]
    return centres


def _nearest(pts: Arr, centres: Arr) -> Arr:
    """Index of the nearest centre of each point (chunked to bound memory)."""
    out = np.empty(len(pts), dtype=np.int64)
    step = max(1, 4_000_000 // max(len(centres), 1))
    for s in range(0, len(pts), step):
        d = ((pts[s : s + step, None, :] - centres[None]) ** 2).sum(-1)
        out[s : s + step] = d.argmin(1)
    return out


def _voronoi_cells(seeds: Arr, clip: Any) -> Arr:
    """Voronoi cells of seed points clipped to ``clip``, in seed order, as MultiPolygons."""
    if len(seeds) == 1:
        return _polygonal(np.array([clip], dtype=object))
    mp = shapely.multipoints(seeds)
    cells = shapely.get_parts(shapely.voronoi_polygons(mp, extend_to=clip, ordered=True))
    return _polygonal(shapely.intersection(cells, clip))


def _point_in(polys: Arr, pts: Arr) -> Arr:
    """Index of the polygon containing each point (-1 if none), via an STRtree."""
    tree = shapely.STRtree(polys)
    pi, gi = tree.query(pts, predicate="within")
    out = np.full(len(pts), -1, dtype=np.int64)
    out[pi] = gi
    return out


def _choice_counts(rng: np.random.Generator, n: int, weights: Sequence[float]) -> Arr:
    p = np.asarray(weights, dtype=float)
    result: Arr = rng.choice(len(p), size=n, p=p / p.sum())
    return result


# --------------------------------------------------------------------------------------------
# County state


@dataclass
class _County:
    """Working state of one county while it is generated (metric coordinates)."""

    plan: _Plan
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


def _setup_county(plan: _Plan, name: str, outline: MultiPolygon, seed: int, to_m: Any) -> _County:
    rng = np.random.default_rng([seed, int(plan.code)])

    def fwd(x: Arr, y: Arr) -> tuple[Arr, Arr]:
        a, b = to_m.transform(x, y)
        return np.asarray(a), np.asarray(b)

    poly = shapely.transform(outline, lambda c: np.column_stack(fwd(c[:, 0], c[:, 1])))
    poly = shapely.make_valid(poly)
    cty = _County(plan, name, poly, poly.buffer(-3.0), rng, fwd)
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


def _seed_townships(cty: _County) -> None:
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


# --------------------------------------------------------------------------------------------
# Water, rail and the urban fabric


def _city_lines(
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
    xiang = _smooth_path(pts, rng, amp=60.0, step=150.0)
    jingguang = _smooth_path(
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
    hukun = _smooth_path(
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


def _water_and_rail(cty: _County, city: dict[str, LineString]) -> None:
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
        line = _smooth_path(pts, rng, amp=220.0, step=80.0)
        inside = shapely.intersection(line, cty.inner)
        if not inside.is_empty and inside.length > 500:
            cty.lines.append(("river", nme, inside))
            masks.append(inside.buffer(14.0))
    cty.river_mask = shapely.union_all(masks) if masks else Polygon()
    shapely.prepare(cty.river_mask)


def _bilinear(q: Arr, s: Arr, t: Arr) -> Arr:
    """Point at parameters (s, t) of quads ``q`` (n, 4, 2), corners in ring order."""
    s, t = s[:, None], t[:, None]
    result: Arr = (
        (1 - s) * (1 - t) * q[:, 0]
        + s * (1 - t) * q[:, 1]
        + s * t * q[:, 2]
        + (1 - s) * t * q[:, 3]
    )
    return result


def _splits(rng: np.random.Generator, n: Arr) -> Arr:
    """Split parameters 0 = s0 < s1 < ... < s_n = 1 per row (jittered), padded to width 8."""
    k = np.arange(8)[None, :]
    jit = rng.uniform(-0.18, 0.18, (len(n), 8))
    nn = n[:, None].astype(float)
    inner = (k > 0) & (k < n[:, None])
    result: Arr = np.clip((k + np.where(inner, jit, 0.0)) / nn, 0.0, 1.0)
    return result


def _urban_fabric(cty: _County) -> tuple[Arr, Arr, Arr]:
    """Streets and blocks of every urban centre; returns block quads, geometries, typologies."""
    rng = cty.rng
    quads: list[Arr] = []
    typs: list[Arr] = []
    spots = cty.plan.industrial_spots
    spot_xy = np.array([[*cty.to_m(np.array([s[0]]), np.array([s[1]]))] for s in spots])
    street_taken: set[str] = set()
    for k, c in enumerate(cty.centres):
        cx, cy, radius, ang = c[0], c[1], c[2], c[3]
        town = c[6] > 0.5
        spacing = 260.0 if town else 520.0
        n = int(np.ceil(1.5 * radius / spacing)) + 1
        ii, jj = np.meshgrid(np.arange(-n, n + 1), np.arange(-n, n + 1), indexing="ij")
        lx, ly = ii * spacing, jj * spacing
        ph = rng.uniform(0, 2 * np.pi, 4)
        amp = 0.13 * spacing
        px = lx + amp * (
            np.sin(ly / (2.7 * spacing) + ph[0]) + 0.6 * np.sin(lx / (3.9 * spacing) + ph[1])
        )
        py = ly + amp * (
            np.sin(lx / (3.1 * spacing) + ph[2]) + 0.6 * np.sin(ly / (4.3 * spacing) + ph[3])
        )
        px = px + rng.normal(0, 0.05 * spacing, px.shape)
        py = py + rng.normal(0, 0.05 * spacing, py.shape)
        gx = cx + px * np.cos(ang) - py * np.sin(ang)
        gy = cy + px * np.sin(ang) + py * np.cos(ang)
        q = np.stack(
            [
                np.stack([gx[:-1, :-1], gy[:-1, :-1]], -1),
                np.stack([gx[1:, :-1], gy[1:, :-1]], -1),
                np.stack([gx[1:, 1:], gy[1:, 1:]], -1),
                np.stack([gx[:-1, 1:], gy[:-1, 1:]], -1),
            ],
            axis=2,
        )  # (2n, 2n, 4, 2)
        mi, mj = np.meshgrid(np.arange(2 * n), np.arange(2 * n), indexing="ij")
        q = q.reshape(-1, 4, 2)
        ci, cj = mi.ravel(), mj.ravel()
        cen = q.mean(1)
        rho, kk = cty.rho(cen[:, 0], cen[:, 1])
        keep = (rho < 1.0) & (kk == k) & shapely.intersects_xy(cty.poly, cen[:, 0], cen[:, 1])
        if not keep.any():
            continue
        q, ci, cj, cen, rho = q[keep], ci[keep], cj[keep], cen[keep], rho[keep]
        # Arterials: the lattice edges next to kept cells, named per lattice line.
        e_id = np.concatenate(
            [
                ci * 10_000 + cj,
                ci * 10_000 + cj + 1,  # horizontal edges (i..i+1, j)
                5_000_000 + ci * 10_000 + cj,
                5_000_000 + (ci + 1) * 10_000 + cj,  # vertical
            ]
        )
        e_pts = np.concatenate(
            [
                np.stack([q[:, 0], q[:, 1]], 1),
                np.stack([q[:, 3], q[:, 2]], 1),
                np.stack([q[:, 0], q[:, 3]], 1),
                np.stack([q[:, 1], q[:, 2]], 1),
            ]
        )
        uniq, first = np.unique(e_id, return_index=True)
        segs = shapely.linestrings(e_pts[first])
        line_key = np.where(
            uniq >= 5_000_000, (uniq - 5_000_000) // 10_000, 100_000 + uniq % 10_000
        )
        keys, inv = np.unique(line_key, return_inverse=True)
        srt = np.argsort(inv, kind="stable")
        merged = shapely.line_merge(shapely.multilinestrings(segs[srt], indices=inv[srt]))
        merged = shapely.intersection(merged, cty.poly)
        lengths = shapely.length(merged)
        road_names = nm.road_names(rng, len(keys), "大道" if not town else "街", street_taken)
        for g, nme, ln in zip(merged, road_names, lengths, strict=True):
            if ln > 100:
                major = (not town) or ln > 900
                cty.lines.append(("road_major" if major else "road_minor", nme, g))
        # Typology per superblock by distance band, boosted in industrial spots.
        band = np.where(rho < 0.45, 0, np.where(rho < 0.75, 1, 2))
        band = np.where(town, 3, band)
        w = _TYPO_W[band].copy()
        for s, (sx, sy) in zip(spots, spot_xy, strict=True):
            d = np.hypot(cen[:, 0] - sx[0], cen[:, 1] - sy[0]) / s[2]
            w[:, T_IND] *= np.where(d < 1.0, 9.0, 1.0)
            w[:, T_COMPOUND] *= np.where(d < 1.0, 0.3, 1.0)
        cum = np.cumsum(w, 1) / w.sum(1, keepdims=True)
        cell_t = (rng.random(len(q))[:, None] > cum).sum(1)
        # Subdivide each superblock into blocks; the inner split lines are minor streets.
        la = (np.hypot(*(q[:, 1] - q[:, 0]).T) + np.hypot(*(q[:, 2] - q[:, 3]).T)) / 2
        lb = (np.hypot(*(q[:, 3] - q[:, 0]).T) + np.hypot(*(q[:, 2] - q[:, 1]).T)) / 2
        na = np.clip(np.round(la / _BLOCK_LEN[cell_t]), 1, 6).astype(np.int64)
        nb = np.clip(np.round(lb / _BLOCK_LEN[cell_t]), 1, 6).astype(np.int64)
        sa, sb = _splits(rng, na), _splits(rng, nb)
        cnt = na * nb
        cidx = np.repeat(np.arange(len(q)), cnt)
        r = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        a, bb = r % na[cidx], r // na[cidx]
        s0, s1 = sa[cidx, a], sa[cidx, a + 1]
        t0, t1 = sb[cidx, bb], sb[cidx, bb + 1]
        qc = q[cidx]
        sub = np.stack(
            [
                _bilinear(qc, s0, t0),
                _bilinear(qc, s1, t0),
                _bilinear(qc, s1, t1),
                _bilinear(qc, s0, t1),
            ],
            axis=1,
        )
        sub_t = cell_t[cidx].copy()
        redraw = rng.random(len(sub_t)) < 0.22
        cum_s = cum[cidx[redraw]]
        sub_t[redraw] = (rng.random(int(redraw.sum()))[:, None] > cum_s).sum(1)
        quads.append(sub)
        typs.append(sub_t)
        # Minor streets: the interior split lines of each superblock.
        for split, nsplit, axis in ((sa, na, 0), (sb, nb, 1)):
            m = np.maximum(nsplit - 1, 0)
            ridx = np.repeat(np.arange(len(q)), m)
            kk2 = np.arange(m.sum()) - np.repeat(np.cumsum(m) - m, m) + 1
            sv = split[ridx, kk2]
            zeros, ones = np.zeros(len(sv)), np.ones(len(sv))
            if axis == 0:
                p0, p1 = _bilinear(q[ridx], sv, zeros), _bilinear(q[ridx], sv, ones)
            else:
                p0, p1 = _bilinear(q[ridx], zeros, sv), _bilinear(q[ridx], ones, sv)
            if len(sv):
                lines = shapely.intersection(shapely.linestrings(np.stack([p0, p1], 1)), cty.poly)
                lines = lines[~shapely.is_empty(lines) & (shapely.length(lines) > 30)]
                cty.lines.extend(("road_minor", None, g) for g in lines)
    if not quads:
        return np.zeros((0, 4, 2)), np.zeros(0, dtype=object), np.zeros(0, dtype=np.int64)
    allq = np.concatenate(quads)
    allt = np.concatenate(typs)
    geoms = shapely.polygons(np.concatenate([allq, allq[:, :1]], axis=1))
    geoms = shapely.buffer(geoms, -_BLOCK_INSET, join_style="mitre")
    inside = shapely.contains_properly(cty.inner, geoms)
    geoms[~inside] = shapely.intersection(geoms[~inside], cty.inner)
    wet = shapely.intersects(cty.river_mask, geoms)
    geoms[wet] = shapely.difference(geoms[wet], cty.river_mask)
    ok = ~shapely.is_empty(geoms) & (shapely.area(geoms) > 400.0)
    return allq[ok], geoms[ok], allt[ok]


def _empty_buildings() -> dict[str, Arr]:
    f = np.zeros(0)
    i = np.zeros(0, dtype=np.int64)
    return {
        "cx": f,
        "cy": f,
        "ux": f,
        "uy": f,
        "L": f,
        "W": f,
        "typ": i,
        "floors": i,
        "structure": i,
        "use": i,
        "year": i,
        "rural": np.zeros(0, dtype=bool),
        "cap": f,
    }


def _concat_buildings(parts: list[dict[str, Arr]]) -> dict[str, Arr]:
    parts = [p for p in parts if len(p["cx"])]
    if not parts:
        return _empty_buildings()
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _take(b: dict[str, Arr], sel: Arr) -> dict[str, Arr]:
    return {k: v[sel] for k, v in b.items()}


def _pick(rng: np.random.Generator, n: int, values: Sequence[int], p: Sequence[float]) -> Arr:
    pp = np.asarray(p, dtype=float)
    result: Arr = np.asarray(values)[rng.choice(len(values), size=n, p=pp / pp.sum())]
    return result


def _urban_attributes(rng: np.random.Generator, typ: Arr, blk: Arr) -> dict[str, Arr]:
    """Floors, structure, use, construction period and capacity by typology.

    Compound blocks share one height (a 小区 is built at once); other typologies vary per
    building. Capacity is in households before the final scaling.
    """
    n = len(typ)
    floors = np.ones(n, dtype=np.int64)
    structure = np.full(n, _S_RC)
    use = np.full(n, _U_RES)
    year = np.full(n, 3)
    nb = int(blk.max()) + 1 if n else 0
    block_floors = _pick(rng, nb, [6, 7, 11, 18, 26, 32], [22, 10, 25, 23, 14, 6])
    m = typ == T_COMPOUND
    floors[m] = block_floors[blk[m]]
    year[m] = np.where(
        floors[m] <= 7,
        _pick(rng, int(m.sum()), [2, 3], [5, 5]),
        np.where(
            floors[m] <= 18,
            _pick(rng, int(m.sum()), [3, 4], [4, 6]),
            _pick(rng, int(m.sum()), [4, 5], [6, 4]),
        ),
    )
    structure[m] = np.where((floors[m] <= 6) & (rng.random(int(m.sum())) < 0.5), _S_MAS, _S_RC)
    m = typ == T_OLD
    k = int(m.sum())
    floors[m] = rng.integers(4, 8, k)
    year[m] = _pick(rng, k, [0, 1, 2], [2, 4, 4])
    structure[m] = _pick(rng, k, [_S_MAS, _S_RC], [7, 3])
    use[m] = _pick(rng, k, [_U_RES, _U_MIX], [85, 15])
    m = typ == T_VILLAGE
    k = int(m.sum())
    floors[m] = _pick(rng, k, [2, 3, 4, 5], [2, 4, 3, 1])
    year[m] = _pick(rng, k, [2, 3, 4], [3, 4, 3])
    structure[m] = _pick(rng, k, [_S_MAS, _S_RC], [6, 4])
    use[m] = _pick(rng, k, [_U_RES, _U_MIX], [88, 12])
    m = typ == T_IND
    k = int(m.sum())
    floors[m] = _pick(rng, k, [1, 2, 3], [6, 3, 1])
    year[m] = _pick(rng, k, [1, 2, 3, 4], [2, 3, 3, 2])
    structure[m] = _pick(rng, k, [_S_STEEL, _S_RC, _S_MAS], [55, 30, 15])
    use[m] = _pick(rng, k, [_U_IND, _U_OTHER], [9, 1])
    m = typ == T_PUBLIC
    k = int(m.sum())
    floors[m] = rng.integers(2, 7, k)
    year[m] = _pick(rng, k, [2, 3, 4, 5], [2, 3, 3, 2])
    use[m] = _U_PUB
    m = typ == T_COMM
    k = int(m.sum())
    floors[m] = _pick(rng, k, [3, 5, 8, 12, 20, 28], [3, 3, 2, 2, 1, 0.5])
    year[m] = _pick(rng, k, [3, 4, 5], [4, 4, 2])
    structure[m] = _pick(rng, k, [_S_RC, _S_STEEL], [8, 2])
    use[m] = _pick(rng, k, [_U_COMM, _U_MIX], [6, 4])
    m = typ == T_GREEN
    k = int(m.sum())
    year[m] = _pick(rng, k, [3, 4], [5, 5])
    structure[m] = _pick(rng, k, [_S_WOOD, _S_OTHER], [5, 5])
    use[m] = _pick(rng, k, [_U_PUB, _U_OTHER], [5, 5])
    return {"floors": floors, "structure": structure, "use": use, "year": year}


def _fill_blocks(cty: _County, quads: Arr, blocks: Arr, typ: Arr) -> dict[str, Arr]:
    """Lattices of rotated rectangles in every block, kept where they fit inside it."""
    rng = cty.rng
    nb = len(blocks)
    if nb == 0:
        return _empty_buildings()
    shapely.prepare(blocks)
    ea = ((quads[:, 1] - quads[:, 0]) + (quads[:, 2] - quads[:, 3])) / 2
    eb = ((quads[:, 3] - quads[:, 0]) + (quads[:, 2] - quads[:, 1])) / 2
    la, lb = np.hypot(*ea.T), np.hypot(*eb.T)
    use_a = la >= lb
    # Residential slabs face south: their long side runs along the more east-west axis.
    ew_a = np.abs(ea[:, 0]) / np.maximum(la, 1e-9) >= np.abs(eb[:, 0]) / np.maximum(lb, 1e-9)
    use_a = np.where(typ == T_COMPOUND, ew_a, use_a)
    u = np.where(use_a[:, None], ea, eb)
    u = u / np.hypot(*u.T)[:, None]
    v = np.column_stack([-u[:, 1], u[:, 0]])
    cen = quads.mean(1)
    rel = quads - cen[:, None, :]
    pu = (rel * u[:, None, :]).sum(-1)
    pv = (rel * v[:, None, :]).sum(-1)
    lo_u, lo_v = pu.min(1) + _BLOCK_INSET, pv.min(1) + _BLOCK_INSET
    ext_u = pu.max(1) - pu.min(1) - 2 * _BLOCK_INSET
    ext_v = pv.max(1) - pv.min(1) - 2 * _BLOCK_INSET

    def draw(r: Arr) -> Arr:
        result: Arr = r[typ, 0] + rng.random(nb) * (r[typ, 1] - r[typ, 0])
        return result

    length, width = draw(_L_RANGE), draw(_W_RANGE)
    su, sv = length + draw(_GU_RANGE), width + draw(_GV_RANGE)
    n_u = np.clip(np.floor(ext_u / su), 0, 40).astype(np.int64)
    n_v = np.clip(np.floor(ext_v / sv), 0, 40).astype(np.int64)
    n_u = np.where((n_u == 0) & (ext_u >= length), 1, n_u)
    n_v = np.where((n_v == 0) & (ext_v >= width), 1, n_v)
    cnt = n_u * n_v
    bi = np.repeat(np.arange(nb), cnt)
    r = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    ku, kv = r % n_u[bi], r // n_u[bi]
    off_u = lo_u[bi] + (ext_u[bi] - n_u[bi] * su[bi]) / 2 + (ku + 0.5) * su[bi]
    off_v = lo_v[bi] + (ext_v[bi] - n_v[bi] * sv[bi]) / 2 + (kv + 0.5) * sv[bi]
    t = typ[bi]
    jit = np.where(t == T_VILLAGE, 1.2, 0.3)
    off_u += rng.normal(0, 1, len(bi)) * jit
    off_v += rng.normal(0, 1, len(bi)) * jit
    cx = cen[bi, 0] + off_u * u[bi, 0] + off_v * v[bi, 0]
    cy = cen[bi, 1] + off_u * u[bi, 1] + off_v * v[bi, 1]
    rot = rng.normal(0, 1, len(bi)) * np.where(t == T_VILLAGE, np.deg2rad(4), np.deg2rad(0.8))
    ux = u[bi, 0] * np.cos(rot) - u[bi, 1] * np.sin(rot)
    uy = u[bi, 0] * np.sin(rot) + u[bi, 1] * np.cos(rot)
    bl = length[bi] * np.where(t == T_COMPOUND, 1.0, rng.uniform(0.8, 1.0, len(bi)))
    bw = width[bi] * np.where(t == T_COMPOUND, 1.0, rng.uniform(0.85, 1.0, len(bi)))
    occupied = rng.random(len(bi)) < _OCCUPANCY[t]
    rect = _rects(cx, cy, ux, uy, bl, bw)
    fits = shapely.contains(blocks[bi], rect) & occupied
    sel = np.flatnonzero(fits)
    attrs = _urban_attributes(rng, t[sel], bi[sel])
    res = (attrs["use"] == _U_RES) | (attrs["use"] == _U_MIX)
    unit = np.where(t[sel] == T_VILLAGE, 110.0, 95.0)
    cap = np.where(res, attrs["floors"] * bl[sel] * bw[sel] * 0.78 / unit, 0.0)
    cap = np.where(attrs["use"] == _U_MIX, cap * 0.6, cap)
    return {
        "cx": cx[sel],
        "cy": cy[sel],
        "ux": ux[sel],
        "uy": uy[sel],
        "L": bl[sel],
        "W": bw[sel],
        "typ": t[sel],
        **attrs,
        "rural": np.zeros(len(sel), dtype=bool),
        "cap": cap,
    }


def _edges_of(points: Arr) -> Arr:
    """Delaunay edges of points as an (m, 2) array of point indexes."""
    tri = shapely.delaunay_triangles(shapely.multipoints(points), only_edges=True)
    coords = shapely.get_coordinates(shapely.get_parts(tri)).reshape(-1, 2, 2)
    lookup = {(float(x), float(y)): i for i, (x, y) in enumerate(points)}
    flat = coords.reshape(-1, 2)
    idx = np.fromiter(
        (lookup.get((float(x), float(y)), -1) for x, y in flat), dtype=np.int64, count=len(flat)
    ).reshape(-1, 2)
    idx = idx[(idx >= 0).all(1)]
    idx.sort(1)
    result: Arr = np.unique(idx, axis=0)
    return result


def _spanning_tree(n: int, edges: Arr, weight: Arr) -> Arr:
    """Kruskal's minimum spanning forest; returns a boolean mask over ``edges``."""
    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    in_tree = np.zeros(len(edges), dtype=bool)
    for e in np.argsort(weight, kind="stable"):
        ra, rb = find(int(edges[e, 0])), find(int(edges[e, 1]))
        if ra != rb:
            parent[ra] = rb
            in_tree[e] = True
    return in_tree


def _road_network(cty: _County, n_houses: int) -> tuple[Arr, Arr, Arr, Arr]:
    """Village sites and the rural roads between them.

    Returns node coordinates, node house counts, edges (node pairs) and the edge polylines.
    Villages sit in valleys (low relief); roads form a spanning tree with some loops, which is
    what a Hunan county road map looks like, plus a few 县道/省道 between town centres.
    """
    rng = cty.rng
    rural = shapely.difference(cty.inner, cty.river_mask)
    area = rural.area
    n_nodes = max(8, round(n_houses / 45))
    s0 = float(np.sqrt(area / (3.0 * n_nodes)))
    minx, miny, maxx, maxy = cty.poly.bounds
    gx, gy = np.meshgrid(np.arange(minx, maxx, s0), np.arange(miny, maxy, s0))
    x = gx.ravel() + rng.uniform(-0.45, 0.45, gx.size) * s0
    y = gy.ravel() + rng.uniform(-0.45, 0.45, gx.size) * s0
    rho, _ = cty.rho(x, y)
    ok = (rho > 1.12) & shapely.contains_xy(rural, x, y)
    x, y = x[ok], y[ok]
    elev = cty.elevation(x, y)
    w = (1.0 - elev) ** 4 + 0.01
    n_nodes = min(n_nodes, len(x))
    pick = rng.choice(len(x), size=n_nodes, replace=False, p=w / w.sum())
    nodes = np.column_stack([x[pick], y[pick]])
    size = rng.lognormal(0.0, 0.6, n_nodes) * (1.0 - elev[pick]) ** 2
    houses = _largest_remainder(size, n_houses)
    # Gates where rural roads meet each urban centre's edge.
    gates = []
    for c in cty.centres:
        k = 4 if c[6] > 0.5 else 8
        phi = np.linspace(0, 2 * np.pi, k, endpoint=False) + rng.uniform(0, 1)
        reff = c[2] * (1.0 + 0.2 * np.sin(2 * phi + c[4]) + 0.12 * np.sin(3 * phi + c[5]))
        gates.append(
            np.column_stack([c[0] + 1.02 * reff * np.cos(phi), c[1] + 1.02 * reff * np.sin(phi)])
        )
    gate = np.vstack(gates)
    gate = gate[shapely.contains_xy(cty.inner, gate[:, 0], gate[:, 1])]
    allp = np.vstack([nodes, gate])
    houses = np.r_[houses, np.zeros(len(gate), dtype=np.int64)]
    edges = _edges_of(allp)
    d = allp[edges[:, 1]] - allp[edges[:, 0]]
    length = np.hypot(d[:, 0], d[:, 1])
    mid = (allp[edges[:, 0]] + allp[edges[:, 1]]) / 2
    mrho, _ = cty.rho(mid[:, 0], mid[:, 1])
    both_gates = (edges[:, 0] >= n_nodes) & (edges[:, 1] >= n_nodes)
    fine = (length < 4.0 * s0 * np.sqrt(3.0)) & (mrho > 0.95) & ~both_gates
    edges, length = edges[fine], length[fine]
    crosses = shapely.intersects(
        cty.river_mask, shapely.linestrings(np.stack([allp[edges[:, 0]], allp[edges[:, 1]]], 1))
    )
    tree = _spanning_tree(len(allp), edges, length * np.where(crosses, 6.0, 1.0))
    keep = tree | ((rng.random(len(edges)) < 0.28) & ~crosses)
    edges = edges[keep]
    lines = _wobbly_lines(allp[edges[:, 0]], allp[edges[:, 1]], rng, amp=0.05)
    return allp, houses, edges, lines


def _major_roads(cty: _County) -> None:
    """县道/省道 between the urban centres (seat and towns), gently curving."""
    rng = cty.rng
    c = cty.centres[:, :2]
    if len(c) < 2:
        return
    edges = _edges_of(c) if len(c) > 2 else np.array([[0, 1]])
    d = c[edges[:, 1]] - c[edges[:, 0]]
    length = np.hypot(d[:, 0], d[:, 1])
    keep = _spanning_tree(len(c), edges, length) | (rng.random(len(edges)) < 0.3)
    edges = edges[keep]
    lines = _wobbly_lines(c[edges[:, 0]], c[edges[:, 1]], rng, amp=0.03, nseg=10)
    lines = shapely.difference(shapely.intersection(lines, cty.inner), cty.urban_zone)
    for i, g in enumerate(lines):
        if not g.is_empty and g.length > 300:
            nme = f"S{rng.integers(201, 340)}" if i % 3 == 0 else f"X{rng.integers(10, 99):03d}"
            cty.lines.append(("road_major", f"{nme}线", g))
            cty.major_roads.append(g)


def _rural_fabric(cty: _County, n_houses: int, n_industrial: int) -> dict[str, Arr]:
    """Houses strung along village roads, sheds behind them, a few rural works and halls."""
    rng = cty.rng
    allp, houses, edges, lines = _road_network(cty, n_houses)
    cty.rural_nodes = allp[houses > 0]
    clipped = shapely.intersection(lines, cty.inner)
    for g in clipped[~shapely.is_empty(clipped)]:
        cty.lines.append(("road_minor", None, g))
    _major_roads(cty)
    n_all = len(allp)
    # CSR adjacency node -> incident edges.
    ends = np.concatenate([edges[:, 0], edges[:, 1]])
    eidx = np.concatenate([np.arange(len(edges)), np.arange(len(edges))])
    order = np.argsort(ends, kind="stable")
    ends, eidx = ends[order], eidx[order]
    start = np.searchsorted(ends, np.arange(n_all))
    deg = np.searchsorted(ends, np.arange(n_all), side="right") - start
    hn = np.repeat(np.arange(n_all), houses)
    nh = len(hn)
    has_edge = deg[hn] > 0
    along = (rng.random(nh) < 0.72) & has_edge
    # Along roads.
    k = (rng.random(nh) * np.maximum(deg[hn], 1)).astype(np.int64)
    e = (
        eidx[np.minimum(start[hn] + k, len(eidx) - 1)]
        if len(eidx)
        else np.zeros(nh, dtype=np.int64)
    )
    e = np.where(has_edge, e, 0)
    elen = shapely.length(lines[e]) if len(lines) else np.ones(nh)
    spread = 35.0 + 9.0 * np.sqrt(houses[hn])
    dist = np.minimum(np.abs(rng.normal(0, 1, nh)) * spread + 15.0, 0.48 * elen)
    from_start = edges[e, 0] == hn if len(edges) else np.ones(nh, dtype=bool)
    pos = np.where(from_start, dist, elen - dist)
    p0 = (
        shapely.get_coordinates(shapely.line_interpolate_point(lines[e], pos))
        if len(lines)
        else np.zeros((nh, 2))
    )
    p1 = (
        shapely.get_coordinates(shapely.line_interpolate_point(lines[e], pos + 4.0))
        if len(lines)
        else np.ones((nh, 2))
    )
    tan = p1 - p0
    tan /= np.maximum(np.hypot(*tan.T), 1e-9)[:, None]
    length = rng.uniform(10.0, 14.0, nh)
    width = rng.uniform(8.0, 11.0, nh)
    side = np.where(rng.random(nh) < 0.5, -1.0, 1.0)
    row = _pick(rng, nh, [0, 1, 2], [65, 25, 10])
    off = 4.0 + rng.uniform(3.0, 8.0, nh) + width / 2 + row * 17.0
    nx, ny = -tan[:, 1] * side, tan[:, 0] * side
    ax = p0[:, 0] + nx * off + tan[:, 0] * rng.normal(0, 3, nh)
    ay = p0[:, 1] + ny * off + tan[:, 1] * rng.normal(0, 3, nh)
    # Cluster around the village core, aligned with the first road of the node.
    sig = 18.0 + 6.0 * np.sqrt(houses[hn])
    bx = allp[hn, 0] + rng.normal(0, 1, nh) * sig
    by = allp[hn, 1] + rng.normal(0, 1, nh) * sig
    e0 = eidx[np.minimum(start[hn], len(eidx) - 1)] if len(eidx) else np.zeros(nh, dtype=np.int64)
    dv = allp[edges[e0, 1]] - allp[edges[e0, 0]] if len(edges) else np.ones((nh, 2))
    ang = np.arctan2(dv[:, 1], dv[:, 0]) + rng.normal(0, 0.15, nh)
    cx = np.where(along, ax, bx)
    cy = np.where(along, ay, by)
    ux = np.where(along, tan[:, 0], np.cos(ang))
    uy = np.where(along, tan[:, 1], np.sin(ang))
    floors = _pick(rng, nh, [1, 2, 3, 4], [12, 45, 35, 8])
    house = {
        "cx": cx,
        "cy": cy,
        "ux": ux,
        "uy": uy,
        "L": length,
        "W": width,
        "typ": np.full(nh, T_RHOUSE),
        "floors": floors,
        "structure": _pick(rng, nh, [_S_MAS, _S_RC, _S_WOOD, _S_OTHER], [65, 25, 6, 4]),
        "use": _pick(rng, nh, [_U_RES, _U_MIX], [95, 5]),
        "year": _pick(rng, nh, [0, 1, 2, 3, 4, 5], [5, 12, 22, 28, 25, 8]),
        "rural": np.ones(nh, dtype=bool),
        "cap": np.where(rng.random(nh) < 0.2, 2.0, 1.0),
    }
    # Sheds (杂物间) behind half of the houses.
    sh = np.flatnonzero(rng.random(nh) < min(cty.plan.outbuildings, 1.0))
    sl, sw = rng.uniform(4.0, 8.0, len(sh)), rng.uniform(3.0, 5.5, len(sh))
    back = width[sh] / 2 + 2.5 + sw / 2
    shed = {
        "cx": cx[sh] - uy[sh] * side[sh] * back * np.where(along[sh], 1, -1),
        "cy": cy[sh] + ux[sh] * side[sh] * back * np.where(along[sh], 1, -1),
        "ux": ux[sh],
        "uy": uy[sh],
        "L": sl,
        "W": sw,
        "typ": np.full(len(sh), T_SHED),
        "floors": np.ones(len(sh), dtype=np.int64),
        "structure": _pick(rng, len(sh), [_S_MAS, _S_WOOD, _S_OTHER], [5, 2, 3]),
        "use": np.full(len(sh), _U_OTHER),
        "year": _pick(rng, len(sh), [1, 2, 3, 4, 5], [10, 20, 30, 30, 10]),
        "rural": np.ones(len(sh), dtype=bool),
        "cap": np.zeros(len(sh)),
    }
    # Rural works (kilns, quarries, fireworks workshops) at road midpoints between villages.
    ni = min(n_industrial, len(lines))
    ie = rng.choice(len(lines), size=ni, replace=False) if ni else np.zeros(0, dtype=np.int64)
    q0 = shapely.get_coordinates(shapely.line_interpolate_point(lines[ie], 0.5, normalized=True))
    q1 = shapely.get_coordinates(shapely.line_interpolate_point(lines[ie], 0.52, normalized=True))
    tv = q1 - q0
    tv /= np.maximum(np.hypot(*tv.T), 1e-9)[:, None]
    iw = rng.uniform(15.0, 30.0, ni)
    works = {
        "cx": q0[:, 0] - tv[:, 1] * (iw / 2 + 14),
        "cy": q0[:, 1] + tv[:, 0] * (iw / 2 + 14),
        "ux": tv[:, 0],
        "uy": tv[:, 1],
        "L": rng.uniform(30.0, 70.0, ni),
        "W": iw,
        "typ": np.full(ni, T_RIND),
        "floors": _pick(rng, ni, [1, 2], [7, 3]),
        "structure": _pick(rng, ni, [_S_STEEL, _S_MAS, _S_RC], [5, 3, 2]),
        "use": np.full(ni, _U_IND),
        "year": _pick(rng, ni, [2, 3, 4], [3, 4, 3]),
        "rural": np.ones(ni, dtype=bool),
        "cap": np.zeros(ni),
    }
    # Village halls and schools next to the bigger villages.
    big = np.flatnonzero(houses >= 25)
    nbg = len(big)
    pa = rng.uniform(0, 2 * np.pi, nbg)
    pr = rng.uniform(25.0, 60.0, nbg)
    hall = {
        "cx": allp[big, 0] + pr * np.cos(pa),
        "cy": allp[big, 1] + pr * np.sin(pa),
        "ux": np.cos(pa),
        "uy": np.sin(pa),
        "L": rng.uniform(18.0, 36.0, nbg),
        "W": rng.uniform(10.0, 14.0, nbg),
        "typ": np.full(nbg, T_RPUB),
        "floors": _pick(rng, nbg, [2, 3, 4], [4, 4, 2]),
        "structure": np.full(nbg, _S_RC),
        "use": np.full(nbg, _U_PUB),
        "year": _pick(rng, nbg, [2, 3, 4, 5], [2, 3, 3, 2]),
        "rural": np.ones(nbg, dtype=bool),
        "cap": np.zeros(nbg),
    }
    return _concat_buildings([hall, works, house, shed])


def _clean_buildings(cty: _County, b: dict[str, Arr], n_urban: int) -> dict[str, Arr]:
    """Drop footprints on roads, rails or water, outside the county, or overlapping others.

    Urban lattice buildings come first, so where a rural footprint meets an urban one the
    rural one goes.
    """
    geoms = _rects(b["cx"], b["cy"], b["ux"], b["uy"], b["L"], b["W"])
    ok = shapely.contains_properly(cty.inner, geoms)
    ok &= ~shapely.intersects(cty.river_mask, geoms)
    roads = np.array(
        [g for kind, _, g in cty.lines[cty.n_urban_lines :] if kind.startswith("road")],
        dtype=object,
    )
    cand = np.flatnonzero(ok)
    if len(roads) and len(cand):
        tree = shapely.STRtree(roads)
        hit, _ = tree.query(geoms[cand], predicate="dwithin", distance=4.0)
        ok[cand[np.unique(hit)]] = False
    del n_urban
    idx = np.flatnonzero(ok)
    tree = shapely.STRtree(geoms[idx])
    a, c = tree.query(geoms[idx], predicate="intersects")
    pair = a < c
    drop = np.unique(c[pair])
    ok[idx[drop]] = False
    out = _take(b, ok)
    out["geom"] = geoms[ok]
    return out


# --------------------------------------------------------------------------------------------
# Divisions and grids


@dataclass
class _Divisions:
    """Townships and communities of one county (metric geometries)."""

    t_code: list[str] = field(default_factory=list)
    t_name: list[str] = field(default_factory=list)
    t_kind: list[str] = field(default_factory=list)
    t_geom: list[Any] = field(default_factory=list)
    c_code: list[str] = field(default_factory=list)
    c_name: list[str] = field(default_factory=list)
    c_township: list[int] = field(default_factory=list)
    c_urban: list[bool] = field(default_factory=list)
    c_urc: list[str] = field(default_factory=list)
    c_geom: list[Any] = field(default_factory=list)


def _divisions(cty: _County, b: dict[str, Arr]) -> tuple[_Divisions, Arr]:
    """Townships (Voronoi of their seats) and communities (Voronoi of capacity clusters).

    Communities are seeded by household-weighted k-means of the township's buildings —
    separately for urban fabric (社区 of ~2 000 households) and rural houses (村 of ~700) —
    so every community has people and a Voronoi cell tiles the township exactly.
    Returns the divisions and each building's community index.
    """
    rng = cty.rng
    dv = _Divisions()
    seeds = np.array([[s[2], s[3]] for s in cty.township_seeds])
    tcells = _voronoi_cells(seeds, cty.poly)
    n_sub = n_town = 0
    for (nme, kind, _, _), g in zip(cty.township_seeds, tcells, strict=True):
        if kind == "subdistrict":
            n_sub += 1
            seg = n_sub
        else:
            seg = 100 + n_town
            n_town += 1
        dv.t_code.append(f"{cty.plan.code}{seg:03d}")
        dv.t_name.append(nme)
        dv.t_kind.append(kind)
        dv.t_geom.append(g)
    pts = np.column_stack([b["cx"], b["cy"]])
    bt = _point_in(np.array(dv.t_geom, dtype=object), shapely.points(pts))
    taken: set[str] = set()
    b_comm = np.full(len(pts), -1, dtype=np.int64)
    for ti, tgeom in enumerate(dv.t_geom):
        in_t = np.flatnonzero((bt == ti) & (b["cap"] > 0))
        seeds_list, urban_flags = [], []
        for urban_part, size in ((True, 2000.0), (False, 700.0)):
            sel = in_t[~b["rural"][in_t]] if urban_part else in_t[b["rural"][in_t]]
            cap = b["cap"][sel]
            if cap.sum() < 150:
                continue
            k = max(1, round(cap.sum() / size))
            cen = _weighted_kmeans(pts[sel], cap, k, rng)
            lab = _nearest(pts[sel], cen)
            cen = cen[np.bincount(lab, weights=cap, minlength=len(cen)) > 0]
            seeds_list.append(cen)
            urban_flags += [urban_part] * len(cen)
        if not seeds_list:
            c_seeds = np.array([[tgeom.centroid.x, tgeom.centroid.y]])
            urban_flags = [dv.t_kind[ti] == "subdistrict"]
        else:
            c_seeds = np.vstack(seeds_list)
        # Number communities north to south, west to east, like a 统计用区划代码 list.
        order = np.lexsort((c_seeds[:, 0], -np.round(c_seeds[:, 1] / 1500.0)))
        c_seeds = c_seeds[order]
        flags = np.asarray(urban_flags)[order]
        cells = _voronoi_cells(c_seeds, tgeom)
        urban_names = nm.place_names(rng, int(flags.sum()), urban=True, taken=taken)
        rural_names = nm.place_names(rng, int((~flags).sum()), urban=False, taken=taken)
        rho, _ = cty.rho(c_seeds[:, 0], c_seeds[:, 1])
        n_u = n_r = 0
        first = len(dv.c_code)
        for j, (g, fl) in enumerate(zip(cells, flags, strict=True)):
            if fl:
                n_u += 1
                seg, nme = n_u, urban_names[n_u - 1] + "社区"
                town = dv.t_kind[ti] == "town"
                urc = "121" if town else ("111" if rho[j] < 0.7 else "112")
            else:
                seg, nme = 199 + n_r + 1, rural_names[n_r] + "村"
                n_r += 1
                urc = "122" if rho[j] < 1.4 else "220"
            dv.c_code.append(f"{dv.t_code[ti]}{seg:03d}")
            dv.c_name.append(nme)
            dv.c_township.append(ti)
            dv.c_urban.append(bool(fl))
            dv.c_urc.append(urc)
            dv.c_geom.append(g)
        in_all = np.flatnonzero(bt == ti)
        local = _point_in(np.asarray(cells, dtype=object), shapely.points(pts[in_all]))
        b_comm[in_all] = np.where(local >= 0, first + local, -1)
    return dv, b_comm


def _bisect(
    pts: Arr, w: Arr, k: int, bounds: tuple[float, float, float, float]
) -> list[tuple[tuple[float, float, float, float], Arr]]:
    """Recursive coordinate bisection into ``k`` parts of near-equal weight.

    Each cut is along the longer side of the current box, at the weighted quantile
    ``floor(k/2)/k``, half-way between two neighbouring points, so no point lies on a cut.
    """
    out: list[tuple[tuple[float, float, float, float], Arr]] = []
    stack = [(np.arange(len(pts)), k, bounds)]
    while stack:
        idx, kk, (x0, y0, x1, y1) = stack.pop()
        if kk <= 1 or len(idx) <= 1:
            out.append(((x0, y0, x1, y1), idx))
            continue
        axis = 0 if (x1 - x0) >= (y1 - y0) else 1
        order = idx[np.argsort(pts[idx, axis], kind="stable")]
        k1 = kk // 2
        cw = np.cumsum(w[order])
        target = cw[-1] * k1 / kk
        i = int(np.argmin(np.abs(cw - target)))
        i = min(max(i, k1 - 1), len(order) - (kk - k1) - 1)
        cut = (pts[order[i], axis] + pts[order[i + 1], axis]) / 2.0
        left, right = order[: i + 1], order[i + 1 :]
        if axis == 0:
            stack.append((right, kk - k1, (cut, y0, x1, y1)))
            stack.append((left, k1, (x0, y0, cut, y1)))
        else:
            stack.append((right, kk - k1, (x0, cut, x1, y1)))
            stack.append((left, k1, (x0, y0, x1, cut)))
    return out


@dataclass
class _Grids:
    code: list[str] = field(default_factory=list)
    name: list[str] = field(default_factory=list)
    community: list[int] = field(default_factory=list)
    geom: list[Any] = field(default_factory=list)
    target: Arr = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def _grids(cty: _County, dv: _Divisions, b: dict[str, Arr], b_comm: Arr, n_grids: int) -> _Grids:
    """Split every community into grids of ~400 households and draw each grid's household count.

    The number of grids per community is proportional to its capacity (at least one), the
    county total is exact, and the households per grid are drawn around 400 (most within
    ±10 %, a few outliers as in real plans) summing exactly to the county's households.
    """
    rng = cty.rng
    nc = len(dv.c_code)
    res = b["cap"] > 0
    ccap = np.bincount(
        b_comm[res & (b_comm >= 0)], weights=b["cap"][res & (b_comm >= 0)], minlength=nc
    )
    nres = np.bincount(b_comm[res & (b_comm >= 0)], minlength=nc)
    k = _largest_remainder(ccap, n_grids, minimum=1)
    over = k > np.maximum(nres, 1)
    if over.any():
        spare = int((k[over] - np.maximum(nres[over], 1)).sum())
        k[over] = np.maximum(nres[over], 1)
        for _ in range(spare):
            k[int(np.argmax(ccap / k * (k < nres)))] += 1
    gr = _Grids()
    pts = np.column_stack([b["cx"], b["cy"]])
    for c in range(nc):
        sel = np.flatnonzero((b_comm == c) & res)
        cg = dv.c_geom[c]
        minx, miny, maxx, maxy = cg.bounds
        bounds = (minx - 1.0, miny - 1.0, maxx + 1.0, maxy + 1.0)
        leaves = (
            _bisect(pts[sel], b["cap"][sel], int(k[c]), bounds) if len(sel) else [(bounds, sel)]
        )
        boxes = shapely.box(*np.array([lf[0] for lf in leaves]).T)
        polys = _polygonal(shapely.intersection(boxes, cg))
        rep = shapely.get_coordinates(shapely.point_on_surface(polys))
        h = np.sqrt(cg.area / max(len(leaves), 1))
        row = np.floor((maxy - rep[:, 1]) / h)
        order = np.lexsort((rep[:, 0], row))
        cname = dv.c_name[c]
        for seq, li in enumerate(order, start=1):
            gr.code.append(f"{dv.c_code[c]}{seq:03d}")
            gr.name.append(f"{cname}第{seq}网格")
            gr.community.append(c)
            gr.geom.append(polys[li])
    n = len(gr.code)
    dev = rng.normal(0.0, 0.035, n)
    outlier = rng.random(n) < 0.025
    dev[outlier] = rng.choice([-1, 1], int(outlier.sum())) * rng.uniform(
        0.11, 0.22, int(outlier.sum())
    )
    dev = np.where(outlier, dev, np.clip(dev, -0.085, 0.085))
    target = np.round(HOUSEHOLDS_PER_GRID * (1 + dev)).astype(np.int64)
    diff = cty.plan.households - int(target.sum())
    while diff != 0:
        step = 1 if diff > 0 else -1
        cand = np.flatnonzero(~outlier)
        pick = rng.choice(cand, size=min(abs(diff), len(cand)), replace=False)
        target[pick] += step
        diff -= step * len(pick)
    gr.target = target
    return gr


# --------------------------------------------------------------------------------------------
# People and output accumulation


class _People:
    """The persons table, filled as roles are created; names/phones are drawn at the end."""

    def __init__(self) -> None:
        self.org: list[str] = []
        self.position: list[str] = []
        self.admin_code: list[str] = []

    def add(self, org: str, position: str, admin_code: str) -> int:
        self.org.append(org)
        self.position.append(position)
        self.admin_code.append(admin_code)
        return len(self.org) - 1

    def table(self, rng: np.random.Generator) -> Table:
        n = len(self.org)
        return {
            "name": nm.person_names(rng, n),
            "phone": nm.phones(rng, n),
            "org": self.org,
            "position": self.position,
            "admin_code": self.admin_code,
        }


class _Rows:
    """Column-wise accumulator for one output table."""

    def __init__(self, *columns: str) -> None:
        self.cols: dict[str, list[Any]] = {c: [] for c in columns}

    def add(self, **values: Any) -> None:
        for k, v in values.items():
            self.cols[k].append(v)

    def extend(self, **values: Sequence[Any] | Arr) -> None:
        for k, v in values.items():
            if isinstance(v, np.ndarray) and v.dtype != object:
                self.cols[k].extend(v.tolist())
            else:
                self.cols[k].extend(list(v))

    def table(self, geometry: Sequence[str] = ()) -> Table:
        out: Table = {}
        for k, v in self.cols.items():
            if k in geometry:
                arr = np.empty(len(v), dtype=object)
                arr[:] = v
                out[k] = arr
            elif v and isinstance(v[0], bool | np.bool_):
                out[k] = np.asarray(v, dtype=bool)
            elif v and isinstance(v[0], int | np.integer) and not isinstance(v[0], bool):
                out[k] = np.asarray(v, dtype=np.int64)
            elif v and isinstance(v[0], float | np.floating):
                out[k] = np.asarray(v, dtype=np.float64)
            else:
                out[k] = v
        return out


_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_W = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ORG_W = (3, 7, 9, 10, 5, 8, 4, 2)


def uscc(county: str, serial: int) -> str:
    """A GB 32100-valid 统一社会信用代码: 9 1 + county + GB 11714 organisation code + check.

    Args:
        county: 6-digit code of the registering county.
        serial: Any non-negative integer; distinct serials give distinct codes.

    Returns:
        18 characters whose two check characters (GB 11714 and GB 32100) are valid.

    Example:
        >>> uscc("430204", 1)
        '91430204000000019U'
    """
    body = f"{serial % 10**8:08d}"
    c = 11 - sum(int(ch) * w for ch, w in zip(body, _ORG_W, strict=True)) % 11
    org = body + ("X" if c == 10 else "0" if c == 11 else str(c))
    head = "91" + county + org
    s = sum(_USCC_CHARS.index(ch) * w for ch, w in zip(head, _USCC_W, strict=True))
    return head + _USCC_CHARS[(31 - s % 31) % 31]


# --------------------------------------------------------------------------------------------
# Households


def _allocate(total: Arr, group: Arr, weight: Arr, n_groups: int) -> Arr:
    """Split ``total[g]`` over the members of each group ∝ weight (largest remainder, exact)."""
    wsum = np.bincount(group, weights=weight, minlength=n_groups)
    share = np.where(wsum[group] > 0, weight / np.where(wsum[group] > 0, wsum[group], 1), 0.0)
    raw = share * total[group]
    base = np.floor(raw).astype(np.int64)
    short = total - np.bincount(group, weights=base, minlength=n_groups).astype(np.int64)
    rem = raw - base
    order = np.lexsort((-rem, group))
    g_sorted = group[order]
    first = np.searchsorted(g_sorted, np.arange(n_groups))
    rank = np.arange(len(order)) - first[g_sorted]
    bump = np.zeros(len(group), dtype=np.int64)
    bump[order] = (rank < short[g_sorted]).astype(np.int64)
    result: Arr = base + bump
    return result


def _households(
    rng: np.random.Generator, b: dict[str, Arr], b_grid: Arr, gr: _Grids, population: int
) -> tuple[Arr, Arr]:
    """Households and population per building from the grids' targets (exact totals)."""
    ng = len(gr.code)
    res = b["cap"] > 0
    gcap = np.bincount(b_grid[res], weights=b["cap"][res], minlength=ng)
    target = gr.target.copy()
    comm = np.asarray(gr.community)
    for g in np.flatnonzero(gcap <= 0):
        same = np.flatnonzero((comm == comm[g]) & (gcap > 0))
        if len(same):
            target[same[np.argmax(gcap[same])]] += target[g]
        target[g] = 0
    gr.target = target
    hh = np.zeros(len(b_grid), dtype=np.int64)
    idx = np.flatnonzero(res)
    hh[idx] = _allocate(target, b_grid[idx], b["cap"][idx], ng)
    rate = np.where(b["rural"], rng.normal(2.3, 0.35, len(hh)), rng.normal(1.85, 0.3, len(hh)))
    extra_w = hh * np.clip(rate, 0.3, 4.0)
    extra = _largest_remainder(extra_w, max(population - int(hh.sum()), 0))
    pop = np.where(hh > 0, hh + extra, 0)
    # Rounding may leave a few extra persons on buildings without households: move them.
    lost = int(population - pop.sum())
    if lost and (hh > 0).any():
        pop[np.flatnonzero(hh > 0)[0]] += lost
    return hh, pop


# --------------------------------------------------------------------------------------------
# Ledgers and survey layers of one county


_TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "divisions": ("code", "level", "parent_code", "name", "boundary", "urban_rural_code"),
    "barrier_lines": ("kind", "name", "geom"),
    "buildings": (
        "geom",
        "households",
        "population",
        "structure",
        "floors",
        "use",
        "year_band",
        "urban_rural",
    ),
    "grids": ("grid_code", "name", "kind", "community_code", "geom", "households", "population"),
    "grid_assignments": ("grid_code", "person_key", "role"),
    "enterprises": (
        "uscc",
        "name",
        "address",
        "sector",
        "special_flags",
        "risk_level",
        "assessed_at",
        "employees",
        "geom",
    ),
    "safety_hazards": (
        "hazard_no",
        "title",
        "description",
        "enterprise_uscc",
        "geom",
        "level",
        "category",
        "found_via",
        "status",
        "escalated",
        "responsible_org",
        "responsible_person_key",
        "measures",
        "deadline",
        "found_at",
        "closed_at",
    ),
    "geohazard_points": (
        "code",
        "name",
        "kind",
        "scale",
        "danger_grade",
        "stability",
        "threatened_households",
        "threatened_people",
        "threatened_property",
        "monitoring",
        "two_cards_issued",
        "geom",
    ),
    "geohazard_zones": ("code", "name", "risk_level", "households", "people", "geom"),
    "shelters": (
        "name",
        "address",
        "geom",
        "site",
        "grade",
        "space_type",
        "duration_class",
        "capacity",
        "effective_area",
        "hazard_types",
        "status",
    ),
    "evacuation_routes": ("name", "geom", "geohazard_code", "shelter_name"),
    "forest_patches": ("code", "name", "forest_type", "fuel_load", "area_ha", "geom"),
    "fire_points": (
        "geom",
        "source_kind",
        "detected_at",
        "confidence",
        "verification_status",
        "verdict",
        "forest_patch_code",
    ),
    "facilities": ("kind", "name", "geom", "people", "attributes"),
    "responsibilities": ("person_key", "target_type", "target_code", "level", "duty"),
}
_GEOMETRY_COLUMNS = ("boundary", "geom", "site")


@dataclass
class _Ctx:
    """Everything the ledger builders of one county need."""

    cty: _County
    dv: _Divisions
    gr: _Grids
    b: dict[str, Arr]
    b_grid: Arr
    b_comm: Arr
    hh: Arr
    pop: Arr
    ll: Callable[[Arr], Arr]
    rows: dict[str, _Rows]
    people: _People
    grid_worker: list[int]
    comm_leader: list[int]
    comm_cadre: list[int]
    comm_baobao: list[int]
    twp_head: list[int]
    twp_safety: list[int]
    county_staff: dict[str, list[int]]
    grid_ll: Arr
    building_ll: Arr
    blocks: Arr
    block_typ: Arr

    def where(self, x: Arr, y: Arr) -> tuple[Arr, Arr]:
        """Community and township index of points (−1 outside the county)."""
        pts = shapely.points(np.column_stack([x, y]))
        c = _point_in(np.array(self.dv.c_geom, dtype=object), pts)
        t = np.where(c >= 0, np.asarray(self.dv.c_township)[np.maximum(c, 0)], -1)
        return c, t

    def address(self, c: int, rng: np.random.Generator) -> str:
        t = self.dv.c_township[c]
        tail = f"{rng.integers(1, 400)}号" if self.dv.c_urban[c] else f"{rng.integers(1, 15)}组"
        return f"湖南省株洲市{self.cty.name}{self.dv.t_name[t]}{self.dv.c_name[c]}{tail}"


def _inside_footprint(ctx: _Ctx, i: Arr, rng: np.random.Generator) -> tuple[Arr, Arr]:
    """Random points well inside the footprints of buildings ``i``."""
    b = ctx.b
    a = rng.uniform(-0.3, 0.3, len(i)) * b["L"][i]
    c = rng.uniform(-0.3, 0.3, len(i)) * b["W"][i]
    x = b["cx"][i] + a * b["ux"][i] - c * b["uy"][i]
    y = b["cy"][i] + a * b["uy"][i] + c * b["ux"][i]
    return x, y


def _people_for(ctx: _Ctx) -> None:
    """Officials, grid leaders and grid workers of the county."""
    cty, dv, p = ctx.cty, ctx.dv, ctx.people
    code = cty.plan.code
    ctx.county_staff = {
        "应急管理局": [
            p.add(f"{cty.name}应急管理局", pos, code)
            for pos in (
                "局长",
                "副局长",
                "安全生产监管股股长",
                "执法大队队长",
                "执法大队队员",
                "执法大队队员",
            )
        ],
        "自然资源局": [
            p.add(f"{cty.name}自然资源局", pos, code)
            for pos in ("副局长", "地质灾害防治股股长", "地质环境监测员")
        ],
        "林业局": [p.add(f"{cty.name}林业局", pos, code) for pos in ("副局长", "防火办主任")],
    }
    for t, tname in enumerate(dv.t_name):
        org = tname.replace("街道", "街道办事处") if tname.endswith("街道") else f"{tname}人民政府"
        head = "主任" if tname.endswith("街道") else "镇长"
        ctx.twp_head.append(p.add(org, head, dv.t_code[t]))
        ctx.twp_safety.append(p.add(org, "安全生产监督管理站站长", dv.t_code[t]))
    for c, cname in enumerate(dv.c_name):
        org = cname + ("居民委员会" if dv.c_urban[c] else "村民委员会")
        t = dv.c_township[c]
        tname = dv.t_name[t]
        torg = tname.replace("街道", "街道办事处") if tname.endswith("街道") else f"{tname}人民政府"
        ctx.comm_leader.append(p.add(org, "党总支书记（网格长）", dv.c_code[c]))
        ctx.comm_cadre.append(p.add(org, "主任" if dv.c_urban[c] else "村主任", dv.c_code[c]))
        ctx.comm_baobao.append(p.add(torg, "包保干部", dv.t_code[t]))
    for g, gcode in enumerate(ctx.gr.code):
        c = ctx.gr.community[g]
        org = dv.c_name[c] + ("居民委员会" if dv.c_urban[c] else "村民委员会")
        ctx.grid_worker.append(p.add(org, "专职网格员", gcode[:12]))


def _emit_divisions_grids(ctx: _Ctx, outline_ll: Any) -> None:
    dv, gr, rows = ctx.dv, ctx.gr, ctx.rows
    code = ctx.cty.plan.code
    t_ll = ctx.ll(np.array(dv.t_geom, dtype=object))
    for t in range(len(dv.t_code)):
        rows["divisions"].add(
            code=dv.t_code[t],
            level="township",
            parent_code=code,
            name=dv.t_name[t],
            boundary=t_ll[t],
            urban_rural_code=None,
        )
    c_ll = ctx.ll(np.array(dv.c_geom, dtype=object))
    for c in range(len(dv.c_code)):
        rows["divisions"].add(
            code=dv.c_code[c],
            level="village",
            parent_code=dv.t_code[dv.c_township[c]],
            name=dv.c_name[c],
            boundary=c_ll[c],
            urban_rural_code=dv.c_urc[c],
        )
    del outline_ll
    ng = len(gr.code)
    g_hh = np.bincount(ctx.b_grid, weights=ctx.hh, minlength=ng).astype(np.int64)
    g_pop = np.bincount(ctx.b_grid, weights=ctx.pop, minlength=ng).astype(np.int64)
    area = shapely.area(ctx.b["geom"])
    ind = np.isin(ctx.b["use"], [_U_IND])
    ind_share = np.bincount(ctx.b_grid, weights=area * ind, minlength=ng) / np.maximum(
        np.bincount(ctx.b_grid, weights=area, minlength=ng), 1.0
    )
    g_ll = ctx.grid_ll
    for g in range(ng):
        rows["grids"].add(
            grid_code=gr.code[g],
            name=gr.name[g],
            kind="dedicated" if ind_share[g] > 0.6 else "basic",
            community_code=gr.code[g][:12],
            geom=g_ll[g],
            households=int(g_hh[g]),
            population=int(g_pop[g]),
        )
        rows["grid_assignments"].add(
            grid_code=gr.code[g], person_key=ctx.grid_worker[g], role="grid_worker"
        )
        rows["grid_assignments"].add(
            grid_code=gr.code[g], person_key=ctx.comm_leader[gr.community[g]], role="grid_leader"
        )
        rows["responsibilities"].add(
            person_key=ctx.comm_baobao[gr.community[g]],
            target_type="grid",
            target_code=gr.code[g],
            level="township",
            duty="baobao",
        )


def _emit_buildings(ctx: _Ctx) -> None:
    b = ctx.b
    r = ctx.rows["buildings"]
    r.extend(
        geom=ctx.building_ll,
        households=ctx.hh,
        population=ctx.pop,
        structure=np.asarray(STRUCTURES)[b["structure"]],
        floors=b["floors"],
        use=np.asarray(USES)[b["use"]],
        year_band=np.asarray(YEARS)[b["year"]],
        urban_rural=np.where(b["rural"], "rural", "urban"),
    )


_RURAL_SECTORS = (1, 2, 3)  # fireworks, non_coal_mine, coal_mine


def _enterprises(
    ctx: _Ctx, targets: _Targets, serial0: int
) -> tuple[list[str], Arr, Arr, list[str], list[int]]:
    """Enterprises of the county with exact colour counts; returns what hazards need."""
    rng, cty, b = ctx.cty.rng, ctx.cty, ctx.b
    red, orange, yellow, blue = targets.colours
    colours = np.array(["red"] * red + ["orange"] * orange + ["yellow"] * yellow + ["blue"] * blue)
    n = len(colours)
    base = np.asarray(cty.plan.sector_weights, dtype=float)
    boost = {
        "red": np.array([6, 4, 2, 2, 0.0, 0.0]),
        "orange": np.array([4, 4, 3, 3, 0.5, 0.1]),
        "yellow": np.array([1.5, 1.5, 1.5, 1.5, 1, 0.5]),
        "blue": np.array([0.2, 0.3, 0.3, 0.1, 1, 2]),
    }
    sector = np.empty(n, dtype=np.int64)
    for col, w in boost.items():
        m = colours == col
        pw = base * w
        if pw.sum() == 0:
            pw = base.copy()
        sector[m] = rng.choice(6, size=int(m.sum()), p=pw / pw.sum())
    ind_urban = np.flatnonzero((b["use"] == _U_IND) & ~b["rural"])
    ind_rural = np.flatnonzero(b["typ"] == T_RIND)
    ind_any = np.flatnonzero(b["use"] == _U_IND)
    spots = cty.plan.industrial_spots
    chem_xy = [(*cty.to_m(np.array([s[0]]), np.array([s[1]])), s[2]) for s in spots if s[3]]
    building = np.empty(n, dtype=np.int64)
    rural_sector = np.isin(sector, _RURAL_SECTORS)
    for mask, wanted in ((rural_sector, ind_rural), (~rural_sector, ind_urban)):
        pool = wanted if len(wanted) else ind_any
        if not len(pool):
            pool = np.arange(len(b["cx"]))
        k = int(mask.sum())
        building[mask] = pool[
            rng.permutation(np.resize(np.arange(len(pool)), max(k, len(pool))))[:k]
        ]
    # Hazchem goes to the chemical park where there is one.
    if chem_xy:
        cx, cy, cr = chem_xy[0]
        d = np.hypot(b["cx"][ind_urban] - cx[0], b["cy"][ind_urban] - cy[0])
        park = ind_urban[d < cr]
        hz = np.flatnonzero(sector == 0)
        if len(park) and len(hz):
            building[hz] = park[
                rng.permutation(np.resize(np.arange(len(park)), max(len(hz), len(park))))[: len(hz)]
            ]
    x, y = _inside_footprint(ctx, building, rng)
    comm, _ = ctx.where(x, y)
    comm = np.where(comm >= 0, comm, ctx.b_comm[building])
    brands = nm.brand_names(rng, n, set())
    names: list[str] = []
    codes: list[str] = []
    principal: list[int] = []
    short = cty.name.rstrip("区县市")
    for i in range(n):
        sec = _SECTORS[sector[i]]
        trades = nm.ENTERPRISE_TRADES[sec]
        trade, flags = trades[int(rng.integers(len(trades)))]
        if sec == "coal_mine":
            ename = f"{short}{brands[i]}煤矿"
        elif trade == "加油站":
            ename = f"中国石化株洲{brands[i]}加油站"
        elif trade == "采石场":
            ename = f"{short}{brands[i]}采石场"
        else:
            ename = f"株洲{brands[i]}{trade}有限公司"
        fl = [f for f in flags if rng.random() < 0.75]
        if "confined_space" not in fl and rng.random() < 0.3:
            fl.append("confined_space")
        if sec == "hazchem" and colours[i] in ("red", "orange") and "major_hazard_source" not in fl:
            fl.append("major_hazard_source")
        if sec == "hazchem" and chem_xy:
            cx, cy, cr = chem_xy[0]
            if np.hypot(x[i] - cx[0], y[i] - cy[0]) < cr:
                fl.append("in_chemical_park")
        code = uscc(cty.plan.code, serial0 + i * 7919 + 1)
        emp = int(
            np.clip(rng.lognormal({"red": 5.5, "orange": 4.8}.get(colours[i], 3.6), 0.7), 5, 5000)
        )
        c = int(comm[i])
        ctx.rows["enterprises"].add(
            uscc=code,
            name=ename,
            address=ctx.address(c, rng),
            sector=sec,
            special_flags=sorted(set(fl)),
            risk_level=str(colours[i]),
            assessed_at=(AS_OF - timedelta(days=int(rng.integers(10, 365)))).date(),
            employees=emp,
            geom=shapely.Point(x[i], y[i]),
        )
        t = ctx.dv.c_township[c]
        p_key = ctx.people.add(ename, "主要负责人", ctx.dv.c_code[c])
        principal.append(p_key)
        high = colours[i] in ("red", "orange")
        level = "county" if high else "township"
        reg = ctx.county_staff["应急管理局"][2 + i % 4] if high else ctx.twp_safety[t]
        rr = ctx.rows["responsibilities"]
        rr.add(
            person_key=reg,
            target_type="enterprise",
            target_code=code,
            level=level,
            duty="regulator",
        )
        rr.add(
            person_key=p_key,
            target_type="enterprise",
            target_code=code,
            level=level,
            duty="enterprise_principal",
        )
        names.append(ename)
        codes.append(code)
    return codes, np.column_stack([x, y]), colours, names, principal


def _hazards(
    ctx: _Ctx, targets: _Targets, ent: tuple[list[str], Arr, Arr, list[str], list[int]]
) -> None:
    """The hidden-hazard ledger: exact total and closed count, realistic open tail."""
    rng = ctx.cty.rng
    codes, exy, colours, enames, principal = ent
    n, n_closed = targets.hazards, targets.hazards_closed
    n_open = n - n_closed
    is_ent = rng.random(n) < 0.78
    w = np.select(
        [colours == "red", colours == "orange", colours == "yellow"], [8.0, 4.0, 2.0], 1.0
    )
    e_idx = rng.choice(len(codes), size=n, p=w / w.sum())
    res_bld = np.flatnonzero(np.isin(ctx.b["use"], [_U_RES, _U_MIX, _U_COMM]))
    b_idx = res_bld[rng.integers(0, len(res_bld), n)]
    status = np.array(
        ["closed"] * n_closed
        + list(
            rng.choice(
                ["found", "assigned", "rectifying", "closeout_requested"],
                size=n_open,
                p=[0.12, 0.18, 0.5, 0.2],
            )
        )
    )
    status = status[rng.permutation(n)]
    open_ = status != "closed"
    age = np.where(open_, rng.uniform(1, 150, n), rng.uniform(3, 720, n))
    found = [
        AS_OF - timedelta(days=float(a), hours=float(h))
        for a, h in zip(age, rng.uniform(0, 8, n), strict=True)
    ]
    order = np.argsort([f.timestamp() for f in found], kind="stable")
    month_seq: dict[str, int] = {}
    major = is_ent & (rng.random(n) < 0.025)
    overdue = open_ & (rng.random(n) < 0.3)
    b = ctx.b
    for i in order:
        f = found[i]
        ym = f"{f:%Y%m}"
        month_seq[ym] = month_seq.get(ym, 0) + 1
        hz_no = f"{ctx.cty.plan.code}-{ym}-{month_seq[ym]:04d}"
        if is_ent[i]:
            cat = "basic_management" if rng.random() < 0.3 else "site"
            pool = nm.HAZARD_TEMPLATES[cat]
            e = e_idx[i]
            x, y = exy[e, 0] + rng.normal(0, 4), exy[e, 1] + rng.normal(0, 4)
            via = rng.choice(
                [
                    "self_check",
                    "inspection",
                    "expert",
                    "covert",
                    "assigned_from_above",
                    "survey",
                    "public_report",
                    "grid_patrol",
                ],
                p=[0.35, 0.3, 0.1, 0.05, 0.05, 0.05, 0.05, 0.05],
            )
            org, person, euscc = enames[e], principal[e], codes[e]
        else:
            cat = "site"
            pool = tuple(t for t in nm.HAZARD_TEMPLATES["site"] if t[3])
            bi = b_idx[i]
            x, y = b["cx"][bi], b["cy"][bi]
            via = rng.choice(["grid_patrol", "public_report", "inspection"], p=[0.6, 0.3, 0.1])
            g = ctx.b_grid[bi]
            c = ctx.gr.community[g]
            org = ctx.dv.c_name[c] + ("居民委员会" if ctx.dv.c_urban[c] else "村民委员会")
            person, euscc = ctx.grid_worker[g], None
        title, desc, measures, _ = pool[int(rng.integers(len(pool)))]
        days = int(rng.integers(60, 150)) if major[i] else int(rng.integers(7, 60))
        deadline = f.date() + timedelta(days=days)
        if open_[i]:
            deadline = (
                AS_OF.date() - timedelta(days=int(rng.integers(1, 45)))
                if overdue[i]
                else max(deadline, AS_OF.date() + timedelta(days=int(rng.integers(3, 60))))
            )
            closed_at = None
        else:
            late = rng.random() < 0.08
            span = days + (int(rng.integers(1, 20)) if late else -int(rng.integers(0, days)))
            closed_at = min(
                f + timedelta(days=max(span, 1), hours=float(rng.uniform(0, 6))),
                AS_OF - timedelta(hours=1),
            )
        ctx.rows["safety_hazards"].add(
            hazard_no=hz_no,
            title=str(title),
            description=str(desc),
            enterprise_uscc=euscc,
            geom=shapely.Point(x, y),
            level="major" if major[i] else "general",
            category=cat,
            found_via=str(via),
            status=str(status[i]),
            escalated=bool(major[i] or (overdue[i] and rng.random() < 0.1)),
            responsible_org=org,
            responsible_person_key=int(person),
            measures=str(measures),
            deadline=deadline,
            found_at=f,
            closed_at=closed_at,
        )


_GEO_KINDS = (
    "landslide",
    "collapse",
    "debris_flow",
    "ground_collapse",
    "ground_fissure",
    "subsidence",
)
_GEO_ZH = {
    "landslide": "滑坡",
    "collapse": "崩塌",
    "debris_flow": "泥石流",
    "ground_collapse": "地面塌陷",
    "ground_fissure": "地裂缝",
    "subsidence": "地面沉降",
}


def _danger_grade(people: int) -> str:
    """险情等级 by threatened people (DZ/T 0286): Ⅰ ≥ 1000, Ⅱ 500–1000, Ⅲ 100–500, Ⅳ < 100."""
    if people >= 1000:
        return "I"
    if people >= 500:
        return "II"
    if people >= 100:
        return "III"
    return "IV"


def _geohazards(ctx: _Ctx, targets: _Targets) -> tuple[Arr, list[str], Arr]:
    """Geological hazard points on slopes above rural houses, their zones and duty holders."""
    rng, cty, b = ctx.cty.rng, ctx.cty, ctx.b
    cand = np.flatnonzero(b["rural"] & (ctx.hh > 0))
    if len(cand) > 20_000:  # a sample is plenty to find steep slopes, and bounds the cost
        cand = np.sort(rng.choice(cand, size=20_000, replace=False))
    if not len(cand):
        return np.zeros((0, 2)), [], np.zeros(0)
    x, y = b["cx"][cand], b["cy"][cand]
    e0 = cty.elevation(x, y)
    gx = (cty.elevation(x + 25.0, y) - e0) / 25.0
    gy = (cty.elevation(x, y + 25.0) - e0) / 25.0
    slope = np.hypot(gx, gy)
    score = slope * (e0 > 0.05) + 1e-9
    cell = np.floor(x / 900.0) * 100_000 + np.floor(y / 900.0)
    order = rng.choice(len(cand), size=len(cand), replace=False, p=score / score.sum())
    _, first = np.unique(cell[order], return_index=True)
    pick = order[np.sort(first)][: targets.geohazards]
    n = len(pick)
    up = np.column_stack([gx[pick], gy[pick]])
    up /= np.maximum(np.hypot(*up.T), 1e-12)[:, None]
    dist = rng.uniform(30.0, 80.0, n)
    px, py = x[pick] + up[:, 0] * dist, y[pick] + up[:, 1] * dist
    radius = rng.choice([80.0, 120.0, 180.0, 260.0], size=n, p=[0.4, 0.3, 0.2, 0.1])
    res = np.flatnonzero(ctx.hh > 0)
    tree = shapely.STRtree(shapely.points(np.column_stack([b["cx"][res], b["cy"][res]])))
    gpts = shapely.points(np.column_stack([px, py]))
    qi, qb = tree.query(gpts, predicate="dwithin", distance=radius)
    thh = np.bincount(qi, weights=ctx.hh[res][qb], minlength=n).astype(np.int64)
    tpp = np.bincount(qi, weights=ctx.pop[res][qb], minlength=n).astype(np.int64)
    base = cand[pick]
    thh = np.where(thh > 0, thh, ctx.hh[base])
    tpp = np.where(tpp > 0, tpp, ctx.pop[base])
    comm, twp = ctx.where(px, py)
    comm = np.where(comm >= 0, comm, ctx.b_comm[base])
    twp = np.asarray(ctx.dv.c_township)[comm]
    kinds = rng.choice(len(_GEO_KINDS), size=n, p=[0.55, 0.25, 0.08, 0.08, 0.02, 0.02])
    codes: list[str] = []
    seq: dict[int, int] = {}
    rr, p = ctx.rows["responsibilities"], ctx.people
    nr = ctx.county_staff["自然资源局"]
    for i in range(n):
        t, c = int(twp[i]), int(comm[i])
        seq[t] = seq.get(t, 0) + 1
        code = f"{ctx.dv.t_code[t]}{seq[t]:03d}"
        codes.append(code)
        kind = _GEO_KINDS[kinds[i]]
        grp = int(rng.integers(1, 12))
        ctx.rows["geohazard_points"].add(
            code=code,
            name=f"{ctx.dv.t_name[t]}{ctx.dv.c_name[c]}{grp}组{_GEO_ZH[kind]}",
            kind=kind,
            scale=str(rng.choice(["giant", "large", "medium", "small"], p=[0.01, 0.09, 0.3, 0.6])),
            danger_grade=_danger_grade(int(tpp[i])),
            stability=str(
                rng.choice(["stable", "basically_stable", "unstable"], p=[0.2, 0.55, 0.25])
            ),
            threatened_households=int(thh[i]),
            threatened_people=int(tpp[i]),
            threatened_property=round(float(thh[i] * rng.uniform(8.0, 25.0)), 1),
            monitoring=str(
                rng.choice(
                    [
                        "群测群防（人工巡查）",
                        "简易监测（裂缝计、雨量计）",
                        "专业监测（GNSS、倾斜计）",
                    ],
                    p=[0.5, 0.35, 0.15],
                )
            ),
            two_cards_issued=bool(rng.random() < 0.92),
            geom=gpts[i],
        )
        monitor = p.add(ctx.dv.c_name[c] + "村民委员会", "地质灾害监测员", ctx.dv.c_code[c])
        for key, level, duty in (
            (nr[i % len(nr)], "county", "prevention_lead"),
            (ctx.twp_head[t], "township", "prevention_lead"),
            (ctx.comm_cadre[c], "village", "prevention_lead"),
            (monitor, "village", "monitor"),
            (monitor, "group", "warner"),
            (ctx.comm_leader[c], "village", "evacuation_lead"),
        ):
            rr.add(
                person_key=key,
                target_type="geohazard_point",
                target_code=code,
                level=level,
                duty=duty,
            )
    # Risk zones around the most threatening points.
    nz = min(targets.zones, n)
    top = np.argsort(-tpp, kind="stable")[:nz]
    levels = np.array(
        ["very_high"] * max(1, round(nz * 0.15))
        + ["high"] * round(nz * 0.3)
        + ["medium"] * round(nz * 0.35)
        + ["low"] * nz
    )[:nz]
    for j, i in enumerate(top):
        phi = np.linspace(0, 2 * np.pi, 28, endpoint=False)
        r = rng.uniform(140.0, 320.0) * (1 + 0.25 * np.sin(2 * phi + rng.uniform(0, 6)))
        zone = Polygon(np.column_stack([px[i] + r * np.cos(phi), py[i] + r * np.sin(phi)]))
        zone = _polygonal(np.array([shapely.intersection(zone, cty.inner)], dtype=object))[0]
        inside = shapely.contains_xy(zone, b["cx"][res], b["cy"][res])
        kind = _GEO_KINDS[kinds[i]]
        t, c = int(twp[i]), int(comm[i])
        ctx.rows["geohazard_zones"].add(
            code=f"{cty.plan.code}FXQ{j + 1:03d}",
            name=f"{ctx.dv.t_name[t]}{ctx.dv.c_name[c]}{_GEO_ZH[kind]}风险区",
            risk_level=str(levels[j]),
            households=int(ctx.hh[res][inside].sum()),
            people=int(ctx.pop[res][inside].sum()),
            geom=zone,
        )
    return np.column_stack([px, py]), codes, tpp


def _shelters(ctx: _Ctx, targets: _Targets, gxy: Arr) -> tuple[Arr, list[str]]:
    """Emergency shelters: parks and squares (outdoor), schools and halls (indoor)."""
    rng, b, dv = ctx.cty.rng, ctx.b, ctx.dv
    n = targets.shelters
    green_blocks = np.flatnonzero(ctx.block_typ == T_GREEN)
    green_blocks = green_blocks[np.argsort(-shapely.area(ctx.blocks[green_blocks]), kind="stable")]
    pub = np.flatnonzero((b["use"] == _U_PUB) & ~b["rural"] & (b["typ"] != T_GREEN))
    halls = np.flatnonzero(b["typ"] == T_RPUB)
    plan: list[tuple[str, str, int]] = []  # (grade, kind, index)
    n_out = min(len(green_blocks), max(2, n // 4))
    for j in range(n_out):
        plan.append(
            ("city" if j == 0 else "county" if j < 3 else "township", "park", int(green_blocks[j]))
        )
    n_pub = min(len(pub), max(0, (n - len(plan)) // 2))
    for j in rng.choice(len(pub), size=n_pub, replace=False) if n_pub else []:
        plan.append(("township" if rng.random() < 0.5 else "county", "hall", int(pub[j])))
    rest = n - len(plan)
    pool = halls if len(halls) else pub
    if rest > 0 and len(pool):
        # Village halls nearest to the geohazard points first: that is where people flee to.
        pxy = np.column_stack([b["cx"][pool], b["cy"][pool]])
        if len(gxy):
            near = np.unique(_nearest(gxy, pxy))
            near = near[rng.permutation(len(near))]
        else:
            near = np.zeros(0, dtype=np.int64)
        others = np.setdiff1d(np.arange(len(pool)), near)
        order = np.r_[near, others[rng.permutation(len(others))]][:rest]
        for j in order:
            plan.append(("village", "hall", int(pool[j])))
    xy: list[tuple[float, float]] = []
    names: list[str] = []
    used: set[str] = set()
    for grade, kind, i in plan:
        if kind == "park":
            site = _polygonal(np.array([ctx.blocks[i]], dtype=object))[0]
            pt = site.representative_point()
            eff = float(site.area * 0.65)
            cap = int(eff / 2.0)
            space, hz = "outdoor", ["earthquake", "fire", "hazchem"]
            label = "公园"
        else:
            site = _polygonal(np.array([b["geom"][i]], dtype=object))[0]
            pt = Point(b["cx"][i], b["cy"][i])
            eff = float(b["L"][i] * b["W"][i] * b["floors"][i] * 0.6)
            cap = int(eff / 2.5)
            space, hz = "indoor", ["flood", "geohazard", "typhoon", "public_health"]
            label = "村部" if b["typ"][i] == T_RPUB else "学校体育馆"
        c, _ = ctx.where(np.array([pt.x]), np.array([pt.y]))
        ci = int(c[0]) if c[0] >= 0 else 0
        t = dv.c_township[ci]
        base = f"{dv.c_name[ci]}{label}应急避难场所"
        nme = base if base not in used else f"{dv.t_name[t]}{base}"
        nme = nme if nme not in used else f"{nme}{len(used) + 1}号"
        used.add(nme)
        duration = {
            "city": "long",
            "county": "medium",
            "township": "short",
            "village": "emergency",
        }[grade]
        ctx.rows["shelters"].add(
            name=nme,
            address=ctx.address(ci, rng),
            geom=pt,
            site=site,
            grade=grade,
            space_type=space,
            duration_class=duration,
            capacity=cap,
            effective_area=round(eff, 1),
            hazard_types=sorted(h for h in hz if rng.random() < 0.85) or [hz[0]],
            status=str(
                rng.choice(["closed", "opening", "open", "full"], p=[0.86, 0.04, 0.08, 0.02])
            ),
        )
        level = {
            "city": "county",
            "county": "county",
            "township": "township",
            "village": "village",
        }[grade]
        key = (
            ctx.comm_cadre[ci]
            if level == "village"
            else (ctx.twp_head[t] if level == "township" else ctx.county_staff["应急管理局"][1])
        )
        ctx.rows["responsibilities"].add(
            person_key=key, target_type="shelter", target_code=nme, level=level, duty="baobao"
        )
        xy.append((pt.x, pt.y))
        names.append(nme)
    return np.asarray(xy, dtype=float).reshape(-1, 2), names


def _routes(ctx: _Ctx, gxy: Arr, gcodes: list[str], sxy: Arr, snames: list[str]) -> None:
    """One evacuation route per geohazard point: to the nearest road, then to the shelter."""
    if not len(gxy) or not len(sxy):
        return
    roads = np.array([g for k, _, g in ctx.cty.lines if k.startswith("road")], dtype=object)
    tree = shapely.STRtree(roads)
    pts = shapely.points(gxy)
    near = tree.nearest(pts)
    on_road = shapely.get_coordinates(shapely.get_point(shapely.shortest_line(pts, roads[near]), 1))
    d = ((on_road[:, None, :] - sxy[None]) ** 2).sum(-1)
    ranked = np.argsort(d, axis=1, kind="stable")
    for i in range(len(gxy)):
        # The nearest shelter whose route stays inside the county (outlines are concave).
        route, best = None, int(ranked[i, 0])
        for s in ranked[i, :8]:
            cand = LineString([gxy[i], on_road[i], sxy[s]])
            if ctx.cty.inner.contains(cand):
                route, best = cand, int(s)
                break
        if route is None:  # no shelter reachable inside: lead to the road, where transport waits
            route = LineString([gxy[i], on_road[i]])
        ctx.rows["evacuation_routes"].add(
            name=f"{gcodes[i]}撤离路线",
            geom=route,
            geohazard_code=gcodes[i],
            shelter_name=snames[best],
        )


_FOREST_TYPES = ("马尾松林", "杉木林", "樟树阔叶林", "毛竹林", "油茶林", "针阔混交林", "湿地松林")


def _forests_and_fires(ctx: _Ctx, targets: _Targets) -> None:
    """Forest patches on the hills (relief above a threshold) and fire points in and near them."""
    rng, cty = ctx.cty.rng, ctx.cty
    minx, miny, maxx, maxy = cty.poly.bounds
    step = 250.0
    gx, gy = np.meshgrid(np.arange(minx, maxx, step), np.arange(miny, maxy, step))
    x, y = gx.ravel(), gy.ravel()
    e = cty.elevation(x, y)
    hill = np.zeros(0, dtype=object)
    for thr in (0.3, 0.22, 0.15, 0.1, 0.06):
        m = e > thr
        if m.sum() >= 4 * targets.forests:
            break
    if m.sum():
        cells = shapely.box(x[m] - step / 2, y[m] - step / 2, x[m] + step / 2, y[m] + step / 2)
        hill = shapely.union_all(cells).buffer(120.0).buffer(-180.0).simplify(30.0)
        # Villages and their fields are cleared land; forest compartments (林班) split the rest.
        clear = shapely.union_all(
            shapely.buffer(shapely.points(cty.rural_nodes), 220.0, quad_segs=4)
        )
        hill = shapely.intersection(shapely.difference(hill, clear), cty.inner)
        hx0, hy0, hx1, hy1 = hill.bounds
        k = max(targets.forests * 3, 8)
        seeds = np.column_stack([rng.uniform(hx0, hx1, k), rng.uniform(hy0, hy1, k)])
        cells_v = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds)))
        pieces = shapely.intersection(cells_v, hill)
        hill = shapely.get_parts(_polygonal(pieces))
    patches = hill[shapely.area(hill) > 150_000] if len(hill) else hill
    patches = patches[np.argsort(-shapely.area(patches), kind="stable")][: targets.forests]
    patches = _polygonal(patches)
    codes: list[str] = []
    for j, pg in enumerate(patches):
        rp = pg.representative_point()
        c, _ = ctx.where(np.array([rp.x]), np.array([rp.y]))
        ci = int(c[0]) if c[0] >= 0 else 0
        code = f"{cty.plan.code}LQ{j + 1:03d}"
        codes.append(code)
        ctx.rows["forest_patches"].add(
            code=code,
            name=f"{ctx.dv.t_name[ctx.dv.c_township[ci]]}{ctx.dv.c_name[ci]}林区",
            forest_type=str(rng.choice(_FOREST_TYPES)),
            fuel_load=round(float(rng.uniform(8.0, 45.0)), 1),
            area_ha=round(float(pg.area / 1e4), 2),
            geom=pg,
        )
        for r in range(1 + int(rng.random() < 0.5)):
            ranger = ctx.people.add(
                ctx.dv.c_name[ci] + "村民委员会", "生态护林员", ctx.dv.c_code[ci]
            )
            ctx.rows["responsibilities"].add(
                person_key=ranger,
                target_type="forest_patch",
                target_code=code,
                level="village" if r == 0 else "group",
                duty="ranger",
            )
    # Fire points.
    n = targets.fires
    b = ctx.b
    kinds = (
        rng.choice(4, size=n, p=[0.6, 0.2, 0.1, 0.1])
        if len(patches)
        else rng.choice([1, 2, 3], size=n, p=[0.5, 0.25, 0.25])
    )
    rural = np.flatnonzero(b["rural"] & (b["typ"] == T_RHOUSE))
    ind = np.flatnonzero(b["use"] == _U_IND)
    tree = shapely.STRtree(patches) if len(patches) else None
    for i in range(n):
        k = int(kinds[i])
        if k == 0:
            pg = patches[int(rng.integers(len(patches)))]
            x0, y0, x1, y1 = pg.bounds
            for _ in range(50):
                px, py = rng.uniform(x0, x1), rng.uniform(y0, y1)
                if pg.contains(Point(px, py)):
                    break
            src = rng.choice(
                ["satellite", "tower", "video_ai", "uav", "patrol"], p=[0.4, 0.2, 0.2, 0.1, 0.1]
            )
        elif k in (1, 3) and len(rural):
            j = rural[int(rng.integers(len(rural)))]
            a = rng.uniform(0, 2 * np.pi)
            rad = rng.uniform(60, 250)
            px, py = b["cx"][j] + rad * np.cos(a), b["cy"][j] + rad * np.sin(a)
            src = rng.choice(
                ["satellite", "patrol", "public", "checkpoint"], p=[0.3, 0.3, 0.3, 0.1]
            )
        else:
            j = ind[int(rng.integers(len(ind)))] if len(ind) else int(rng.integers(len(b["cx"])))
            px, py = b["cx"][j], b["cy"][j]
            src = "satellite"
        status = str(
            rng.choice(["closed", "feedback", "dispatched", "pending"], p=[0.75, 0.1, 0.1, 0.05])
        )
        recent = status in ("pending", "dispatched")
        days = rng.uniform(0.05, 2.0) if recent else rng.uniform(3, 540)
        when = AS_OF - timedelta(days=float(days))
        if not recent and when.month in (5, 6, 7, 8, 9) and rng.random() < 0.7:
            when = when.replace(month=int(rng.choice([1, 2, 3, 4, 11, 12])), day=min(when.day, 28))
            when = min(when, AS_OF - timedelta(days=3))
        verdict = None
        if status in ("feedback", "closed"):
            verdict = str(
                rng.choice(
                    ["forest_fire", "false_alarm", "agri_burning", "other"], p=[0.4, 0.3, 0.2, 0.1]
                )
                if k == 0
                else rng.choice(["agri_burning", "false_alarm"], p=[0.8, 0.2])
                if k in (1, 3)
                else rng.choice(["industrial_heat", "false_alarm"], p=[0.9, 0.1])
            )
        if not shapely.contains_xy(cty.inner, px, py):
            px, py = float(b["cx"][rural[0]]), float(b["cy"][rural[0]])
        pt = Point(px, py)
        patch = None
        if tree is not None:
            hit = tree.query(pt, predicate="within")
            patch = codes[int(hit[0])] if len(hit) else None
        conf = int(rng.integers(40, 101)) if src == "satellite" else int(rng.integers(60, 101))
        ctx.rows["fire_points"].add(
            geom=pt,
            source_kind=str(src),
            detected_at=when,
            confidence=conf,
            verification_status=status,
            verdict=verdict,
            forest_patch_code=patch,
        )


# kind: (share, building pool, label suffixes)
_FACILITY_MIX: tuple[tuple[str, float, str], ...] = (
    ("school", 0.28, "public"),
    ("hospital", 0.08, "public"),
    ("welfare_home", 0.06, "public"),
    ("culture_venue", 0.07, "public"),
    ("stadium", 0.01, "public"),
    ("scenic_site", 0.04, "rural"),
    ("religious_site", 0.04, "rural"),
    ("hotel", 0.08, "commercial"),
    ("market", 0.1, "commercial"),
    ("gas_station", 0.08, "industrial"),
    ("depot", 0.06, "industrial"),
    ("other", 0.1, "commercial"),
)


def _facility_details(
    kind: str, rng: np.random.Generator, where: str
) -> tuple[str, int, dict[str, Any]]:
    """Name suffix, people count and survey-style attributes of one facility."""
    if kind == "school":
        level = str(rng.choice(["幼儿园", "小学", "中学"], p=[0.35, 0.45, 0.2]))
        students = int(rng.integers(120, 400) if level == "幼儿园" else rng.integers(300, 2400))
        return (
            level,
            students,
            {
                "学校类别": level,
                "在校生数": students,
                "教职工数": max(10, students // 14),
                "是否寄宿": level == "中学",
            },
        )
    if kind == "hospital":
        lvl = str(rng.choice(["卫生院", "社区卫生服务中心", "人民医院"], p=[0.45, 0.4, 0.15]))
        beds = int(rng.integers(20, 120) if lvl != "人民医院" else rng.integers(300, 1200))
        return lvl, beds, {"医疗机构类别": lvl, "床位数": beds, "医护人员数": int(beds * 1.4)}
    if kind == "welfare_home":
        beds = int(rng.integers(30, 260))
        return (
            "敬老院",
            beds,
            {
                "床位数": beds,
                "在院人数": int(beds * rng.uniform(0.5, 0.95)),
                "护理人员数": max(3, beds // 10),
            },
        )
    if kind == "culture_venue":
        cap = int(rng.integers(100, 1500))
        return str(rng.choice(["文化站", "图书馆", "文化馆"])), cap, {"设计容量": cap}
    if kind == "stadium":
        seats = int(rng.integers(3000, 30000))
        return "体育中心", seats, {"座位数": seats, "建筑面积": int(seats * 2.5)}
    if kind == "scenic_site":
        visitors = int(rng.integers(200, 5000))
        return (
            "风景区",
            visitors,
            {"景区等级": str(rng.choice(["A", "AA", "AAA"])), "日最大承载量": visitors},
        )
    if kind == "religious_site":
        return str(rng.choice(["寺", "庵", "庙"])), int(rng.integers(5, 60)), {"宗教类别": "佛教"}
    if kind == "hotel":
        rooms = int(rng.integers(20, 300))
        return "酒店", rooms * 2, {"客房数": rooms, "床位数": rooms * 2, "星级": "无"}
    if kind == "market":
        booths = int(rng.integers(40, 400))
        return "农贸市场", booths * 3, {"摊位数": booths}
    if kind == "gas_station":
        return (
            "加油站",
            int(rng.integers(4, 15)),
            {"油罐总容积（立方米）": int(rng.integers(60, 200))},
        )
    if kind == "depot":
        return (
            "物流仓库",
            int(rng.integers(10, 80)),
            {"仓储面积（平方米）": int(rng.integers(2000, 20000))},
        )
    del where
    return "综合服务中心", int(rng.integers(20, 200)), {"设计容量": int(rng.integers(50, 500))}


def _facilities(ctx: _Ctx, targets: _Targets) -> None:
    """Public-service facilities of the 普查, on buildings of the matching use."""
    rng, b, dv = ctx.cty.rng, ctx.b, ctx.dv
    pools = {
        "public": np.flatnonzero((b["use"] == _U_PUB) & (b["typ"] != T_GREEN)),
        "commercial": np.flatnonzero((b["use"] == _U_COMM) | (b["use"] == _U_MIX)),
        "industrial": np.flatnonzero(b["use"] == _U_IND),
        "rural": np.flatnonzero(b["typ"] == T_RPUB),
    }
    counts = _largest_remainder(np.array([m[1] for m in _FACILITY_MIX]), targets.facilities)
    used: set[int] = set()
    taken_names: set[str] = set()
    for (kind, _, pool_name), cnt in zip(_FACILITY_MIX, counts, strict=True):
        pool = pools[pool_name]
        if not len(pool):
            pool = pools["public"] if len(pools["public"]) else np.arange(len(b["cx"]))
        free = np.array([i for i in pool if int(i) not in used]) if len(pool) < 50_000 else pool
        if not len(free):
            free = pool
        for i in rng.choice(free, size=min(int(cnt), len(free)), replace=False):
            used.add(int(i))
            x, y = float(b["cx"][i]), float(b["cy"][i])
            c = int(ctx.b_comm[i])
            suffix, people, attrs = _facility_details(kind, rng, pool_name)
            base = dv.c_name[c].removesuffix("社区").removesuffix("村")
            nme = f"{base}{suffix}"
            if nme in taken_names:
                town = dv.t_name[dv.c_township[c]].removesuffix("街道").removesuffix("镇")
                nme = f"{town}{base}{suffix}"
            if nme in taken_names:
                nme = f"{nme}（{len(taken_names)}）"
            taken_names.add(nme)
            ctx.rows["facilities"].add(
                kind=kind, name=nme, geom=Point(x, y), people=people, attributes=attrs
            )


# --------------------------------------------------------------------------------------------
# Orchestration

_METRIC_TABLES = (
    "barrier_lines",
    "enterprises",
    "safety_hazards",
    "geohazard_points",
    "geohazard_zones",
    "shelters",
    "evacuation_routes",
    "forest_patches",
    "fire_points",
    "facilities",
)


def _linear(g: Any) -> Any:
    """Only the line parts of a clipped line (clipping can add stray points)."""
    parts = shapely.get_parts(g)
    parts = parts[(shapely.get_type_id(parts) == 1) & (shapely.length(parts) > 0)]
    if len(parts) == 0:
        return None
    return parts[0] if len(parts) == 1 else shapely.multilinestrings(parts)


def _generate_county(
    plan: _Plan,
    name: str,
    outline: MultiPolygon,
    *,
    seed: int,
    proj: tuple[Any, Callable[[Arr], Arr]],
    city_lines: dict[str, LineString],
    rows: dict[str, _Rows],
    people: _People,
) -> None:
    fwd, ll = proj
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    cty = _setup_county(plan, name, outline, seed, fwd)
    targets = plan.targets or _scaled_targets(plan.households, 1.0)
    w = np.asarray(plan.sector_weights, dtype=float)
    n_rind = int(sum(targets.colours) * w[list(_RURAL_SECTORS)].sum() / w.sum() * 1.3) + 6
    _water_and_rail(cty, city_lines)
    quads, blocks, typ = _urban_fabric(cty)
    cty.n_urban_lines = len(cty.lines)
    urban = _fill_blocks(cty, quads, blocks, typ)
    cu = float(urban["cap"].sum())
    if cu > 0:
        urban["cap"] = urban["cap"] * (plan.households * plan.urban_share / cu)
    timings["urban"] = time.perf_counter() - t0
    n_houses = round(plan.households * (1.0 - plan.urban_share) / plan.households_per_house)
    rural = _rural_fabric(cty, n_houses, n_rind)
    b = _clean_buildings(cty, _concat_buildings([urban, rural]), len(urban["cx"]))
    timings["rural"] = time.perf_counter() - t0
    dv, b_comm = _divisions(cty, b)
    keep = b_comm >= 0
    b, b_comm = _take(b, keep), b_comm[keep]
    gr = _grids(
        cty, dv, b, b_comm, plan.grids or max(1, round(plan.households / HOUSEHOLDS_PER_GRID))
    )
    timings["divisions"] = time.perf_counter() - t0
    grid_ll = ll(np.array(gr.geom, dtype=object))
    bld_ll = ll(b["geom"])
    b_grid = _point_in(grid_ll, shapely.point_on_surface(bld_ll))
    keep = b_grid >= 0
    b, b_comm, b_grid, bld_ll = _take(b, keep), b_comm[keep], b_grid[keep], bld_ll[keep]
    population = round(plan.households * PERSONS_PER_HOUSEHOLD)
    hh, pop = _households(cty.rng, b, b_grid, gr, population)
    ctx = _Ctx(
        cty=cty,
        dv=dv,
        gr=gr,
        b=b,
        b_grid=b_grid,
        b_comm=b_comm,
        hh=hh,
        pop=pop,
        ll=ll,
        rows=rows,
        people=people,
        grid_worker=[],
        comm_leader=[],
        comm_cadre=[],
        comm_baobao=[],
        twp_head=[],
        twp_safety=[],
        county_staff={},
        grid_ll=grid_ll,
        building_ll=bld_ll,
        blocks=blocks,
        block_typ=typ,
    )
    starts = {t: _nrows_rows(rows[t]) for t in _METRIC_TABLES}
    _people_for(ctx)
    _emit_divisions_grids(ctx, None)
    _emit_buildings(ctx)
    for kind, lname, g in cty.lines:
        lg = _linear(g)
        if lg is not None:
            rows["barrier_lines"].add(kind=kind, name=lname, geom=lg)
    ent = _enterprises(ctx, targets, serial0=int(plan.code) * 1000)
    _hazards(ctx, targets, ent)
    gxy, gcodes, _ = _geohazards(ctx, targets)
    sxy, snames = _shelters(ctx, targets, gxy)
    _routes(ctx, gxy, gcodes, sxy, snames)
    _forests_and_fires(ctx, targets)
    _facilities(ctx, targets)
    for t in _METRIC_TABLES:
        for col in _GEOMETRY_COLUMNS:
            if col in rows[t].cols:
                vals = rows[t].cols[col]
                s = starts[t]
                arr = np.empty(len(vals) - s, dtype=object)
                arr[:] = vals[s:]
                present = ~shapely.is_missing(arr)
                arr[present] = ll(arr[present])
                vals[s:] = list(arr)
    timings["total"] = time.perf_counter() - t0
    _LOG.debug("county %s %s: %d buildings, %s", plan.code, name, len(hh), timings)


def _nrows_rows(r: _Rows) -> int:
    return len(next(iter(r.cols.values())))


def generate(scale: Literal["district", "city"], seed: int = 20261122) -> DemoCity:
    """Generate the demo city, deterministically for a given seed.

    Args:
        scale: ``"district"`` builds 株洲市石峰区 (430204) in full, reproducing the figures its
            bureau quotes (232 grids, 92 800 households, 379 enterprises of which 1 red,
            37 orange, 229 yellow and 112 blue, 1 056 hazards of which 986 closed), with the
            other 株洲 counties as boundaries only. ``"city"`` builds all nine counties in full
            (about a million buildings).
        seed: Seed of every random draw; the same seed gives identical tables.

    Returns:
        The tables, geometries in lon/lat (EPSG:4490).

    Raises:
        ValueError: If ``scale`` is not one of the two values.
    """
    if scale not in ("district", "city"):
        msg = f"unknown scale {scale!r}"
        raise ValueError(msg)
    counties = load_counties()
    union = shapely.union_all([g for _, g in counties.values()])
    epsg = gk_zone_epsg(union.centroid.x)
    fwd = gk_zone_transformer(epsg)
    inv = gk_zone_transformer(epsg, inverse=True)

    def ll(geoms: Arr) -> Arr:
        def fn(c: Arr) -> Arr:
            x, y = inv.transform(c[:, 0], c[:, 1])
            return np.column_stack([x, y])

        result: Arr = shapely.transform(geoms, fn)
        return result

    def to_m(x: Arr, y: Arr) -> tuple[Arr, Arr]:
        a, b = fwd.transform(x, y)
        return np.asarray(a), np.asarray(b)

    metric = {
        code: shapely.transform(g, lambda c: np.column_stack(to_m(c[:, 0], c[:, 1])))
        for code, (_, g) in counties.items()
    }
    city_lines = _city_lines(to_m, metric)
    rows = {name: _Rows(*cols) for name, cols in _TABLE_COLUMNS.items()}
    people = _People()
    div = rows["divisions"]
    div.add(
        code="430000",
        level="province",
        parent_code=None,
        name="湖南省",
        boundary=None,
        urban_rural_code=None,
    )
    div.add(
        code="430200",
        level="prefecture",
        parent_code="430000",
        name="株洲市",
        boundary=_polygonal(np.array([union], dtype=object))[0],
        urban_rural_code=None,
    )
    for code, (cname, g) in sorted(counties.items()):
        div.add(
            code=code,
            level="county",
            parent_code="430200",
            name=cname,
            boundary=g,
            urban_rural_code=None,
        )
    plans = [_SHIFENG] if scale == "district" else _city_plans()
    for plan in plans:
        cname, outline = counties[plan.code]
        _generate_county(
            plan,
            cname,
            outline,
            seed=seed,
            proj=(fwd, ll),
            city_lines=city_lines,
            rows=rows,
            people=people,
        )
    city = DemoCity(
        **{name: r.table(geometry=_GEOMETRY_COLUMNS) for name, r in rows.items()},
        persons=people.table(np.random.default_rng([seed, 7])),
    )
    return city
