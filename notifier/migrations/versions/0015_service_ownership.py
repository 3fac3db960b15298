"""service ownership: names unique per service, contacts owned by a service, a test marker on
campaigns, and service_id NOT NULL on every table whose rows all have one

Revision ID: 0015_service_ownership
Revises: 0014_staff_services

* ``templates.name`` and ``audiences.name`` become unique per ``(service_id, name)``, and
  ``contacts.key`` per ``(service_id, key)``: one service's "receipt" template neither blocks
  nor reveals another's.
* ``contacts.service_id``: a contact takes the service of the audiences it is a member of
  (the default service when it is in none). A contact that is a member of several services'
  audiences is split: it stays with the default service's (or the first service's) audiences,
  and a copy (same key, fields and consent) is made for each other service and takes that
  service's memberships, so no audience holds another service's contact.
* ``campaigns.test``: false for every existing campaign (they were made with live keys).
* ``service_id`` NOT NULL, with the default service as server default (as ``api_keys``
  has since 0011: a row written by code that does not name a service lands there), on
  notifications, templates, audiences, campaigns and contacts; rows without one are given the
  default service first. Suppressions stay nullable (NULL: global).

On PostgreSQL the NOT NULL on the partitioned ``notifications`` reaches every partition (one
scan of each, no rewrite). On SQLite the tables are rebuilt (batch mode), which is how SQLite
changes a constraint. The downgrade refuses, with the names, when two services share a name
or a contact key: the old platform-wide unique constraints could not hold them.
"""

from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_service_ownership"
down_revision: str | None = "0014_staff_services"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT_SERVICE_ID = "00000000-0000-4000-8000-000000000000"
REQUIRED = ("notifications", "templates", "audiences", "campaigns", "contacts")
# table -> (the column unique before, the name of the per-service constraint)
UNIQUE = {
    "templates": ("name", "uq_templates_service_name"),
    "audiences": ("name", "uq_audiences_service_name"),
    "contacts": ("key", "uq_contacts_service_key"),
}
# how batch mode names a reflected unnamed constraint (SQLite's from 0003), so it can drop it
CONVENTION = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _unique_name(table: str, column: str) -> str:
    """The name of the constraint unique on ``column`` alone, as it is in this database."""
    for found in sa.inspect(op.get_bind()).get_unique_constraints(table):
        if found["column_names"] == [column]:
            return found["name"] or CONVENTION["uq"] % {
                "table_name": table,
                "column_0_name": column,
            }
    raise RuntimeError(f"{table} has no unique constraint on {column}")


def _contacts_to_services() -> None:
    """Every contact is the default service's so far; give each its audiences' service, and
    split the ones in several services' audiences (after the unique key became per service)."""
    bind = op.get_bind()
    pairs = bind.execute(
        sa.text(
            "SELECT DISTINCT m.contact_id, a.service_id FROM audience_members m "
            "JOIN audiences a ON a.id = m.audience_id WHERE a.service_id IS NOT NULL "
            "ORDER BY m.contact_id, a.service_id"
        )
    ).all()
    services: dict[int, list[str]] = defaultdict(list)
    for contact_id, service_id in pairs:
        services[contact_id].append(service_id)
    columns = [
        c["name"]
        for c in sa.inspect(bind).get_columns("contacts")
        if c["name"] not in ("id", "service_id")
    ]
    listed = ", ".join(columns)
    for contact_id, owners in services.items():
        keep = DEFAULT_SERVICE_ID if DEFAULT_SERVICE_ID in owners else owners[0]
        if keep != DEFAULT_SERVICE_ID:
            bind.execute(
                sa.text("UPDATE contacts SET service_id = :s WHERE id = :id"),
                {"s": keep, "id": contact_id},
            )
        for other in owners:
            if other == keep:
                continue
            copy = bind.execute(
                sa.text(
                    f"INSERT INTO contacts (service_id, {listed}) "  # noqa: S608 - reflected names
                    f"SELECT :s, {listed} FROM contacts WHERE id = :id RETURNING id"
                ),
                {"s": other, "id": contact_id},
            ).scalar_one()
            bind.execute(
                sa.text(
                    "UPDATE audience_members SET contact_id = :copy WHERE contact_id = :id "
                    "AND audience_id IN (SELECT id FROM audiences WHERE service_id = :s)"
                ),
                {"copy": copy, "id": contact_id, "s": other},
            )


def upgrade() -> None:
    op.add_column("contacts", sa.Column("service_id", sa.String(length=36), nullable=True))
    op.add_column(
        "campaigns",
        sa.Column("test", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    for table in REQUIRED:
        op.execute(
            sa.text(
                f"UPDATE {table} SET service_id = '{DEFAULT_SERVICE_ID}' "  # noqa: S608 - constants
                "WHERE service_id IS NULL"
            )
        )
    for table in REQUIRED:
        unique = UNIQUE.get(table)
        old = _unique_name(table, unique[0]) if unique else None
        with op.batch_alter_table(table, naming_convention=CONVENTION) as batch:
            batch.alter_column(
                "service_id",
                existing_type=sa.String(length=36),
                nullable=False,
                server_default=DEFAULT_SERVICE_ID,
            )
            if unique and old:
                batch.drop_constraint(old, type_="unique")
                batch.create_unique_constraint(unique[1], ["service_id", unique[0]])
    _contacts_to_services()


def _refuse_shared(table: str, column: str) -> None:
    shared = (
        op.get_bind()
        .execute(
            sa.text(
                f"SELECT {column} FROM {table} GROUP BY {column} HAVING count(*) > 1"  # noqa: S608 - constants
            )
        )
        .scalars()
        .all()
    )
    if shared:
        raise RuntimeError(
            f"cannot downgrade: {table} {column}s used by more than one service "
            f"({', '.join(repr(s) for s in shared[:10])}); rename or delete them first"
        )


def downgrade() -> None:
    for table, (column, _) in UNIQUE.items():
        _refuse_shared(table, column)
    for table in REQUIRED:
        unique = UNIQUE.get(table)
        with op.batch_alter_table(table) as batch:
            if unique:
                batch.drop_constraint(unique[1], type_="unique")
                # PostgreSQL's own name for 0003's unnamed constraint, so a new upgrade finds it
                batch.create_unique_constraint(f"{table}_{unique[0]}_key", [unique[0]])
            if table == "contacts":
                batch.drop_column("service_id")
            else:
                batch.alter_column(
                    "service_id",
                    existing_type=sa.String(length=36),
                    nullable=True,
                    server_default=None,
                )
    op.drop_column("campaigns", "test")
