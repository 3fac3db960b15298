"""Why a notification has its status: a stable code for programs, a sentence for people.

Every status reason is built here, by one function per reason, and stored twice: the code in
``notifications.status_code`` (what the API, the webhooks and the support summary read) and the
sentence in ``status_reason`` (what a person reads). Nothing parses the sentence back; code that
needs to know why asks for the code. A new reason is a new :class:`ReasonCode` member and its
builder below.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, time
from typing import TypedDict

STATUS_REASON_MAX = 200  # the width of notifications.status_reason


class ReasonCode(enum.StrEnum):
    QUIET_HOURS = "quiet_hours"  # scheduled: waits for the recipient's morning
    THROTTLED = "throttled"  # scheduled: the campaign's send rate gave it a later slot
    HELD = "held"  # scheduled: its campaign was paused
    RELEASED = "released"  # scheduled: its campaign was resumed
    SUPPRESSED = "suppressed"  # an active suppression of the recipient
    NO_CONSENT = "no_consent"  # a campaign contact without marketing consent for the channel
    NOT_RENDERED = "not_rendered"  # personalisation missing for a campaign contact
    CONTENT_REFUSED = "content_refused"  # rendered content over intake's bounds
    CANCELLED = "cancelled"  # by the caller, or with its campaign
    REJECTED_BY_PROVIDER = "rejected_by_provider"  # a permanent answer about this message
    GAVE_UP = "gave_up"  # every attempt failed temporarily
    EXPIRED = "expired"  # its time to live ran out before it was sent
    UNCONFIRMED = "unconfirmed"  # a provider had the request and never answered definitely
    RECEIPT_FAILED = "receipt_failed"  # a delivery receipt said it did not arrive


class Columns(TypedDict):
    """A status reason as the columns it is stored in (a TypedDict, so ``**`` keeps its keys)."""

    status_code: str | None
    status_reason: str | None


@dataclass(frozen=True)
class Reason:
    code: ReasonCode
    text: str

    @property
    def stored(self) -> str:
        """The sentence as stored: cut to its column's width."""
        return self.text[:STATUS_REASON_MAX]

    def columns(self) -> Columns:
        """The two columns a status change writes."""
        return Columns(status_code=self.code.value, status_reason=self.stored)


def columns(reason: Reason | None) -> Columns:
    """The two columns for a status that has a reason or (None) none any more."""
    return Columns(status_code=None, status_reason=None) if reason is None else reason.columns()


def quiet_hours(start: time, end: time, zones: list[str], allowed: datetime) -> Reason:
    return Reason(
        ReasonCode.QUIET_HOURS,
        f"quiet hours {start:%H:%M}-{end:%H:%M} in {','.join(zones[:3])}: "
        f"deferred to {allowed.isoformat(timespec='minutes')}",
    )


def throttled(per_minute: int | None) -> Reason:
    return Reason(ReasonCode.THROTTLED, f"throttled: {per_minute} per minute")


def held() -> Reason:
    return Reason(ReasonCode.HELD, "held: the campaign was paused")


def released() -> Reason:
    return Reason(ReasonCode.RELEASED, "released: the campaign was resumed")


def suppressed(suppression_reason: str) -> Reason:
    return Reason(ReasonCode.SUPPRESSED, f"recipient suppressed: {suppression_reason}")


def no_consent(channel: str) -> Reason:
    return Reason(ReasonCode.NO_CONSENT, f"no marketing consent for {channel}")


def not_rendered(message: str) -> Reason:
    return Reason(ReasonCode.NOT_RENDERED, f"not rendered: {message}")


def content_refused(message: str) -> Reason:
    return Reason(ReasonCode.CONTENT_REFUSED, f"not sent: {message}")


def cancelled(by: str) -> Reason:
    return Reason(ReasonCode.CANCELLED, by)


def rejected_by_provider(code: str | None, message: str) -> Reason:
    return Reason(ReasonCode.REJECTED_BY_PROVIDER, f"{code or 'error'}: {message}")


def gave_up(attempts: int) -> Reason:
    return Reason(ReasonCode.GAVE_UP, f"gave up after {attempts} attempts")


def ran_out(attempts: int) -> Reason:
    """The time to live passed while a message was retried or waited for a provider."""
    if attempts:
        return Reason(ReasonCode.EXPIRED, "time to live ran out while retrying")
    return Reason(ReasonCode.EXPIRED, "time to live ran out while waiting for a provider")


def expired_before_sending() -> Reason:
    return Reason(ReasonCode.EXPIRED, "time to live passed before sending")


def unconfirmed(provider: str, lost: bool = False) -> Reason:
    """Said the same way everywhere: the claim's expiry, recording, the sweeper."""
    if lost:
        return Reason(
            ReasonCode.UNCONFIRMED,
            f"may have been delivered: {provider} received a request and never answered, "
            f"and {provider} is no longer configured for its lane",
        )
    return Reason(
        ReasonCode.UNCONFIRMED,
        f"may have been delivered: {provider} received a request and never gave a definite answer",
    )


def receipt_failed(provider: str, status: str, code: str | None) -> Reason:
    return Reason(
        ReasonCode.RECEIPT_FAILED,
        f"{provider} receipt: {status}" + (f" ({code})" if code else ""),
    )
