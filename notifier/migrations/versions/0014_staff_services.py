"""staff per service: staff accounts belong to a service, audit entries name the service looked at

Revision ID: 0014_staff_services
Revises: 0013_test_notifications

* ``staff_accounts.service_id`` (nullable, indexed): the service whose rows the account sees.
  Existing ``support`` accounts join the default service (it holds every row of before
  services, so they see what they saw); existing ``admin`` accounts become ``platform_admin``
  with no service (they saw and did everything, and still do). No foreign key, like
  ``api_keys.service_id``: SQLite cannot add one to a table with rows without rebuilding it,
  and services are never deleted.
* ``support_audit.service_id`` (nullable) with an index on (service_id, at) for the audit page
  of one service. Existing entries keep NULL: which service a look of before belonged to is not
  known, so they stay on the platform admins' page only.

The downgrade cannot express a service: platform admins become ``admin`` again, the default
service's staff keep their role, and the staff of every other service are disabled (the old
schema would let them see every service's rows).
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from notifier.db.models import UTCDateTime

revision: str = "0014_staff_services"
down_revision: str | None = "0013_test_notifications"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = ("0007_console_operator",)  # support_audit columns

DEFAULT_SERVICE_ID = "00000000-0000-4000-8000-000000000000"


def upgrade() -> None:
    op.add_column("staff_accounts", sa.Column("service_id", sa.String(length=36), nullable=True))
    op.create_index(op.f("ix_staff_accounts_service_id"), "staff_accounts", ["service_id"])
    op.execute(
        sa.text(
            f"UPDATE staff_accounts SET service_id = '{DEFAULT_SERVICE_ID}' "  # noqa: S608 - constants
            "WHERE role = 'support'"
        )
    )
    op.execute(sa.text("UPDATE staff_accounts SET role = 'platform_admin' WHERE role = 'admin'"))
    op.add_column("support_audit", sa.Column("service_id", sa.String(length=36), nullable=True))
    op.create_index("ix_support_audit_service_at", "support_audit", ["service_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_support_audit_service_at", table_name="support_audit")
    op.drop_column("support_audit", "service_id")
    staff = sa.table(
        "staff_accounts",
        sa.column("service_id", sa.String()),
        sa.column("disabled_at", UTCDateTime()),
    )
    op.execute(
        staff.update()
        .where(staff.c.service_id != DEFAULT_SERVICE_ID, staff.c.disabled_at.is_(None))
        .values(disabled_at=datetime.now(UTC))
    )
    op.execute(sa.text("UPDATE staff_accounts SET role = 'admin' WHERE role = 'platform_admin'"))
    op.drop_index(op.f("ix_staff_accounts_service_id"), table_name="staff_accounts")
    op.drop_column("staff_accounts", "service_id")
