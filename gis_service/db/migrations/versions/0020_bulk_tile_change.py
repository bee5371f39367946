"""Bulk loads announce their tile change once: ``gis_tile_changed(table, op, box)``.

The statement trigger ``gis_tile_change`` of migration 0005 reads the extent of the rows a
statement touched from its transition table. For a bulk first load that table holds every
new row (a million buildings with their geometries, written to a tuplestore and read back:
+0.24 s of backend CPU on a 250k-row insert, +60 %, on the COPY's critical path). The importer knows
the box of what it wrote, so during a first load (table locked, indexes dropped) it switches
the INSERT trigger off and calls ``gis_tile_changed`` itself: the same ``tile_change`` row
and the same ``NOTIFY``, from one function the trigger now calls too.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANGED = r"""
CREATE OR REPLACE FUNCTION gis_tile_changed(tbl text, change text, box box2d) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    new_id bigint;
BEGIN
    INSERT INTO tile_change (table_name, op, min_x, min_y, max_x, max_y)
    VALUES (tbl, change, ST_XMin(box), ST_YMin(box), ST_XMax(box), ST_YMax(box))
    RETURNING id INTO new_id;
    IF new_id % 1000 = 0 THEN
        -- The log only has to outlive a server's reconnect; keep a week of it.
        DELETE FROM tile_change WHERE at < now() - interval '7 days';
    END IF;
    PERFORM pg_notify(
        'gis_tile_change',
        concat_ws('|', new_id, tbl,
                  CASE WHEN box IS NULL THEN ''
                       ELSE concat_ws(',', ST_XMin(box), ST_YMin(box), ST_XMax(box), ST_YMax(box))
                  END));
END
$$;
"""

TRIGGER = r"""
CREATE OR REPLACE FUNCTION gis_tile_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    col text := TG_ARGV[0];
    box box2d;
BEGIN
    IF TG_OP <> 'TRUNCATE' THEN
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
    PERFORM gis_tile_changed(TG_TABLE_NAME, TG_OP, box);
    RETURN NULL;
END
$$;
"""


def upgrade() -> None:
    op.execute(CHANGED)
    op.execute(TRIGGER)


def downgrade() -> None:
    """Back to migration 0005's trigger function (read from that migration, not copied)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "_tiles_0005", Path(__file__).with_name("0005_tiles.py")
    )
    assert spec is not None
    assert spec.loader is not None
    tiles = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tiles)
    op.execute(tiles.FUNCTION)
    op.execute("DROP FUNCTION IF EXISTS gis_tile_changed(text, text, box2d)")
