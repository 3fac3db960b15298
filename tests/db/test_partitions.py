"""Time partitions on PostgreSQL: made ahead, idempotent, a row beyond them kept in the default
partition (never refused) and moved into its partition when that is made."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, insert, text

from notifier.db import partitions
from notifier.db.migrate import upgrade
from notifier.db.models import Notification
from notifier.db.session import make_engine
from tests.factories import sent_email_row
from tests.services import fresh_postgres_database

NOW = datetime(2026, 12, 2, 13, 30, tzinfo=UTC)
DAY = timedelta(days=1)


def _p(start: datetime, days: int = 1) -> partitions.Partition:
    return partitions.Partition("notifications", "x", start, start + timedelta(days=days))


def test_plan_starts_today_then_continues_from_the_last_partition() -> None:
    today = datetime(2026, 12, 2, tzinfo=UTC)
    fresh = partitions.plan([], partitions.Layout(days=1, ahead_days=2), NOW)
    assert fresh == [
        (today, today + DAY),
        (today + DAY, today + 2 * DAY),
        (today + 2 * DAY, today + 3 * DAY),
    ]
    assert partitions.plan([_p(today + 2 * DAY)], partitions.Layout(1, 2), NOW) == []
    # beat stopped for two days: the gap is made too (its rows wait in the default partition)
    late = partitions.plan([_p(today - 3 * DAY)], partitions.Layout(1, 1), NOW)
    assert [start for start, _ in late] == [today - 2 * DAY + i * DAY for i in range(4)]
    # a last partition far in the past (a database converted with old rows only): the plan
    # goes back GAP_DAYS, not one partition per day since then
    old = partitions.plan([_p(today - 300 * DAY)], partitions.Layout(1, 1), NOW)
    assert old[0][0] == today - partitions.GAP_DAYS * DAY and len(old) == partitions.GAP_DAYS + 2
    # a wider interval applies from the end of the last partition
    weekly = partitions.plan([_p(today)], partitions.Layout(days=7, ahead_days=7), NOW)
    assert weekly == [(today + DAY, today + 8 * DAY)]  # reaches the end of today + 7 days


def test_names_and_intervals() -> None:
    assert partitions.interval_start(NOW, 1) == datetime(2026, 12, 2, tzinfo=UTC)
    assert partitions.interval_start(NOW, 7) == datetime(2026, 11, 26, tzinfo=UTC)  # a Thursday
    assert partitions.partition_name("delivery_events", NOW) == "delivery_events_p20261202"
    assert partitions.is_partition("notifications_p20261202")
    assert partitions.is_partition("delivery_events_default")
    assert not partitions.is_partition("notifications")
    assert not partitions.is_partition("webhook_deliveries_p20261202")
    with pytest.raises(ValueError):
        partitions.Layout(days=0)


@pytest.fixture
def engine() -> Iterator[Engine]:
    with fresh_postgres_database() as url:
        upgrade(url, layout=partitions.Layout(days=1, ahead_days=2))
        engine = make_engine(url)
        yield engine
        engine.dispose()


@pytest.mark.postgres
def test_prepare_is_idempotent_and_a_late_beat_refuses_nonotification_row(engine: Engine) -> None:
    layout = partitions.Layout(days=1, ahead_days=2)
    now = datetime.now(UTC)
    with engine.begin() as c:
        assert partitions.prepare(c, layout, now) == []  # the upgrade made them
        made = partitions.partitions(c, "notifications")
        assert [p.start for p in made] == [
            partitions.interval_start(now, 1) + i * DAY for i in range(3)
        ]
        assert [p.name for p in partitions.partitions(c, "delivery_events")] == [
            p.name.replace("notifications", "delivery_events") for p in made
        ]
    beyond = made[-1].end + timedelta(hours=5)  # no partition yet: beat is late
    row = sent_email_row(beyond)
    with engine.begin() as c:
        c.execute(insert(Notification), [row])
        assert partitions.default_rows(c) == {"notifications": 1, "delivery_events": 0}
    with engine.begin() as c:  # the next run makes its partition and moves the row in
        later = partitions.prepare(c, layout, now + 2 * DAY)
        assert len(later) == 4  # two days more, both tables
        assert partitions.partition_name("notifications", made[-1].end) in later
    with engine.connect() as c:
        home = c.execute(
            text("SELECT tableoid::regclass::text FROM notifications WHERE id = :i"),
            {"i": row["id"]},
        ).scalar_one()
        assert home == partitions.partition_name("notifications", made[-1].end)
        assert partitions.default_rows(c) == {"notifications": 0, "delivery_events": 0}


@pytest.mark.postgres
def test_expired_partitions_are_dropped_whole(engine: Engine) -> None:
    today = partitions.interval_start(datetime.now(UTC), 1)
    old, kept = today - 40 * DAY, today - 10 * DAY
    with engine.begin() as c:
        for start in (old, kept):
            for table in partitions.PARTITIONED:
                partitions.create(c, table, start, start + DAY)
        c.execute(
            insert(Notification),
            [sent_email_row(old + timedelta(hours=1)), sent_email_row(kept)],
        )
    with engine.begin() as c:
        expired = partitions.expired(c, today - 30 * DAY)
        assert sorted(p.name for p in expired) == sorted(
            partitions.partition_name(t, old) for t in partitions.PARTITIONED
        )
        for partition in expired:
            partitions.drop(c, partition)
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM notifications")).scalar_one() == 1
        assert partitions.expired(c, today - 30 * DAY) == []
