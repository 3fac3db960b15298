"""The status-webhook outbox: ``webhook_deliveries`` rows owed, claimed and recorded.

A final status owes the caller a webhook in the same transaction that moved the status
(:func:`owe_webhooks`, called by ``repository.move``), so a crash can neither lose the webhook
nor send one for a move that rolled back. The webhooks queue then drains the outbox:
:func:`claim_due` picks what is due and pushes it forward (so a slow send is not published
twice), :func:`pending` reads what one send needs, :func:`record_attempt` writes its outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, literal, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from notifier.db.models import ApiKey, Notification, UTCDateTime, WebhookDelivery, utcnow
from notifier.statuses import Status


def owe_webhooks(session: Session, ids: Sequence[str], status: Status) -> None:
    """Record, in the caller's transaction, a status webhook for each of these notifications
    whose API key has a callback URL (the transactional outbox the webhooks queue drains)."""
    owe_webhooks_matching(session, [Notification.id.in_(list(ids))], status)


def owe_webhooks_matching(
    session: Session, where: Sequence[ColumnElement[bool]], status: Status
) -> None:
    """:func:`owe_webhooks` for every notification matching ``where`` (a set too large to list
    by id, such as a campaign's)."""
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
        .where(*where, ApiKey.callback_url.is_not(None))
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


def claim_due(session: Session, now: datetime, limit: int, hold: timedelta) -> list[int]:
    """The ids of up to ``limit`` pending webhooks due at ``now``, oldest due first, each pushed
    forward by ``hold`` (it is due again only if its send never records an outcome)."""
    ids = list(
        session.scalars(
            select(WebhookDelivery.id)
            .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)
        )
    )
    if ids:
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(ids))
            .values(next_attempt_at=now + hold)
        )
    return ids


@dataclass(frozen=True)
class Pending:
    """What one webhook send needs: the outbox row, its notification and the caller's key."""

    delivery: WebhookDelivery
    notification: Notification
    key: ApiKey


def pending(session: Session, delivery_id: int) -> Pending | None:
    """The pending webhook ``delivery_id`` with its notification and an API key that still has
    a callback URL and secret; None when there is nothing (any more) to send."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.status != "pending":
        return None
    notification = session.get(Notification, delivery.notification_id)
    key = session.get(ApiKey, delivery.api_key_id)
    if (
        notification is None
        or key is None
        or not key.callback_url
        or not key.callback_secret_sealed
    ):
        return None
    return Pending(delivery, notification, key)


def record_attempt(session: Session, delivery_id: int, **values: object) -> None:
    """Write the outcome of one attempt (attempts, response code, status or next attempt)."""
    session.execute(
        update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(**values)
    )
