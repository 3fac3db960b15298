"""Support search at scale on PostgreSQL: p50/p95 of the searches the console and API run.

Seeds ``--rows`` notifications spread evenly over the last ``--days`` days into the time
partitions the product uses (one per day: ``notifier/db/partitions.py``, made for those days
before the load) with COPY (indexes built after the load, then ANALYZE), then times
the repository's own queries — by normalised recipient, by caller reference, by provider message
id — newest 50 first, for random existing values. Baseline in the same run: a primary-key lookup.

    python -m bench.search [--rows 10000000] [--days 30] [--queries 300] [--unpartitioned]
                           [--database-url ...]

(It uses neither a broker nor Redis, so it takes only ``--database-url``: see ``bench/common.py``.)
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from bench.common import PG_ADMIN_URL, emit, fresh_database
from notifier.db import partitions
from notifier.db.migrate import upgrade
from notifier.db.models import new_id
from notifier.notifications import listing, repository

INDEXES = [
    "ix_notifications_recipient_created",
    "ix_notifications_key_created",
    "ix_notifications_key_reference",
    "ix_notifications_reference",
    "ix_notifications_provider_message_id",
    "ix_notifications_status_published",
    "ix_notifications_created",
]
# every migration head before 0009_time_partitions (--unpartitioned)
UNPARTITIONED_HEADS = (
    "0002_support",
    "0003_campaigns",
    "0005_delivery_claims",
    "0007_console_operator",
    "0008_worker_heartbeats",
)
COLUMNS = (
    "id",
    "api_key_id",
    "channel",
    "category",
    "lane",
    "status",
    "recipient",
    "reference",
    "sensitive_fields",
    "created_at",
    "updated_at",
    "attempts",
    "provider",
    "provider_message_id",
)


def make_partitions(url: str, days: int) -> int:
    """The daily partitions of the ``days`` seeded (the product made today's and those ahead)."""
    engine = create_engine(url)
    today = partitions.interval_start(datetime.now(UTC), 1)
    with engine.begin() as connection:
        for table in partitions.PARTITIONED:
            have = {p.start for p in partitions.partitions(connection, table)}
            for back in range(1, days + 1):
                start = today - timedelta(days=back)
                if start not in have:
                    partitions.create(connection, table, start, start + timedelta(days=1))
        count = len(partitions.partitions(connection, "notifications"))
    engine.dispose()
    return count


def seed(url: str, rows: int, recipients: int, days: int) -> str:
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    key_id = str(uuid.uuid4())
    start = datetime.now(UTC) - timedelta(days=days)
    rng = random.Random(42)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO api_keys (id, name, prefix, secret_hash, scopes, created_at) "
            "VALUES (%s, 'bench', 'benchprefix0', 'x', '[]', now())",
            (key_id,),
        )
        definitions: dict[str, str] = {}
        for name in INDEXES:
            row = conn.execute(
                "SELECT indexdef FROM pg_indexes WHERE indexname = %s", (name,)
            ).fetchone()
            assert row is not None, f"index {name} is missing"
            definitions[name] = row[0]
        for name in INDEXES:
            conn.execute(f"DROP INDEX {name}")
        with conn.cursor().copy(f"COPY notifications ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for i in range(rows):
                created = start + timedelta(seconds=i * days * 86400 / rows)
                channel = "email" if i % 3 else "sms"
                recipient = (
                    f"user{rng.randrange(recipients)}@example.com"
                    if channel == "email"
                    else f"+4479{rng.randrange(10**8):08d}"
                )
                copy.write_row(
                    (
                        new_id(at=created),  # as intake makes it: the id carries created_at
                        key_id,
                        channel,
                        "transactional",
                        f"{channel}.transactional",
                        "sent",
                        recipient,
                        f"order-{i}",
                        "[]",
                        created,
                        created,
                        1,
                        "outbox",
                        f"pm-{i}",
                    )
                )
        for definition in definitions.values():  # on the partitioned parent: every partition
            conn.execute(definition.replace(" ON ONLY ", " ON ", 1))
        conn.execute("ANALYZE notifications")
    return key_id


def _expunged(session: Session) -> bool:
    """Empties the session's identity map (so the next read goes to the database); true, so the
    timed expression can chain it after a read."""
    session.expunge_all()
    return True


def timed(fn, samples: int) -> list[float]:
    durations = []
    for _ in range(samples):
        started = time.perf_counter()
        fn()
        durations.append((time.perf_counter() - started) * 1000)
    return durations


def pcts(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30, help="daily partitions the rows span")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument(
        "--unpartitioned",
        action="store_true",
        help="stop before migration 0009 (plain tables): the same searches without partitions",
    )
    parser.add_argument(
        "--database-url",
        default=PG_ADMIN_URL,
        help="a PostgreSQL server: a database of the benchmark's own is created there and dropped",
    )
    args = parser.parse_args()
    with fresh_database(args.database_url) as url:
        if args.unpartitioned:
            for head in UNPARTITIONED_HEADS:
                upgrade(url, head)
        else:
            upgrade(url)
        partition_count = 0 if args.unpartitioned else make_partitions(url, args.days)
        started = time.perf_counter()
        key_id = seed(url, args.rows, max(1000, args.rows // 20), args.days)
        seeded = time.perf_counter() - started
        engine = create_engine(url)
        rng = random.Random(7)
        with Session(engine) as session:
            sample = session.execute(
                text(
                    "SELECT id, recipient, reference, provider_message_id "
                    "FROM notifications TABLESAMPLE SYSTEM (1) "
                    "LIMIT :queries"
                ),
                {"queries": args.queries},
            ).all()
            by_recipient = timed(
                lambda: listing.page(
                    session, listing.Filters(recipients=[rng.choice(sample).recipient]), None, 50
                ),
                len(sample),
            )
            by_reference = timed(
                lambda: listing.page(
                    session,
                    listing.Filters(api_key_id=key_id, reference=rng.choice(sample).reference),
                    None,
                    50,
                ),
                len(sample),
            )
            by_message_id = timed(
                lambda: listing.page(
                    session,
                    listing.Filters(provider_message_id=rng.choice(sample).provider_message_id),
                    None,
                    50,
                ),
                len(sample),
            )
            baseline = timed(
                lambda: repository.get(session, rng.choice(sample).id) and _expunged(session),
                len(sample),
            )
        engine.dispose()
    combined = pcts(by_recipient + by_reference + by_message_id)
    emit(
        {
            "benchmark": "search",
            "rows": args.rows,
            "days": args.days,
            "partitions": partition_count,  # plus the default partition
            "seed_seconds": round(seeded, 1),
            "queries": len(sample) * 3,
            **combined,
            "recipient": pcts(by_recipient),
            "reference": pcts(by_reference),
            "provider_message_id": pcts(by_message_id),
            "baseline_pk_lookup": pcts(baseline),
            "ratio_p50_to_pk_lookup": round(combined["p50_ms"] / pcts(baseline)["p50_ms"], 2),
        }
    )


if __name__ == "__main__":
    main()
