"""support console and operator API: run completion, audit source, archiving

* ``campaign_runs.fanned_out_at``: the fan-out reached the end of the audience; the run stays
  ``running`` until nothing of it is held back any more (throttle or quiet hours), then completes;
* ``campaign_runs.paused_at``: when the run was paused, so a resume can shift throttled send
  times by the length of the pause instead of releasing them all at once;
* ``support_audit.client_address`` / ``user_agent``: where an audited request came from (failed
  sign-ins and refused actions are audited too);
* ``archived_at`` on templates, audiences and campaigns: archived objects are hidden from
  listings and cannot be used by new campaigns, but stay readable for history.

Revision ID: 0007_console_operator
Revises: 0004_webhooks
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import notifier.db.models

revision: str = "0007_console_operator"
down_revision: str | None = "0004_webhooks"
branch_labels: str | Sequence[str] | None = None
# the tables changed here are created on the support and campaigns branches
depends_on: str | Sequence[str] | None = ("0002_support", "0003_campaigns")

_WHEN = notifier.db.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("campaign_runs") as batch:
        batch.add_column(sa.Column("fanned_out_at", _WHEN, nullable=True))
        batch.add_column(sa.Column("paused_at", _WHEN, nullable=True))
    with op.batch_alter_table("support_audit") as batch:
        batch.add_column(sa.Column("client_address", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("user_agent", sa.String(length=300), nullable=True))
    for table in ("templates", "audiences", "campaigns"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("archived_at", _WHEN, nullable=True))


def downgrade() -> None:
    for table in ("templates", "audiences", "campaigns"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("archived_at")
    with op.batch_alter_table("support_audit") as batch:
        batch.drop_column("user_agent")
        batch.drop_column("client_address")
    with op.batch_alter_table("campaign_runs") as batch:
        batch.drop_column("paused_at")
        batch.drop_column("fanned_out_at")
