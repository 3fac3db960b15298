"""The delivery hot path on partitioned PostgreSQL reads one partition per notification.

A real delivery (claim, write-ahead, send through the outbox, record) runs on a database with
30 daily partitions; every statement it sends that names notifications is captured and planned
again with ``EXPLAIN (FORMAT JSON)``, and the partitions each plan opens are read from the plan.
With the task's ``created`` hint, each statement opens only the partitions of the notifications
it names; without it (a task published before the hint existed) the load before the claim opens
every partition, and the delivery still works.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, select

from notifier import tasks
from notifier.db import partitions
from notifier.db.migrate import upgrade
from notifier.db.models import Notification, utcnow
from notifier.db.session import transaction
from notifier.notifications import by_id
from notifier.publishing import created_hint, delivery_args
from notifier.receipts.service import apply_receipts
from notifier.runtime import Runtime
from notifier.statuses import Status
from providers.interface import Receipt, ReceiptOutcome
from tests.factories import email, insert_notifications, make_settings, notification_row
from tests.notifications_api import post
from tests.services import fresh_postgres_database
from workers import sweeper
from workers.app import create_worker_app
from workers.delivery import deliver_ids

DAYS = 30


@pytest.fixture
def pg_worker(tmp_path: Path) -> Iterator[Celery]:
    with fresh_postgres_database() as url:
        upgrade(url, layout=partitions.Layout(days=1, ahead_days=DAYS - 1))
        app = create_worker_app(make_settings(tmp_path, database_url=url), pool_size=5)
        yield app
        app.delivery.close()
        app.runtime.close()


Captured = list[tuple[str, dict[str, Any]]]


@pytest.fixture
def captured(pg_worker: Celery) -> Iterator[Captured]:
    """Every statement on ``notifications`` the worker's engine sends (one parameter set of an
    executemany)."""
    seen: Captured = []
    engine: Engine = pg_worker.runtime.engine

    def capture(*args: Any) -> None:  # conn, cursor, statement, parameters, context, many
        statement, parameters, executemany = args[2], args[3], args[5]
        if " notifications" in statement and "EXPLAIN" not in statement:
            seen.append((statement, parameters[0] if executemany else parameters))

    event.listen(engine, "before_cursor_execute", capture)
    yield seen
    event.remove(engine, "before_cursor_execute", capture)


def _partitions_opened(engine: Engine, statement: str, parameters: dict[str, Any]) -> set[str]:
    with engine.connect() as c:
        plan = c.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters).scalar_one()
    found: set[str] = set()

    def walk(node: dict[str, Any]) -> None:
        name = node.get("Relation Name", "")
        if name.startswith("notifications_"):
            found.add(name)
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return found


def _values(parameters: dict[str, Any]) -> set[Any]:
    """A statement's parameter values, an array's items each (ids travel as one array)."""
    return {v for p in parameters.values() for v in (p if isinstance(p, list) else [p])}


def _queued_on_days(app: Celery, days: list[int]) -> dict[str, str]:
    """One queued email on each of these days ahead; id -> the partition holding it."""
    today = partitions.interval_start(utcnow(), 1)
    rows = [notification_row(Status.QUEUED, now=today + timedelta(days=d, hours=9)) for d in days]
    insert_notifications(app.runtime, rows)
    return {r["id"]: partitions.partition_name("notifications", r["created_at"]) for r in rows}


def _created(app: Celery, ids: list[str]) -> list[str]:
    """What the delivery task carries beside these ids (as intake publishes it)."""
    with transaction(app.runtime.sessions) as s:
        found = dict(s.execute(select(Notification.id, Notification.created_at)).all())
    return [found[i].isoformat() for i in ids]


def _statuses(app: Celery) -> dict[str, str]:
    with transaction(app.runtime.sessions) as s:
        return {i: status for i, status in s.execute(select(Notification.id, Notification.status))}


@pytest.mark.postgres
def test_each_statement_of_a_delivery_opens_only_its_notifications_partitions(
    pg_worker: Celery, captured: Captured
) -> None:
    engine = pg_worker.runtime.engine
    with engine.connect() as c:
        assert len(partitions.partitions(c, "notifications")) == DAYS
    held = _queued_on_days(pg_worker, [2, 9, 23])
    ids = list(held)
    created = _created(pg_worker, ids)
    captured.clear()
    pg_worker.tasks[tasks.DELIVER](ids, created)  # the task, as a worker runs it
    sent = list(captured)

    assert _statuses(pg_worker) == {i: Status.SENT.value for i in ids}
    kinds = [statement.split()[0] for statement, _ in sent]
    assert kinds == ["SELECT", "UPDATE", "UPDATE"]  # load, claim with its write-ahead, sent
    for statement, parameters in sent:
        named = {held[i] for i in ids if i in _values(parameters)}
        assert named, statement
        assert _partitions_opened(engine, statement, parameters) == named, statement


@pytest.mark.postgres
def test_a_task_without_created_still_delivers_reading_every_partition_to_claim(
    pg_worker: Celery, captured: Captured
) -> None:
    held = _queued_on_days(pg_worker, [4, 17])
    ids = list(held)
    captured.clear()
    pg_worker.tasks[tasks.DELIVER](ids)  # a message queued before the hint existed
    sent = list(captured)

    assert _statuses(pg_worker) == {i: Status.SENT.value for i in ids}
    load_statement, load_parameters = sent[0]
    assert load_statement.startswith("SELECT")
    opened = _partitions_opened(pg_worker.runtime.engine, load_statement, load_parameters)
    assert len(opened) == DAYS + 1  # every daily partition and the default one
    # once loaded, the rows' own created_at prune the rest (the claim, sent)
    assert [statement.split()[0] for statement, _ in sent[1:]] == ["UPDATE", "UPDATE"]
    for statement, parameters in sent[1:]:
        assert _partitions_opened(pg_worker.runtime.engine, statement, parameters) <= set(
            held.values()
        )


@pytest.mark.postgres
def test_a_wrong_hint_leaves_the_notification_queued_for_the_sweeper(pg_worker: Celery) -> None:
    held = _queued_on_days(pg_worker, [5])
    (notification_id,) = held
    wrong = (partitions.interval_start(utcnow(), 1) + timedelta(days=6)).isoformat()
    deliver_ids(pg_worker.delivery, [notification_id], created_hint([wrong]))
    assert _statuses(pg_worker) == {notification_id: Status.QUEUED.value}


@pytest.mark.postgres
def test_a_receipt_moves_its_notification_in_its_partition_only(
    pg_worker: Celery, captured: Captured
) -> None:
    today = partitions.interval_start(utcnow(), 1)
    row = notification_row(
        Status.SENT, now=today + timedelta(days=8), provider="outbox", provider_message_id="m-1"
    )
    insert_notifications(pg_worker.runtime, [row])
    captured.clear()
    receipt = Receipt("outbox", "m-1", ReceiptOutcome.DELIVERED)
    assert apply_receipts(pg_worker.runtime.sessions, [receipt]).moved == {
        row["id"]: Status.DELIVERED.value
    }
    lookup, *by_id_statements = list(captured)
    assert "provider_message_id" in lookup[0]  # found by message id: every partition, unavoidably
    assert by_id_statements  # the move and the webhook owed
    for statement, parameters in by_id_statements:
        assert _partitions_opened(pg_worker.runtime.engine, statement, parameters) == {
            partitions.partition_name("notifications", row["created_at"])
        }, statement


def test_hints_in_the_task_payload() -> None:
    now = utcnow()
    assert delivery_args(["a", "b"], [now, now]) == [["a", "b"], [now.isoformat()] * 2]
    assert delivery_args(["a", "b"], [now, None]) == [["a", "b"]]  # one unknown: ids only
    assert created_hint([now.isoformat()]) == frozenset({now})
    assert created_hint(None) is None and created_hint([]) is None
    assert created_hint(["not a time"]) is None  # unreadable: no pruning, still delivered


def test_sqlite_statements_are_unchanged(runtime: Runtime) -> None:
    with transaction(runtime.sessions) as s:
        where = by_id.conditions(s, ["a"], [utcnow()])
    assert len(where) == 1  # the id alone: SQLite is not partitioned


def _published(
    runtime: Runtime, ids: set[str], queue: str = "email.transactional"
) -> list[list[Any]]:
    """The arguments of the delivery tasks waiting on ``queue`` that name any of ``ids`` (the
    queue is the test broker's, where earlier tests' tasks may wait too: all are taken off)."""
    found: list[list[Any]] = []
    with runtime.celery.connection_for_read() as connection, connection.SimpleQueue(queue) as q:
        while True:
            try:
                message = q.get(block=False)
            except q.Empty:
                return found
            message.ack()
            arguments = message.payload[0]
            if ids & set(arguments[0]):
                found.append(arguments)


def _created_at(runtime: Runtime, notification_id: str) -> datetime:
    with transaction(runtime.sessions) as s:
        return s.execute(
            select(Notification.created_at).where(Notification.id == notification_id)
        ).scalar_one()


def test_intake_and_the_sweeper_publish_created_beside_the_ids(
    client: TestClient, auth: dict[str, str], runtime: Runtime
) -> None:
    notification_id = post(client, auth, email())
    created = _created_at(runtime, notification_id).isoformat()
    assert _published(runtime, {notification_id}) == [[[notification_id], [created]]]

    (stale,) = insert_notifications(
        runtime, [notification_row(published_at=utcnow() - timedelta(minutes=10))]
    )
    assert sweeper.republish_stale(runtime, 60) == 1
    assert _published(runtime, {stale}) == [[[stale], [_created_at(runtime, stale).isoformat()]]]


@pytest.mark.postgres
def test_a_lookup_by_id_alone_reads_the_partition_its_id_names(
    pg_worker: Celery, captured: Captured
) -> None:
    """The API's and the console's get-by-id: the id is made from the row's created_at, so one
    partition is read; a row whose created_at was set apart from its id is still found (the
    lookup looks again in every partition), and so is an older row's random id."""
    from notifier.notifications import repository

    today = partitions.interval_start(utcnow(), 1)
    row = notification_row(Status.SENT, now=today + timedelta(days=3, hours=2))
    moved = notification_row(Status.SENT, now=today + timedelta(days=6))
    moved["created_at"] = today + timedelta(days=11)  # backdated apart from its id
    random_id = notification_row(Status.SENT, now=today + timedelta(days=12))
    random_id["id"] = str(uuid.uuid4())  # a row from before time-ordered ids
    insert_notifications(pg_worker.runtime, [row, moved, random_id])
    engine = pg_worker.runtime.engine

    captured.clear()
    with transaction(pg_worker.runtime.sessions) as s:
        found = repository.get(s, row["id"])
        assert found is not None and found.id == row["id"]
    ((statement, parameters),) = captured
    assert _partitions_opened(engine, statement, parameters) == {
        partitions.partition_name("notifications", row["created_at"])
    }

    for other in (moved, random_id):
        with transaction(pg_worker.runtime.sessions) as s:
            found = repository.get(s, other["id"])
            assert found is not None and found.created_at == other["created_at"]
    with transaction(pg_worker.runtime.sessions) as s:
        assert repository.get(s, str(uuid.uuid4())) is None
