"""The product behind PgBouncer in transaction pooling mode (``NOTIFIER_DATABASE_POOLER``).

A private PgBouncer with one server connection sits in front of the shared PostgreSQL, so every
client's transactions run on the same server session and whatever one client leaves there, the
next meets. psycopg prepares a statement on its fifth run on a connection; without the setting
the second client's prepare collides with the first's, with it nothing is left behind.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.engine import make_url

from notifier.db.migrate import upgrade
from notifier.db.models import Notification
from notifier.db.session import DatabasePooler, make_engine
from notifier.runtime import Runtime
from tests.factories import make_settings
from tests.private_pgbouncer import PrivatePgBouncer, require_pgbouncer
from tests.services import PG_ADMIN_URL, fresh_postgres_database

pytestmark = pytest.mark.postgres


def _through(direct: str, pool_size: int = 1) -> tuple[PrivatePgBouncer, str]:
    """A started private PgBouncer in front of the shared PostgreSQL; ``direct`` through it."""
    backend = make_url(PG_ADMIN_URL)
    bouncer = require_pgbouncer(backend.host or "127.0.0.1", backend.port or 5432, pool_size)
    url = make_url(direct).set(host="127.0.0.1", port=bouncer.port)
    return bouncer, url.render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A fresh database, migrated through a PgBouncer (as `notifier api` does at start)."""
    with fresh_postgres_database() as direct:
        bouncer, url = _through(direct)
        try:
            upgrade(url, pooler=DatabasePooler.PGBOUNCER)
        finally:
            bouncer.close()
        yield direct


@pytest.fixture
def bounced_url(database: str) -> Iterator[str]:
    """The database through a PgBouncer of this test's own (a fresh server session)."""
    bouncer, url = _through(database)
    try:
        yield url
    finally:
        bouncer.close()


def _lookups(engine: Engine, runs: int = 8) -> None:
    """The same ORM query in ``runs`` transactions on one pooled connection."""
    with engine.connect() as connection:
        for _ in range(runs):
            with connection.begin():
                connection.execute(select(Notification.id).where(Notification.id == "x")).all()


def test_without_the_setting_prepared_statements_collide_behind_pgbouncer(
    bounced_url: str,
) -> None:
    first = make_engine(bounced_url, pool_size=1, pooler=DatabasePooler.NONE)
    second = make_engine(bounced_url, pool_size=1, pooler=DatabasePooler.NONE)
    try:
        _lookups(first)  # leaves psycopg's "_pg3_0" on the one server connection
        with pytest.raises(Exception, match=r"prepared statement .* already exists"):
            _lookups(second)
    finally:
        first.dispose()
        second.dispose()
    # the server connection still holds the leftover: PgBouncer does not reset it
    # (transaction mode runs no server_reset_query), so only a new server session clears it


def test_with_pooler_pgbouncer_the_product_prepares_nothing_on_the_server(
    bounced_url: str, tmp_path
) -> None:
    settings = make_settings(
        tmp_path, database_url=bounced_url, database_pooler=DatabasePooler.PGBOUNCER
    )
    runtimes = [Runtime.build(settings, pool_size=1) for _ in range(2)]
    try:
        for runtime in runtimes:
            _lookups(runtime.engine)
            with runtime.engine.connect() as connection:
                prepared = connection.exec_driver_sql("SELECT count(*) FROM pg_prepared_statements")
                assert prepared.scalar_one() == 0
    finally:
        for runtime in runtimes:
            runtime.engine.dispose()
