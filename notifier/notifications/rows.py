"""The one shape of a new notification row: intake and campaign fan-out both build it here.

Intake and fan-out used to write their own 24-key dicts, and the two drifted (only intake
checked an SMS's segment count). Building every new row here keeps the columns, and the rules
that follow from the status, in one place: ``published_at`` is set when a row starts
``queued`` (it is published at once), ``completed_at`` when it starts final (suppressed, or
failed before any attempt), and the status reason is written as its code and its sentence
(:mod:`notifier.reasons`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from notifier import reasons
from notifier.db.models import DEFAULT_SERVICE_ID, new_id
from notifier.reasons import Reason
from notifier.statuses import EventKind, Status
from providers.interface import Lane

# a lane's three columns, computed once (``Lane.channel`` and ``.category`` parse the value)
_LANE_COLUMNS = {lane: (lane.channel.value, lane.category.value, lane.value) for lane in Lane}

PROVIDER_FIELDS = frozenset(
    {"provider", "latency_ms", "provider_message_id", "response_code", "attempt"}
)


def notification_row(
    *,
    api_key_id: str | None,
    lane: Lane,
    recipient: str,
    status: Status,
    now: datetime,
    expires_at: datetime,
    reason: Reason | None = None,
    platform: str | None = None,
    reference: str | None = None,
    content: dict[str, Any] | None = None,
    sealed_content: str | None = None,
    sensitive_fields: Iterable[str] = (),
    sms_segments: int | None = None,
    template_name: str | None = None,
    template_version: int | None = None,
    send_at: datetime | None = None,
    campaign_id: str | None = None,
    resend_of: str | None = None,
    test: bool = False,
    service_id: str = DEFAULT_SERVICE_ID,
) -> dict[str, Any]:
    """A new notification as the column values of one insert (every column a new row sets);
    a row built without naming its service belongs to the default one, as a key does."""
    final = status.is_final
    channel, category, lane_name = _LANE_COLUMNS[lane]
    return {
        "id": new_id(at=now),  # the id carries its created_at (notifier.db.models.new_id)
        "api_key_id": api_key_id,
        "channel": channel,
        "category": category,
        "lane": lane_name,
        "status": status.value,
        **reasons.columns(reason),
        "recipient": recipient,
        "platform": platform,
        "reference": reference,
        "content": content,
        "sealed_content": None if final else sealed_content,
        "sensitive_fields": sorted(set(sensitive_fields)) if sensitive_fields else [],
        "template_name": template_name,
        "template_version": template_version,
        "sms_segments": sms_segments,
        "send_at": send_at,
        "expires_at": expires_at,
        "created_at": now,
        "updated_at": now,
        "published_at": now if status == Status.QUEUED else None,
        "completed_at": now if final else None,
        "attempts": 0,
        "campaign_id": campaign_id,
        "resend_of": resend_of,
        "test": test,
        "service_id": service_id,
    }


def event(
    notification_id: str,
    kind: EventKind,
    status: Status | None,
    detail: str | None,
    created_at: datetime,
    **provider_fields: Any,
) -> dict[str, Any]:
    """One delivery event as the column values of one insert; ``provider_fields`` are the
    optional columns of an attempt (``provider``, ``latency_ms``, ``provider_message_id``,
    ``response_code``, ``attempt``)."""
    unknown = set(provider_fields) - PROVIDER_FIELDS
    if unknown:
        raise TypeError(f"not a delivery event column: {', '.join(sorted(unknown))}")
    return {
        "notification_id": notification_id,
        "created_at": created_at,
        "kind": kind.value,
        "status": status.value if status else None,
        "detail": detail,
        **provider_fields,
    }


def first_event(row: dict[str, Any], suppressed_reason: str | None) -> dict[str, Any]:
    """The event a new row starts with: queued, scheduled, or suppressed at intake."""
    status = Status(row["status"])
    kind, detail = {
        Status.QUEUED: (EventKind.QUEUED, f"accepted on lane {row['lane']}"),
        Status.SCHEDULED: (EventKind.SCHEDULED, f"scheduled for {iso_or_dash(row['send_at'])}"),
        Status.SUPPRESSED: (
            EventKind.SUPPRESSED,
            f"not sent: the recipient is suppressed ({suppressed_reason})",
        ),
    }[status]
    return event(row["id"], kind, status, detail, row["created_at"])


def iso_or_dash(value: datetime | None) -> str:
    return value.isoformat() if value else "-"
