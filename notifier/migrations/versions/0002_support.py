"""support console: staff accounts, server-side sessions, audit log

No new index on notifications: the support searches use the indexes of 0001 (recipient +
created_at, api_key_id + created_at, reference, provider_message_id, created_at, the primary key);
tests/support/test_search_postgres.py proves it with EXPLAIN.

Revision ID: 0002_support
Revises: 13a097fc4d33
Create Date: 2026-11-22 02:41:11.178015
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import notifier.db.models

revision: str = "0002_support"
down_revision: str | None = "13a097fc4d33"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staff_accounts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("created_at", notifier.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_sign_in_at", notifier.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("disabled_at", notifier.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
    )
    op.create_table(
        "support_audit",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", notifier.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_kind", sa.String(length=20), nullable=False),
        sa.Column("actor_id", sa.String(length=36), nullable=False),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("action", sa.String(length=30), nullable=False),
        sa.Column("notification_id", sa.String(length=36), nullable=True),
        sa.Column("query", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("support_audit", schema=None) as batch_op:
        batch_op.create_index("ix_support_audit_actor_at", ["actor", "at"], unique=False)
        batch_op.create_index("ix_support_audit_at", ["at"], unique=False)
        batch_op.create_index("ix_support_audit_notification", ["notification_id"], unique=False)

    op.create_table(
        "staff_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("staff_id", sa.String(length=36), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", notifier.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", notifier.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", notifier.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", notifier.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("client_address", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_accounts.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("staff_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staff_sessions_staff_id"), ["staff_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("staff_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_sessions_staff_id"))

    op.drop_table("staff_sessions")
    with op.batch_alter_table("support_audit", schema=None) as batch_op:
        batch_op.drop_index("ix_support_audit_notification")
        batch_op.drop_index("ix_support_audit_at")
        batch_op.drop_index("ix_support_audit_actor_at")

    op.drop_table("support_audit")
    op.drop_table("staff_accounts")
