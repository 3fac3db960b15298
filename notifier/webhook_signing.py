"""Status webhooks to callers: the payload and its HMAC-SHA256 signature.

Every final status of a notification whose API key has a callback URL is POSTed to that URL as
JSON with the header::

    Notifier-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

The timestamp is inside the signed payload, so a receiver can refuse old replays (the README
recommends a 5-minute tolerance). :func:`verify` is what a receiver does.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from notifier.db.models import Notification

SIGNATURE_HEADER = "Notifier-Signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 - the public prefix of every secret, not a secret


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def payload(notification: Notification) -> dict[str, Any]:
    """What the caller is told: ids, status and the reason, never content or personalisation."""
    return {
        "type": "notification.status",
        "id": notification.id,
        "reference": notification.reference,
        "status": notification.status,
        "status_reason": notification.status_reason,
        "status_code": notification.status_code,
        "channel": notification.channel,
        "lane": notification.lane,
        "test": bool(notification.test),  # sent with a test key: the simulator answered
        "provider": notification.provider,
        "provider_message_id": notification.provider_message_id,
        "created_at": notification.created_at.isoformat() if notification.created_at else None,
        "sent_at": notification.sent_at.isoformat() if notification.sent_at else None,
        "completed_at": notification.completed_at.isoformat()
        if notification.completed_at
        else None,
    }


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def verify(
    secret: str, body: bytes, header: str, tolerance_seconds: int = 300, now: float | None = None
) -> bool:
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_seconds:
        return False
    expected = sign(secret, body, timestamp).split(",", 1)[1]
    return hmac.compare_digest(expected, f"v1={parts.get('v1', '')}")
