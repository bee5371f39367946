"""Load a generated :class:`~gis_service.demo.generator.DemoCity` into PostGIS.

One transaction, COPY for every table (no row-by-row inserts), per-row triggers off
(``gis.bulk``), then stamping of ``admin_code``/``grid_code`` and the grid statistics in
set-based SQL, one BULK audit row per table. A failure leaves the database as it was.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
import shapely
from psycopg import sql

from gis_service.demo.generator import DemoCity
from gis_service.demo.hazard_rasters import load_hazard_layers
from gis_service.types import STORAGE_SRID

DEMO_SOURCE = "demo"

Progress = Callable[[str, int, int], None]


def _no_progress(step: str, done: int, total: int) -> None:
    return None


def psycopg_conninfo(url: str) -> str:
    """A libpq URL from a SQLAlchemy one (``postgresql+psycopg://`` → ``postgresql://``)."""
    return "postgresql://" + url.split("://", 1)[1]


def _ewkb_hex(geoms: Any, multi: str | None = None) -> list[str | None]:
    """Hex EWKB in the storage SRID; optionally promoted to Multi* for Multi columns."""
    arr = np.asarray(geoms, dtype=object)
    present = np.array([g is not None for g in arr], dtype=bool)
    out: list[str | None] = [None] * len(arr)
    if not present.any():
        return out
    geo = arr[present]
    if multi is not None:
        parts, index = shapely.get_parts(geo, return_index=True)
        builder = {"polygon": shapely.multipolygons, "line": shapely.multilinestrings}[multi]
        geo = builder(parts, indices=index)
    geo = shapely.set_srid(shapely.set_precision(geo, 0.0), STORAGE_SRID)
    hexes = shapely.to_wkb(geo, hex=True, include_srid=True)
    for i, h in zip(np.flatnonzero(present), hexes, strict=True):
        out[int(i)] = str(h)
    return out


def _pg_array(values: Iterable[str]) -> str:
    """A text[] literal for COPY text format (values are our own enum keys)."""
    return (
        "{"
        + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
        + "}"
    )


@dataclass(frozen=True)
class Column:
    """One target column of a COPY and how to turn the generator's values into it."""

    name: str
    source: str | None = None  # column in the generated table (default: same name)
    geom: str | None = None  # None | "plain" | "polygon" | "line": EWKB, promoted to Multi*
    array: bool = False
    json: bool = False


def _column_values(table: dict[str, Any], col: Column, n: int) -> Sequence[Any]:
    raw = table[col.source or col.name]
    if col.geom is not None:
        return _ewkb_hex(raw, None if col.geom == "plain" else col.geom)
    if col.array:
        return [None if v is None else _pg_array(v) for v in raw]
    if col.json:
        return [json.dumps(v, ensure_ascii=False) for v in raw]
    values = raw.tolist() if isinstance(raw, np.ndarray) else list(raw)
    assert len(values) == n
    return values


def _rows(
    table: dict[str, Any], cols: Sequence[Column], ids: Sequence[int]
) -> Iterator[tuple[Any, ...]]:
    n = len(ids)
    columns = [_column_values(table, c, n) for c in cols]
    for i in range(n):
        yield (ids[i], *(c[i] for c in columns), DEMO_SOURCE)


class Loader:
    """Writes one DemoCity inside one transaction of ``conn``."""

    def __init__(self, conn: psycopg.Connection[Any], progress: Progress) -> None:
        self.conn = conn
        self.progress = progress
        self.ids: dict[str, list[int]] = {}

    def _reserve_ids(self, table: str, n: int) -> list[int]:
        cur = self.conn.execute(
            sql.SQL("SELECT coalesce(max(id), 0) FROM {}").format(sql.Identifier(table))
        )
        start = int(cur.fetchone()[0]) + 1  # type: ignore[index]
        return list(range(start, start + n))

    def copy(
        self, table: str, data: dict[str, Any], cols: Sequence[Column], *, stamp: bool = False
    ) -> list[int]:
        """COPY ``data`` into ``table``; returns the ids given to its rows, in order.

        With ``stamp``, rows go first to a temporary staging table, get their village and
        grid from ``gis_stamps`` (a polygon-driven spatial join in PostGIS), and reach
        ``table`` in one INSERT: written once, not written and then updated.
        """
        n = len(next(iter(data.values()))) if data else 0
        ids = self._reserve_ids(table, n)
        target = sql.Identifier(table)
        stage = sql.Identifier(f"_stage_{table}")
        names = [
            sql.Identifier("id"),
            *(sql.Identifier(c.name) for c in cols),
            sql.Identifier("source"),
        ]
        column_list = sql.SQL(", ").join(names)
        if stamp:
            self.conn.execute(
                sql.SQL("CREATE TEMP TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP").format(
                    stage, target
                )
            )
        into = stage if stamp else target
        step = max(1, n // 50)
        with self.conn.cursor().copy(
            sql.SQL("COPY {} ({}) FROM STDIN").format(into, column_list)
        ) as copy:
            for i, row in enumerate(_rows(data, cols, ids)):
                copy.write_row(row)
                if i % step == 0:
                    self.progress(table, i, n)
        self.progress(table, n, n)
        if stamp:
            self.progress(f"{table}: stamping", 0, 1)
            self.conn.execute(sql.SQL("CREATE INDEX ON {} USING gist (geom)").format(stage))
            self.conn.execute(sql.SQL("ANALYZE {}").format(stage))
            self.conn.execute(
                sql.SQL(
                    "INSERT INTO {target} ({cols}, admin_code, grid_code)"
                    " SELECT {scols}, st.admin_code, st.grid_code"
                    " FROM {stage} s LEFT JOIN gis_stamps({stage_name}::regclass) st USING (id)"
                ).format(
                    target=target,
                    cols=column_list,
                    scols=sql.SQL(", ").join(sql.SQL("s.") + c for c in names),
                    stage=stage,
                    stage_name=sql.Literal(f"_stage_{table}"),
                )
            )
            self.conn.execute(sql.SQL("DROP TABLE {}").format(stage))
            self.progress(f"{table}: stamping", 1, 1)
        self.conn.execute(
            sql.SQL("SELECT setval(pg_get_serial_sequence({}, 'id'), {})").format(
                sql.Literal(table), sql.Literal(max(ids[-1] if ids else 1, 1))
            )
        )
        self.conn.execute(
            "INSERT INTO audit_log (table_name, action, actor, row_count, after)"
            " VALUES (%s, 'BULK', 'demo-loader', %s, %s)",
            (table, n, json.dumps({"source": DEMO_SOURCE})),
        )
        self.ids[table] = ids
        return ids


def _lookup(ids: Sequence[int], keys: Iterable[Any]) -> dict[Any, int]:
    out: dict[Any, int] = {}
    for key, i in zip(keys, ids, strict=True):
        out.setdefault(key, i)
    return out


def demo_loaded(conn: psycopg.Connection[Any]) -> int:
    """How many demo buildings are loaded (0 when none)."""
    row = conn.execute("SELECT count(*) FROM building WHERE source = %s", (DEMO_SOURCE,)).fetchone()
    return int(row[0]) if row else 0


_DELETE_ORDER = (
    "hazard_layer",
    "hazard_event",
    "responsibility",
    "grid_assignment",
    "evacuation_route",
    "fire_point",
    "safety_hazard",
    "enterprise",
    "building",
    "geohazard_point",
    "geohazard_zone",
    "shelter",
    "forest_patch",
    "facility",
    "barrier_line",
    "person",
    "grid",
)


def remove_demo(conn: psycopg.Connection[Any]) -> None:
    """Delete every demo row (admin units last, deepest level first)."""
    for table in _DELETE_ORDER:
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE source = %s").format(sql.Identifier(table)),
            (DEMO_SOURCE,),
        )
    conn.execute("DELETE FROM app_user WHERE source = %s", (DEMO_SOURCE,))
    for level in ("village", "township", "county", "prefecture", "province"):
        conn.execute(
            "DELETE FROM admin_division d WHERE source = %s AND level = %s"
            " AND NOT EXISTS (SELECT 1 FROM admin_division c WHERE c.parent_code = d.code"
            " AND c.source IS DISTINCT FROM %s)",
            (DEMO_SOURCE, level, DEMO_SOURCE),
        )


def load_city(
    conn: psycopg.Connection[Any], city: DemoCity, progress: Progress | None = None
) -> dict[str, int]:
    """Write ``city`` in the caller's transaction; returns row counts per table."""
    p = progress or _no_progress
    conn.execute("SET LOCAL gis.bulk = 'on'")
    conn.execute("SET LOCAL synchronous_commit = off")
    loader = Loader(conn, p)

    # Admin units parent-first: the derive trigger needs the parent's ancestors.
    div = city.divisions
    order = np.argsort(
        [
            ("province", "prefecture", "county", "township", "village").index(v)
            for v in div["level"]
        ],
        kind="stable",
    )
    div_sorted = {k: [v[i] for i in order] for k, v in div.items()}
    loader.copy(
        "admin_division",
        div_sorted,
        [
            Column("code"),
            Column("level"),
            Column("parent_code"),
            Column("name"),
            Column("urban_rural_code"),
            Column("boundary", geom="polygon"),
        ],
    )
    grid_ids = loader.copy(
        "grid",
        city.grids,
        [
            Column("grid_code"),
            Column("name"),
            Column("kind"),
            Column("community_code"),
            Column("geom", geom="polygon"),
            Column("households"),
            Column("population"),
        ],
    )
    person_ids = loader.copy(
        "person",
        city.persons,
        [Column("name"), Column("phone"), Column("org"), Column("position"), Column("admin_code")],
    )
    grid_by_code = _lookup(grid_ids, city.grids["grid_code"])
    ga = city.grid_assignments
    loader.copy(
        "grid_assignment",
        {
            "grid_id": [grid_by_code[c] for c in ga["grid_code"]],
            "person_id": [person_ids[int(k)] for k in ga["person_key"]],
            "role": ga["role"],
            "employment": ["fulltime" if r == "grid_worker" else "parttime" for r in ga["role"]],
        },
        [Column("grid_id"), Column("person_id"), Column("role"), Column("employment")],
    )
    loader.copy(
        "barrier_line",
        city.barrier_lines,
        [Column("kind"), Column("name"), Column("geom", geom="line")],
        stamp=True,
    )
    loader.copy(
        "building",
        city.buildings,
        [
            Column("geom", geom="polygon"),
            Column("households"),
            Column("population"),
            Column("structure"),
            Column("floors"),
            Column("use"),
            Column("year_band"),
            Column("urban_rural"),
        ],
        stamp=True,
    )
    ent_ids = loader.copy(
        "enterprise",
        city.enterprises,
        [
            Column("uscc"),
            Column("name"),
            Column("address"),
            Column("sector"),
            Column("special_flags", array=True),
            Column("risk_level"),
            Column("assessed_at"),
            Column("employees"),
            Column("geom", geom="plain"),
        ],
        stamp=True,
    )
    ent_by_uscc = _lookup(ent_ids, city.enterprises["uscc"])
    sh = city.safety_hazards
    loader.copy(
        "safety_hazard",
        {
            **sh,
            "enterprise_id": [None if u is None else ent_by_uscc[u] for u in sh["enterprise_uscc"]],
            "responsible_person_id": [
                None if k is None else person_ids[int(k)] for k in sh["responsible_person_key"]
            ],
        },
        [
            Column("hazard_no"),
            Column("title"),
            Column("description"),
            Column("enterprise_id"),
            Column("geom", geom="plain"),
            Column("level"),
            Column("category"),
            Column("found_via"),
            Column("status"),
            Column("escalated"),
            Column("responsible_org"),
            Column("responsible_person_id"),
            Column("measures"),
            Column("deadline"),
            Column("found_at"),
            Column("closed_at"),
        ],
        stamp=True,
    )
    gp_ids = loader.copy(
        "geohazard_point",
        city.geohazard_points,
        [
            Column("code"),
            Column("name"),
            Column("kind"),
            Column("scale"),
            Column("danger_grade"),
            Column("stability"),
            Column("threatened_households"),
            Column("threatened_people"),
            Column("threatened_property"),
            Column("monitoring"),
            Column("two_cards_issued"),
            Column("geom", geom="plain"),
        ],
        stamp=True,
    )
    zone_ids = loader.copy(
        "geohazard_zone",
        city.geohazard_zones,
        [
            Column("code"),
            Column("name"),
            Column("risk_level"),
            Column("households"),
            Column("people"),
            Column("geom", geom="polygon"),
        ],
        stamp=True,
    )
    shelter_ids = loader.copy(
        "shelter",
        city.shelters,
        [
            Column("name"),
            Column("address"),
            Column("geom", geom="plain"),
            Column("site", geom="polygon"),
            Column("grade"),
            Column("space_type"),
            Column("duration_class"),
            Column("capacity"),
            Column("effective_area"),
            Column("hazard_types", array=True),
            Column("status"),
        ],
        stamp=True,
    )
    gp_by_code = _lookup(gp_ids, city.geohazard_points["code"])
    zone_by_code = _lookup(zone_ids, city.geohazard_zones["code"])
    shelter_by_name = _lookup(shelter_ids, city.shelters["name"])
    er = city.evacuation_routes
    loader.copy(
        "evacuation_route",
        {
            **er,
            "geohazard_point_id": [gp_by_code.get(c) for c in er["geohazard_code"]],
            "shelter_id": [shelter_by_name.get(s) for s in er["shelter_name"]],
        },
        [
            Column("name"),
            Column("geom", geom="plain"),
            Column("geohazard_point_id"),
            Column("shelter_id"),
        ],
        stamp=True,
    )
    fp_ids = loader.copy(
        "forest_patch",
        city.forest_patches,
        [
            Column("code"),
            Column("name"),
            Column("forest_type"),
            Column("fuel_load"),
            Column("area_ha"),
            Column("geom", geom="polygon"),
        ],
        stamp=True,
    )
    patch_by_code = _lookup(fp_ids, city.forest_patches["code"])
    fire = city.fire_points
    loader.copy(
        "fire_point",
        {**fire, "forest_patch_id": [patch_by_code.get(c) for c in fire["forest_patch_code"]]},
        [
            Column("geom", geom="plain"),
            Column("source_kind"),
            Column("detected_at"),
            Column("confidence"),
            Column("verification_status"),
            Column("verdict"),
            Column("forest_patch_id"),
        ],
        stamp=True,
    )
    loader.copy(
        "facility",
        city.facilities,
        [
            Column("kind"),
            Column("name"),
            Column("geom", geom="plain"),
            Column("people"),
            Column("attributes", json=True),
        ],
        stamp=True,
    )

    targets = {
        "geohazard_point": gp_by_code,
        "geohazard_zone": zone_by_code,
        "enterprise": ent_by_uscc,
        "shelter": shelter_by_name,
        "forest_patch": patch_by_code,
        "grid": grid_by_code,
    }
    rs = city.responsibilities
    loader.copy(
        "responsibility",
        {
            "person_id": [person_ids[int(k)] for k in rs["person_key"]],
            "target_type": rs["target_type"],
            "target_id": [
                targets[t][c] for t, c in zip(rs["target_type"], rs["target_code"], strict=True)
            ],
            "level": rs["level"],
            "duty": rs["duty"],
        },
        [
            Column("person_id"),
            Column("target_type"),
            Column("target_id"),
            Column("level"),
            Column("duty"),
        ],
    )
    _derive(conn, p)
    load_hazard_layers(conn, city)
    return {table: len(ids) for table, ids in loader.ids.items()}


_DERIVE_SQL = (
    # The responsibility's area is its target's, so scope filtering needs no join.
    """UPDATE responsibility r SET admin_code = t.admin_code
       FROM (SELECT 'geohazard_point' AS tt, id, admin_code FROM geohazard_point
             UNION ALL SELECT 'geohazard_zone', id, admin_code FROM geohazard_zone
             UNION ALL SELECT 'enterprise', id, admin_code FROM enterprise
             UNION ALL SELECT 'shelter', id, admin_code FROM shelter
             UNION ALL SELECT 'forest_patch', id, admin_code FROM forest_patch
             UNION ALL SELECT 'grid', id, community_code FROM grid) t
       WHERE r.source = 'demo' AND r.target_type = t.tt AND r.target_id = t.id""",
    # Grid statistics come from the buildings stamped inside them, never typed in.
    """UPDATE grid g SET households = s.h, population = s.p, area_m2 = ST_Area(g.geom::geography)
       FROM (SELECT g.id, coalesce(sum(b.households), 0) AS h,
                    coalesce(sum(b.population), 0) AS p
             FROM grid g LEFT JOIN building b ON b.grid_code = g.grid_code
             WHERE g.source = 'demo' AND g.valid_to IS NULL
             GROUP BY g.id) s
       WHERE g.id = s.id""",
    # The ledger's history: one event per state reached, between found_at and closed_at.
    """INSERT INTO hazard_event (hazard_id, from_status, to_status, actor, at, source)
       SELECT h.id,
              CASE WHEN s.n = 1 THEN NULL ELSE st.states[s.n - 1] END,
              st.states[s.n],
              'demo-loader',
              h.found_at + (coalesce(h.closed_at, h.found_at + interval '20 days') - h.found_at)
                  * ((s.n - 1)::float / 4),
              'demo'
       FROM safety_hazard h
       CROSS JOIN (SELECT ARRAY['found','assigned','rectifying','closeout_requested','closed']
                   AS states) st
       CROSS JOIN LATERAL generate_series(1, array_position(st.states, h.status)) AS s(n)
       WHERE h.source = 'demo'""",
)


def _derive(conn: psycopg.Connection[Any], progress: Progress) -> None:
    for i, stmt in enumerate(_DERIVE_SQL):
        conn.execute(stmt)
        progress("deriving statistics and ledger history", i + 1, len(_DERIVE_SQL))


def load(
    url: str,
    city: DemoCity,
    *,
    replace: bool = True,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Load ``city`` into the database at ``url`` in one transaction, then ANALYZE.

    Args:
        url: SQLAlchemy or libpq URL.
        city: the generated city.
        replace: delete earlier demo rows first (otherwise refuse when present).
        progress: callback ``(step, done, total)``.
    """
    started = dt.datetime.now()
    with psycopg.connect(psycopg_conninfo(url), autocommit=False) as conn:
        if demo_loaded(conn):
            if not replace:
                raise RuntimeError("demo data already loaded; pass replace=True")
            conn.execute("SET LOCAL gis.bulk = 'on'")
            remove_demo(conn)
        counts = load_city(conn, city, progress)
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE")
    counts["seconds"] = int((dt.datetime.now() - started).total_seconds())
    return counts
