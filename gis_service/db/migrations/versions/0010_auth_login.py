"""Password login, expiring login tokens, login throttling, and a change feed for user rows.

* ``user_password``: one scrypt hash per user. Kept out of ``app_user`` on purpose: every
  ``app_user`` change is copied whole into the audit log, and a password hash (unlike the
  SHA-256 of a 256-bit token) can be attacked offline.
* ``auth_token``: tokens issued by ``POST /auth/login`` (SHA-256 only), each with an expiry.
  CLI tokens stay in ``app_user.token_hash`` and do not expire.
* ``auth_failure``: failed logins by login and client address, for the E10 throttle.
* Statement triggers on ``app_user``, ``auth_token`` and ``user_password`` ``NOTIFY
  gis_auth_change`` on commit, so the API's principal cache forgets a disabled user or a
  revoked token on the next request, whoever made the change (API, CLI, ``psql``).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WATCHED = ("app_user", "auth_token", "user_password")

FUNCTION = """
CREATE OR REPLACE FUNCTION gis_auth_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('gis_auth_change', TG_TABLE_NAME);
    RETURN NULL;
END
$$;
"""


def upgrade() -> None:
    """Tables, indexes and the notify triggers."""
    op.execute(
        """
        CREATE TABLE user_password (
            user_id bigint NOT NULL,
            hash text NOT NULL,
            changed_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_user_password PRIMARY KEY (user_id),
            CONSTRAINT fk_user_password_user_id_app_user FOREIGN KEY (user_id)
                REFERENCES app_user (id) ON DELETE CASCADE
        )
        """
    )
    op.execute(
        """
        CREATE TABLE auth_token (
            id bigint GENERATED ALWAYS AS IDENTITY,
            user_id bigint NOT NULL,
            token_hash varchar(64) NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz NOT NULL,
            CONSTRAINT pk_auth_token PRIMARY KEY (id),
            CONSTRAINT uq_auth_token_token_hash UNIQUE (token_hash),
            CONSTRAINT fk_auth_token_user_id_app_user FOREIGN KEY (user_id)
                REFERENCES app_user (id) ON DELETE CASCADE
        )
        """
    )
    op.execute("CREATE INDEX ix_auth_token_user_id ON auth_token (user_id)")
    op.execute(
        """
        CREATE TABLE auth_failure (
            id bigint GENERATED ALWAYS AS IDENTITY,
            at timestamptz NOT NULL DEFAULT now(),
            login varchar(64) NOT NULL,
            address varchar(64) NOT NULL,
            CONSTRAINT pk_auth_failure PRIMARY KEY (id)
        )
        """
    )
    op.execute("CREATE INDEX ix_auth_failure_login_at ON auth_failure (login, at)")
    op.execute("CREATE INDEX ix_auth_failure_address_at ON auth_failure (address, at)")
    op.execute(FUNCTION)
    for table in WATCHED:
        op.execute(
            f"CREATE TRIGGER {table}_auth_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE"
            f" ON {table} FOR EACH STATEMENT EXECUTE FUNCTION gis_auth_change()"
        )


def downgrade() -> None:
    """Drop what upgrade made."""
    for table in WATCHED:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_auth_change ON {table}")
    op.execute("DROP TABLE IF EXISTS auth_failure")
    op.execute("DROP TABLE IF EXISTS auth_token")
    op.execute("DROP TABLE IF EXISTS user_password")
    op.execute("DROP FUNCTION IF EXISTS gis_auth_change()")
