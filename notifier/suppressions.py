"""Which suppressions stop which sends.

Promotional sends skip anyone with any active suppression. Transactional sends (receipts,
login codes) skip only addresses that cannot or must not receive mail at all: hard bounces,
complaints, invalid addresses, invalid device tokens, and numbers that replied STOP (carriers
refuse every message to them after that). An unsubscribe from marketing email never blocks a
password reset.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from providers.interface import Category, SuppressionReason

if TYPE_CHECKING:
    from notifier.db.models import Suppression

TRANSACTIONAL_BLOCKING = frozenset(
    {
        SuppressionReason.HARD_BOUNCE.value,
        SuppressionReason.COMPLAINT.value,
        SuppressionReason.INVALID_TOKEN.value,
        SuppressionReason.INVALID_ADDRESS.value,
        SuppressionReason.STOP.value,  # carriers block every message after STOP (Twilio 21610)
    }
)


def blocking_reasons(category: Category) -> frozenset[str] | None:
    """The suppression reasons that block a send of this category; None means every reason."""
    return TRANSACTIONAL_BLOCKING if category == Category.TRANSACTIONAL else None


def blocking_suppression(
    found: Iterable["Suppression"], channel: str, recipient: str, category: Category
) -> "Suppression | None":
    """The first of ``found`` (active suppressions, newest first) that stops this send."""
    reasons = blocking_reasons(category)
    for suppression in found:
        if (suppression.channel, suppression.recipient) == (channel, recipient) and (
            reasons is None or suppression.reason in reasons
        ):
            return suppression
    return None
