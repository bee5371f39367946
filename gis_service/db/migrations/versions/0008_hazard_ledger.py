"""隐患 ledger workflow (单四制): event details, append-only events, frozen monthly reports.

- ``safety_hazard``: legal basis, 五落实 (five in place), photos, 挂牌督办 level; an index
  on ``found_at`` (the ledger's default order).
- ``hazard_event``: the action, the actor's role and the step's payload (deadline,
  organisation, evidence, reason …); an index for month windows; UPDATE refused always and
  DELETE refused outside maintenance bulk mode (the demo reload), so the application can
  only append to the ledger's history.
- ``hazard_monthly_report``: published months, frozen (UPDATE refused).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_IMMUTABLE = """
CREATE OR REPLACE FUNCTION gis_hazard_history_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND coalesce(current_setting('gis.bulk', true), '') = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
"""


def upgrade() -> None:
    op.add_column("safety_hazard", sa.Column("legal_basis", sa.Text(), nullable=True))
    op.add_column(
        "safety_hazard",
        sa.Column("five_in_place", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.add_column(
        "safety_hazard",
        sa.Column(
            "photos",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
    )
    op.add_column(
        "safety_hazard", sa.Column("supervision_level", sa.String(length=8), nullable=True)
    )
    op.create_check_constraint(
        op.f("ck_safety_hazard_supervision_level"),
        "safety_hazard",
        "(supervision_level IS NULL OR supervision_level IN ('province', 'city', 'county'))",
    )
    op.create_index("ix_safety_hazard_found_at", "safety_hazard", ["found_at"], unique=False)
    op.add_column("hazard_event", sa.Column("action", sa.String(length=20), nullable=True))
    op.add_column("hazard_event", sa.Column("actor_role", sa.String(length=12), nullable=True))
    op.add_column(
        "hazard_event",
        sa.Column(
            "payload",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
    )
    op.create_check_constraint(
        op.f("ck_hazard_event_action"),
        "hazard_event",
        "(action IS NULL OR action IN ('create', 'assign', 'start', 'request_closeout',"
        " 'close', 'reject', 'escalate', 'import'))",
    )
    op.create_index(
        "ix_hazard_event_to_status_at", "hazard_event", ["to_status", "at"], unique=False
    )
    op.create_index("ix_hazard_event_action", "hazard_event", ["action"], unique=False)
    op.create_table(
        "hazard_monthly_report",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("root_code", sa.String(length=12), nullable=False),
        sa.Column("body", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("published_by", sa.Text(), nullable=True),
        sa.Column(
            "published_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
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
        sa.CheckConstraint(
            "extract(day FROM month) = 1", name=op.f("ck_hazard_monthly_report_month_first_day")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hazard_monthly_report")),
        sa.UniqueConstraint(
            "month", "root_code", name=op.f("uq_hazard_monthly_report_month_root_code")
        ),
    )
    op.execute(_IMMUTABLE)
    for table in ("hazard_event", "hazard_monthly_report"):
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION gis_hazard_history_immutable()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION gis_audit_immutable()"
        )


def downgrade() -> None:
    for table in ("hazard_event", "hazard_monthly_report"):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    op.drop_table("hazard_monthly_report")
    op.execute("DROP FUNCTION IF EXISTS gis_hazard_history_immutable()")
    op.drop_index("ix_hazard_event_action", table_name="hazard_event")
    op.drop_index("ix_hazard_event_to_status_at", table_name="hazard_event")
    op.drop_constraint(op.f("ck_hazard_event_action"), "hazard_event", type_="check")
    op.drop_column("hazard_event", "payload")
    op.drop_column("hazard_event", "actor_role")
    op.drop_column("hazard_event", "action")
    op.drop_index("ix_safety_hazard_found_at", table_name="safety_hazard")
    op.drop_constraint(op.f("ck_safety_hazard_supervision_level"), "safety_hazard", type_="check")
    op.drop_column("safety_hazard", "supervision_level")
    op.drop_column("safety_hazard", "photos")
    op.drop_column("safety_hazard", "five_in_place")
    op.drop_column("safety_hazard", "legal_basis")
