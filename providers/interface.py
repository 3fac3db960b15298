"""The one small interface every provider adapter implements, and the message types it receives.

Providers depend on nothing of ours outside ``providers/``. An adapter:

* declares its metadata as class attributes (``kind``, ``channel``, ``options_schema``: its
  options as data, with its default send rate),
* is constructed for exactly one lane with its options (credentials already resolved), which
  the base class parses through the schema into ``self.config``,
* implements the hook ``async _send(message) -> SendResult``; callers use the final
  :meth:`Provider.deliver`, which refuses a message of another lane before any adapter code runs,
* translates its SDK's failures into the typed errors below at the boundary
  (``raise TransientError(...) from e``), in one table of rows per adapter
  (:class:`providers.error_rules.ErrorRule`, read with its ``lookup``).

Failover rule: the delivery engine moves to the next provider of a lane only when an error
proves the message was not accepted (``accepted_unknown`` is False). An adapter that sent the
request and then lost the answer (read timeout, connection reset after the body was written)
must raise ``TransientError(..., accepted_unknown=True)``: it is retried on the same provider,
never sent blindly elsewhere.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, TypeVar, final

from providers.options import ConfigurationError as ConfigurationError
from providers.options import ProviderOptions

M = TypeVar("M", "EmailMessage", "SmsMessage", "PushMessage")


class Channel(enum.StrEnum):
    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"


class Category(enum.StrEnum):
    TRANSACTIONAL = "transactional"
    PROMOTIONAL = "promotional"


class Lane(enum.StrEnum):
    """A (channel, category) pair. Each lane is its own Celery queue, named by the value."""

    EMAIL_TRANSACTIONAL = "email.transactional"
    EMAIL_PROMOTIONAL = "email.promotional"
    SMS_TRANSACTIONAL = "sms.transactional"
    SMS_PROMOTIONAL = "sms.promotional"
    PUSH_TRANSACTIONAL = "push.transactional"
    PUSH_PROMOTIONAL = "push.promotional"

    @classmethod
    def of(cls, channel: Channel, category: Category) -> Lane:
        return cls(f"{channel.value}.{category.value}")

    @property
    def channel(self) -> Channel:
        return Channel(self.value.split(".")[0])

    @property
    def category(self) -> Category:
        return Category(self.value.split(".")[1])

    @property
    def queue(self) -> str:
        return self.value


class PushPlatform(enum.StrEnum):
    FCM = "fcm"
    APNS = "apns"


# --------------------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class EmailMessage:
    notification_id: str
    lane: Lane
    to: str
    subject: str
    text: str
    html: str | None = None
    reference: str | None = None
    unsubscribe_url: str | None = None
    expires_at: datetime | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    # the sending service's identity; None: the provider's configured from_address
    from_address: str | None = None
    reply_to: str | None = None


@dataclass(frozen=True, slots=True)
class SmsMessage:
    notification_id: str
    lane: Lane
    to: str  # E.164
    body: str
    reference: str | None = None
    expires_at: datetime | None = None
    # the sending service's identity; None: the provider's configured sender
    sender_id: str | None = None
    messaging_service_sid: str | None = None


@dataclass(frozen=True, slots=True)
class PushMessage:
    notification_id: str
    lane: Lane
    to: str  # device token
    platform: PushPlatform
    title: str | None
    body: str
    data: Mapping[str, str] = field(default_factory=dict)
    reference: str | None = None
    expires_at: datetime | None = None


Message = EmailMessage | SmsMessage | PushMessage


@dataclass(frozen=True, slots=True)
class SendResult:
    """The provider accepted the message."""

    provider_message_id: str
    response_code: str | None = None


# --------------------------------------------------------------------------- errors


class SuppressionReason(enum.StrEnum):
    UNSUBSCRIBED = "unsubscribed"
    HARD_BOUNCE = "hard_bounce"
    COMPLAINT = "complaint"
    STOP = "stop"
    INVALID_TOKEN = "invalid_token"  # noqa: S105 - a feedback kind (bad device token), not a secret
    INVALID_ADDRESS = "invalid_address"
    MANUAL = "manual"


class ProviderError(Exception):
    """Base of the typed provider outcomes. ``code`` is the vendor's own code (HTTP status,
    SMTP reply, SDK error code) kept for the delivery log; ``message`` must already be free of
    secrets and message content."""

    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        code: str | int | None = None,
        retry_after: float | None = None,
        accepted_unknown: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = None if code is None else str(code)
        self.retry_after = retry_after
        self.accepted_unknown = accepted_unknown


class TransientError(ProviderError):
    """Try this message again later: an answer about this one message (a mailbox busy, a
    recipient's server greylisting it). ``retry_after`` in seconds if the provider said so.
    ``accepted_unknown`` when the request may have reached the provider.

    It says nothing about the provider's health, so it never moves the circuit breaker; the
    subclasses below say which answers do."""

    retryable = True


class ThrottledError(TransientError):
    """The provider asked us to slow down (HTTP 429, SES Throttling, Twilio 20429). Paced by
    Retry-After and the shared send rate, never by the circuit breaker."""


class ProviderUnavailableError(TransientError):
    """The provider itself is unhealthy: connection refused or reset, a TLS handshake that
    failed, a 5xx, no answer in time. Counts toward the provider's circuit breaker; the message
    fails over to the next provider when it was not accepted."""


class ProviderAccountError(ProviderUnavailableError):
    """The provider refuses every message of ours, whatever the message: a wrong or rotated
    credential, a server certificate that does not verify, an account paused or suspended. Opens
    the provider's breaker at once and alerts; the message fails over and is never failed
    permanently for it (it is not the message's fault)."""


class PermanentError(ProviderError):
    """Will never succeed for this message as it is: fail now."""


class InvalidRecipientError(PermanentError):
    """The address, number or device token is invalid or gone: fail now and suppress it."""

    def __init__(
        self,
        message: str,
        *,
        code: str | int | None = None,
        reason: SuppressionReason = SuppressionReason.INVALID_ADDRESS,
    ) -> None:
        super().__init__(message, code=code)
        self.reason = reason


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """A Retry-After header as seconds (it may be delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


# --------------------------------------------------------------------------- provider


class Provider:
    """Base class of provider adapters.

    Subclasses set the class attributes and implement the :meth:`_send` hook. They are
    constructed with their configured ``name`` (unique in the providers file), the ``lane`` they
    serve and their ``options`` (a mapping with credentials already resolved from the environment
    or secret files), parsed by ``options_schema`` into ``self.config``. One instance lives for
    the whole worker process and may keep connections open; all of its methods run on the
    worker's single delivery event loop.

    Callers send with :meth:`deliver`, which is final: the lane check cannot be forgotten by an
    adapter, and an adapter still overriding the old ``send`` is refused when its class is made.
    """

    kind: ClassVar[str] = ""
    channel: ClassVar[Channel | None]  # None: any channel (the development outbox)
    options_schema: ClassVar[type[ProviderOptions]] = ProviderOptions
    config: ProviderOptions

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for hook in ("send", "deliver"):
            if hook in cls.__dict__:
                raise TypeError(
                    f"{cls.__qualname__} defines {hook}(): implement _send(message) instead; "
                    "Provider.deliver checks the lane and calls it"
                )

    def __init__(self, name: str, lane: Lane, options: Mapping[str, Any]) -> None:
        if self.channel is not None and lane.channel != self.channel:
            raise ConfigurationError(
                f"provider {name!r} ({self.kind}) sends {self.channel} and cannot serve lane {lane}"
            )
        self.name = name
        self.lane = lane
        self.options = dict(options)
        self.config = self.options_schema.parse(name, self.kind, options)
        try:
            self._configure()
        except ConfigurationError as e:
            raise ConfigurationError(f"provider {name!r} ({self.kind}): {e}") from e

    def _configure(self) -> None:
        """Build what the adapter keeps from ``self.config`` (clients, pools, the lane's
        sender): the construction hook, run once the options parsed. A ConfigurationError
        raised here says only the problem; the provider's name and type are put before it."""

    def __repr__(self) -> str:
        # never the options: they hold the credentials
        return f"<{type(self).__name__} {self.name!r} ({self.kind}) on {self.lane}>"

    __str__ = __repr__

    @final
    async def deliver(self, message: Message) -> SendResult:
        """Send one message: refused unless it belongs to this provider's lane, then the
        adapter's :meth:`_send`."""
        self.ensure_lane(message)
        if not self.serves(message):
            raise PermanentError(
                f"provider {self.name} ({self.kind}) cannot carry this message", code="platform"
            )
        return await self._send(message)

    def narrow(self, message: Message, kind: type[M]) -> M:
        """The message as the kind this provider's channel sends (for the type checker: the
        lane already decided it; a message of another kind is refused, never half-sent)."""
        if not isinstance(message, kind):
            raise PermanentError(
                f"provider {self.name} sends {self.channel} only", code="lane_mismatch"
            )
        return message

    def ensure_lane(self, message: Message) -> None:
        """A provider configured for one lane refuses a message of another: promotional SMS can
        never leave through a transactional sender."""
        if message.lane != self.lane:
            raise PermanentError(
                f"provider {self.name} serves {self.lane}, refused a message of {message.lane}",
                code="lane_mismatch",
            )

    def serves(self, message: Message) -> bool:
        """Whether this provider can carry this message at all (a push provider serves one
        platform); the engine skips providers that cannot, instead of failing on them."""
        return True

    async def _send(self, message: Message) -> SendResult:  # pragma: no cover - interface
        """The adapter's own sending, for a message already known to be of its lane."""
        raise NotImplementedError

    async def check(self, connect: bool = False) -> str:
        """Validate configuration; with ``connect``, open a connection or authenticate without
        sending anything. Returns a short human description; raises ProviderError or
        ConfigurationError."""
        return "configured"

    async def close(self) -> None:
        """Release connections."""


# --------------------------------------------------------------------------- receipts


class ReceiptOutcome(enum.StrEnum):
    """What a provider's delivery receipt says happened after it accepted the message."""

    PENDING = "pending"  # an intermediate state (queued/sent at the carrier): recorded only
    DELIVERED = "delivered"
    FAILED = "failed"  # undeliverable, no suppression
    HARD_BOUNCE = "hard_bounce"  # suppress the address
    COMPLAINT = "complaint"  # suppress the address
    UNSUBSCRIBED = "unsubscribed"  # the carrier says the recipient opted out (e.g. STOP)


@dataclass(frozen=True, slots=True)
class Receipt:
    provider: str  # kind of provider: "twilio", "ses", ...
    provider_message_id: str
    outcome: ReceiptOutcome
    code: str | None = None
    description: str | None = None  # already free of content and secrets
    recipient: str | None = None
    occurred_at: datetime | None = None
    raw_status: str | None = None
