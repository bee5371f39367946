"""Query speed (issue 5): geography and SP-GiST indexes for the locate statement's small tables.

Shelters, geological-hazard points and risk zones number in the hundreds per city, so each
geometry GiST index is a page or two that a probe reads entry by entry: per located point
the nearest shelter, the nearest open shelter, the hazard points within 500 m and the risk
zones at the point cost most of the statement (EXPLAIN ANALYZE of a 1,000-point chunk).
Metre questions go through GiST indexes on ``(geom::geography)`` (``<->`` orders by sphere
distance, ``ST_DWithin`` brings its own index condition), the open shelters (the ones that
take people now) have their own partial one, and the zone-at-point test an SP-GiST index.
The geometry GiST indexes stay (tiles, bbox queries, OGC API Features).

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The shelters that take people now (``query.locate.OPEN_SHELTER`` must imply it).
OPEN_SHELTER = "status IN ('open', 'opening') AND capacity > current_occupancy"

INDEXES = (
    ("ix_shelter_geography", "shelter USING gist ((geom::geography))"),
    (
        "ix_shelter_open_geography",
        f"shelter USING gist ((geom::geography)) WHERE {OPEN_SHELTER}",
    ),
    ("ix_geohazard_point_geography", "geohazard_point USING gist ((geom::geography))"),
    ("ix_geohazard_zone_geom_spgist", "geohazard_zone USING spgist (geom)"),
)


def upgrade() -> None:
    """Create the indexes."""
    for name, definition in INDEXES:
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {definition}")


def downgrade() -> None:
    """Drop them."""
    for name, _ in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
