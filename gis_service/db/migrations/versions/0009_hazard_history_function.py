"""``gis_hazard_history(ids, actor)``: a synthetic event history for 隐患 rows that have none.

Imported ledger rows arrive without events, and the monthly statistics count events. The
rule lived in ``gis_service.hazards.ledger``; as a function both the ledger's backfill and
the importer (right after a 隐患 import, in its transaction) apply the same one.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the function."""
    op.execute(
        """
        CREATE OR REPLACE FUNCTION gis_hazard_history(ids bigint[], actor text)
        RETURNS bigint LANGUAGE plpgsql AS $$
        DECLARE
            n bigint;
        BEGIN
            INSERT INTO hazard_event (hazard_id, action, from_status, to_status, actor, at,
                                      note, source)
            SELECT h.id, 'import', CASE WHEN s.n = 1 THEN NULL ELSE st.states[s.n - 1] END,
                   st.states[s.n], actor,
                   h.found_at + (coalesce(h.closed_at, h.found_at) - h.found_at)
                       * ((s.n - 1)::float
                          / greatest(array_position(st.states, h.status::text) - 1, 1)),
                   'history reconstructed from an imported ledger row',
                   coalesce(h.source, 'import')
            FROM safety_hazard h
            CROSS JOIN (SELECT ARRAY['found', 'assigned', 'rectifying', 'closeout_requested',
                                     'closed']::text[] AS states) st
            CROSS JOIN LATERAL generate_series(1, array_position(st.states, h.status::text)) s(n)
            WHERE h.id = ANY(ids)
              AND NOT EXISTS (SELECT 1 FROM hazard_event e WHERE e.hazard_id = h.id)
            ORDER BY h.id, s.n;
            GET DIAGNOSTICS n = ROW_COUNT;
            RETURN n;
        END $$;
        """
    )


def downgrade() -> None:
    """Drop the function."""
    op.execute("DROP FUNCTION IF EXISTS gis_hazard_history(bigint[], text)")
