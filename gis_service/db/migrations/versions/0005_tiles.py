"""Tiles: a change log of geometry tables for tile-cache invalidation, written by STATEMENT triggers.

Every INSERT/UPDATE/DELETE/TRUNCATE statement on a table that feeds a tile layer writes one
``tile_change`` row with the table and the bounding box of the rows it touched (old and new
positions, from the transition tables), and a ``NOTIFY gis_tile_change`` carrying the same.
Statement triggers fire for bulk loads too (COPY, INSERT … SELECT with ``gis.bulk = 'on'``),
where the row triggers of migration 0004 are skipped, so an import in another process
invalidates the server's cached tiles just like an edit through the API.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: table → geometry column whose extent a change covers.
TRACKED = {
    "building": "geom",
    "enterprise": "geom",
    "safety_hazard": "geom",
    "geohazard_point": "geom",
    "geohazard_zone": "geom",
    "shelter": "geom",
    "evacuation_route": "geom",
    "forest_patch": "geom",
    "fire_point": "geom",
    "facility": "geom",
    "barrier_line": "geom",
    "warning": "geom",
    "grid": "geom",
    "admin_division": "boundary",
}

FUNCTION = r"""
CREATE OR REPLACE FUNCTION gis_tile_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    col text := TG_ARGV[0];
    box box2d;
    new_id bigint;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        box := NULL;
    ELSE
        IF TG_OP = 'INSERT' THEN
            EXECUTE format('SELECT ST_Extent(%I) FROM gis_new_rows', col) INTO box;
        ELSIF TG_OP = 'DELETE' THEN
            EXECUTE format('SELECT ST_Extent(%I) FROM gis_old_rows', col) INTO box;
        ELSE
            -- Old and new positions: a moved feature leaves the tiles it was in.
            EXECUTE format(
                'SELECT ST_Extent(g) FROM (SELECT %1$I AS g FROM gis_new_rows'
                ' UNION ALL SELECT %1$I FROM gis_old_rows) u', col) INTO box;
        END IF;
        IF box IS NULL THEN
            -- No row with a geometry was touched: nothing on a map changed.
            RETURN NULL;
        END IF;
    END IF;
    INSERT INTO tile_change (table_name, op, min_x, min_y, max_x, max_y)
    VALUES (TG_TABLE_NAME, TG_OP, ST_XMin(box), ST_YMin(box), ST_XMax(box), ST_YMax(box))
    RETURNING id INTO new_id;
    IF new_id % 1000 = 0 THEN
        -- The log only has to outlive a server's reconnect; keep a week of it.
        DELETE FROM tile_change WHERE at < now() - interval '7 days';
    END IF;
    PERFORM pg_notify(
        'gis_tile_change',
        concat_ws('|', new_id, TG_TABLE_NAME,
                  CASE WHEN box IS NULL THEN ''
                       ELSE concat_ws(',', ST_XMin(box), ST_YMin(box), ST_XMax(box), ST_YMax(box))
                  END));
    RETURN NULL;
END
$$;
"""


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE tile_change (
            id bigint GENERATED ALWAYS AS IDENTITY,
            at timestamptz NOT NULL DEFAULT now(),
            table_name text NOT NULL,
            op varchar(8) NOT NULL,
            min_x double precision,
            min_y double precision,
            max_x double precision,
            max_y double precision,
            CONSTRAINT pk_tile_change PRIMARY KEY (id)
        )
        """
    )
    op.execute("CREATE INDEX ix_tile_change_at ON tile_change (at)")
    op.execute(FUNCTION)
    for table, column in TRACKED.items():
        op.execute(
            f"CREATE TRIGGER {table}_tiles_ins AFTER INSERT ON {table}"
            " REFERENCING NEW TABLE AS gis_new_rows"
            f" FOR EACH STATEMENT EXECUTE FUNCTION gis_tile_change('{column}')"
        )
        op.execute(
            f"CREATE TRIGGER {table}_tiles_upd AFTER UPDATE ON {table}"
            " REFERENCING OLD TABLE AS gis_old_rows NEW TABLE AS gis_new_rows"
            f" FOR EACH STATEMENT EXECUTE FUNCTION gis_tile_change('{column}')"
        )
        op.execute(
            f"CREATE TRIGGER {table}_tiles_del AFTER DELETE ON {table}"
            " REFERENCING OLD TABLE AS gis_old_rows"
            f" FOR EACH STATEMENT EXECUTE FUNCTION gis_tile_change('{column}')"
        )
        op.execute(
            f"CREATE TRIGGER {table}_tiles_trunc AFTER TRUNCATE ON {table}"
            f" FOR EACH STATEMENT EXECUTE FUNCTION gis_tile_change('{column}')"
        )


def downgrade() -> None:
    for table in TRACKED:
        for suffix in ("ins", "upd", "del", "trunc"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_tiles_{suffix} ON {table}")
    op.execute("DROP FUNCTION IF EXISTS gis_tile_change()")
    op.execute("DROP TABLE IF EXISTS tile_change")
