"""status reason codes: a stable code beside the sentence of every status reason

Revision ID: 0010_status_reason_codes
Revises: 0008_worker_heartbeats

Rows written before this revision have only the sentence; the backfill reads it once, here,
by the prefixes the service wrote (the only place that ever reads a reason's prose). The codes
are written out rather than imported: a migration must keep meaning what it meant when it ran.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_status_reason_codes"
down_revision: str | None = "0009_time_partitions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (LIKE pattern of status_reason, code), first match wins
_PROSE = (
    ("quiet hours %", "quiet_hours"),
    ("throttled: %", "throttled"),
    ("held: %", "held"),
    ("released: %", "released"),
    ("recipient suppressed: %", "suppressed"),
    ("no marketing consent %", "no_consent"),
    ("not rendered: %", "not_rendered"),
    ("not sent: %", "content_refused"),
    ("cancelled by %", "cancelled"),
    ("the campaign was cancelled%", "cancelled"),
    ("gave up after %", "gave_up"),
    ("time to live %", "expired"),
    ("may have been delivered%", "unconfirmed"),
    ("% receipt: %", "receipt_failed"),
)


def upgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("status_code", sa.String(length=40), nullable=True))
    notifications = sa.table(
        "notifications",
        sa.column("status", sa.String()),
        sa.column("status_reason", sa.String()),
        sa.column("status_code", sa.String()),
    )
    reason = notifications.c.status_reason
    known: list[tuple[sa.ColumnElement[bool], str]] = [
        (reason.like(pattern), code) for pattern, code in _PROSE
    ]
    # what is left on a failed row is a provider's permanent answer, "<code>: <message>"
    known.append((notifications.c.status == "failed", "rejected_by_provider"))
    op.execute(
        notifications.update()
        .where(reason.is_not(None))
        .values(status_code=sa.case(*known, else_=None))
    )


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("status_code")
