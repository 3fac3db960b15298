"""Platform retention: notifications and their events past NOTIFIER_NOTIFICATION_RETENTION_DAYS
go, with what refers to them; on SQLite by bounded DELETEs, on PostgreSQL by dropping whole
partitions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, text, update

from notifier.db import partitions
from notifier.db.migrate import upgrade
from notifier.db.models import (
    ApiKey,
    DeliveryEvent,
    IdempotencyRecord,
    Notification,
    WebhookDelivery,
    new_id,
    utcnow,
)
from notifier.db.session import transaction
from notifier.runtime import Runtime
from tests.factories import email, make_settings, sent_email_row
from tests.services import fresh_postgres_database
from workers import partition_upkeep, sweeper


def count(runtime: Runtime, model: type) -> int:
    with runtime.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_sqlite_deletes_old_notifications_with_their_events_and_references(
    client, auth, runtime
) -> None:
    old = client.post(
        "/v1/notifications", json=email(), headers={**auth, "Idempotency-Key": "o"}
    ).json()["id"]
    new = client.post("/v1/notifications", json=email(), headers=auth).json()["id"]
    long_ago = utcnow() - timedelta(days=runtime.settings.notification_retention_days + 1)
    with transaction(runtime.sessions) as s:
        s.execute(update(Notification).where(Notification.id == old).values(created_at=long_ago))
        key = s.scalar(select(Notification.api_key_id).where(Notification.id == old))
        s.add(WebhookDelivery(notification_id=old, api_key_id=key, notification_status="sent"))
        s.execute(update(Notification).where(Notification.id == new).values(resend_of=old))
    events_before = count(runtime, DeliveryEvent)
    with runtime.sessions() as s:
        old_events = s.scalar(select(func.count()).where(DeliveryEvent.notification_id == old))
    report = sweeper.purge(runtime)
    assert report["notifications_deleted"] == 1
    with runtime.sessions() as s:
        assert s.get(Notification, old) is None
        kept = s.get(Notification, new)
        assert kept is not None and kept.resend_of is None
        assert s.scalar(select(func.count()).where(DeliveryEvent.notification_id == old)) == 0
    assert count(runtime, DeliveryEvent) == events_before - old_events
    assert count(runtime, IdempotencyRecord) == 0 and count(runtime, WebhookDelivery) == 0
    assert sweeper.purge(runtime)["notifications_deleted"] == 0  # nothing left to do


def test_sqlite_deletes_in_bounded_batches(runtime, monkeypatch) -> None:
    long_ago = utcnow() - timedelta(days=runtime.settings.notification_retention_days + 1)
    with transaction(runtime.sessions) as s:
        s.execute(insert(Notification), [sent_email_row(long_ago) for _ in range(7)])
    monkeypatch.setattr(partition_upkeep, "CHUNK", 2)
    monkeypatch.setattr(partition_upkeep, "MAX_BATCHES", 2)
    assert partition_upkeep.expire_notifications(runtime) == {
        "notifications_deleted": 4,
        "service_notifications_deleted": 0,
    }
    assert count(runtime, Notification) == 3
    assert partition_upkeep.prepare_partitions(runtime) == {
        "made": 0
    }  # SQLite: nothing partitioned


@pytest.fixture
def pg_runtime(tmp_path: Path) -> Iterator[Runtime]:
    with fresh_postgres_database() as url:
        settings = make_settings(tmp_path, database_url=url, notification_retention_days=30)
        upgrade(url)
        rt = Runtime.build(settings)
        yield rt
        rt.close()


@pytest.mark.postgres
def test_postgres_drops_whole_partitions_past_retention(pg_runtime: Runtime) -> None:
    rt = pg_runtime
    today = partitions.interval_start(utcnow(), 1)
    old_day, recent_day = today - timedelta(days=40), today - timedelta(days=3)
    key = new_id()
    with rt.engine.begin() as c:
        for day in (old_day, recent_day):
            for table in partitions.PARTITIONED:
                partitions.create(c, table, day, day + timedelta(days=1))
        c.execute(
            insert(ApiKey),
            [{"id": key, "name": "k", "prefix": "p", "secret_hash": "x" * 64, "scopes": []}],
        )
        rows = [
            sent_email_row(old_day + timedelta(hours=2), key),
            sent_email_row(recent_day, key),
            sent_email_row(utcnow(), key),
        ]
        c.execute(insert(Notification), rows)
        c.execute(
            insert(DeliveryEvent),
            [
                {"notification_id": r["id"], "kind": "sent", "created_at": r["created_at"]}
                for r in rows
            ],
        )
        c.execute(
            insert(WebhookDelivery),
            [
                {
                    "notification_id": r["id"],
                    "api_key_id": key,
                    "notification_status": "sent",
                    "created_at": r["created_at"],
                }
                for r in rows
            ],
        )
    report = sweeper.purge(rt)
    assert report["partitions_dropped"] == 2  # the old day of both tables
    assert report["webhook_deliveries_deleted"] == 1
    with rt.engine.connect() as c:
        assert (
            c.execute(
                text("SELECT to_regclass(:t)"), {"t": f"notifications_p{old_day:%Y%m%d}"}
            ).scalar()
            is None
        )
        left = set(c.scalars(text("SELECT id FROM notifications")))
        assert left == {rows[1]["id"], rows[2]["id"]}
        assert c.execute(text("SELECT count(*) FROM delivery_events")).scalar_one() == 2
    assert sweeper.purge(rt)["partitions_dropped"] == 0
    assert partition_upkeep.prepare_partitions(rt) == {
        "made": 0,
        "default_rows_notifications": 0,
        "default_rows_delivery_events": 0,
    }
