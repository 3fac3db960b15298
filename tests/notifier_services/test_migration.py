"""Migration 0011_services on a database with data, on SQLite and PostgreSQL: every existing
key and row lands in the default service (keys live, not trial), unsubscribes become the
default service's and other suppressions stay global; the downgrade gives the schema back
with every row still there."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, text

from notifier.db.migrate import alembic_config
from notifier.db.session import make_engine
from tests.factories import key_row, seed, sent_email_row

DEFAULT = "00000000-0000-4000-8000-000000000000"
BEFORE = (
    "0002_support",
    "0003_campaigns",
    "0005_delivery_claims",
    "0007_console_operator",
    "0008_worker_heartbeats",
)  # every head before 0011
OWNED = ("notifications", "templates", "audiences", "campaigns", "suppressions")
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _seed(engine: Engine) -> None:
    with engine.begin() as c:
        seed(c, "api_keys", key_row(id="k1", created_at=NOW))
        seed(c, "notifications", sent_email_row(NOW, "k1", id="n1"))
        seed(c, "delivery_events", dict(notification_id="n1", created_at=NOW, kind="queued"))
        seed(
            c,
            "idempotency_keys",
            dict(api_key_id="k1", key="i1", fingerprint="f", notification_id="n1", created_at=NOW),
        )
        seed(
            c,
            "webhook_deliveries",
            dict(
                notification_id="n1",
                api_key_id="k1",
                status="pending",
                notification_status="sent",
                next_attempt_at=NOW,
                created_at=NOW,
                updated_at=NOW,
            ),
        )
        seed(c, "templates", dict(id="t1", name="receipt", channel="email", created_at=NOW))
        seed(c, "audiences", dict(id="a1", name="news", created_at=NOW))
        seed(
            c,
            "campaigns",
            dict(id="c1", name="spring", template_name="receipt", audience_id="a1", created_at=NOW),
        )
        seed(
            c,
            "suppressions",
            *(
                dict(channel="email", recipient=f"{n}@example.com", reason=reason, created_at=NOW)
                for n, reason in enumerate(("unsubscribed", "hard_bounce", "stop", "manual"))
            ),
        )


def _count(engine: Engine, table: str) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608


def _walk(url: str) -> None:
    config = alembic_config(url)
    for head in BEFORE:
        command.upgrade(config, head)
    engine = make_engine(url)
    try:
        _seed(engine)
        counts = {t: _count(engine, t) for t in (*OWNED, "api_keys", "delivery_events")}
        command.upgrade(config, "0011_services")
        with engine.connect() as c:
            assert c.execute(text("SELECT id, name, trial FROM services")).all() == [
                (DEFAULT, "default", False)
            ]
            assert c.execute(text("SELECT service_id, key_type FROM api_keys")).all() == [
                (DEFAULT, "live")
            ]
            for table in ("notifications", "templates", "audiences", "campaigns"):
                assert c.execute(text(f"SELECT service_id FROM {table}")).scalars().all() == [  # noqa: S608
                    DEFAULT
                ], table
            scoped = c.execute(text("SELECT reason, service_id FROM suppressions ORDER BY reason"))
            assert dict(scoped.tuples().all()) == {
                "hard_bounce": None,
                "manual": None,
                "stop": None,
                "unsubscribed": DEFAULT,
            }
            # a key inserted by code that does not know services lands in the default service
            seed(c, "api_keys", key_row(id="k2", name="old", prefix="bbbbbbbbbbbb"))
            assert (
                c.execute(text("SELECT service_id FROM api_keys WHERE id = 'k2'")).scalar()
                == DEFAULT
            )
            c.rollback()
        command.downgrade(config, "0011_services-1")
        inspector = inspect(engine)
        assert "services" not in inspector.get_table_names()
        assert "service_allowed_recipients" not in inspector.get_table_names()
        for table in (*OWNED, "api_keys"):
            assert "service_id" not in {c["name"] for c in inspector.get_columns(table)}, table
        assert "key_type" not in {c["name"] for c in inspector.get_columns("api_keys")}
        assert {t: _count(engine, t) for t in counts} == counts
        command.upgrade(config, "heads")  # and forward again
    finally:
        engine.dispose()


def test_forward_with_data_and_back_on_sqlite(tmp_path: Path) -> None:
    _walk(f"sqlite:///{tmp_path / 'm.db'}")


@pytest.mark.postgres
def test_forward_with_data_and_back_on_postgresql() -> None:
    from tests.services import fresh_postgres_database

    with fresh_postgres_database() as url:
        _walk(url)
