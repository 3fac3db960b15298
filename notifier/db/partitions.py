"""Time partitions of ``notifications`` and ``delivery_events`` on PostgreSQL.

Why: at tens of millions of notifications a day (about four events each) one table per kind
outgrows memory and maintenance. Native declarative partitioning, ``RANGE (created_at)``, keeps
every partition's indexes small (searches stay index scans within each partition), lets
autovacuum work per partition, and turns retention into ``DROP TABLE`` of a whole partition
instead of a ``DELETE`` that writes WAL and bloats for every row (``workers/partition_upkeep.py``).
SQLite, the embedded default, is not partitioned; nothing here runs there.

Layout. ``<table>_pYYYYMMDD`` covers ``[start, start + NOTIFIER_PARTITION_DAYS days)`` in UTC,
``start`` counted in whole intervals from 1970-01-01 (so names and bounds do not depend on when
a partition was made). ``<table>_default``, the DEFAULT partition, takes any row no partition
covers: **a row is never refused because beat was late.** A non-empty default partition means
partitions were not made in time; :func:`default_rows` counts it (the hourly task logs
``partitions.default_not_empty`` and reports the count: ``notifier_partition_default_rows``), and
the next :func:`prepare` moves those rows into the partitions it makes.

Made ahead. :func:`prepare` makes the partitions from the end of the last one (or from today)
through ``NOTIFIER_PARTITION_AHEAD_DAYS`` ahead; it is idempotent and runs hourly on beat, at the
end of every ``notifier db upgrade`` and at start-up (``notifier/db/migrate.py``). A partition is
made as a plain table, given the rows of its range that the default partition holds, then
attached: ``ATTACH PARTITION`` takes only SHARE UPDATE EXCLUSIVE on the parent, which does not
block reads or writes (``CREATE TABLE ... PARTITION OF`` would take ACCESS EXCLUSIVE), holds the
default partition only while it checks that no row there belongs to the new range (instant when
it is empty, as it normally is), and adopts the partition's copies of the parent's indexes.
Two runs at once serialise on that same lock (it conflicts with itself), taken before the
partitions are read; each statement waits at most ``LOCK_TIMEOUT`` so that maintenance never
queues traffic behind it, and a run that times out is simply repeated by the next one.

Keys. A partitioned table's primary key must include the partition key, so on PostgreSQL it is
``(id, created_at)``; the ORM keeps ``id`` alone as the identity (``session.get`` by id), and
ids are random UUIDs (or a sequence for events), unique without the database's help. Foreign keys
*to* the partitioned ``notifications`` would need ``created_at`` in every referencing row; they
do not exist on PostgreSQL: ``delivery_events``, ``idempotency_keys``, ``webhook_deliveries`` and
``notifications.resend_of`` name a notification by id, are written in the transaction that
writes it (intake's group commit, the recording) and are removed with it by the retention, whole
partitions at a time. Foreign keys *from* the partitioned tables to plain ones (``api_keys``)
stay, and SQLite keeps every foreign key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, text

# the partitioned tables and their partition key (one key: both are partitioned on created_at)
PARTITIONED: tuple[str, ...] = ("notifications", "delivery_events")
KEY = "created_at"
LOCK_TIMEOUT = "5s"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PARTITION_NAME = re.compile(rf"^({'|'.join(PARTITIONED)})_(p\d{{8}}|default)$")
_BOUNDS = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")
_DEFAULT_COUNT_CAP = 100_000  # counting a default partition stops here: "at least this many"


GAP_DAYS = 31  # how far back a plan fills a gap after the last partition (a beat stopped)


@dataclass(frozen=True)
class Layout:
    """How wide a partition is and how far ahead they are made (``NOTIFIER_PARTITION_DAYS``,
    ``NOTIFIER_PARTITION_AHEAD_DAYS``)."""

    days: int = 1
    ahead_days: int = 7

    def __post_init__(self) -> None:
        if self.days < 1 or self.ahead_days < 1:
            raise ValueError("partitions are at least one day wide and made at least a day ahead")


@dataclass(frozen=True)
class Partition:
    table: str
    name: str
    start: datetime
    end: datetime


def is_partition(name: str) -> bool:
    """A partition of ours (not a table of the models: Alembic's comparison skips it)."""
    return bool(_PARTITION_NAME.match(name))


def partition_name(table: str, start: datetime) -> str:
    return f"{table}_p{start.astimezone(UTC):%Y%m%d}"


def default_name(table: str) -> str:
    return f"{table}_default"


def interval_start(at: datetime, days: int) -> datetime:
    """The start of the ``days``-wide interval holding ``at``, counted from 1970-01-01 UTC."""
    whole = (at.astimezone(UTC) - EPOCH) // timedelta(days=days)
    return EPOCH + whole * timedelta(days=days)


def is_partitioned(conn: Connection, table: str) -> bool:
    """True when ``table`` is a partitioned table here (PostgreSQL at migration 0009 or later)."""
    if conn.dialect.name != "postgresql":
        return False
    kind = conn.execute(
        text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:t)"), {"t": table}
    ).scalar()
    return kind == "p"


def partitions(conn: Connection, table: str) -> list[Partition]:
    """``table``'s range partitions, oldest first (the default partition is not among them)."""
    rows = conn.execute(
        text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(:t)"
        ),
        {"t": table},
    ).all()
    found = []
    for name, bound in rows:
        match = _BOUNDS.search(bound or "")
        if match:
            start, end = (datetime.fromisoformat(v).astimezone(UTC) for v in match.groups())
            found.append(Partition(table, name, start, end))
    return sorted(found, key=lambda p: p.start)


def create(conn: Connection, table: str, start: datetime, end: datetime) -> Partition:
    """Make the partition ``[start, end)`` of ``table``: a plain table, filled with the rows of
    that range the default partition holds, then attached (see the module docstring)."""
    name = partition_name(table, start)
    # DDL takes no parameters: the bounds are literals of our own datetimes
    bound = f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
    _attach(conn, table, name, bound, (start, end))
    return Partition(table, name, start, end)


def create_default(conn: Connection, table: str) -> None:
    """Make ``table``'s default partition unless it exists."""
    name = default_name(table)
    if not _exists(conn, name):
        _attach(conn, table, name, "DEFAULT", None)


def _attach(
    conn: Connection, table: str, name: str, bound: str, rows: tuple[datetime, datetime] | None
) -> None:
    """Make ``name`` like ``table`` with the parent's primary key and indexes under names that
    start with the parent's (``ix_notifications_reference_p20261202``: a plan read in EXPLAIN
    names the index it uses), move in the default partition's rows of ``bound``, and attach it
    (ATTACH adopts the matching indexes instead of building its own). ``rows``: the range whose
    rows move in from the default partition (None: this is the default partition)."""
    suffix = name.removeprefix(f"{table}_")
    conn.execute(
        text(
            f"CREATE TABLE {name} "
            f"(LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)"
        )
    )
    for constraint, definition in conn.execute(
        text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = to_regclass(:t) AND contype = 'p'"
        ),
        {"t": table},
    ).all():
        conn.execute(text(f"ALTER TABLE {name} ADD CONSTRAINT {constraint}_{suffix} {definition}"))
    for index, definition in conn.execute(
        text(
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
            "JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = to_regclass(:t) AND NOT x.indisprimary"
        ),
        {"t": table},
    ).all():
        own = re.sub(rf" ON ONLY \S*\b{table} ", f" ON {name} ", definition, count=1)
        conn.execute(text(own.replace(f"INDEX {index} ", f"INDEX {index}_{suffix} ", 1)))
    default = default_name(table)
    if rows is not None and _exists(conn, default):
        conn.execute(
            text(
                f"WITH moved AS (DELETE FROM {default} "  # noqa: S608 - our names
                f"WHERE {KEY} >= :start AND {KEY} < :end RETURNING *) "
                f"INSERT INTO {name} SELECT * FROM moved"
            ),
            {"start": rows[0], "end": rows[1]},
        )
    conn.execute(text(f"ALTER TABLE {table} ATTACH PARTITION {name} {bound}"))


def _exists(conn: Connection, name: str) -> bool:
    return conn.execute(text("SELECT to_regclass(:t)"), {"t": name}).scalar() is not None


def plan(
    existing: list[Partition], layout: Layout, now: datetime
) -> list[tuple[datetime, datetime]]:
    """The ranges still to make so that partitions reach ``layout.ahead_days`` past ``now``:
    from the end of the last partition (or from the start of today's interval), one interval
    each. A gap left by a beat that stopped for days is filled too (its rows wait in the default
    partition and move in), back to at most :data:`GAP_DAYS` before today: a last partition far in
    the past (a database converted with only old rows) must not make one partition per day
    since then in one transaction. Older rows of such a gap stay in the default partition,
    which the alert on it shows and the retention purges. A changed width applies from the end
    of the last partition."""
    width = timedelta(days=layout.days)
    until = interval_start(now, 1) + timedelta(days=layout.ahead_days + 1)
    today = interval_start(now, layout.days)
    earliest = today - width * -(-GAP_DAYS // layout.days)
    start = max(existing[-1].end, earliest) if existing else today
    ranges = []
    while start < until:
        ranges.append((start, start + width))
        start += width
    return ranges


def prepare(
    conn: Connection, layout: Layout, now: datetime, *, lock_timeout: str | None = LOCK_TIMEOUT
) -> list[str]:
    """Make the partitions ``layout`` asks for on every partitioned table (and the default
    partition if it is missing); returns the names made. Idempotent; does nothing where the
    tables are not partitioned (SQLite, or PostgreSQL before migration 0009). Run it inside a
    transaction (the lock timeout is ``SET LOCAL``, which PgBouncer's transaction mode allows;
    ``None``: no timeout, for the migration, which owns the tables anyway)."""
    made: list[str] = []
    for table in PARTITIONED:
        if not is_partitioned(conn, table):
            continue
        if lock_timeout is not None:
            conn.execute(text(f"SET LOCAL lock_timeout = '{lock_timeout}'"))
        # one run at a time (this lock conflicts with itself, not with reads or writes); the
        # partitions are read after it is granted, so a second run sees what the first made
        conn.execute(text(f"LOCK TABLE {table} IN SHARE UPDATE EXCLUSIVE MODE"))
        create_default(conn, table)
        for start, end in plan(partitions(conn, table), layout, now):
            made.append(create(conn, table, start, end).name)
    return made


def expired(conn: Connection, cutoff: datetime) -> list[Partition]:
    """Partitions whose every row is older than ``cutoff`` (their end is at or before it)."""
    return [
        p
        for table in PARTITIONED
        if is_partitioned(conn, table)
        for p in partitions(conn, table)
        if p.end <= cutoff
    ]


def drop(conn: Connection, partition: Partition) -> None:
    """Drop one whole partition (its rows, its indexes): the retention's unit of work."""
    conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    conn.execute(text(f"DROP TABLE {partition.name}"))


def purge_default(conn: Connection, cutoff: datetime) -> int:
    """Delete the rows older than ``cutoff`` that wait in a default partition (rows of a gap no
    partition was made for): no partition drop would ever reach them."""
    deleted = 0
    for table in PARTITIONED:
        if is_partitioned(conn, table) and _exists(conn, default_name(table)):
            deleted += conn.execute(
                text(f"DELETE FROM {default_name(table)} WHERE {KEY} < :cutoff"),  # noqa: S608 - our names
                {"cutoff": cutoff},
            ).rowcount
    return deleted


def default_rows(conn: Connection) -> dict[str, int]:
    """Rows waiting in each table's default partition (counted up to 100,000): beat was late."""
    counts = {}
    for table in PARTITIONED:
        if is_partitioned(conn, table) and _exists(conn, default_name(table)):
            counts[table] = int(
                conn.execute(
                    text(
                        f"SELECT count(*) FROM (SELECT 1 FROM {default_name(table)} "  # noqa: S608 - our names
                        f"LIMIT {_DEFAULT_COUNT_CAP}) AS waiting"
                    )
                ).scalar_one()
            )
    return counts
