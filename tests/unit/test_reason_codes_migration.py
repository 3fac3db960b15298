"""Migration 0010 gives every row written before it the code of its reason, read once from the
sentence: each sentence today's builders write maps back to its own code, on SQLite and
PostgreSQL, and the downgrade removes the column again."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from notifier import reasons
from notifier.db.migrate import alembic_config, upgrade
from notifier.db.session import make_engine
from notifier.reasons import Reason, ReasonCode
from tests.factories import seed, sent_email_row

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
BEFORE = "0008_worker_heartbeats"
AFTER = "0010_status_reason_codes"

# (status, reason) as the service writes them: every code at least once
WRITTEN: list[tuple[str, Reason]] = [
    ("scheduled", reasons.quiet_hours(NOW.time(), NOW.time(), ["Europe/Paris"], NOW)),
    ("scheduled", reasons.throttled(60)),
    ("scheduled", reasons.held()),
    ("scheduled", reasons.released()),
    ("suppressed", reasons.suppressed("hard_bounce")),
    ("suppressed", reasons.no_consent("sms")),
    ("failed", reasons.not_rendered("missing value first_name")),
    ("failed", reasons.content_refused("the SMS is 14 segments long")),
    ("cancelled", reasons.cancelled("cancelled by the caller")),
    ("cancelled", reasons.cancelled("the campaign was cancelled")),
    ("failed", reasons.rejected_by_provider("21211", "invalid 'To' phone number")),
    ("failed", reasons.rejected_by_provider(None, "message rejected")),
    ("failed", reasons.gave_up(3)),
    ("expired", reasons.ran_out(2)),
    ("expired", reasons.ran_out(0)),
    ("expired", reasons.expired_before_sending()),
    ("unconfirmed", reasons.unconfirmed("ses-main")),
    ("unconfirmed", reasons.unconfirmed("ses-main", lost=True)),
    ("failed", reasons.receipt_failed("twilio", "undelivered", "30003")),
]


def test_every_code_is_written_by_some_builder() -> None:
    assert {reason.code for _, reason in WRITTEN} == set(ReasonCode)


def _backfilled(url: str) -> None:
    upgrade(url, BEFORE)
    engine = make_engine(url)
    rows = [
        sent_email_row(NOW, id=f"n-{i}", status=status, status_reason=reason.stored)
        for i, (status, reason) in enumerate(WRITTEN)
    ] + [sent_email_row(NOW, id="n-none", status="sent", status_reason=None)]
    with engine.begin() as connection:
        seed(connection, "notifications", *rows)
    upgrade(url, AFTER)
    with engine.connect() as connection:
        codes: dict[str, str | None] = dict(
            connection.execute(sa.text("SELECT id, status_code FROM notifications")).all()
        )
    assert codes == {
        **{f"n-{i}": reason.code.value for i, (_, reason) in enumerate(WRITTEN)},
        "n-none": None,
    }
    command.downgrade(alembic_config(url), BEFORE)
    with engine.connect() as connection:
        names = {c["name"] for c in sa.inspect(connection).get_columns("notifications")}
    engine.dispose()
    assert "status_code" not in names and "status_reason" in names


def test_backfill_on_sqlite(tmp_path: Path) -> None:
    _backfilled(f"sqlite:///{tmp_path / 'm.db'}")


@pytest.mark.postgres
def test_backfill_on_postgresql() -> None:
    from tests.services import fresh_postgres_database

    with fresh_postgres_database() as url:
        _backfilled(url)
