"""Notification rows as API responses. Only redacted content ever leaves through here."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from notifier.db.models import DeliveryEvent, Notification
from notifier.notifications.schemas import EventOut, NotificationOut
from notifier.reasons import ReasonCode
from notifier.statuses import Status


def notification_out(
    row: Notification, events: Sequence[DeliveryEvent] | None = None
) -> NotificationOut:
    return _out(row.__getattribute__, events)


def accepted_out(row: Mapping[str, Any]) -> NotificationOut:
    """The answer for a notification just accepted, from the row intake inserted (a column it
    did not set reads as the row object's unset attribute does: None), without building the ORM
    object only to read it back."""
    return _out(row.get, None)


def _out(column: Callable[[str], Any], events: Sequence[DeliveryEvent] | None) -> NotificationOut:
    status_code = column("status_code")
    return NotificationOut(
        id=column("id"),
        status=Status(column("status")),
        status_reason=column("status_reason"),
        status_code=ReasonCode(status_code) if status_code else None,
        channel=column("channel"),
        category=column("category"),
        lane=column("lane"),
        to=column("recipient"),
        platform=column("platform"),
        reference=column("reference"),
        content=column("content"),
        sms_segments=column("sms_segments"),
        created_at=column("created_at"),
        send_at=column("send_at"),
        expires_at=column("expires_at"),
        sent_at=column("sent_at"),
        completed_at=column("completed_at"),
        attempts=column("attempts") or 0,
        provider=column("provider"),
        provider_message_id=column("provider_message_id"),
        resend_of=column("resend_of"),
        test=bool(column("test")),
        events=None if events is None else [event_out(e) for e in events],
    )


def event_out(event: DeliveryEvent) -> EventOut:
    return EventOut.model_validate(event)
