"""Retention per service: services keeping 7 and 30 days (the platform 90), rows of each at 10
and 40 days and today; after the hourly purge exactly the rows within each service's period
remain, with their events, and the default service keeps the platform's. On SQLite and on
PostgreSQL (partitioned by day there: the deletes go partition by partition). A service may
not keep longer than the platform (the admin API's 422 is in tests/notifier_services)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text

from notifier.db import partitions
from notifier.db.migrate import upgrade
from notifier.db.models import DEFAULT_SERVICE_ID, DeliveryEvent, Notification, utcnow
from notifier.db.session import transaction
from notifier.notifications import retention
from notifier.runtime import Runtime
from notifier.services.models import Service
from tests.factories import make_settings, sent_email_row
from tests.services import fresh_postgres_database
from workers import partition_upkeep, sweeper

AGES = (0, 10, 40)  # days


def _service(runtime: Runtime, name: str, days: int | None) -> str:
    with transaction(runtime.sessions) as session:
        row = Service(
            name=name,
            trial=False,
            senders={},
            provider_chains={},
            rate_limits={},
            daily_quotas={},
            retention_days=days,
        )
        session.add(row)
        session.flush()
        return row.id


def _seed(runtime: Runtime, now: datetime) -> dict[str, tuple[str, int]]:
    """Rows of three services at every age; returns id -> (service name, age)."""
    owners = {
        "weekly": _service(runtime, "weekly", 7),
        "monthly": _service(runtime, "monthly", 30),
        "default": DEFAULT_SERVICE_ID,
    }
    made: dict[str, tuple[str, int]] = {}
    rows = []
    for name, service_id in owners.items():
        for age in AGES:
            row = sent_email_row(now - timedelta(days=age, hours=1), service_id=service_id)
            rows.append(row)
            made[row["id"]] = (name, age)
    with transaction(runtime.sessions) as session:
        session.execute(insert(Notification), rows)
        session.execute(
            insert(DeliveryEvent),
            [
                {"notification_id": r["id"], "kind": kind, "created_at": r["created_at"] + gap}
                for r in rows
                for kind, gap in (("queued", timedelta(0)), ("sent", timedelta(minutes=5)))
            ],
        )
    return made


def _check(runtime: Runtime, made: dict[str, tuple[str, int]]) -> None:
    with runtime.sessions() as session:
        left = {made[i] for i in session.scalars(select(Notification.id))}
        with_events = {made[i] for i in session.scalars(select(DeliveryEvent.notification_id))}
    expected = {
        ("weekly", 0),
        ("monthly", 0),
        ("monthly", 10),
        ("default", 0),
        ("default", 10),
        ("default", 40),
    }
    assert left == expected
    assert with_events == expected  # the deleted rows' events went with them


def test_sqlite_keeps_each_services_period(runtime: Runtime, monkeypatch) -> None:
    made = _seed(runtime, utcnow())
    monkeypatch.setattr(partition_upkeep, "CHUNK", 1)  # bounded batches: one row at a time
    report = sweeper.purge(runtime)
    assert report["service_notifications_deleted"] == 3
    _check(runtime, made)
    assert sweeper.purge(runtime)["service_notifications_deleted"] == 0  # nothing left


@pytest.fixture
def pg_runtime(tmp_path: Path) -> Iterator[Runtime]:
    with fresh_postgres_database() as url:
        settings = make_settings(tmp_path, database_url=url)
        upgrade(url)
        rt = Runtime.build(settings)
        yield rt
        rt.close()


@pytest.mark.postgres
def test_postgres_deletes_partition_by_partition(pg_runtime: Runtime, monkeypatch) -> None:
    rt = pg_runtime
    now = utcnow()
    with rt.engine.begin() as c:  # the days of the old rows (today's are made ahead)
        for age in AGES[1:]:
            day = partitions.interval_start(now - timedelta(days=age, hours=1), 1)
            for table in partitions.PARTITIONED:
                partitions.create(c, table, day, day + timedelta(days=1))
    made = _seed(rt, now)
    with rt.engine.connect() as c:
        assert partitions.default_rows(c) == {"notifications": 0, "delivery_events": 0}
    with rt.engine.connect() as c:  # each batch's selection opens one partition only
        ranges = [(p.start, p.end) for p in partitions.partitions(c, "notifications")]
        batches = retention.service_batches("s", now - timedelta(days=7), ranges)
        assert len(batches) == sum(1 for start, _ in ranges if start < now - timedelta(days=7))
        for conditions in batches:
            query = select(Notification.id).where(*conditions)
            compiled = query.compile(c, compile_kwargs={"literal_binds": True})
            plan = "\n".join(c.execute(text(f"EXPLAIN {compiled}")).scalars())
            assert len(set(re.findall(r"on (notifications_\w+)", plan))) == 1, plan
    monkeypatch.setattr(partition_upkeep, "CHUNK", 1)
    report = sweeper.purge(rt)
    assert report["partitions_dropped"] == 0  # nothing is older than the platform's 90 days
    assert report["service_notifications_deleted"] == 3
    _check(rt, made)
