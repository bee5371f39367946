"""The parts of locate answers that are the same for every point they hold, kept ready per worker.

A locate answer is a handful of ids and distances (the grid, village, hazard points, risk
zones and shelters at the point) plus the details of those objects: the admin chain, the grid
with its worker and leader, the responsible persons, the shelter. The details change rarely
and are shared by every point of a grid, so an API worker keeps them, already masked for both
kinds of role, and a request reads only the ids from PostgreSQL.

Freshness is strict (see :class:`~gis_service.db.listen.Listener`): migration 0015's
statement triggers ``NOTIFY gis_query_change`` on any change of a source table, and before a
request trusts the cache one shared round trip on the listening connection applies every
change committed before the request arrived (the cache is then emptied). While the feed is
down the cache is bypassed, and details read while a change was announced are not kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from sqlalchemy import text

from gis_service.db.engine import QueryConn
from gis_service.db.listen import Listener
from gis_service.domain.pii import mask_name, mask_phone
from gis_service.domain.scope import Principal

#: Channel of migration 0015's triggers.
QUERY_CHANNEL = "gis_query_change"

Kind = Literal["villages", "grids", "geohazards", "zones", "shelters"]
KINDS: tuple[Kind, ...] = ("villages", "grids", "geohazards", "zones", "shelters")
#: Where each kind's people are (masked for roles that may not see PII).
_PEOPLE: dict[Kind, str | None] = {
    "villages": None,
    "grids": "staff",
    "geohazards": "responsible",
    "zones": "responsible",
    "shelters": None,
}

_PERSONS = """
    SELECT coalesce(json_agg(json_build_object(
        'level', r.level, 'duty', r.duty, 'name', p.name, 'phone', p.phone, 'org', p.org)
        ORDER BY r.level, r.duty, p.name), '[]'::json)
    FROM responsibility r JOIN person p ON p.id = r.person_id
    WHERE r.target_type = '{target}' AND r.target_id = t.id
      AND (r.valid_to IS NULL OR r.valid_to >= current_date)
"""

#: The details of the given ids, one JSON object per kind keyed by id (or village code).
#: Every object is read without regard to the caller's area: the ids come from a statement
#: that applied it.
_DETAILS = text(
    f"""
SELECT
 (SELECT coalesce(json_object_agg(v.code, (
     SELECT json_agg(json_build_object('code', a.code, 'level', a.level, 'name', a.name)
                     ORDER BY array_position(v.ancestors, a.code::text))
     FROM admin_division a WHERE a.code = ANY(v.ancestors))), '{{}}'::json)
  FROM admin_division v WHERE v.code = ANY(CAST(:villages AS text[]))) AS villages,
 (SELECT coalesce(json_object_agg(g.id, json_build_object(
     'grid_code', g.grid_code, 'name', g.name, 'kind', g.kind,
     'households', g.households, 'population', g.population,
     'staff', (SELECT coalesce(json_agg(json_build_object(
                   'role', ga.role, 'name', p.name, 'phone', p.phone, 'org', p.org)
                   ORDER BY ga.role, p.name), '[]'::json)
               FROM grid_assignment ga JOIN person p ON p.id = ga.person_id
               WHERE ga.grid_id = g.id AND ga.end_date IS NULL
                 AND ga.role IN ('grid_worker', 'grid_leader')))), '{{}}'::json)
  FROM grid g WHERE g.id = ANY(CAST(:grids AS bigint[]))) AS grids,
 (SELECT coalesce(json_object_agg(t.id, json_build_object(
     'code', t.code, 'name', t.name, 'kind', t.kind, 'danger_grade', t.danger_grade,
     'threatened_households', t.threatened_households,
     'threatened_people', t.threatened_people,
     'responsible', ({_PERSONS.format(target="geohazard_point")}))), '{{}}'::json)
  FROM geohazard_point t WHERE t.id = ANY(CAST(:geohazards AS bigint[]))) AS geohazards,
 (SELECT coalesce(json_object_agg(t.id, json_build_object(
     'code', t.code, 'name', t.name, 'risk_level', t.risk_level,
     'households', t.households, 'people', t.people,
     'responsible', ({_PERSONS.format(target="geohazard_zone")}))), '{{}}'::json)
  FROM geohazard_zone t WHERE t.id = ANY(CAST(:zones AS bigint[]))) AS zones,
 (SELECT coalesce(json_object_agg(t.id, json_build_object(
     'id', t.id, 'name', t.name, 'grade', t.grade, 'space_type', t.space_type,
     'capacity', t.capacity, 'current_occupancy', t.current_occupancy, 'status', t.status,
     'address', t.address, 'lon', round(ST_X(t.geom)::numeric, 7),
     'lat', round(ST_Y(t.geom)::numeric, 7))), '{{}}'::json)
  FROM shelter t WHERE t.id = ANY(CAST(:shelters AS bigint[]))) AS shelters
"""
)

#: Source table → the kinds read from it (see ``_DETAILS``).
_READ_FROM: dict[str, tuple[Kind, ...]] = {
    "admin_division": ("villages",),
    "grid": ("grids",),
    "grid_assignment": ("grids",),
    "person": ("grids", "geohazards", "zones"),
    "responsibility": ("geohazards", "zones"),
    "geohazard_point": ("geohazards",),
    "geohazard_zone": ("zones",),
    "shelter": ("shelters",),
}

#: One kind's details: key → (as a PII-seeing role gets it, as any other role gets it).
Table = dict[Any, tuple[Any, Any]]


def _mask_people(people: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**p, "name": mask_name(p["name"]), "phone": mask_phone(p["phone"])} for p in people]


def _both(kind: Kind, value: Any) -> tuple[Any, Any]:
    field = _PEOPLE[kind]
    if field is None:
        return value, value
    return value, {**value, field: _mask_people(value[field])}


def _key(kind: Kind, raw: str) -> Any:
    return raw if kind == "villages" else int(raw)


async def fetch(conn: QueryConn, wanted: Mapping[Kind, Iterable[Any]]) -> dict[Kind, Table]:
    """The details of ``wanted`` (kind → ids) in one statement, both masking variants."""
    params: dict[str, Any] = {k: sorted(set(wanted.get(k, ()))) for k in KINDS}
    row = (await conn.execute(_DETAILS, params)).one()
    return {
        kind: {_key(kind, k): _both(kind, v) for k, v in getattr(row, kind).items()}
        for kind in KINDS
    }


class DetailCache:
    """Details per kind and id for one worker, emptied by the ``gis_query_change`` feed."""

    def __init__(self, listener: Listener, *, max_entries: int = 200_000) -> None:
        self.max_entries = max_entries
        self._tables: dict[Kind, Table] = {k: {} for k in KINDS}
        self._size = 0
        self._generation = 0
        #: The worker's change feed (shared with its other caches: one round serves all).
        self.listener = listener

    def _changed(self, payload: str = "") -> None:
        """Forget the kinds read from the table named in ``payload`` (all when unknown)."""
        kinds = _READ_FROM.get(payload, KINDS)
        for kind in kinds:
            self._size -= len(self._tables[kind])
            self._tables[kind].clear()
        self._generation += 1

    async def open(self) -> None:
        """Start listening (a failure leaves the cache bypassed until a retry succeeds)."""
        await self.listener.subscribe({QUERY_CHANNEL: self._changed}, self._changed)

    async def resolve(
        self, conn: QueryConn, wanted: Mapping[Kind, Iterable[Any]], *, fresh: bool
    ) -> dict[Kind, Table]:
        """The details of ``wanted``: kept ones when ``fresh`` (a check passed), the rest read.

        Args:
            conn: where missing details are read.
            wanted: kind → ids (village codes for ``villages``).
            fresh: the result of :meth:`check` taken when the request arrived.
        """
        out: dict[Kind, Table] = {k: {} for k in KINDS}
        missing: dict[Kind, list[Any]] = {}
        for kind in KINDS:
            have = self._tables[kind] if fresh else {}
            for key in wanted.get(kind, ()):
                hit = have.get(key)
                if hit is None:
                    missing.setdefault(kind, []).append(key)
                else:
                    out[kind][key] = hit
        if not missing:
            return out
        generation = self._generation
        got = await fetch(conn, missing)
        keep = fresh and generation == self._generation and self.listener.healthy
        if keep and self._size + sum(map(len, got.values())) > self.max_entries:
            self._changed()
        for kind, table in got.items():
            out[kind].update(table)
            if keep:
                self._tables[kind].update(table)
                self._size += len(table)
        return out

    async def check(self, after: int | None = None) -> bool:
        """Apply the changes committed so far; False when the feed is down (bypass).

        ``after``: the request's :meth:`~gis_service.db.listen.Listener.ticket`.
        """
        return await self.listener.check(after)


def variant(principal: Principal) -> int:
    """Index into a :data:`Table` value: how ``principal`` may see details (PII by role)."""
    return 0 if principal.sees_pii else 1
