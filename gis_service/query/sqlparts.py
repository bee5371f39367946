"""SQL fragments shared by the query statements: exact metre distances that still use the index.

Geometries are stored in lon/lat, where a degree of longitude is shorter than a degree of
latitude, so neither ``ST_DWithin`` on geometry nor ``<->`` ordering gives metres. The pattern
here: a degree box that surely holds the radius (``&&``, GiST), then the geodesic test on
geography. For the k nearest, ``<->`` finds k candidates through the index, the farthest of
them bounds the true answer in metres, and the exact k are picked inside that bound.
Every name interpolated here is a constant of this package; values are bound parameters.
"""

from __future__ import annotations

import re

from sqlalchemy import TextClause, text

from gis_service.db.engine import GENERIC_PLANS, QueryConn, ReadConnection

M_PER_DEG_LAT_MIN = 110_574.0
M_PER_DEG_LON_EQ = 111_320.0


def expand_sql(point: str, lat: str, radius: str) -> str:
    """``ST_Expand`` box around ``point`` covering ``radius`` metres (SQL expressions)."""
    dlat = f"({radius}) / {M_PER_DEG_LAT_MIN} * 1.01"
    dlon = (
        f"({radius}) / ({M_PER_DEG_LON_EQ} * cos(radians(least(89.0, abs({lat}) + {dlat})))) * 1.01"
    )
    return f"ST_Expand({point}, {dlon}, {dlat})"


def within_sql(geom: str, point: str, lat: str, radius: str) -> str:
    """Predicate: ``geom`` lies within ``radius`` metres (geodesic) of ``point``."""
    return (
        f"{geom} && {expand_sql(point, lat, radius)}"
        f" AND ST_DWithin({geom}::geography, {point}::geography, {radius})"
    )


def distance_sql(geom: str, point: str) -> str:
    """Geodesic distance in metres (spheroid) between ``geom`` and ``point``."""
    return f"ST_Distance({geom}::geography, {point}::geography)"


def knn_bound_sql(table: str, where: str, point: str, k: str) -> str:
    """Scalar subquery: metres to the farthest of the k index-nearest rows (NULL if none).

    A centimetre is added because ``ST_DWithin`` and ``ST_Distance`` on geography do not round
    alike: the farthest candidate itself must pass the radius test.
    """
    return (
        f"(SELECT max({distance_sql('c.geom', point)}) + 0.01 FROM"
        f" (SELECT t.geom FROM {table} t WHERE {where} ORDER BY t.geom <-> {point} LIMIT {k}) c)"
    )


def knn_bound_geography_sql(table: str, where: str, point: str, k: str) -> str:
    """:func:`knn_bound_sql` through a GiST index on ``(geom::geography)`` (migration 0018).

    Any k rows bound the k nearest; the sphere-nearest (``<->`` on geography, exact on the
    sphere) are a tighter bound than the degree-nearest, and that index probe costs a
    fraction of the geometry one, which rejects every entry of the few-hundred-row tables
    this is used on one by one (the only geometry GiST page of such a table).
    """
    return (
        f"(SELECT max({distance_sql('c.geom', point)}) + 0.01 FROM"
        f" (SELECT t.geom FROM {table} t WHERE {where}"
        f" ORDER BY t.geom::geography <-> {point}::geography LIMIT {k}) c)"
    )


def within_geography_sql(geom: str, point: str, radius: str) -> str:
    """:func:`within_sql` for a table with a GiST index on ``(geom::geography)``.

    ``ST_DWithin`` on geography brings its own index condition (a box around ``point``);
    on these tables it costs less than the degree box on geometry.
    """
    return f"ST_DWithin({geom}::geography, {point}::geography, {radius})"


_GENERIC = text("SET LOCAL plan_cache_mode = force_generic_plan")


async def use_generic_plans(conn: QueryConn) -> None:
    """Plan the (prepared) point-query statements once per connection, not per call.

    psycopg prepares a statement after a few runs, but PostgreSQL keeps re-planning it for
    each call (a "custom plan") when the generic plan's estimate looks costlier; for these
    index-driven point lookups planning costs several times the execution (3–8 ms against
    about 1 ms on the city demo). ``SET LOCAL`` ends with the transaction. Free when the
    transaction was opened with ``TxContext(generic_plans=True)`` (the API's query routes).
    """
    if not conn.info.get(GENERIC_PLANS):
        await conn.execute(_GENERIC)


_CUSTOM = text("SET LOCAL plan_cache_mode = force_custom_plan")


async def use_custom_plans(conn: QueryConn) -> None:
    """Plan each run for its own parameters (batches: planning is cheap next to running).

    A generic plan cannot see how selective the caller's area is and may drive a batch from
    the wrong side (past the statement timeout, measured); a thousand points amortise a few
    milliseconds of planning. Read connections plan generically for their whole session,
    so batches must come in a transaction.
    """
    if isinstance(conn, ReadConnection):
        raise TypeError("batches run in a transaction, not on a read connection")
    await conn.execute(_CUSTOM)


_COMMENT = re.compile(r"--[^\n]*")
_SPACE = re.compile(r"\s+")


def compact(sql: str) -> str:
    """``sql`` without comments and runs of white space (the package's statements only).

    psycopg caches its conversion of a statement's ``%(name)s`` placeholders only up to 4 KiB
    of text: the locate statement, laid out for reading, was re-parsed on every call.
    Safe for this package's statements: none has a string literal holding ``--`` or a run
    of spaces.
    """
    return _SPACE.sub(" ", _COMMENT.sub("", sql)).strip()


def cached_text(sql: str) -> TextClause:
    """A compact ``text()`` construct per distinct statement (compiled and converted once)."""
    clause = _TEXTS.get(sql)
    if clause is None:
        clause = _TEXTS[sql] = text(compact(sql))
    return clause


_TEXTS: dict[str, TextClause] = {}
