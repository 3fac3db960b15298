"""Migration 0009 on PostgreSQL: a database at 0008 with rows in every table that refers to
notifications is converted with its data, answers the product's queries, and goes back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import Connection, Engine, insert, text
from sqlalchemy.orm import Session

from notifier.db.migrate import alembic_config, upgrade
from notifier.db.models import (
    DeliveryEvent,
    new_id,
    utcnow,
)
from notifier.db.session import make_engine
from notifier.notifications import listing, repository
from tests.factories import key_row, seed, sent_email_row
from tests.services import fresh_postgres_database

pytestmark = pytest.mark.postgres

# every head before 0009: the database as a deployment at 0008 has it
BEFORE = (
    "0002_support",
    "0003_campaigns",
    "0005_delivery_claims",
    "0007_console_operator",
    "0008_worker_heartbeats",
)
AGES = (40, 5, 0)  # days: rows last month, last week and today (a resend of the oldest)


def _notification(key: str, age: int, resend_of: str | None = None) -> dict[str, object]:
    return sent_email_row(
        utcnow() - timedelta(days=age),
        key,
        recipient=f"user{age}@example.com",
        reference=f"order-{age}",
        provider_message_id=f"pm-{age}",
        resend_of=resend_of,
    )


@pytest.fixture
def at_0008() -> Iterator[tuple[str, Engine, dict[int, str]]]:
    with fresh_postgres_database() as url:
        for revision in BEFORE:
            upgrade(url, revision)
        engine = make_engine(url)
        key = new_id()
        ids: dict[int, str] = {}
        with engine.begin() as c:  # the tables as they are at 0008 (tests.factories.seed)
            seed(c, "api_keys", key_row(id=key, name="k", prefix="p"))
            for age in AGES:
                row = _notification(key, age, resend_of=ids.get(40))
                seed(c, "notifications", row)
                ids[age] = str(row["id"])
                seed(
                    c,
                    "delivery_events",
                    *(
                        {"notification_id": row["id"], "kind": k, "created_at": row["created_at"]}
                        for k in ("queued", "sent")
                    ),
                )
                seed(
                    c,
                    "idempotency_keys",
                    {
                        "api_key_id": key,
                        "key": f"k{age}",
                        "fingerprint": "f",
                        "notification_id": row["id"],
                        "created_at": row["created_at"],
                    },
                )
                seed(
                    c,
                    "webhook_deliveries",
                    {
                        "notification_id": row["id"],
                        "api_key_id": key,
                        "notification_status": "sent",
                        "status": "pending",
                        "next_attempt_at": row["created_at"],
                        "created_at": row["created_at"],
                        "updated_at": row["created_at"],
                    },
                )
        yield url, engine, ids
        engine.dispose()


def _counts(c: Connection) -> dict[str, int]:
    tables = ("notifications", "delivery_events", "idempotency_keys", "webhook_deliveries")
    return {t: c.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables}  # noqa: S608


def _kind(c: Connection, table: str) -> str:
    return str(
        c.execute(
            text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:t)"), {"t": table}
        ).scalar()
    )


def _references_to_notifications(c: Connection) -> set[str]:
    return set(
        c.scalars(
            text(
                "SELECT conrelid::regclass::text FROM pg_constraint "
                "WHERE contype = 'f' AND confrelid = to_regclass('notifications')"
            )
        )
    )


def test_upgrade_converts_rows_and_queries_work_then_downgrade_restores(at_0008) -> None:
    url, engine, ids = at_0008
    with engine.connect() as c:
        before = _counts(c)
        assert _kind(c, "notifications") == "r"
        assert _references_to_notifications(c) == {
            "notifications",
            "delivery_events",
            "idempotency_keys",
            "webhook_deliveries",
        }
    upgrade(url)

    with engine.connect() as c:
        assert _counts(c) == before
        assert _kind(c, "notifications") == "p" and _kind(c, "delivery_events") == "p"
        # each row sits in the partition of its day; nothing waits in the default partition
        placed = dict(
            c.execute(text("SELECT id, tableoid::regclass::text FROM notifications")).all()
        )
        for age, notification_id in ids.items():
            day = utcnow() - timedelta(days=age)
            assert placed[notification_id] == f"notifications_p{day:%Y%m%d}"
        assert c.execute(text("SELECT count(*) FROM notifications_default")).scalar_one() == 0
        assert c.execute(text("SELECT count(*) FROM delivery_events_default")).scalar_one() == 0
        # keys: (id, created_at); no foreign key to the partitioned table; api_keys' kept
        assert _references_to_notifications(c) == set()
        keys = dict(
            c.execute(
                text(
                    "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conrelid = to_regclass('notifications')"
                )
            ).all()
        )
        assert keys["notifications_pkey"] == "PRIMARY KEY (id, created_at)"
        assert keys["notifications_api_key_id_fkey"].startswith("FOREIGN KEY (api_key_id)")
        # every partition has the parent's indexes, named after them
        today = f"p{utcnow():%Y%m%d}"
        indexes = set(
            c.scalars(
                text("SELECT indexname FROM pg_indexes WHERE tablename = :t"),
                {"t": f"notifications_{today}"},
            )
        )
        assert {
            f"ix_notifications_recipient_created_{today}",
            f"notifications_pkey_{today}",
        } <= indexes

    with Session(engine) as session:  # the product's queries, by id and by search
        old = repository.get(session, ids[40])
        assert old is not None and old.recipient == "user40@example.com"
        assert [e.kind for e in repository.events_of(session, ids[5])] == ["queued", "sent"]
        found = listing.page(session, listing.Filters(recipients=["user5@example.com"]), None, 50)
        assert [n.id for n in found[0]] == [ids[5]]
        copy = repository.get(session, ids[0])
        assert copy is not None and copy.resend_of == ids[40]
    with engine.begin() as c:  # new events still take ids from the same sequence
        highest = c.execute(text("SELECT max(id) FROM delivery_events")).scalar_one()
        new = c.execute(
            insert(DeliveryEvent).returning(DeliveryEvent.id),
            [{"notification_id": ids[0], "kind": "delivered"}],
        ).scalar_one()
        assert new > highest

    command.downgrade(alembic_config(url), "0008_worker_heartbeats")
    with engine.connect() as c:
        assert _kind(c, "notifications") == "r" and _kind(c, "delivery_events") == "r"
        after = _counts(c)
        assert after == {**before, "delivery_events": before["delivery_events"] + 1}
        assert _references_to_notifications(c) == {
            "notifications",
            "delivery_events",
            "idempotency_keys",
            "webhook_deliveries",
        }
    upgrade(url)  # and forward again
    with engine.connect() as c:
        assert _kind(c, "notifications") == "p" and _counts(c) == after
