"""A deterministic synthetic city on the real outlines of 株洲市, for demos, tests and benchmarks.

Why synthetic: the bureau's real ledgers hold personal data and cannot leave its network, yet
the service must be shown, tested and load-tested on something that *looks* like its data at
every zoom — streets, blocks, clustered buildings, grids of ~400 households, enterprises by risk
colour, hazards, geological hazards, shelters. This package builds such a city in memory, with no
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

Where: this module is the entry point (``generate``, ``DemoCity``) and runs the stages of each
county in order. Each stage lives in a module named for what it owns: ``plans`` (what each
county should contain), ``county`` (its working state), ``rivers_rails``, ``urban_fabric``,
``rural_fabric`` and ``buildings`` (the physical city), ``divisions`` (townships, communities,
grids and households), ``ledger_context`` and ``territory`` (officials and the territorial
rows), and one module per ledger: ``enterprises``, ``safety_hazards``, ``geohazards``,
``shelters``, ``forest_fires``, ``facilities``. ``geometry``, ``apportion``, ``codes`` and
``tables`` are the shared helpers underneath.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon

from gis_service.crs import gk_zone_epsg, gk_zone_transformer
from gis_service.demo.buildings import clean_buildings, concat_buildings, take
from gis_service.demo.codes import uscc
from gis_service.demo.county import setup_county
from gis_service.demo.divisions import build_divisions, build_grids, households_per_building
from gis_service.demo.enterprises import RURAL_SECTORS, emit_enterprises
from gis_service.demo.facilities import emit_facilities
from gis_service.demo.forest_fires import emit_forests_and_fires
from gis_service.demo.geohazards import emit_geohazards
from gis_service.demo.geometry import Arr, point_in, polygonal
from gis_service.demo.ledger_context import LedgerContext, appoint_staff
from gis_service.demo.outline import load_counties
from gis_service.demo.plans import (
    AS_OF,
    HOUSEHOLDS_PER_GRID,
    PERSONS_PER_HOUSEHOLD,
    SHIFENG,
    Plan,
    city_plans,
    scaled_targets,
)
from gis_service.demo.rivers_rails import trunk_lines, water_and_rail
from gis_service.demo.rural_fabric import rural_fabric
from gis_service.demo.safety_hazards import emit_safety_hazards
from gis_service.demo.shelters import emit_evacuation_routes, emit_shelters
from gis_service.demo.tables import GEOMETRY_COLUMNS, TABLE_COLUMNS, People, Rows, Table
from gis_service.demo.territory import emit_buildings, emit_divisions_grids
from gis_service.demo.urban_fabric import fill_blocks, urban_fabric

__all__ = ["AS_OF", "DemoCity", "Table", "generate", "uscc"]

_LOG = logging.getLogger(__name__)


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
    plan: Plan,
    name: str,
    outline: MultiPolygon,
    *,
    seed: int,
    proj: tuple[Any, Callable[[Arr], Arr]],
    city_lines: dict[str, LineString],
    rows: dict[str, Rows],
    people: People,
) -> None:
    """Generate one county in its metric plane and append its rows, converted to lon/lat.

    The stages share the county's random generator, so their order is part of the output:
    moving a stage changes every table drawn after it.
    """
    fwd, ll = proj
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    cty = setup_county(plan, name, outline, seed, fwd)
    targets = plan.targets or scaled_targets(plan.households, 1.0)
    w = np.asarray(plan.sector_weights, dtype=float)
    n_rind = int(sum(targets.colours) * w[list(RURAL_SECTORS)].sum() / w.sum() * 1.3) + 6
    water_and_rail(cty, city_lines)
    quads, blocks, typ = urban_fabric(cty)
    cty.n_urban_lines = len(cty.lines)
    urban = fill_blocks(cty, quads, blocks, typ)
    cu = float(urban["cap"].sum())
    if cu > 0:
        urban["cap"] = urban["cap"] * (plan.households * plan.urban_share / cu)
    timings["urban"] = time.perf_counter() - t0
    n_houses = round(plan.households * (1.0 - plan.urban_share) / plan.households_per_house)
    rural = rural_fabric(cty, n_houses, n_rind)
    b = clean_buildings(cty, concat_buildings([urban, rural]), len(urban["cx"]))
    timings["rural"] = time.perf_counter() - t0
    dv, b_comm = build_divisions(cty, b)
    keep = b_comm >= 0
    b, b_comm = take(b, keep), b_comm[keep]
    gr = build_grids(
        cty, dv, b, b_comm, plan.grids or max(1, round(plan.households / HOUSEHOLDS_PER_GRID))
    )
    timings["divisions"] = time.perf_counter() - t0
    grid_ll = ll(np.array(gr.geom, dtype=object))
    bld_ll = ll(b["geom"])
    b_grid = point_in(grid_ll, shapely.point_on_surface(bld_ll))
    keep = b_grid >= 0
    b, b_comm, b_grid, bld_ll = take(b, keep), b_comm[keep], b_grid[keep], bld_ll[keep]
    population = round(plan.households * PERSONS_PER_HOUSEHOLD)
    hh, pop = households_per_building(cty.rng, b, b_grid, gr, population)
    ctx = LedgerContext(
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
        grid_ll=grid_ll,
        building_ll=bld_ll,
        blocks=blocks,
        block_typ=typ,
    )
    starts = {t: _nrows_rows(rows[t]) for t in _METRIC_TABLES}
    appoint_staff(ctx)
    emit_divisions_grids(ctx, None)
    emit_buildings(ctx)
    for kind, lname, g in cty.lines:
        lg = _linear(g)
        if lg is not None:
            rows["barrier_lines"].add(kind=kind, name=lname, geom=lg)
    ent = emit_enterprises(ctx, targets, serial0=int(plan.code) * 1000)
    emit_safety_hazards(ctx, targets, ent)
    gxy, gcodes, _ = emit_geohazards(ctx, targets)
    sxy, snames = emit_shelters(ctx, targets, gxy)
    emit_evacuation_routes(ctx, gxy, gcodes, sxy, snames)
    emit_forests_and_fires(ctx, targets)
    emit_facilities(ctx, targets)
    for t in _METRIC_TABLES:
        for col in GEOMETRY_COLUMNS:
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


def _nrows_rows(r: Rows) -> int:
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
    city_lines = trunk_lines(to_m, metric)
    rows = {name: Rows(*cols) for name, cols in TABLE_COLUMNS.items()}
    people = People()
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
        boundary=polygonal(np.array([union], dtype=object))[0],
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
    plans = [SHIFENG] if scale == "district" else city_plans()
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
        **{name: r.table(geometry=GEOMETRY_COLUMNS) for name, r in rows.items()},
        persons=people.table(np.random.default_rng([seed, 7])),
    )
    return city
