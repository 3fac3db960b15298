"""Small builders of test data and settings.

Notification rows and delivery events are built with the product's one row and event builder
(``notifier.notifications.rows``), so a test row has every column a real one has; a test sets
only what it is about.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from notifier.config import Settings
from notifier.db.models import DeliveryEvent, Notification, utcnow
from notifier.db.session import transaction
from notifier.keys import create_key
from notifier.notifications import repository, rows
from notifier.runtime import Runtime
from notifier.statuses import EventKind, Status
from providers.interface import Lane

ALL_SCOPES = ["notifications:send", "notifications:read", "support:read", "campaigns:manage"]


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "data_dir": tmp_path / "data",
        "broker_url": "memory://",
        "api_rate_limit": "100000/minute",
        "sweep_interval_seconds": 3600,
        "retry_base_seconds": 0.05,
        "retry_cap_seconds": 0.2,
    }
    values.update(overrides)
    return Settings(**values)


def api_key(
    runtime: Runtime,
    name: str = "billing",
    scopes: list[str] | None = None,
    lanes: list[str] | None = None,
    rate_limit: str | None = None,
) -> str:
    with transaction(runtime.sessions) as session:
        _, plaintext = create_key(
            session, name, scopes or ["notifications:send", "notifications:read"], lanes, rate_limit
        )
    return plaintext


def email(**overrides: Any) -> dict[str, Any]:
    body = {
        "channel": "email",
        "category": "transactional",
        "to": "ada@example.com",
        "subject": "Your receipt",
        "body": "Thanks, {{ name }}",
        "data": {"name": "Ada"},
        "reference": "order-42",
    }
    body.update(overrides)
    return body


def sms(**overrides: Any) -> dict[str, Any]:
    body = {
        "channel": "sms",
        "category": "transactional",
        "to": "+447911123456",
        "body": "Your code is {{ code }}",
        "data": {"code": "583920"},
        "sensitive": ["code"],
    }
    body.update(overrides)
    return body


def push(**overrides: Any) -> dict[str, Any]:
    body = {
        "channel": "push",
        "category": "transactional",
        "to": "a" * 64,
        "platform": "apns",
        "title": "Hello {{ name }}",
        "body": "Your order shipped",
        "data": {"name": "Ada", "order": "42"},
    }
    body.update(overrides)
    return body


def daytime_timezone() -> str:
    """An IANA zone where it is now about noon: quiet hours (21:00-08:00) never apply there."""
    from datetime import datetime

    offset = 12 - datetime.now(UTC).hour  # hours ahead of UTC
    offset = offset - 24 if offset > 14 else offset
    return "Etc/UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"  # POSIX sign: Etc/GMT-5 is UTC+5


def notification_row(
    status: Status = Status.QUEUED,
    *,
    lane: str = "email.transactional",
    recipient: str = "ada@example.com",
    now: datetime | None = None,
    ttl: timedelta = timedelta(hours=1),
    **columns: Any,
) -> dict[str, Any]:
    """A notification row as intake would write it, then ``columns`` set on it (any column:
    ``claimed_at``, ``provider``, ``published_at``, ...)."""
    now = now or utcnow()
    builder_fields = {
        k: columns.pop(k)
        for k in ("api_key_id", "reference", "content", "reason", "send_at", "platform")
        if k in columns
    }
    builder_fields.setdefault("api_key_id", None)
    row = rows.notification_row(
        lane=Lane(lane),
        recipient=recipient,
        status=status,
        now=now,
        expires_at=now + ttl,
        **builder_fields,
    )
    row.update(columns)
    return row


def notification(status: Status = Status.QUEUED, **columns: Any) -> Notification:
    """An unsaved :class:`Notification` (for code that reads a row without a database)."""
    return Notification(**notification_row(status, **columns))


def event_row(
    notification_id: str,
    kind: EventKind = EventKind.ATTEMPT,
    status: Status | None = None,
    detail: str | None = None,
    at: datetime | None = None,
    **provider_fields: Any,
) -> dict[str, Any]:
    """A delivery event as the product builds it."""
    return rows.event(notification_id, kind, status, detail, at or utcnow(), **provider_fields)


def delivery_event(notification_id: str, **fields: Any) -> DeliveryEvent:
    """An unsaved :class:`DeliveryEvent`."""
    return DeliveryEvent(**event_row(notification_id, **fields))


def insert_notifications(
    runtime: Runtime, notifications: Sequence[dict[str, Any]], events: Sequence[dict[str, Any]] = ()
) -> list[str]:
    """Write these rows (and events) the way intake does; returns the ids."""
    with transaction(runtime.sessions) as session:
        repository.insert_notifications(session, notifications, events)
    return [n["id"] for n in notifications]


def sent_email_row(
    created: datetime, api_key_id: str | None = None, **values: Any
) -> dict[str, Any]:
    """The column values of a sent email notification created at ``created``, for a direct
    insert (retention and partition tests place rows in time)."""
    from notifier.db.models import new_id

    return {
        "id": new_id(),
        "api_key_id": api_key_id,
        "channel": "email",
        "category": "transactional",
        "lane": "email.transactional",
        "status": "sent",
        "recipient": "a@example.com",
        "sensitive_fields": [],
        "attempts": 1,
        "created_at": created,
        "updated_at": created,
        **values,
    }


def key_row(**values: Any) -> dict[str, Any]:
    """The column values of an API key as every revision since the first has them (a migration
    test's seed: later columns come from their migrations' defaults)."""
    from notifier.db.models import new_id

    return {
        "id": new_id(),
        "name": "billing",
        "prefix": "aaaaaaaaaaaa",
        "secret_hash": "x" * 64,
        "scopes": [],
        "created_at": utcnow(),
        **values,
    }


def seed(connection: Any, table: str, *values: dict[str, Any]) -> None:
    """Insert rows into ``table`` as the database's schema is now, not as today's models are: a
    migration test seeds a database at an older revision (reflected, so a column a later
    migration adds is not named, and JSON columns take Python values on either backend). Any
    other NOT NULL column without a default gets a placeholder of its type (``x``, 0, false,
    ``{}``, the first row's ``created_at``), so a test names only what it is about."""
    from sqlalchemy import MetaData, Table, insert

    reflected = Table(table, MetaData(), autoload_with=connection)
    filled = []
    for row in values:
        row = dict(row)
        for column in reflected.columns:
            if (
                column.name in row
                or column.nullable
                or column.server_default is not None
                or column.autoincrement is True
                or (column.primary_key and "INT" in str(column.type).upper())
            ):
                continue
            kind = str(column.type).upper()
            row[column.name] = (
                0
                if "INT" in kind
                else values[0].get("created_at", utcnow())
                if "TIME" in kind or "DATE" in kind
                else {}
                if "JSON" in kind
                else False
                if "BOOL" in kind
                else "x"
            )
        filled.append(row)
    connection.execute(insert(reflected), filled)
