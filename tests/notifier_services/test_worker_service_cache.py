"""A delivery worker reads a service once every few seconds, not once per task: the second task
of a service issues no query on the services table (statements counted on the real engine),
and a change to the service reaches the wire once the cache's time is up."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, update

from notifier.db.session import transaction
from notifier.services.models import Service
from tests.factories import email
from tests.fakes.smtp_server import FakeSmtpServer
from tests.notifications_api import post
from tests.notifier_services.helpers import bearer, service, smtp_context
from workers.delivery import deliver_ids
from workers.routes import ServiceCache


@pytest.fixture
def smtp() -> Iterator[FakeSmtpServer]:
    with FakeSmtpServer() as server:
        yield server


@pytest.fixture
def statements(runtime) -> Iterator[list[str]]:
    """Every statement the runtime's engine executes while the test runs."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(runtime.engine, "before_cursor_execute", record)
    yield seen
    event.remove(runtime.engine, "before_cursor_execute", record)


def _services_queries(statements: list[str]) -> list[str]:
    return [s for s in statements if "FROM services" in s]


def _from(smtp: FakeSmtpServer, notification_id: str) -> str:
    found = [m for m in smtp.messages if m.message["X-Notifier-Notification-Id"] == notification_id]
    return str(found[0].message["From"])


def test_a_second_task_of_a_service_reads_no_service(client, runtime, smtp, statements):
    sender = {"from_address": "billing@example.com"}
    billing = bearer(runtime, service(runtime, "billing", senders={"email.transactional": sender}))
    ctx = smtp_context(runtime, ("smtp", smtp))
    try:
        first, second = post(client, billing, email()), post(client, billing, email())
        statements.clear()
        deliver_ids(ctx, [first])
        assert len(_services_queries(statements)) == 1
        statements.clear()
        deliver_ids(ctx, [second])
        assert statements, "the task ran no statement at all"
        assert _services_queries(statements) == []
    finally:
        ctx.close()
    assert _from(smtp, first) == _from(smtp, second) == "billing@example.com"


def test_a_change_to_the_service_is_seen_after_the_cache_time(client, runtime, smtp):
    old = {"from_address": "billing@example.com"}
    billing_id = service(runtime, "billing", senders={"email.transactional": old})
    billing = bearer(runtime, billing_id)
    ctx = smtp_context(runtime, ("smtp", smtp))
    ctx.services = ServiceCache(seconds=0.5)  # the worker's cache, with a shorter time
    try:
        ids = [post(client, billing, email()) for _ in range(3)]
        deliver_ids(ctx, [ids[0]])
        with transaction(runtime.sessions) as s:
            s.execute(
                update(Service)
                .where(Service.id == billing_id)
                .values(senders={"email.transactional": {"from_address": "accounts@example.com"}})
            )
        deliver_ids(ctx, [ids[1]])  # within the cache's time: the snapshot it read
        time.sleep(0.6)
        deliver_ids(ctx, [ids[2]])
    finally:
        ctx.close()
    assert [_from(smtp, i) for i in ids] == [
        "billing@example.com",
        "billing@example.com",
        "accounts@example.com",
    ]
