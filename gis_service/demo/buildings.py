"""The generator's building record: attribute codes, typologies and array helpers.

Buildings are carried as a dict of equal-length numpy columns (centre, axis, size, typology,
floors, structure, use, construction period, household capacity) rather than as objects, so
that the urban and rural builders can make, join and filter hundreds of thousands of them with
array operations. Attribute columns hold indexes into ``STRUCTURES``, ``USES`` and ``YEARS``.
``clean_buildings`` is the last step before divisions: it drops footprints on roads, water or
each other.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely

from gis_service.demo.county import County
from gis_service.demo.geometry import Arr, rects

__all__ = [
    "STRUCTURES",
    "S_MAS",
    "S_OTHER",
    "S_RC",
    "S_STEEL",
    "S_WOOD",
    "T_COMM",
    "T_COMPOUND",
    "T_GREEN",
    "T_IND",
    "T_OLD",
    "T_PUBLIC",
    "T_RHOUSE",
    "T_RIND",
    "T_RPUB",
    "T_SHED",
    "T_VILLAGE",
    "USES",
    "U_COMM",
    "U_IND",
    "U_MIX",
    "U_OTHER",
    "U_PUB",
    "U_RES",
    "YEARS",
    "choose",
    "clean_buildings",
    "concat_buildings",
    "empty_buildings",
    "take",
]

STRUCTURES = ("masonry", "reinforced_concrete", "steel", "wood", "other")
USES = ("residential", "commercial", "industrial", "public", "mixed", "other")
YEARS = ("pre1980", "1980s", "1990s", "2000s", "2010s", "2020s")
#: Indexes into STRUCTURES and USES, as stored in the ``structure`` and ``use`` columns.
S_MAS, S_RC, S_STEEL, S_WOOD, S_OTHER = range(5)
U_RES, U_COMM, U_IND, U_PUB, U_MIX, U_OTHER = range(6)

# Block typologies (urban) and rural building kinds.
T_COMPOUND, T_OLD, T_VILLAGE, T_IND, T_PUBLIC, T_COMM, T_GREEN = range(7)
T_RHOUSE, T_SHED, T_RIND, T_RPUB = range(7, 11)


def empty_buildings() -> dict[str, Arr]:
    """A building record with no rows, so that a county without urban fabric still concatenates."""
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


def concat_buildings(parts: list[dict[str, Arr]]) -> dict[str, Arr]:
    """Join building records column by column, in order (the order decides overlap winners)."""
    parts = [p for p in parts if len(p["cx"])]
    if not parts:
        return empty_buildings()
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def take(b: dict[str, Arr], sel: Arr) -> dict[str, Arr]:
    """The rows ``sel`` (mask or indexes) of every column, keeping the columns aligned."""
    return {k: v[sel] for k, v in b.items()}


def choose(rng: np.random.Generator, n: int, values: Sequence[int], p: Sequence[float]) -> Arr:
    """``n`` draws from ``values`` with relative weights ``p`` (need not sum to 1)."""
    pp = np.asarray(p, dtype=float)
    result: Arr = np.asarray(values)[rng.choice(len(values), size=n, p=pp / pp.sum())]
    return result


def clean_buildings(cty: County, b: dict[str, Arr], n_urban: int) -> dict[str, Arr]:
    """Drop footprints on roads, rails or water, outside the county, or overlapping others.

    Urban lattice buildings come first, so where a rural footprint meets an urban one the
    rural one goes.
    """
    geoms = rects(b["cx"], b["cy"], b["ux"], b["uy"], b["L"], b["W"])
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
    out = take(b, ok)
    out["geom"] = geoms[ok]
    return out
