"""Engine and session setup for SQLite and PostgreSQL.

PostgreSQL may be reached through PgBouncer in transaction pooling mode (``NOTIFIER_DATABASE_POOLER
=pgbouncer``; README "Connection budget"). There each transaction may run on a different server
connection, so nothing may outlive a transaction on the server. The one such thing the product
makes is psycopg's server-side prepared statements (a statement run five times on a connection
is prepared as ``_pg3_N``); behind the pooler another client's transaction finds them missing or
already taken, so they are turned off there. The product sets no session variables, takes no
advisory locks and uses no LISTEN/NOTIFY; its COPY runs inside a transaction; row locks are
``SELECT ... FOR UPDATE``, which end with their transaction.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import CursorResult, Engine, Result, create_engine, event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry


class DatabasePooler(enum.StrEnum):
    """What sits between the product and PostgreSQL."""

    NONE = "none"
    PGBOUNCER = "pgbouncer"  # transaction pooling mode (session mode would need nothing)


def configured_pooler() -> DatabasePooler:
    """``NOTIFIER_DATABASE_POOLER``, for the engines made from a bare URL (migrations given a
    URL, one-off tools): every engine on a database behind PgBouncer must know it, not only
    those built from :class:`notifier.config.Settings`."""
    return DatabasePooler(os.environ.get("NOTIFIER_DATABASE_POOLER", DatabasePooler.NONE).lower())


def make_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 0,
    pooler: DatabasePooler | None = None,
) -> Engine:
    """``pooler`` unset: as ``NOTIFIER_DATABASE_POOLER`` says (see :func:`configured_pooler`)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # No pre-ping: it costs a round trip per transaction on the hot path. Stale connections are
    # recycled by age, and a connection lost anyway fails one transaction, which callers retry
    # (tasks by their retry policy, intake with a 503 the client retries).
    # A hard bound per process (``max_overflow`` 0 by default): a thread beyond the pool waits
    # for a connection rather than opening one PostgreSQL may not have to give.
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle=300,
        pool_timeout=30,
        connect_args=postgres_connect_args(pooler),
    )


def postgres_connect_args(pooler: DatabasePooler | None = None) -> dict[str, Any]:
    """psycopg connection options for PostgreSQL behind ``pooler`` (unset: as configured); also
    given to celery-beat's own scheduler engine (``beat_engine_options``)."""
    if (pooler or configured_pooler()) == DatabasePooler.PGBOUNCER:
        # None: never prepare server-side (psycopg then sends every query unnamed, one round trip)
        return {"prepare_threshold": None}
    return {}


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on error, always close."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def affected(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE matched. ``Session.execute`` is typed to return a plain
    ``Result``; for a DML statement it is always a ``CursorResult``, which has the count."""
    if not isinstance(result, CursorResult):
        raise TypeError(f"not the result of an UPDATE or DELETE: {type(result).__name__}")
    return result.rowcount
