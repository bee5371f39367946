"""Import speed (issue 3) needed no schema change: an empty step, kept so the chain stays as shipped.

The first-load shortcuts (TRUNCATE + COPY FREEZE, the ``ST_IsValid`` CHECK re-added
``NOT VALID``) are done by ``etl.load`` inside the import's own transaction.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-22
"""

from collections.abc import Sequence

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Nothing to do."""


def downgrade() -> None:
    """Nothing to do."""
