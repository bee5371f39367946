"""Map labels: one label point per current grid, kept by trigger (issues 4 and 7).

Symbol labels on polygon tiles repeat in every tile a polygon crosses. A label-point layer
(``grid_labels``, ``community_labels``, ``township_labels`` in ``layers/``) places each
name once. ``admin_division.label_point`` already exists (maintained by the admin trigger
of 0001); this adds the same for ``grid``: ``ST_PointOnSurface`` (always inside the
polygon, cheap), recomputed by a BEFORE trigger whenever ``geom`` is written, so an edit,
an import or a grid commit moves its label in the same statement, and the statement
triggers of 0005 invalidate the cached tiles (the point lies inside the ``geom`` bbox they
announce).

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = """
CREATE OR REPLACE FUNCTION gis_grid_label_point() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.label_point := CASE WHEN NEW.geom IS NULL THEN NULL ELSE ST_PointOnSurface(NEW.geom) END;
    RETURN NEW;
END $$;
"""


def upgrade() -> None:
    """Add ``grid.label_point`` (GiST-indexed), its trigger, and fill existing rows."""
    op.execute("ALTER TABLE grid ADD COLUMN label_point geometry(POINT, 4490)")
    op.execute(FUNCTION)
    op.execute(
        "CREATE TRIGGER grid_label_point BEFORE INSERT OR UPDATE OF geom ON grid"
        " FOR EACH ROW EXECUTE FUNCTION gis_grid_label_point()"
    )
    # geom is not written, so stamping triggers stay quiet (row_version is bumped once).
    op.execute("UPDATE grid SET label_point = ST_PointOnSurface(geom) WHERE geom IS NOT NULL")
    op.execute("CREATE INDEX idx_grid_label_point ON grid USING gist (label_point)")


def downgrade() -> None:
    """Drop the column, its index and trigger."""
    op.execute("DROP TRIGGER IF EXISTS grid_label_point ON grid")
    op.execute("DROP FUNCTION IF EXISTS gis_grid_label_point()")
    op.execute("DROP INDEX IF EXISTS idx_grid_label_point")
    op.execute("ALTER TABLE grid DROP COLUMN IF EXISTS label_point")
