"""Import pipeline (issue 3): an empty step; this stop's import work (geometry checks on both cores, the WKB hand-over) needed no schema change.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-22
"""

from collections.abc import Sequence

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Nothing to do."""


def downgrade() -> None:
    """Nothing to do."""
