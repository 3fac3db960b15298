"""Typed domain errors with stable, machine-readable codes.

Every error a caller can see is one of these codes; the API maps them once, at the edge, to the
JSON envelope ``{"error": {"code", "message", "details"}}`` and an HTTP status. The README lists
them all; ``tests/unit/test_errors.py`` keeps that list and this enum in step.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class ErrorCode(enum.StrEnum):
    MALFORMED_JSON = "malformed_json"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    VALIDATION_ERROR = "validation_error"
    INVALID_CHANNEL = "invalid_channel"
    INVALID_RECIPIENT = "invalid_recipient"
    MISSING_PERSONALISATION = "missing_personalisation"
    TEMPLATE_ERROR = "template_error"
    BODY_TOO_LONG = "body_too_long"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    BATCH_TOO_LARGE = "batch_too_large"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    INVALID_CURSOR = "invalid_cursor"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN_SCOPE = "forbidden_scope"
    FORBIDDEN_LANE = "forbidden_lane"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    RATE_LIMITED = "rate_limited"
    RECIPIENT_RATE_LIMITED = "recipient_rate_limited"
    DATABASE_UNAVAILABLE = "database_unavailable"
    SERVICE_UNAVAILABLE = "service_unavailable"
    INVALID_SIGNATURE = "invalid_signature"
    INVALID_SERVICE_NAME = "invalid_service_name"
    SERVICE_EXISTS = "service_exists"
    UNKNOWN_SERVICE = "unknown_service"
    UNKNOWN_PROVIDER = "unknown_provider"
    SENDER_NOT_ALLOWED = "sender_not_allowed"
    RETENTION_TOO_LONG = "retention_too_long"
    QUOTA_EXCEEDED = "quota_exceeded"
    RECIPIENT_NOT_ALLOWED = "recipient_not_allowed"
    INTERNAL_ERROR = "internal_error"


HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.MALFORMED_JSON: 400,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.VALIDATION_ERROR: 422,
    ErrorCode.INVALID_CHANNEL: 422,
    ErrorCode.INVALID_RECIPIENT: 422,
    ErrorCode.MISSING_PERSONALISATION: 422,
    ErrorCode.TEMPLATE_ERROR: 422,
    ErrorCode.BODY_TOO_LONG: 422,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.BATCH_TOO_LARGE: 413,
    ErrorCode.IDEMPOTENCY_KEY_REUSED: 422,
    ErrorCode.INVALID_CURSOR: 422,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN_SCOPE: 403,
    ErrorCode.FORBIDDEN_LANE: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.CONFLICT: 409,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.RECIPIENT_RATE_LIMITED: 429,
    ErrorCode.DATABASE_UNAVAILABLE: 503,
    ErrorCode.SERVICE_UNAVAILABLE: 503,
    ErrorCode.INVALID_SIGNATURE: 403,
    ErrorCode.INVALID_SERVICE_NAME: 422,
    ErrorCode.SERVICE_EXISTS: 409,
    ErrorCode.UNKNOWN_SERVICE: 422,
    ErrorCode.UNKNOWN_PROVIDER: 422,
    ErrorCode.SENDER_NOT_ALLOWED: 422,
    ErrorCode.RETENTION_TOO_LONG: 422,
    ErrorCode.QUOTA_EXCEEDED: 429,
    ErrorCode.RECIPIENT_NOT_ALLOWED: 400,
    ErrorCode.INTERNAL_ERROR: 500,
}


@dataclass
class ErrorDetail:
    field: str | None
    message: str
    code: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            k: v
            for k, v in (("field", self.field), ("message", self.message), ("code", self.code))
            if v is not None
        }


@dataclass
class NotifierError(Exception):
    code: ErrorCode
    message: str
    details: list[ErrorDetail] = field(default_factory=list)
    retry_after: float | None = None  # seconds: the Retry-After header
    reset_at: datetime | None = None  # when a quota or limit resets: ``reset_at`` in the body

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.code]

    def envelope(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "code": self.code.value,
            "message": self.message,
            "details": [d.as_dict() for d in self.details],
        }
        if self.reset_at is not None:
            error["reset_at"] = self.reset_at.isoformat(timespec="seconds")
        return {"error": error}


def field_error(code: ErrorCode, field_name: str, message: str) -> NotifierError:
    return NotifierError(
        code, message, [ErrorDetail(field=field_name, message=message, code=code.value)]
    )


def from_validation_errors(
    errors: Sequence[Mapping[str, Any]], skip_loc: tuple[str, ...] = ("body",)
) -> NotifierError:
    """Map pydantic's error list to one NotifierError naming every field."""
    details: list[ErrorDetail] = []
    code = ErrorCode.VALIDATION_ERROR
    for error in errors:
        kind = error.get("type", "")
        loc = [str(p) for p in error.get("loc", ()) if str(p) not in skip_loc]
        if kind == "json_invalid":
            return NotifierError(ErrorCode.MALFORMED_JSON, "request body is not valid JSON")
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            code = ErrorCode.INVALID_CHANNEL
            details.append(
                ErrorDetail("channel", "channel must be one of: email, sms, push", code.value)
            )
            continue
        if loc and loc[0] in ("email", "sms", "push"):
            loc = loc[1:]
        details.append(
            ErrorDetail(".".join(loc) or None, error.get("msg", "invalid"), kind or None)
        )
    message = (
        "; ".join(f"{d.field}: {d.message}" if d.field else d.message for d in details)
        or "invalid request"
    )
    return NotifierError(code, message, details)
