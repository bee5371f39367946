"""Special grids and barriers: crossings over hard barriers, special-grid features of a proposal.

``barrier_crossing`` holds bridges, underpasses and crossings: when a community has any,
units on the two sides of a river, rail line or major road are adjacent only where a
crossing joins them. ``special`` on proposal units and grids names the features (``facility:12``,
``enterprise:7``) a 专属网格 was pinned for.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CROSSING_KINDS = ("bridge", "underpass", "ford", "crossing")


def upgrade() -> None:
    """Create ``barrier_crossing``; add ``grid_proposal_grid.special``."""
    kinds = ", ".join(f"'{k}'" for k in CROSSING_KINDS)
    op.create_table(
        "barrier_crossing",
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column(
            "geom",
            Geometry(geometry_type="POINT", srid=4490, dimension=2, spatial_index=False),
            nullable=False,
        ),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("row_version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.CheckConstraint(f"kind IN ({kinds})", name=op.f("ck_barrier_crossing_kind")),
        sa.CheckConstraint(
            "(ST_IsValid(geom) AND NOT ST_IsEmpty(geom) "
            "AND ST_XMin(geom) >= -180 AND ST_XMax(geom) <= 180 "
            "AND ST_YMin(geom) >= -90 AND ST_YMax(geom) <= 90)",
            name=op.f("ck_barrier_crossing_geom_valid"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_barrier_crossing")),
    )  # fmt: skip
    op.create_geospatial_index(
        "idx_barrier_crossing_geom",
        "barrier_crossing",
        ["geom"],
        unique=False,
        postgresql_using="gist",
    )
    op.execute(
        "CREATE TRIGGER barrier_crossing_touch BEFORE UPDATE ON barrier_crossing"
        " FOR EACH ROW EXECUTE FUNCTION gis_touch()"
    )
    for table in ("grid_proposal_unit", "grid_proposal_grid"):
        op.add_column(
            table,
            sa.Column(
                "special",
                postgresql.ARRAY(sa.Text()),
                server_default=sa.text("'{}'::text[]"),
                nullable=False,
            ),
        )


def downgrade() -> None:
    """Drop what ``upgrade`` made."""
    for table in ("grid_proposal_unit", "grid_proposal_grid"):
        op.drop_column(table, "special")
    op.drop_geospatial_index(
        "idx_barrier_crossing_geom",
        table_name="barrier_crossing",
        postgresql_using="gist",
        column_name="geom",
    )
    op.drop_table("barrier_crossing")
