"""The size and time bounds of one notification, checked at intake (all in the README).

Template sources are bounded by the request schema (:mod:`notifier.notifications.schemas`); the
rendered text of each field by :func:`max_chars` (enforced while rendering); the body once more
by channel (SMS segments) in :func:`check_content`, for intake and campaign fan-out alike;
``send_at`` by :func:`send_at`. Together they bound what one
notification stores; the batch endpoint bounds the sum (:mod:`notifier.notifications.batch`).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from notifier.config import Settings
from notifier.db.models import utcnow
from notifier.errors import ErrorCode, field_error
from notifier.notifications.schemas import PUSH_TITLE_MAX, SUBJECT_MAX
from notifier.rendering import too_long
from notifier.sms_segments import count_segments
from providers.interface import Channel

PUSH_DATA_MAX_BYTES = 4096  # FCM and APNs both refuse payloads over 4 KB


def send_at(settings: Settings, requested: datetime | None) -> datetime | None:
    """A future ``send_at``, or None (now). Slightly past (clock skew, up to
    ``send_at_past_tolerance_seconds``) is now; further past, or further ahead than
    ``send_at_max_days``, is a 422 (year 9999 used to overflow into a 500)."""
    if requested is None:
        return None
    now = utcnow()
    tolerance = timedelta(seconds=settings.send_at_past_tolerance_seconds)
    if requested < now - tolerance:
        raise field_error(
            ErrorCode.VALIDATION_ERROR,
            "send_at",
            f"send_at is in the past (more than {int(tolerance.total_seconds())} s ago)",
        )
    if requested > now + timedelta(days=settings.send_at_max_days):
        raise field_error(
            ErrorCode.VALIDATION_ERROR,
            "send_at",
            f"send_at is more than {settings.send_at_max_days} days ahead",
        )
    return requested if requested > now else None


def max_chars(settings: Settings, channel: Channel) -> dict[str, int]:
    """The longest rendered text of each field (counted while rendering)."""
    if channel == Channel.EMAIL:
        body = settings.email_max_body_chars
        return {"subject": SUBJECT_MAX, "body": body, "html": body}
    if channel == Channel.SMS:  # the segment count decides; this bounds the counting
        return {"body": settings.sms_max_segments * 160 + 1}
    return {
        "title": PUSH_TITLE_MAX,
        "body": settings.push_max_body_chars,
        "data": PUSH_DATA_MAX_BYTES,
    }


def check_content(settings: Settings, channel: Channel, content: dict[str, Any]) -> int | None:
    """The rendered content within its channel's bounds, as delivered (unsubscribe footer
    included); for SMS, its segment count. Intake answers a breach with a 4xx; campaign fan-out
    stores the notification as ``failed`` with the message (one check for both)."""
    subject = content.get("subject")
    if subject is not None and ("\r" in subject or "\n" in subject):
        raise field_error(
            ErrorCode.VALIDATION_ERROR,
            "subject",
            "subject must be one line: it renders with a CR or LF",
        )
    if "data" in content:
        size = len(json.dumps(content["data"], separators=(",", ":")).encode())
        if size > PUSH_DATA_MAX_BYTES:
            raise too_long("data", PUSH_DATA_MAX_BYTES)
    body = content["body"]
    if channel == Channel.SMS:
        count = count_segments(body)
        if count.segments > settings.sms_max_segments:
            raise field_error(
                ErrorCode.BODY_TOO_LONG,
                "body",
                f"SMS body needs {count.segments} {count.encoding.value} segments; "
                f"at most {settings.sms_max_segments} are allowed",
            )
        return count.segments
    email = channel == Channel.EMAIL
    limit = settings.email_max_body_chars if email else settings.push_max_body_chars
    if len(body) > limit:
        raise field_error(
            ErrorCode.BODY_TOO_LONG, "body", f"body is {len(body)} characters; at most {limit}"
        )
    return None
