"""Which suppressions stop which sends.

Promotional sends skip anyone with any active suppression. Transactional sends (receipts,
login codes) skip only addresses that cannot or must not receive mail at all: hard bounces,
complaints, invalid addresses, invalid device tokens, and numbers that replied STOP (carriers
refuse every message to them after that). An unsubscribe from marketing email never blocks a
password reset.

After a data-protection erasure an opt-out (STOP, unsubscribe, complaint, a manual
do-not-contact) is kept only as a fingerprint, ``sha256:<hex of SHA-256("<channel>:<recipient>")>``
in place of the recipient, because the law requires remembering that this person opted out
while the address itself must go. Every match below accepts the recipient or its fingerprint.
The hash is not keyed on purpose: rotating ``NOTIFIER_SECRET_KEY`` must never silently forget an
opt-out. The price (someone holding a database dump can confirm a guessed address) is the
same as for any suppression list, and smaller than keeping the address.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple, Protocol, TypeVar

from providers.interface import Category, SuppressionReason

TRANSACTIONAL_BLOCKING = frozenset(
    {
        SuppressionReason.HARD_BOUNCE.value,
        SuppressionReason.COMPLAINT.value,
        SuppressionReason.INVALID_TOKEN.value,
        SuppressionReason.INVALID_ADDRESS.value,
        SuppressionReason.STOP.value,  # carriers block every message after STOP (Twilio 21610)
    }
)


# the reasons that belong to the service that caused them; every other reason is global
SERVICE_SCOPED = frozenset({SuppressionReason.UNSUBSCRIBED.value, SuppressionReason.MANUAL.value})

FINGERPRINT_PREFIX = "sha256:"


class SuppressionFacts(Protocol):
    """What deciding a send reads of a suppression: an ORM ``Suppression`` or the light row
    :func:`notifier.notifications.repository.active_suppressions` returns."""

    @property
    def channel(self) -> str: ...

    @property
    def recipient(self) -> str: ...

    @property
    def reason(self) -> str: ...

    @property
    def service_id(self) -> str | None: ...

    @property
    def created_at(self) -> datetime: ...


class ActiveSuppression(NamedTuple):
    """An active suppression as the hot paths read it (intake's group commit, the worker's
    claim, campaign fan-out): the columns only, without an ORM object per row."""

    channel: str
    recipient: str
    reason: str
    service_id: str | None
    created_at: datetime


S = TypeVar("S", bound=SuppressionFacts)


def fingerprint(channel: str, recipient: str) -> str:
    """What an erased opt-out keeps instead of the (normalised) recipient."""
    digest = hashlib.sha256(f"{channel}:{recipient}".encode()).hexdigest()
    return f"{FINGERPRINT_PREFIX}{digest}"


def suppression_forms(channel: str, recipient: str) -> tuple[str, str]:
    """The values of ``suppressions.recipient`` that mean this recipient."""
    return recipient, fingerprint(channel, recipient)


def blocking_reasons(category: Category) -> frozenset[str] | None:
    """The suppression reasons that block a send of this category; None means every reason."""
    return TRANSACTIONAL_BLOCKING if category == Category.TRANSACTIONAL else None


def scope_of_reason(reason: str, service_id: str | None) -> str | None:
    """The service a new suppression belongs to: an unsubscribe or a manual do-not-contact is
    the sending service's own; hard bounces, complaints, invalid addresses and STOP are facts
    about the address that every service shares (None: global)."""
    return service_id if reason in SERVICE_SCOPED else None


def applies_to(suppression: SuppressionFacts, service_id: str | None) -> bool:
    """Whether a suppression concerns a send of ``service_id``: a global one always does, a
    service's own only that service's (an unknown service, None, is held by every one)."""
    return (
        suppression.service_id is None or service_id is None or suppression.service_id == service_id
    )


def blocking_suppression(
    found: Iterable[S],
    channel: str,
    recipient: str,
    category: Category,
    service_id: str | None = None,
) -> S | None:
    """The first of ``found`` (active suppressions, newest first) that stops this send of
    ``service_id``."""
    reasons = blocking_reasons(category)
    forms: tuple[str, str] | None = None
    for suppression in found:
        if suppression.channel != channel:
            continue
        if forms is None:  # the fingerprint's hash once per send, and only when needed
            forms = suppression_forms(channel, recipient)
        if (
            suppression.recipient in forms
            and applies_to(suppression, service_id)
            and (reasons is None or suppression.reason in reasons)
        ):
            return suppression
    return None
