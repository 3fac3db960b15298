"""Migration 0013_test_notifications on a database with data, on SQLite and PostgreSQL
(partitioned there): existing notifications are live (``test`` false), code that does not know
the column still inserts, and the downgrade removes it with every row still there."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, text

from notifier.db.migrate import alembic_config
from notifier.db.session import make_engine
from tests.factories import seed, sent_email_row
from tests.notifier_services.test_migration import BEFORE, NOW, _count, _seed


def _walk(url: str) -> None:
    config = alembic_config(url)
    for head in BEFORE:
        command.upgrade(config, head)
    engine = make_engine(url)
    try:
        _seed(engine)
        command.upgrade(config, "0011_services")
        before = _count(engine, "notifications")
        command.upgrade(config, "0013_test_notifications")
        with engine.begin() as c:
            assert c.execute(text("SELECT test FROM notifications")).scalars().all() == [False]
            row = sent_email_row(NOW, "k1", id="n2", status="queued", attempts=0)
            seed(c, "notifications", row)  # not naming the new column: a live notification
            marked = c.execute(text("SELECT test FROM notifications WHERE id = 'n2'")).scalar()
            assert marked is False or marked == 0
        command.downgrade(config, "0011_services")
        columns = {c["name"] for c in inspect(engine).get_columns("notifications")}
        assert "test" not in columns
        assert _count(engine, "notifications") == before + 1
        command.upgrade(config, "heads")  # and forward again
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_forward_with_data_and_back(backend: str, tmp_path: Path) -> None:
    if backend == "sqlite":
        _walk(f"sqlite:///{tmp_path / 'm.db'}")
        return
    from tests.services import fresh_postgres_database

    with fresh_postgres_database() as url:
        _walk(url)
