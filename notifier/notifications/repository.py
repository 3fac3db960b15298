"""Queries on notifications, their events, suppressions and idempotency records."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Json as PgJson
from sqlalchemy import JSON, Table, and_, bindparam, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from notifier.db.models import (
    ApiKey,
    DeliveryEvent,
    IdempotencyRecord,
    Notification,
    Suppression,
    UTCDateTime,
    WebhookDelivery,
    utcnow,
)
from notifier.errors import ErrorCode, field_error
from notifier.statuses import ALLOWED_FROM, Status
from notifier.suppressions import suppression_forms


def insert_notifications(
    session: Session, rows: Sequence[dict[str, Any]], events: Sequence[dict[str, Any]]
) -> None:
    """One bulk write for the notifications and one for their first events: COPY on PostgreSQL
    (the cheapest path for the group commit, in both database and Python time), a multi-row
    insert elsewhere."""
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        copy_rows(session, Notification.__table__, rows)
        copy_rows(session, DeliveryEvent.__table__, events)
        return
    if rows:
        session.execute(insert(Notification), list(rows))
    if events:
        session.execute(insert(DeliveryEvent), list(events))


def copy_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """COPY ``rows`` (dicts of column values) into ``table`` inside the session's transaction."""
    if not rows:
        return
    columns = list(dict.fromkeys(key for row in rows for key in row))
    json_columns = {c.name for c in table.columns if isinstance(c.type, JSON)}
    driver = session.connection().connection.driver_connection
    if driver is None:  # a checked-out connection always has its DBAPI connection
        raise RuntimeError("the session's connection has no driver connection")
    with (
        driver.cursor() as cursor,
        cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(
                [
                    PgJson(row.get(c))
                    if c in json_columns and row.get(c) is not None
                    else row.get(c)
                    for c in columns
                ]
            )


def add_events(session: Session, events: Iterable[dict[str, Any]]) -> None:
    events = list(events)
    if not events:
        return
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        copy_rows(session, DeliveryEvent.__table__, events)
    else:
        session.execute(insert(DeliveryEvent), events)


_SENT = (
    update(Notification.__table__)
    .where(
        Notification.__table__.c.id == bindparam("b_id"),
        Notification.__table__.c.status == Status.SENDING.value,
    )
    .values(
        status=Status.SENT.value,
        sent_at=bindparam("b_now"),
        updated_at=bindparam("b_now"),
        provider=bindparam("b_provider"),
        provider_message_id=bindparam("b_message_id"),
        attempts=bindparam("b_attempts"),
        sealed_content=None,
        pinned_provider=None,
        status_code=None,
        status_reason=None,
    )
)


def mark_sent(session: Session, sent: Sequence[tuple[str, str, str, int]], now: datetime) -> None:
    """``sending -> sent`` for many notifications in one executemany: (id, provider, message id,
    attempts). The same guard as :func:`move` (only from ``sending``), without a statement per
    row."""
    if sent:
        session.execute(
            _SENT,
            [
                {"b_id": i, "b_now": now, "b_provider": p, "b_message_id": m, "b_attempts": n}
                for i, p, m, n in sent
            ],
        )


def record_inflight(session: Session, notification_id: str, provider: str) -> None:
    """Write ahead that a ``sending`` notification is about to be sent through ``provider``."""
    session.execute(
        update(Notification)
        .where(Notification.id == notification_id, Notification.status == Status.SENDING.value)
        .values(inflight_provider=provider),
        execution_options={"synchronize_session": False},
    )


def move(
    session: Session,
    ids: Sequence[str],
    target: Status,
    *,
    where: Sequence[ColumnElement[bool]] = (),
    **values: object,
) -> list[str]:
    """Guarded status change: only rows whose current status may move to ``target`` (and that
    match ``where``) change. Returns the ids that moved. A final status wipes the sealed
    content here, for every caller: nothing will deliver it any more, so nothing keeps it."""
    if not ids:
        return []
    if target.is_final:
        values["sealed_content"] = None
    stmt = (
        update(Notification)
        .where(
            Notification.id.in_(list(ids)),
            Notification.status.in_([s.value for s in ALLOWED_FROM[target]]),
            *where,
        )
        .values(status=target.value, updated_at=utcnow(), **values)
        .returning(Notification.id)
    )
    moved = list(session.execute(stmt, execution_options={"synchronize_session": False}).scalars())
    if target.is_final and moved:
        owe_webhooks(session, moved, target)
    return moved


def owe_webhooks(session: Session, ids: Sequence[str], status: Status) -> None:
    """Record, in the caller's transaction, a status webhook for each of these notifications
    whose API key has a callback URL (the transactional outbox the webhooks queue drains)."""
    now = utcnow()
    owed = (
        select(
            Notification.id,
            Notification.api_key_id,
            literal("pending"),
            literal(status.value),
            literal(0),
            literal(now, UTCDateTime),
            literal(now, UTCDateTime),
            literal(now, UTCDateTime),
        )
        .join(ApiKey, ApiKey.id == Notification.api_key_id)
        .where(Notification.id.in_(list(ids)), ApiKey.callback_url.is_not(None))
    )
    session.execute(
        insert(WebhookDelivery).from_select(
            [
                "notification_id",
                "api_key_id",
                "status",
                "notification_status",
                "attempts",
                "next_attempt_at",
                "created_at",
                "updated_at",
            ],
            owed,
        )
    )


def get(session: Session, notification_id: str) -> Notification | None:
    return session.get(Notification, notification_id)


def events_of(session: Session, notification_id: str) -> list[DeliveryEvent]:
    stmt = (
        select(DeliveryEvent)
        .where(DeliveryEvent.notification_id == notification_id)
        .order_by(DeliveryEvent.created_at, DeliveryEvent.id)
    )
    return list(session.scalars(stmt))


def active_suppression(
    session: Session, channel: str, recipient: str, reasons: Iterable[str] | None = None
) -> Suppression | None:
    stmt = select(Suppression).where(
        Suppression.channel == channel,
        Suppression.recipient.in_(suppression_forms(channel, recipient)),
        Suppression.lifted_at.is_(None),
    )
    if reasons is not None:
        stmt = stmt.where(Suppression.reason.in_(list(reasons)))
    return session.scalars(stmt.order_by(Suppression.created_at.desc()).limit(1)).first()


def active_suppressions(
    session: Session, channel_recipients: Iterable[tuple[str, str]]
) -> list[Suppression]:
    """Every active suppression of these (channel, recipient) pairs, in one query (an erased
    opt-out matches by its fingerprint: see notifier.suppressions)."""
    pairs = {(c, form) for c, r in set(channel_recipients) for form in suppression_forms(c, r)}
    if not pairs:
        return []
    stmt = select(Suppression).where(
        Suppression.channel.in_({c for c, _ in pairs}),
        Suppression.recipient.in_({r for _, r in pairs}),
        Suppression.lifted_at.is_(None),
    )
    found = [s for s in session.scalars(stmt) if (s.channel, s.recipient) in pairs]
    return sorted(found, key=lambda s: s.created_at, reverse=True)


def suppress(
    session: Session,
    channel: str,
    recipient: str,
    reason: str,
    detail: str | None,
    notification_id: str | None,
) -> None:
    if active_suppression(session, channel, recipient, [reason]) is None:
        session.add(
            Suppression(
                channel=channel,
                recipient=recipient,
                reason=reason,
                detail=detail,
                notification_id=notification_id,
            )
        )


def idempotency_record(session: Session, api_key_id: str, key: str) -> IdempotencyRecord | None:
    return session.get(IdempotencyRecord, (api_key_id, key))


# --------------------------------------------------------------------------- listing


@dataclass(frozen=True)
class Filters:
    api_key_id: str | None = None  # None: across callers (support)
    recipients: Sequence[str] = ()
    reference: str | None = None
    status: str | None = None
    channel: str | None = None
    lane: str | None = None
    provider_message_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def encode_cursor(created_at: datetime, notification_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{notification_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created, notification_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return datetime.fromisoformat(created), notification_id
    except Exception as e:
        raise field_error(
            ErrorCode.INVALID_CURSOR, "cursor", "cursor is not one this API returned"
        ) from e


def _conditions(filters: Filters) -> list[ColumnElement[bool]]:
    conditions = []
    if filters.api_key_id is not None:
        conditions.append(Notification.api_key_id == filters.api_key_id)
    if filters.recipients:
        conditions.append(Notification.recipient.in_(list(filters.recipients)))
    if filters.reference:
        conditions.append(Notification.reference == filters.reference)
    if filters.status:
        conditions.append(Notification.status == filters.status)
    if filters.channel:
        conditions.append(Notification.channel == filters.channel)
    if filters.lane:
        conditions.append(Notification.lane == filters.lane)
    if filters.provider_message_id:
        conditions.append(Notification.provider_message_id == filters.provider_message_id)
    if filters.since:
        conditions.append(Notification.created_at >= filters.since)
    if filters.until:
        conditions.append(Notification.created_at < filters.until)
    return conditions


def page(
    session: Session, conditions: Sequence[ColumnElement[bool]], cursor: str | None, limit: int
) -> tuple[list[Notification], str | None]:
    """Notifications matching ``conditions``, newest first, keyset-paginated on (created_at, id).
    The one pagination of notifications: the API's list and the support searches use it."""
    stmt = select(Notification).where(*conditions)
    if cursor:
        created, last_id = decode_cursor(cursor)
        stmt = stmt.where(
            or_(
                Notification.created_at < created,
                and_(Notification.created_at == created, Notification.id < last_id),
            )
        )
    rows = list(
        session.scalars(
            stmt.order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit + 1)
        )
    )
    next_cursor = (
        encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None
    )
    return rows[:limit], next_cursor


def status_counts(session: Session, conditions: Sequence[ColumnElement[bool]]) -> dict[str, int]:
    stmt = (
        select(Notification.status, func.count()).where(*conditions).group_by(Notification.status)
    )
    return {status: count for status, count in session.execute(stmt)}


def search(
    session: Session, filters: Filters, cursor: str | None, limit: int
) -> tuple[list[Notification], str | None]:
    """The caller's notifications matching ``filters``, newest first."""
    return page(session, _conditions(filters), cursor, limit)
