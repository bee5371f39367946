"""Query speed (issue 5): a change feed for the locate answer's cached parts.

``GET /query/locate`` answers are mostly the same per grid, village, hazard point, risk zone
and shelter (admin chain, grid staff with phones, responsible persons, shelter details), so
each API worker keeps those parts ready (``gis_service.query.details``). Statement triggers
on every table those parts are read from ``NOTIFY gis_query_change`` with the table name;
the worker forgets its parts on any committed change (API, CLI, imports, ``psql``). Statement
triggers fire once per statement, also for bulk loads (``gis.bulk``), and PostgreSQL folds
equal notifications of one transaction into one.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Tables the cached parts of a locate answer are read from.
TRACKED = (
    "admin_division",
    "grid",
    "grid_assignment",
    "person",
    "responsibility",
    "geohazard_point",
    "geohazard_zone",
    "shelter",
)

FUNCTION = """
CREATE OR REPLACE FUNCTION gis_query_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('gis_query_change', TG_TABLE_NAME);
    RETURN NULL;
END
$$;
"""


def upgrade() -> None:
    """Install the notifying statement triggers."""
    op.execute(FUNCTION)
    for table in TRACKED:
        op.execute(
            f"CREATE TRIGGER {table}_query_change AFTER INSERT OR UPDATE OR DELETE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION gis_query_change()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_query_trunc AFTER TRUNCATE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION gis_query_change()"
        )


def downgrade() -> None:
    """Remove them."""
    for table in TRACKED:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_query_change ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_query_trunc ON {table}")
    op.execute("DROP FUNCTION IF EXISTS gis_query_change()")
