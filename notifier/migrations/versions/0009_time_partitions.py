"""time partitions: notifications and delivery_events partitioned by created_at on PostgreSQL

Revision ID: 0009_time_partitions
Revises: 0008_worker_heartbeats

On PostgreSQL each table is converted **with its data**, in the migration's one transaction
(it holds the tables for the copy: run it in a maintenance window on a large database): the
plain table is renamed aside, a partitioned table is made like it (same columns, defaults and
checks), partitions are made for every interval that holds rows plus the default partition and
the days ahead, the rows are copied, the sequence of ``delivery_events.id`` moves to the new
table, the old table is dropped, and the primary key (now ``(id, created_at)``), the indexes and
the foreign keys to plain tables are made again on the partitioned table (PostgreSQL builds them
in every partition). Foreign keys *to* ``notifications`` are dropped (see
``notifier/db/partitions.py`` for why and what keeps the integrity instead).

Downgrade makes plain tables again, with their data, and restores the foreign keys to
``notifications`` as ``NOT VALID`` (rows whose notification the retention dropped may remain;
new rows are checked). On SQLite both directions do nothing: SQLite is not partitioned.
"""

from collections.abc import Sequence
from datetime import timedelta

from alembic import op
from sqlalchemy import Connection, text

from notifier.db import partitions
from notifier.db.models import utcnow

revision: str = "0009_time_partitions"
down_revision: str | None = "0008_worker_heartbeats"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# the foreign keys to notifications that exist before this migration (restored by downgrade)
REFERENCES = (
    ("notifications", "resend_of"),
    ("delivery_events", "notification_id"),
    ("idempotency_keys", "notification_id"),
    ("webhook_deliveries", "notification_id"),
)


def _layout() -> partitions.Layout:
    """``notifier db upgrade`` passes the configured layout; by default one day, a week ahead."""
    config = op.get_context().config
    layout = config.attributes.get("partition_layout") if config is not None else None
    return layout if isinstance(layout, partitions.Layout) else partitions.Layout()


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    layout = _layout()
    for owner, name in bind.execute(
        text(
            "SELECT conrelid::regclass::text, conname FROM pg_constraint WHERE contype = 'f' "
            "AND confrelid = ANY (ARRAY[to_regclass('notifications'), "
            "to_regclass('delivery_events')])"
        )
    ).all():
        bind.execute(text(f'ALTER TABLE {owner} DROP CONSTRAINT "{name}"'))
    for table in partitions.PARTITIONED:
        _rebuild(bind, table, partitioned=True, layout=layout)
    partitions.prepare(bind, layout, utcnow(), lock_timeout=None)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for table in partitions.PARTITIONED:
        _rebuild(bind, table, partitioned=False, layout=_layout())
    for owner, column in REFERENCES:
        bind.execute(
            text(
                f"ALTER TABLE {owner} ADD CONSTRAINT {owner}_{column}_fkey "
                f"FOREIGN KEY ({column}) REFERENCES notifications (id) NOT VALID"
            )
        )


def _rebuild(bind: Connection, table: str, *, partitioned: bool, layout: partitions.Layout) -> None:
    """Make ``table`` again, partitioned or plain, with its rows, keys and indexes. The new
    table gets its keys and indexes before its partitions, so that every partition's copies are
    named after them (``notifier/db/partitions.py``); the rows are copied into indexed tables."""
    keep = _definitions(bind, table)
    aside = f"{table}_{'unpartitioned' if partitioned else 'partitioned'}"
    bind.execute(text(f"ALTER TABLE {table} RENAME TO {aside}"))
    old_key = f'"{keep.primary_key}" TO "{keep.primary_key}_old"'
    bind.execute(text(f"ALTER TABLE {aside} RENAME CONSTRAINT {old_key}"))
    for name, _ in keep.indexes:
        bind.execute(text(f'ALTER INDEX "{name}" RENAME TO "{name}_old"'))
    like = f"LIKE {aside} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE"
    by = f" PARTITION BY RANGE ({partitions.KEY})" if partitioned else ""
    bind.execute(text(f"CREATE TABLE {table} ({like}){by}"))
    key = f"id, {partitions.KEY}" if partitioned else "id"
    bind.execute(
        text(f'ALTER TABLE {table} ADD CONSTRAINT "{keep.primary_key}" PRIMARY KEY ({key})')
    )
    for (
        _,
        definition,
    ) in keep.indexes:  # a partitioned parent's are "ON ONLY": not for a plain table
        bind.execute(text(definition.replace(" ON ONLY ", " ON ", 1)))
    if partitioned:
        partitions.create_default(bind, table)
        width = timedelta(days=layout.days)
        for (n,) in bind.execute(
            text(
                f"SELECT DISTINCT floor(extract(epoch FROM {partitions.KEY}) / :w)::bigint "  # noqa: S608 - our names
                f"FROM {aside} ORDER BY 1"
            ),
            {"w": width.total_seconds()},
        ).all():
            start = partitions.EPOCH + n * width
            partitions.create(bind, table, start, start + width)
    bind.execute(text(f"INSERT INTO {table} SELECT * FROM {aside}"))  # noqa: S608 - our names
    for sequence, column in bind.execute(
        text(
            "SELECT s.relname, a.attname FROM pg_depend d "
            "JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
            "JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid "
            "WHERE d.refobjid = to_regclass(:t) AND d.deptype = 'a'"
        ),
        {"t": aside},
    ).all():
        bind.execute(text(f"ALTER SEQUENCE {sequence} OWNED BY {table}.{column}"))
    bind.execute(text(f"DROP TABLE {aside} CASCADE"))
    for name, definition in keep.foreign_keys:
        bind.execute(text(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'))


class _Definitions:
    def __init__(
        self,
        primary_key: str,
        indexes: list[tuple[str, str]],
        foreign_keys: list[tuple[str, str]],
    ) -> None:
        self.primary_key, self.indexes, self.foreign_keys = primary_key, indexes, foreign_keys


def _definitions(bind: Connection, table: str) -> _Definitions:
    """``table``'s primary key name, its other indexes (name, ``CREATE INDEX`` statement) and its
    foreign keys to plain tables, read from the catalog before the table is rebuilt."""
    constraints = bind.execute(
        text(
            "SELECT conname, contype, pg_get_constraintdef(oid), confrelid::regclass::text "
            "FROM pg_constraint WHERE conrelid = to_regclass(:t) AND contype IN ('p', 'f')"
        ),
        {"t": table},
    ).all()
    primary_key = next(name for name, kind, _, _ in constraints if kind == "p")
    indexes = bind.execute(
        text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename = :t AND indexname <> :pk ORDER BY indexname"
        ),
        {"t": table, "pk": primary_key},
    ).all()
    foreign = [
        (name, definition)
        for name, kind, definition, referred in constraints
        if kind == "f" and referred not in partitions.PARTITIONED
    ]
    return _Definitions(primary_key, [(n, d) for n, d in indexes], foreign)
