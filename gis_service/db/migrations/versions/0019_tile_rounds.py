"""Tile rounds (issue 4): an empty step; cache-off tiles verify their caller through their own connections' LISTEN, which needs no schema change.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-22
"""

from collections.abc import Sequence

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Nothing to do."""


def downgrade() -> None:
    """Nothing to do."""
