"""status webhooks outbox

Revision ID: 0004_webhooks
Revises: 13a097fc4d33
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import notifier.db.models

revision: str = "0004_webhooks"
down_revision: str | None = "13a097fc4d33"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhook_deliveries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("notification_id", sa.String(length=36), nullable=False),
        sa.Column("api_key_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("notification_status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", notifier.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", notifier.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", notifier.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_response_code", sa.String(length=20), nullable=True),
        sa.ForeignKeyConstraint(["api_key_id"], ["api_keys.id"]),
        sa.ForeignKeyConstraint(["notification_id"], ["notifications.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"]
    )
    op.create_index(
        op.f("ix_webhook_deliveries_notification_id"), "webhook_deliveries", ["notification_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_webhook_deliveries_notification_id"), table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
