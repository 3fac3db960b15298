"""Notification rows as API responses. Only redacted content ever leaves through here."""

from __future__ import annotations

from collections.abc import Sequence

from notifier.db.models import DeliveryEvent, Notification
from notifier.notifications.schemas import EventOut, NotificationOut
from notifier.reasons import ReasonCode
from notifier.statuses import Status


def notification_out(
    row: Notification, events: Sequence[DeliveryEvent] | None = None
) -> NotificationOut:
    return NotificationOut(
        id=row.id,
        status=Status(row.status),
        status_reason=row.status_reason,
        status_code=ReasonCode(row.status_code) if row.status_code else None,
        channel=row.channel,
        category=row.category,
        lane=row.lane,
        to=row.recipient,
        platform=row.platform,
        reference=row.reference,
        content=row.content,
        sms_segments=row.sms_segments,
        created_at=row.created_at,
        send_at=row.send_at,
        expires_at=row.expires_at,
        sent_at=row.sent_at,
        completed_at=row.completed_at,
        attempts=row.attempts or 0,
        provider=row.provider,
        provider_message_id=row.provider_message_id,
        resend_of=row.resend_of,
        test=bool(row.test),
        events=None if events is None else [event_out(e) for e in events],
    )


def event_out(event: DeliveryEvent) -> EventOut:
    return EventOut.model_validate(event)
