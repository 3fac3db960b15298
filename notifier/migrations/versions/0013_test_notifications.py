"""test notifications: a marker on every notification sent with a test key

Revision ID: 0013_test_notifications
Revises: 0011_services

A plain ``add_column`` with a server default (existing rows are live), so it runs on the table
as it is, partitioned or not, without rewriting it on PostgreSQL 11 and later.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_test_notifications"
down_revision: str | None = "0011_services"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "notifications",
        sa.Column("test", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("notifications", "test")
