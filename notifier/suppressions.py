"""Which suppressions stop which sends.

Promotional sends skip anyone with any active suppression. Transactional sends (receipts,
login codes) skip only addresses that cannot or must not receive mail at all: hard bounces,
complaints, invalid addresses, invalid device tokens, and numbers that replied STOP (carriers
refuse every message to them after that). An unsubscribe from marketing email never blocks a
password reset.
"""

from __future__ import annotations

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


def blocking_reasons(category: Category) -> frozenset[str] | None:
    """The suppression reasons that block a send of this category; None means every reason."""
    return TRANSACTIONAL_BLOCKING if category == Category.TRANSACTIONAL else None
