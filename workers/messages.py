"""Provider messages built from notification rows (content unsealed only here, in memory).

The sending service's sender identity on the lane (``ServiceSnapshot.sender``) goes into the
message, where the adapters use it in place of their configured sender; a service without one
sends as the platform does."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypedDict

from notifier.db.models import Notification
from notifier.security import Sealer
from providers.interface import (
    Category,
    Channel,
    EmailMessage,
    Lane,
    Message,
    PushMessage,
    PushPlatform,
    SmsMessage,
)


class _Addressing(TypedDict):
    """The fields every message kind shares, taken from the row."""

    notification_id: str
    lane: Lane
    to: str
    reference: str | None
    expires_at: datetime | None


def build_message(
    row: Notification, sealer: Sealer, sender: Mapping[str, str] | None = None
) -> Message:
    content: dict[str, Any] = (
        sealer.unseal(row.sealed_content) if row.sealed_content else dict(row.content or {})
    )
    lane = Lane(row.lane)
    sender = sender or {}
    common: _Addressing = {
        "notification_id": row.id,
        "lane": lane,
        "to": row.recipient,
        "reference": row.reference,
        "expires_at": row.expires_at,
    }
    if lane.channel == Channel.EMAIL:
        return EmailMessage(
            subject=content.get("subject", ""),
            text=content.get("body", ""),
            html=content.get("html"),
            unsubscribe_url=content.get("unsubscribe_url")
            if lane.category == Category.PROMOTIONAL
            else None,
            from_address=sender.get("from_address"),
            reply_to=sender.get("reply_to"),
            **common,
        )
    if lane.channel == Channel.SMS:
        return SmsMessage(
            body=content.get("body", ""),
            sender_id=sender.get("sender_id"),
            messaging_service_sid=sender.get("messaging_service_sid"),
            **common,
        )
    return PushMessage(
        platform=PushPlatform(row.platform or "fcm"),
        title=content.get("title"),
        body=content.get("body", ""),
        data=content.get("data") or {},
        **common,
    )
