"""services: the services and allow-list tables, a default service owning every existing key
and row, key types, and the service column of the tables a service owns

Revision ID: 0011_services
Revises: 0008_worker_heartbeats

Plain ``add_column``/``drop_column`` only (no table rebuilds), so this runs on the tables as
they are, partitioned or not, and on SQLite without touching the foreign keys that point at
``api_keys`` and ``notifications``. Suppressions: only unsubscribes belong to a service; every
other reason stays global (``service_id`` NULL).
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import notifier.db.models

revision: str = "0011_services"
down_revision: str | None = "0010_status_reason_codes"
branch_labels: str | Sequence[str] | None = None
# the campaign tables (templates, audiences, campaigns) come from a branch of their own
depends_on: str | Sequence[str] | None = ("0003_campaigns",)

DEFAULT_SERVICE_ID = "00000000-0000-4000-8000-000000000000"
OWNED = ("notifications", "templates", "audiences", "campaigns", "suppressions")
INDEXED = ("templates", "audiences", "campaigns")


def upgrade() -> None:
    services = op.create_table(
        "services",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("trial", sa.Boolean(), nullable=False),
        sa.Column("created_at", notifier.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", notifier.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("senders", sa.JSON(), nullable=False),
        sa.Column("provider_chains", sa.JSON(), nullable=False),
        sa.Column("rate_limits", sa.JSON(), nullable=False),
        sa.Column("daily_quotas", sa.JSON(), nullable=False),
        sa.Column("retention_days", sa.Integer(), nullable=True),
        sa.Column("callback_url", sa.String(length=2000), nullable=True),
        sa.Column("callback_secret_sealed", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "service_allowed_recipients",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("service_id", sa.String(length=36), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("recipient", sa.String(length=4096), nullable=False),
        sa.Column("fingerprint", sa.String(length=71), nullable=False),
        sa.Column("created_at", notifier.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["service_id"], ["services.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("service_id", "fingerprint", name="uq_service_allowed_recipient"),
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        services,
        [
            {
                "id": DEFAULT_SERVICE_ID,
                "name": "default",
                "trial": False,  # today's callers keep sending to anyone
                "created_at": now,
                "updated_at": now,
                "senders": {},
                "provider_chains": {},
                "rate_limits": {},
                "daily_quotas": {},
            }
        ],
    )
    # NOT NULL with a server default fills every existing key in the same statement
    op.add_column(
        "api_keys",
        sa.Column(
            "service_id",
            sa.String(length=36),
            server_default=DEFAULT_SERVICE_ID,
            nullable=False,
        ),
    )
    op.add_column(
        "api_keys",
        sa.Column("key_type", sa.String(length=10), server_default="live", nullable=False),
    )
    op.create_index(op.f("ix_api_keys_service_id"), "api_keys", ["service_id"])
    for table in OWNED:
        op.add_column(table, sa.Column("service_id", sa.String(length=36), nullable=True))
    for table in ("notifications", "templates", "audiences", "campaigns"):
        op.execute(sa.text(f"UPDATE {table} SET service_id = '{DEFAULT_SERVICE_ID}'"))  # noqa: S608 - constants
    op.execute(
        sa.text(
            f"UPDATE suppressions SET service_id = '{DEFAULT_SERVICE_ID}' "  # noqa: S608 - constants
            "WHERE reason = 'unsubscribed'"
        )
    )
    op.create_index(
        "ix_notifications_service_created", "notifications", ["service_id", "created_at"]
    )
    for table in INDEXED:
        op.create_index(op.f(f"ix_{table}_service_id"), table, ["service_id"])


def downgrade() -> None:
    for table in INDEXED:
        op.drop_index(op.f(f"ix_{table}_service_id"), table_name=table)
    op.drop_index("ix_notifications_service_created", table_name="notifications")
    for table in OWNED:
        op.drop_column(table, "service_id")
    op.drop_index(op.f("ix_api_keys_service_id"), table_name="api_keys")
    op.drop_column("api_keys", "key_type")
    op.drop_column("api_keys", "service_id")
    op.drop_table("service_allowed_recipients")
    op.drop_table("services")
