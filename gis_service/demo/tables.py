"""The output tables: their columns, and the accumulators that fill them county by county.

Rows are appended column-wise to plain lists while counties are generated and turned into numpy
columns once at the end; geometry columns become object arrays of shapely geometries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from gis_service.demo import names as nm
from gis_service.demo.geometry import Arr

__all__ = ["GEOMETRY_COLUMNS", "TABLE_COLUMNS", "Column", "People", "Rows", "Table"]

Column = npt.NDArray[Any] | list[Any]
Table = dict[str, Column]


class People:
    """The persons table, filled as roles are created; names/phones are drawn at the end."""

    def __init__(self) -> None:
        self.org: list[str] = []
        self.position: list[str] = []
        self.admin_code: list[str] = []

    def add(self, org: str, position: str, admin_code: str) -> int:
        """Register a role; returns its ``person_key`` (row index) for ledgers to refer to."""
        self.org.append(org)
        self.position.append(position)
        self.admin_code.append(admin_code)
        return len(self.org) - 1

    def table(self, rng: np.random.Generator) -> Table:
        """The persons table, with names and phones drawn from a generator of their own."""
        n = len(self.org)
        return {
            "name": nm.person_names(rng, n),
            "phone": nm.phones(rng, n),
            "org": self.org,
            "position": self.position,
            "admin_code": self.admin_code,
        }


class Rows:
    """Column-wise accumulator for one output table."""

    def __init__(self, *columns: str) -> None:
        self.cols: dict[str, list[Any]] = {c: [] for c in columns}

    def add(self, **values: Any) -> None:
        """Append one row given as column=value."""
        for k, v in values.items():
            self.cols[k].append(v)

    def extend(self, **values: Sequence[Any] | Arr) -> None:
        """Append many rows given as column=sequence (numpy scalars become Python values)."""
        for k, v in values.items():
            if isinstance(v, np.ndarray) and v.dtype != object:
                self.cols[k].extend(v.tolist())
            else:
                self.cols[k].extend(list(v))

    def table(self, geometry: Sequence[str] = ()) -> Table:
        """The accumulated columns, typed: geometry object arrays, bool/int/float arrays, lists."""
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


TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
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
GEOMETRY_COLUMNS = ("boundary", "geom", "site")
