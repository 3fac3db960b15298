"""Reaching the local services the integration tests need.

On a developer laptop a missing service skips its tests with a clear reason; in CI
(``CI=true``), where the services are promised, a missing service fails them.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy.engine import make_url

IN_CI = os.environ.get("CI", "").lower() == "true"
# Two PostgreSQL addresses, kept apart so the suite can run behind PgBouncer (.ci/run does once):
# PG_ADMIN_URL reaches PostgreSQL itself and is used only for what a transaction pooler cannot
# carry (CREATE/DROP DATABASE, terminating backends); PG_URL is where the product's connections
# go, PgBouncer's port when NOTIFIER_TEST_PG_URL names it. With only NOTIFIER_TEST_PG_URL set
# both are that server; with neither, the local one.
PG_URL = (
    os.environ.get("NOTIFIER_TEST_PG_URL")
    or "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PG_ADMIN_URL = os.environ.get("NOTIFIER_TEST_PG_ADMIN_URL") or PG_URL
REDIS_URL = os.environ.get("NOTIFIER_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
AMQP_URL = os.environ.get("NOTIFIER_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require(name: str, host: str, port: int) -> None:
    if port_open(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if IN_CI:
        pytest.fail(f"{message}, and CI promises it", pytrace=False)
    pytest.skip(f"{message}; start it to run this test")


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for this test session; dropped afterwards.

    Created and dropped through :data:`PG_ADMIN_URL`; the URL handed out points at
    :data:`PG_URL`'s server (PgBouncer's wildcard database entry serves the new name)."""
    for label, url in (("PostgreSQL", PG_ADMIN_URL), ("PostgreSQL (product URL)", PG_URL)):
        address = make_url(url)
        require(label, address.host or "127.0.0.1", address.port or 5432)
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"notifier_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as e:
        if IN_CI:
            pytest.fail(f"cannot create a PostgreSQL test database: {e}", pytrace=False)
        pytest.skip(f"cannot create a PostgreSQL test database: {e}")
    try:
        yield PG_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
