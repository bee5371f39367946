"""Grid partitioning: proposals, their units and proposed grids (issue 6).

A proposal holds everything a planner reviews and edits before a commit: the atoms (a
building's cell inside a street block, or an empty block) with their current grid label,
and the dissolved grids with codes and figures. Committing writes ``grid`` rows.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("grid_proposal", "grid_proposal_unit", "grid_proposal_grid")


def _common() -> list[sa.Column[object]]:
    return [
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("row_version", sa.Integer(), server_default=sa.text("1"), nullable=False),
    ]


def _geom() -> sa.Column[object]:
    return sa.Column(
        "geom",
        Geometry(
            geometry_type="MULTIPOLYGON",
            srid=4490,
            dimension=2,
            spatial_index=False,
            from_text="ST_GeomFromEWKT",
            name="geometry",
        ),
        nullable=False,
    )


def _proposal_fk(table: str) -> list[object]:
    return [
        sa.Column("proposal_id", sa.BigInteger(), nullable=False),
        sa.Column("community_code", sa.String(length=12), nullable=False),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["grid_proposal.id"],
            name=op.f(f"fk_{table}_proposal_id_grid_proposal"),
            ondelete="CASCADE",
        ),
    ]


def _counts() -> list[sa.Column[object]]:
    return [
        sa.Column("households", sa.Integer(), server_default="0", nullable=False),
        sa.Column("population", sa.Integer(), server_default="0", nullable=False),
        sa.Column("area_m2", sa.Float(), nullable=False),
    ]


def upgrade() -> None:
    """Create the three proposal tables."""
    op.create_table(
        "grid_proposal",
        sa.Column("admin_code", sa.String(length=12), nullable=False),
        sa.Column(
            "community_codes",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'::text[]"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=12), server_default="running", nullable=False),
        sa.Column(
            "params",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "quality",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("error_detail", sa.Text(), nullable=True),
        sa.Column("actor", sa.Text(), nullable=True),
        sa.Column("scope_code", sa.String(length=12), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=True),
        *_common(),
        sa.CheckConstraint(
            "status IN ('running', 'ready', 'failed', 'committed', 'discarded')",
            name=op.f("ck_grid_proposal_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grid_proposal")),
    )
    op.create_index("ix_grid_proposal_admin_code", "grid_proposal", ["admin_code"], unique=False)

    op.create_table(
        "grid_proposal_unit",
        *_proposal_fk("grid_proposal_unit"),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("block", sa.Integer(), nullable=False),
        sa.Column("label", sa.Integer(), nullable=False),
        sa.Column(
            "building_ids",
            postgresql.ARRAY(sa.BigInteger()),
            server_default=sa.text("'{}'::bigint[]"),
            nullable=False,
        ),
        *_counts(),
        sa.Column("x", sa.Float(), nullable=False),
        sa.Column("y", sa.Float(), nullable=False),
        _geom(),
        *_common(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grid_proposal_unit")),
        sa.UniqueConstraint(
            "proposal_id",
            "community_code",
            "idx",
            name=op.f("uq_grid_proposal_unit_proposal_id_community_code_idx"),
        ),
    )
    op.create_index(
        "ix_grid_proposal_unit_label",
        "grid_proposal_unit",
        ["proposal_id", "community_code", "label"],
        unique=False,
    )

    op.create_table(
        "grid_proposal_grid",
        *_proposal_fk("grid_proposal_grid"),
        sa.Column("label", sa.Integer(), nullable=False),
        sa.Column("grid_code", sa.String(length=15), nullable=False),
        sa.Column("kind", sa.String(length=10), server_default="basic", nullable=False),
        *_counts(),
        sa.Column("polsby_popper", sa.Float(), nullable=False),
        sa.Column("pieces", sa.Integer(), nullable=False),
        _geom(),
        *_common(),
        sa.CheckConstraint(
            "grid_code ~ '^\\d{15}$'", name=op.f("ck_grid_proposal_grid_grid_code_15")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grid_proposal_grid")),
        sa.UniqueConstraint(
            "proposal_id",
            "community_code",
            "label",
            name=op.f("uq_grid_proposal_grid_proposal_id_community_code_label"),
        ),
    )
    for table in ("grid_proposal_unit", "grid_proposal_grid"):
        op.create_geospatial_index(
            f"idx_{table}_geom", table, ["geom"], unique=False, postgresql_using="gist"
        )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_touch BEFORE UPDATE ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION gis_touch()"
        )


def downgrade() -> None:
    """Drop the proposal tables (committed grids stay in ``grid``)."""
    for table in ("grid_proposal_grid", "grid_proposal_unit"):
        op.drop_geospatial_index(
            f"idx_{table}_geom", table_name=table, postgresql_using="gist", column_name="geom"
        )
    op.drop_index("ix_grid_proposal_unit_label", table_name="grid_proposal_unit")
    op.drop_table("grid_proposal_grid")
    op.drop_table("grid_proposal_unit")
    op.drop_index("ix_grid_proposal_admin_code", table_name="grid_proposal")
    op.drop_table("grid_proposal")
