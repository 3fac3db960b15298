"""On PostgreSQL, with a seeded table, the support searches are answered from indexes.

Seeds 20,000 notifications across 2,000 recipients and three callers, ANALYZEs, then reads the
plans of the console's real queries (compiled from ``notifier.support.search``) with EXPLAIN.
The table is partitioned by day there (``notifier/db/partitions.py``): the seeded days get their
partitions, as a running deployment has them, and a plan may read a partition that holds (next
to) nothing without an index — the days ahead and today's are empty — but every partition holding
the data must be read through the named index (its copies carry its name). The rows are seeded
back from the start of today, not from now: from now, today's partition held as many rows as
minutes had passed since midnight, so the plans depended on the hour the suite ran (at 03:28 UTC
it held 208 rows and was rightly scanned).
"""

from __future__ import annotations

import random
import re
from datetime import timedelta

import pytest
from sqlalchemy import insert, select, text

from notifier.db import partitions
from notifier.db.migrate import upgrade
from notifier.db.models import ApiKey, Notification, new_id, utcnow
from notifier.db.session import make_engine
from notifier.notifications.listing import conditions
from notifier.statuses import Status
from notifier.support.search import Criteria, SearchField, filters
from tests.factories import notification_row
from tests.services import fresh_postgres_database

pytestmark = pytest.mark.postgres

ROWS = 20_000
SMALL = 200  # a partition with fewer rows may be read without an index


@pytest.fixture(scope="module")
def seeded():
    with fresh_postgres_database() as url:
        upgrade(url)
        engine = make_engine(url)  # as the product's: behind PgBouncer it prepares nothing
        now = utcnow()
        today = partitions.interval_start(now, 1)
        rng = random.Random(5)
        keys: list[dict[str, object]] = [
            {"id": new_id(), "name": n, "prefix": n, "secret_hash": "x" * 64, "scopes": []}
            for n in ("billing", "shop", "auth")
        ]
        rows = []
        for i in range(ROWS):
            sms = i % 3 == 0
            rows.append(
                notification_row(
                    Status(rng.choice(["sent", "delivered", "failed", "queued"])),
                    lane="sms.transactional" if sms else "email.transactional",
                    recipient=f"+4479111{i % 2000:05d}" if sms else f"user{i % 2000}@example.com",
                    now=today - timedelta(minutes=i + 1),
                    api_key_id=keys[i % 3]["id"],
                    reference=f"order-{i}",
                    provider_message_id=f"pm-{i}",
                    content={"body": "hi"},
                    attempts=1,
                    updated_at=now,
                )
            )
        with engine.begin() as c:
            for back in range(1, ROWS // 1440 + 2):  # the seeded minutes' days
                day = today - timedelta(days=back)
                for table in partitions.PARTITIONED:
                    partitions.create(c, table, day, day + timedelta(days=1))
            c.execute(insert(ApiKey), keys)
            c.execute(insert(Notification), rows)
            c.execute(text("ANALYZE notifications"))
            c.execute(text("ANALYZE api_keys"))
        yield engine, now
        engine.dispose()


def assert_no_seq_scan_of_data(engine, explained: str) -> None:
    """Sequential scans only of partitions that hold (next to) nothing."""
    scanned = re.findall(r"Seq Scan on (notifications\w*)", explained)
    with engine.connect() as c:
        sizes = {t: c.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in scanned}  # noqa: S608
    assert all(rows < SMALL for rows in sizes.values()), (sizes, explained)


def plan(engine, criteria: Criteria) -> str:
    stmt = (
        select(Notification)
        .where(*conditions(filters(criteria)))
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(51)
    )
    compiled = stmt.compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as c:
        return "\n".join(r[0] for r in c.execute(text(f"EXPLAIN {compiled}")))


@pytest.mark.parametrize(
    ("field", "term", "index"),
    [
        (SearchField.RECIPIENT, "user42@example.com", "ix_notifications_recipient_created"),
        (SearchField.RECIPIENT, "07911 100042", "ix_notifications_recipient_created"),
        (SearchField.REFERENCE, "order-4242", "ix_notifications_reference"),
        (SearchField.PROVIDER_MESSAGE_ID, "pm-4242", "ix_notifications_provider_message_id"),
        (SearchField.ID, "00000000-0000-0000-0000-000000000000", "notifications_pkey"),
        (SearchField.ANYTHING, "order-4242", "ix_notifications_reference"),
    ],
)
def test_text_searches_use_an_index(seeded, field, term, index):
    engine, now = seeded
    for since in (None, now - timedelta(days=30)):
        explained = plan(engine, Criteria(terms=((field, term),), since=since))
        assert_no_seq_scan_of_data(engine, explained)
        assert index in explained, explained


def test_caller_filter_uses_an_index(seeded):
    engine, now = seeded
    explained = plan(
        engine, Criteria(caller="shop", status="failed", since=now - timedelta(days=1))
    )
    assert_no_seq_scan_of_data(engine, explained)
