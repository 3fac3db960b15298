"""Request and response models. Requests are a union discriminated on ``channel``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    field_validator,
    model_validator,
)

from notifier.reasons import ReasonCode
from notifier.statuses import Status
from notifier.storable import require_storable
from providers.interface import Category, PushPlatform

# Maxima of the template sources a request may carry (characters). The rendered text of each field
# has its own maximum, checked while rendering (see Intake and notifier/rendering.py); both are
# listed in the README.
SUBJECT_MAX = 998  # RFC 5322 line length
EMAIL_BODY_MAX = 500_000
HTML_MAX = 500_000
SMS_BODY_MAX = 5_000
PUSH_TITLE_MAX = 500
PUSH_BODY_MAX = 4_000
DATA_MAX_KEYS = 200


class _NotificationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: Category = Category.TRANSACTIONAL
    to: str = Field(
        min_length=1, max_length=4096, description="Recipient: email, E.164 phone or device token"
    )
    data: dict[str, Any] = Field(
        default_factory=dict,
        max_length=DATA_MAX_KEYS,
        description=f"Personalisation for the templates (at most {DATA_MAX_KEYS} keys)",
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

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, values: Any) -> Any:
        """NUL and lone surrogates anywhere (data included) are refused before anything else."""
        require_storable(values)
        return values

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
    subject: str | None = Field(
        default=None,
        min_length=1,
        max_length=SUBJECT_MAX,
        description="One line: CR and LF are refused (also after rendering)",
    )
    body: str | None = Field(default=None, min_length=1, max_length=EMAIL_BODY_MAX)
    html: str | None = Field(default=None, min_length=1, max_length=HTML_MAX)

    @field_validator("subject")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is not None and ("\r" in value or "\n" in value):
            raise ValueError("subject must be one line (no CR or LF)")
        return value


class SmsRequest(_NotificationRequest):
    channel: Literal["sms"]
    body: str | None = Field(default=None, min_length=1, max_length=SMS_BODY_MAX)


class PushRequest(_NotificationRequest):
    channel: Literal["push"]
    platform: PushPlatform
    title: str | None = Field(default=None, max_length=PUSH_TITLE_MAX)
    body: str | None = Field(default=None, min_length=1, max_length=PUSH_BODY_MAX)


NotificationRequest = Annotated[
    EmailRequest | SmsRequest | PushRequest, Field(discriminator="channel")
]
# the body of POST /v1/notifications, validated straight from its bytes on the direct path
NOTIFICATION_REQUEST: TypeAdapter[EmailRequest | SmsRequest | PushRequest] = TypeAdapter(
    NotificationRequest
)


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    notifications: list[dict[str, Any]] = Field(
        min_length=1,
        description="Notifications as for POST /v1/notifications; each may also carry its own "
        "`idempotency_key` (at most 255 characters)",
    )


class ValidatedBatch(BaseModel):
    """A batch whose every item is a valid request without its own ``idempotency_key``: the
    batch's direct path validates the body as this, from its bytes, in one pass. Any other
    batch is validated as :class:`BatchRequest` and item by item (one result per item)."""

    model_config = ConfigDict(extra="forbid")
    notifications: list[NotificationRequest] = Field(min_length=1)


class EventOut(BaseModel):
    # read straight from a DeliveryEvent row, whose ``created_at`` is shown as ``at``
    model_config = ConfigDict(from_attributes=True)

    at: datetime = Field(validation_alias=AliasChoices("at", "created_at"))
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
    status_code: ReasonCode | None = Field(
        default=None, description="Why it has its status, as a stable code (see status_reason)"
    )
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
    test: bool = Field(
        default=False, description="sent with a test key: delivered to the simulator only"
    )
    events: list[EventOut] | None = None


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[dict[str, Any]] = []


class BatchItemResult(BaseModel):
    index: int
    id: str | None = None
    status: Status | None = None
    replayed: bool | None = None
    test: bool | None = Field(default=None, description="true for a test key's notification")
    error: ErrorBody | None = None


class BatchResponse(BaseModel):
    results: list[BatchItemResult]
    accepted: int
    rejected: int


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    next_cursor: str | None = None
