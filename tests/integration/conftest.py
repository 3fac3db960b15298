"""Integration fixtures: a fresh PostgreSQL database per module and real brokers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.services import AMQP_URL, REDIS_URL, fresh_postgres_database, require


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


def broker_url(kind: str) -> str:
    if kind == "redis":
        require("Redis", "127.0.0.1", 6379)
        return REDIS_URL
    require("RabbitMQ", "127.0.0.1", 5672)
    return AMQP_URL


def purge(celery, queues) -> None:
    """Drop messages left on the shared local brokers by earlier runs."""
    with celery.connection_for_write() as connection:
        channel = connection.default_channel
        for queue in queues:
            try:
                channel.queue_purge(queue)
            except Exception:  # a queue that does not exist yet
                channel = connection.channel()
