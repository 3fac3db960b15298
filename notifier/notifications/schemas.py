"""Request and response models. Requests are a union discriminated on ``channel``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from notifier.statuses import Status
from providers.interface import Category, PushPlatform


class _NotificationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: Category = Category.TRANSACTIONAL
    to: str = Field(
        min_length=1, max_length=4096, description="Recipient: email, E.164 phone or device token"
    )
    data: dict[str, Any] = Field(
        default_factory=dict, description="Personalisation for the templates"
    )
    sensitive: list[Annotated[str, Field(max_length=100)]] = Field(
        default_factory=list, max_length=50, description="Names of data fields to redact everywhere"
    )
    reference: str | None = Field(
        default=None, max_length=255, description="The caller's own reference"
    )
    send_at: AwareDatetime | None = Field(
        default=None, description="Send later (ISO 8601 with offset)"
    )
    ttl_seconds: int | None = Field(
        default=None, ge=1, le=30 * 86400, description="Not sent after this"
    )
    template: str | None = Field(
        default=None, max_length=200, description="A stored template's name instead of content"
    )
    locale: str | None = Field(
        default=None, max_length=35, description="Template variant, e.g. fr-CA (falls back)"
    )
    timezone: str | None = Field(
        default=None, max_length=64, description="Recipient's IANA timezone (quiet hours)"
    )

    @model_validator(mode="after")
    def _content_or_template(self) -> _NotificationRequest:
        required = {"email": ("subject", "body"), "sms": ("body",), "push": ("body",)}
        channel = getattr(self, "channel", "")
        if self.template is None:
            missing = [f for f in required.get(channel, ()) if not getattr(self, f, None)]
            if missing:
                raise ValueError(f"{', '.join(missing)} required unless a template is named")
        elif any(getattr(self, f, None) for f in ("subject", "body", "html", "title")):
            raise ValueError("give either a template or inline content, not both")
        return self

    @field_validator("data")
    @classmethod
    def _flat_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not key.isidentifier():
                raise ValueError(f"data key {key!r} must be an identifier (letters, digits, _)")
        return value


class EmailRequest(_NotificationRequest):
    channel: Literal["email"]
    subject: str | None = Field(default=None, min_length=1, max_length=998)
    body: str | None = Field(default=None, min_length=1)
    html: str | None = None


class SmsRequest(_NotificationRequest):
    channel: Literal["sms"]
    body: str | None = Field(default=None, min_length=1)


class PushRequest(_NotificationRequest):
    channel: Literal["push"]
    platform: PushPlatform
    title: str | None = Field(default=None, max_length=500)
    body: str | None = Field(default=None, min_length=1)


NotificationRequest = Annotated[
    EmailRequest | SmsRequest | PushRequest, Field(discriminator="channel")
]


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    notifications: list[dict[str, Any]] = Field(min_length=1)


class EventOut(BaseModel):
    at: datetime
    kind: str
    status: str | None = None
    provider: str | None = None
    latency_ms: float | None = None
    provider_message_id: str | None = None
    response_code: str | None = None
    detail: str | None = None
    attempt: int | None = None


class NotificationOut(BaseModel):
    id: str
    status: Status
    status_reason: str | None = None
    channel: str
    category: str
    lane: str
    to: str
    platform: str | None = None
    reference: str | None = None
    content: dict[str, Any] | None = None
    sms_segments: int | None = None
    created_at: datetime
    send_at: datetime | None = None
    expires_at: datetime | None = None
    sent_at: datetime | None = None
    completed_at: datetime | None = None
    attempts: int = 0
    provider: str | None = None
    provider_message_id: str | None = None
    resend_of: str | None = None
    events: list[EventOut] | None = None


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[dict[str, Any]] = []


class BatchItemResult(BaseModel):
    index: int
    id: str | None = None
    status: Status | None = None
    error: ErrorBody | None = None


class BatchResponse(BaseModel):
    results: list[BatchItemResult]
    accepted: int
    rejected: int


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    next_cursor: str | None = None
