"""The private servers the fault tests and bench/chaos.py kill: each starts, survives a restart on
the same URL with its data (or loses it, where that is the configured behaviour), dies on SIGKILL
and leaves nothing behind."""

from __future__ import annotations

import pytest
import redis
from kombu.connection import Connection
from sqlalchemy import create_engine, text

from tests.private_processes import alive, port_open
from tests.private_services import (
    PrivatePostgres,
    PrivateRabbitMQ,
    require_private,
)

SHARED_PORTS = {5432, 5672, 6379}


def _down(service) -> None:
    assert not service.running
    assert not port_open(service.port)
    assert service.pids() == []


@pytest.mark.postgres
def test_private_postgres_restarts_keeping_its_data_and_dies_on_kill() -> None:
    pg = require_private("postgres")
    assert isinstance(pg, PrivatePostgres)
    try:
        assert pg.port not in SHARED_PORTS
        url = pg.create_database("chaos")
        engine = create_engine(url, pool_pre_ping=True)
        with engine.begin() as c:
            c.execute(text("CREATE TABLE t (n int)"))
            c.execute(text("INSERT INTO t VALUES (1)"))
        down = pg.restart(down_seconds=0.5)
        assert down >= 0.5
        with engine.connect() as c:  # the same URL, a reconnect, the committed row still there
            assert c.execute(text("SELECT count(*) FROM t")).scalar_one() == 1
            # backends run in sessions of their own: pids() and kill() must reach them anyway
            backend = c.execute(text("SELECT pg_backend_pid()")).scalar_one()
        victims = pg.pids()  # the connection is back in the pool: its backend still runs
        assert backend in victims
        pg.kill()
        assert not any(alive(pid) for pid in victims)
        _down(pg)
        pg.start()
        with engine.begin() as c:
            assert c.execute(text("SELECT count(*) FROM t")).scalar_one() == 1
        engine.dispose()
        pg.stop()
        _down(pg)
    finally:
        pg.close()
    assert not pg.directory.exists()


@pytest.mark.rabbitmq
def test_private_rabbitmq_node_restarts_keeping_durable_messages_and_answers_rabbitmqctl() -> None:
    rabbit = require_private("rabbitmq")
    assert isinstance(rabbit, PrivateRabbitMQ)
    try:
        assert rabbit.port not in SHARED_PORTS
        status = rabbit.ctl("status")
        assert status.returncode == 0, status.stderr
        assert rabbit.nodename in status.stdout
        with Connection(rabbit.url) as connection:
            queue = connection.SimpleQueue("private-check")  # durable queue, persistent messages
            queue.put({"n": 1})
            queue.close()
        rabbit.restart(down_seconds=0.5)
        listed = rabbit.ctl("list_queues", "name", "messages")
        assert "private-check\t1" in listed.stdout, listed.stdout + listed.stderr
        with Connection(rabbit.url) as connection:
            queue = connection.SimpleQueue("private-check")
            message = queue.get(timeout=5)
            assert message.payload == {"n": 1}
            message.ack()
            queue.close()
        rabbit.kill()
        _down(rabbit)
        assert rabbit.ctl("status", timeout=60).returncode != 0
        rabbit.start()
        assert rabbit.ctl("status").returncode == 0
        rabbit.stop()
        _down(rabbit)
    finally:
        rabbit.close()
    assert not rabbit.directory.exists()


@pytest.mark.redis
@pytest.mark.parametrize("appendonly", [True, False])
def test_private_redis_restart_keeps_data_only_with_appendonly(appendonly: bool) -> None:
    server = require_private("redis", appendonly=appendonly)
    try:
        assert server.port not in SHARED_PORTS
        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
        server.restart(down_seconds=0.2)
        assert client.get("k") == (b"v" if appendonly else None)
        server.kill()
        _down(server)
        with pytest.raises(redis.ConnectionError):
            client.ping()
        server.start()
        assert client.ping()
        client.close()
        server.stop()
        _down(server)
    finally:
        server.close()
    assert not server.directory.exists()
