"""What retention and erasure remove from notifications, their events and idempotency records.

Content is kept for support only as long as ``NOTIFIER_CONTENT_RETENTION_DAYS`` says, and only
once nothing will send it again; idempotency records only as long as a retry of the request can
come; an erasure request removes a person's data at once but keeps the non-personal record that
a message was sent. None of these is a status move: statuses stay.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from notifier.db.models import DeliveryEvent, IdempotencyRecord, Notification, WebhookDelivery
from notifier.db.session import affected
from notifier.notifications import by_id
from notifier.statuses import Status

# Statuses whose content nothing needs any more (``unconfirmed`` keeps it: a resend may need it).
CONTENT_DONE = (
    Status.SENT,
    Status.DELIVERED,
    Status.FAILED,
    Status.EXPIRED,
    Status.SUPPRESSED,
    Status.CANCELLED,
)


def purge_content(session: Session, created_before: datetime) -> int:
    """Drop the content (plain and sealed) of notifications created before ``created_before``
    that nothing will send any more (:data:`CONTENT_DONE`); returns how many rows lost it."""
    result = session.execute(
        update(Notification)
        .where(
            Notification.created_at < created_before,
            or_(Notification.content.is_not(None), Notification.sealed_content.is_not(None)),
            Notification.status.in_([s.value for s in CONTENT_DONE]),
        )
        .values(content=None, sealed_content=None),
        execution_options={"synchronize_session": False},
    )
    return affected(result) or 0


def purge_idempotency(session: Session, created_before: datetime) -> int:
    """Forget the idempotency records created before ``created_before``; returns how many."""
    result = session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.created_at < created_before)
    )
    return affected(result) or 0


@dataclass
class Erased:
    events: int = 0
    idempotency_records: int = 0
    notifications: int = 0


def erase_personal_data(
    session: Session, ids: Sequence[str], placeholder: str, now: datetime
) -> Erased:
    """Keep only the non-personal record of these notifications: the recipient becomes
    ``placeholder``; content, sealed values and the caller's reference go; their events lose
    the free-text detail (a provider's error can quote the address); their idempotency records
    (a fingerprint of the request) are deleted. Not a status move: the status stays."""
    ids = list(ids)
    quiet = {"synchronize_session": False}
    events = session.execute(
        update(DeliveryEvent)
        .where(DeliveryEvent.notification_id.in_(ids), DeliveryEvent.detail.is_not(None))
        .values(detail=placeholder),
        execution_options=quiet,
    )
    records = session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.notification_id.in_(ids)),
        execution_options=quiet,
    )
    rows = session.execute(
        update(Notification)
        .where(Notification.id.in_(ids))
        .values(
            recipient=placeholder, content=None, sealed_content=None, reference=None, updated_at=now
        ),
        execution_options=quiet,
    )
    return Erased(affected(events), affected(records), affected(rows))


def older_than(cutoff: datetime) -> list[ColumnElement[bool]]:
    """The selection of every notification created before ``cutoff`` (the platform's retention
    where notifications are not partitioned)."""
    return [Notification.created_at < cutoff]


def service_batches(
    service_id: str, cutoff: datetime, ranges: list[tuple[datetime, datetime]] | None
) -> list[list[ColumnElement[bool]]]:
    """The selections of a service's expired rows: one (``ranges`` None: not partitioned), or
    one per partition range before ``cutoff``, each bounded to its range so that it prunes."""
    owned = Notification.service_id == service_id
    if ranges is None:
        return [[owned, Notification.created_at < cutoff]]
    return [
        [owned, Notification.created_at >= start, Notification.created_at < min(end, cutoff)]
        for start, end in ranges
        if start < cutoff
    ]


def delete_oldest(session: Session, conditions: Sequence[ColumnElement[bool]], limit: int) -> int:
    """Delete up to ``limit`` notifications matching ``conditions``, oldest first, with the rows
    that refer to them.

    On PostgreSQL the statements prune: the notifications are named with their ``created_at``
    (:mod:`notifier.notifications.by_id`), and their events, never older than the notification
    they belong to, are looked for only from the batch's oldest ``created_at`` on (an event
    partition entirely before it is not opened). ``conditions`` that bound ``created_at``
    (one partition's range) keep the selection itself to that partition."""
    found = session.execute(
        select(Notification.id, Notification.created_at)
        .where(*conditions)
        .order_by(Notification.created_at)
        .limit(limit)
    ).all()
    if not found:
        return 0
    ids = [i for i, _ in found]
    created = [c for _, c in found]
    options = {"synchronize_session": False}
    session.execute(
        update(Notification).where(Notification.resend_of.in_(ids)).values(resend_of=None),
        execution_options=options,
    )
    since = [DeliveryEvent.created_at >= created[0]] if by_id.prunes(session) else []
    session.execute(
        delete(DeliveryEvent).where(DeliveryEvent.notification_id.in_(ids), *since),
        execution_options=options,
    )
    for model in (IdempotencyRecord, WebhookDelivery):
        session.execute(
            delete(model).where(model.notification_id.in_(ids)), execution_options=options
        )
    return affected(
        session.execute(
            delete(Notification).where(*by_id.conditions(session, ids, created)),
            execution_options=options,
        )
    )


def old_webhook_deliveries(session: Session, cutoff: datetime, limit: int) -> list[int]:
    """Of the ``limit`` oldest webhook deliveries (by id: the primary key's order is the
    creation order, so this reads through the index however large the table), those created
    before ``cutoff``."""
    oldest = session.execute(
        select(WebhookDelivery.id, WebhookDelivery.created_at)
        .order_by(WebhookDelivery.id)
        .limit(limit)
    ).all()
    return [i for i, created in oldest if created < cutoff]


def delete_webhook_deliveries(session: Session, ids: Sequence[int]) -> int:
    if not ids:
        return 0
    return affected(
        session.execute(
            delete(WebhookDelivery).where(WebhookDelivery.id.in_(list(ids))),
            execution_options={"synchronize_session": False},
        )
    )
