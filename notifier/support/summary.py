"""The plain-language account of what happened to one notification, for the top of its page.

Built only from recorded facts: the status, the last attempt (provider, response code, redacted
detail), receipts, and the suppressions of the recipient. There is one sentence for every status
(``_SENTENCES`` must cover the enum; a test checks it), and each says plainly what is known: a
message no provider was ever asked about says so, and an ``unconfirmed`` one says the request
reached the provider and no answer came, so it may have been delivered. For example:

    Bounced by the recipient's mail server: mailbox does not exist (550 5.1.1). The address has
    been suppressed since 21 Nov 2026 10:02 UTC; 2 later emails to it were not sent.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from notifier.campaigns.models import HELD
from notifier.db.models import DeliveryEvent, Notification, Suppression
from notifier.reasons import ReasonCode
from notifier.statuses import EventKind, Status

_ERROR_PREFIX = re.compile(r"^[A-Za-z]+Error:\s*")
CIRCUIT_OPEN = "circuit_open"  # response code of an attempt the circuit breaker skipped

NOUNS = {"email": "email", "sms": "text message", "push": "push notification"}
ADDRESSES = {"email": "address", "sms": "phone number", "push": "device token"}
REASONS = {
    "hard_bounce": "the address bounced permanently",
    "complaint": "the recipient reported a message as spam",
    "stop": "the recipient replied STOP",
    "unsubscribed": "the recipient unsubscribed",
    "invalid_token": "the device token is no longer valid",
    "invalid_address": "the provider said the address or number does not exist",
    "manual": "staff suppressed it",
}


@dataclass(frozen=True)
class Facts:
    notification: Notification
    events: Sequence[DeliveryEvent]
    suppressions: Sequence[Suppression]  # of this channel and recipient, active or lifted
    later_suppressed: int = 0  # later notifications to the recipient not sent due to suppression
    resent_as: Sequence[str] = ()


def when(value: datetime | None) -> str:
    return value.strftime("%d %b %Y %H:%M UTC") if value else "an unknown time"


def reason_text(reason: str) -> str:
    return REASONS.get(reason, reason.replace("_", " "))


def summarise(facts: Facts) -> str:
    row = facts.notification
    status = Status(row.status)
    sentence = _SENTENCES[status](facts)
    if facts.resent_as:
        sentence += f" It was resent as {', '.join(facts.resent_as)}."
    return sentence


def _last(events: Sequence[DeliveryEvent], *kinds: EventKind) -> DeliveryEvent | None:
    wanted = {k.value for k in kinds}
    for event in reversed(events):
        if event.kind in wanted:
            return event
    return None


def _last_answered(events: Sequence[DeliveryEvent]) -> DeliveryEvent | None:
    """The last attempt a provider actually answered (not one skipped by the circuit breaker)."""
    for event in reversed(events):
        if event.kind == EventKind.ATTEMPT.value and event.response_code != CIRCUIT_OPEN:
            return event
    return None


def _problem(event: DeliveryEvent | None) -> str:
    """``mailbox does not exist (550 5.1.1)`` from an attempt or failure event."""
    if event is None:
        return "no answer was recorded"
    detail = _ERROR_PREFIX.sub("", (event.detail or "").strip()) or "no detail given"
    detail = detail.rstrip(".")
    return f"{detail} ({event.response_code})" if event.response_code else detail


def _queued(facts: Facts) -> str:
    row = facts.notification
    step = _last(facts.events, EventKind.RETRY_SCHEDULED, EventKind.WAITING, EventKind.RECOVERED)
    if step is not None and step.kind == EventKind.WAITING.value:
        return (
            f"Not sent yet: no provider of the {row.lane} lane could be contacted (their circuit "
            f"breakers are open after provider failures); it waits until {when(row.not_before)} "
            "and no attempt is used up meanwhile."
        )
    if step is not None and step.kind == EventKind.RECOVERED.value and row.pinned_provider:
        return (
            f"Being sent again through {row.pinned_provider} only: the worker sending it stopped "
            "after contacting the provider, so it may already have been delivered once."
        )
    retry = _last(facts.events, EventKind.RETRY_SCHEDULED)
    if retry is not None and row.attempts:
        attempt = _last(facts.events, EventKind.ATTEMPT)
        provider = attempt.provider if attempt else "the provider"
        return (
            f"Not sent yet: attempt {row.attempts} at {provider} failed temporarily "
            f"({_problem(attempt)}); the next attempt is due at {when(row.not_before)}."
        )
    return f"Waiting to be sent on the {row.lane} lane since {when(row.created_at)}."


def _scheduled(facts: Facts) -> str:
    row = facts.notification
    if row.not_before is not None and row.not_before >= HELD:
        return "Held: its campaign was paused; it will be sent when the campaign is resumed."
    if row.send_at is None:
        return "Scheduled: it waits to be released for sending."
    why = f" ({row.status_reason})" if row.status_reason else ""
    return f"Scheduled: it will be sent at {when(row.send_at)}{why}."


def _sending(facts: Facts) -> str:
    row = facts.notification
    return (
        f"Being handed to the provider now (attempt {row.attempts}, "
        f"started {when(row.claimed_at)})."
    )


def _sent(facts: Facts) -> str:
    row = facts.notification
    noun = NOUNS.get(row.channel, "message")
    return (
        f"The {noun} was accepted by {row.provider or 'the provider'} at {when(row.sent_at)} "
        f"(provider message id {row.provider_message_id or 'unknown'}); "
        "no delivery receipt has arrived yet."
    )


def _delivered(facts: Facts) -> str:
    row = facts.notification
    receipt = _last(facts.events, EventKind.DELIVERED, EventKind.RECEIPT)
    by = receipt.provider if receipt and receipt.provider else row.provider or "the provider"
    return f"Delivered at {when(row.completed_at)}, as reported by {by}."


def _never_asked(facts: Facts) -> str:
    """Failed before any provider was asked to send it (it could not be rendered, no provider
    serves its lane, ...): say so, never "the provider answered"."""
    reason = (facts.notification.status_reason or "").rstrip(".")
    why = f": {reason}" if reason else ""
    return (
        f"Not sent: it failed before any provider was asked to send it{why}. "
        "It will not be retried."
    )


def _failed(facts: Facts) -> str:
    row = facts.notification
    attempt = _last(facts.events, EventKind.ATTEMPT)
    if attempt is None and not any(e.kind == EventKind.RECEIPT.value for e in facts.events):
        return _never_asked(facts)
    failure = _last(facts.events, EventKind.FAILED, EventKind.RECEIPT)
    problem = _problem(attempt if attempt is not None else failure)
    caused = [s for s in facts.suppressions if s.notification_id == row.id]
    if caused:
        return _failed_and_suppressed(facts, caused[0], problem)
    if row.status_code == ReasonCode.GAVE_UP:
        answered = _last_answered(facts.events)
        if answered is None:
            return (
                f"Not delivered: gave up after {row.attempts} attempts, and no provider was "
                "actually asked: every attempt was skipped while the circuit breaker was open."
            )
        sentence = (
            f"Not delivered: every attempt failed; gave up after {row.attempts} attempts. "
            f"The last answer from {answered.provider if answered else 'the provider'} was: "
            f"{_problem(answered)}."
        )
        if attempt is not None and attempt.response_code == CIRCUIT_OPEN:
            sentence += " Later attempts were skipped while its circuit breaker was open."
        return sentence
    provider = (attempt.provider if attempt else None) or row.provider or "the provider"
    return f"Rejected by {provider}: {problem}. It will not be retried."


def _failed_and_suppressed(facts: Facts, suppression: Suppression, problem: str) -> str:
    row = facts.notification
    channel = row.channel
    first = {
        "email": "Bounced by the recipient's mail server",
        "sms": "The phone network rejected the number",
        "push": "The push service rejected the device token",
    }.get(channel, "Rejected as undeliverable")
    noun = NOUNS.get(channel, "message")
    address = ADDRESSES.get(channel, "recipient")
    if suppression.lifted_at is not None:
        tail = (
            f"The {address} was suppressed on {when(suppression.created_at)}; "
            f"{suppression.lifted_by or 'staff'} lifted that on {when(suppression.lifted_at)}."
        )
    elif facts.later_suppressed:
        count = facts.later_suppressed
        tail = (
            f"The {address} has been suppressed since {when(suppression.created_at)}; "
            f"{count} later {noun}{'s' if count != 1 else ''} to it "
            f"{'were' if count != 1 else 'was'} not sent."
        )
    else:
        tail = (
            f"The {address} has been suppressed since {when(suppression.created_at)}, "
            f"so later {noun}s to it will not be sent."
        )
    return f"{first}: {problem}. {tail}"


def _unconfirmed(facts: Facts) -> str:
    row = facts.notification
    attempt = _last_answered(facts.events) or _last(facts.events, EventKind.ATTEMPT)
    provider = (attempt.provider if attempt else None) or row.provider or "the provider"
    tried = f" after {row.attempts} attempts" if row.attempts and row.attempts > 1 else ""
    return (
        f"The request reached {provider} and no answer came{tried}; it may have been delivered. "
        "Ask the recipient before resending: a resend may give them a second copy."
    )


def _expired(facts: Facts) -> str:
    row = facts.notification
    tried = f" after {row.attempts} failed attempts" if row.attempts else ""
    return (
        f"Not sent: its time to live ran out at {when(row.expires_at)}{tried} "
        "before it could be delivered."
    )


def _suppressed(facts: Facts) -> str:
    row = facts.notification
    address = ADDRESSES.get(row.channel, "recipient")
    created = row.created_at
    applying = [
        s
        for s in facts.suppressions
        if s.created_at <= created and (s.lifted_at is None or s.lifted_at > created)
    ]
    if applying:
        s = applying[-1]
        origin = f" after notification {s.notification_id}" if s.notification_id else ""
        return (
            f"Not sent: the {address} {row.recipient} was suppressed on {when(s.created_at)}"
            f"{origin} because {reason_text(s.reason)}."
        )
    if row.status_code == ReasonCode.NO_CONSENT:
        return f"Not sent: the {address} {row.recipient} has no marketing consent for it."
    known = f" ({reason_text(facts.suppressions[-1].reason)})" if facts.suppressions else ""
    return f"Not sent: the {address} {row.recipient} is suppressed{known}."


def _cancelled(facts: Facts) -> str:
    row = facts.notification
    why = f" ({row.status_reason})" if row.status_reason else ""
    return f"Cancelled at {when(row.completed_at)}{why}, before it was sent."


_SENTENCES = {
    Status.QUEUED: _queued,
    Status.SCHEDULED: _scheduled,
    Status.SENDING: _sending,
    Status.SENT: _sent,
    Status.DELIVERED: _delivered,
    Status.FAILED: _failed,
    Status.UNCONFIRMED: _unconfirmed,
    Status.EXPIRED: _expired,
    Status.SUPPRESSED: _suppressed,
    Status.CANCELLED: _cancelled,
}
