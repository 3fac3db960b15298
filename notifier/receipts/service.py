"""Applying provider receipts to notifications.

A receipt names a provider kind (``twilio``, ``ses``) and the provider's message id. It matches
the notifications whose ``provider_message_id`` is that id and whose provider (the configured
name, e.g. ``twilio-main``) is of that kind; a provider name no longer in the configuration
still matches, so renaming a provider does not lose the receipts of messages in flight.

For each matching notification, in one transaction per batch:

* a ``receipt`` event is always recorded, for intermediate receipts too (``PENDING``: Twilio's
  ``sent``, SES's ``Send`` or ``DeliveryDelay``), so the support timeline shows everything the
  provider said;
* the status moves forward only, through the guarded :func:`repository.move`:

  ====================================  ===============================================
  outcome                               status change
  ====================================  ===============================================
  ``DELIVERED``                         ``sent -> delivered``
  ``COMPLAINT``                         ``sent -> delivered`` (a complaint proves the
                                        message reached the inbox)
  ``FAILED`` / ``HARD_BOUNCE`` /        ``sent``/``sending -> failed``
  ``UNSUBSCRIBED``
  ``PENDING``                           none
  ====================================  ===============================================

  A final status never changes again: a late ``delivered`` after ``failed`` (or a duplicate)
  is recorded and changes nothing;
* ``HARD_BOUNCE``, ``COMPLAINT`` and ``UNSUBSCRIBED`` suppress the notification's (normalised)
  recipient on its channel, whatever its status (a complaint usually comes after delivery), with
  reason ``hard_bounce``, ``complaint``, and ``stop`` for SMS (the carrier's STOP) or
  ``unsubscribed`` otherwise. Suppressing twice is a no-op.

A receipt that matches nothing is returned as *unknown*: it may have overtaken the recording of
the send (Twilio can call back within a second of accepting), so the task retries it a few times
before dropping it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from notifier import reasons
from notifier.db.models import Notification, utcnow
from notifier.db.session import transaction
from notifier.notifications import queries, repository
from notifier.notifications.rows import event
from notifier.reasons import Reason
from notifier.statuses import EventKind, Status
from providers.interface import Channel, Receipt, ReceiptOutcome, SuppressionReason

log = logging.getLogger("notifier.receipts")

# outcome -> (target status, the statuses it may move from)
_MOVES: Mapping[ReceiptOutcome, tuple[Status, frozenset[Status]]] = {
    ReceiptOutcome.DELIVERED: (Status.DELIVERED, frozenset({Status.SENT, Status.SENDING})),
    ReceiptOutcome.COMPLAINT: (Status.DELIVERED, frozenset({Status.SENT, Status.SENDING})),
    ReceiptOutcome.FAILED: (Status.FAILED, frozenset({Status.SENT, Status.SENDING})),
    ReceiptOutcome.HARD_BOUNCE: (Status.FAILED, frozenset({Status.SENT, Status.SENDING})),
    ReceiptOutcome.UNSUBSCRIBED: (Status.FAILED, frozenset({Status.SENT, Status.SENDING})),
}


@dataclass
class Applied:
    """What a batch of receipts did."""

    recorded: int = 0  # receipt events written
    moved: dict[str, str] = field(default_factory=dict)  # notification id -> new status
    suppressed: list[tuple[str, str, str]] = field(
        default_factory=list
    )  # channel, recipient, reason
    unknown: list[Receipt] = field(default_factory=list)


def suppression_reason(outcome: ReceiptOutcome, channel: str) -> SuppressionReason | None:
    if outcome == ReceiptOutcome.HARD_BOUNCE:
        return SuppressionReason.HARD_BOUNCE
    if outcome == ReceiptOutcome.COMPLAINT:
        return SuppressionReason.COMPLAINT
    if outcome == ReceiptOutcome.UNSUBSCRIBED:
        return (
            SuppressionReason.STOP
            if channel == Channel.SMS.value
            else SuppressionReason.UNSUBSCRIBED
        )
    return None


def apply_receipts(
    sessions: sessionmaker[Session],
    receipts: Sequence[Receipt],
    provider_kinds: Mapping[str, str] | None = None,
) -> Applied:
    """Apply ``receipts`` in one transaction. ``provider_kinds`` maps configured provider names to
    their kind (from the providers file); names it does not know match any kind."""
    applied = Applied()
    kinds = dict(provider_kinds or {})
    now = utcnow()
    with transaction(sessions) as session:
        events: list[dict[str, Any]] = []
        for receipt in receipts:
            rows = _matching(session, receipt, kinds)
            if not rows:
                applied.unknown.append(receipt)
                continue
            for row in rows:
                events.append(_apply_one(session, row, receipt, now, applied))
        repository.add_events(session, events)
        applied.recorded = len(events)
    for receipt in applied.unknown:
        log.info(
            "receipt.unknown_message",
            extra={
                "provider": receipt.provider,
                "provider_message_id": receipt.provider_message_id,
            },
        )
    return applied


def _matching(session: Session, receipt: Receipt, kinds: Mapping[str, str]) -> list[Notification]:
    return [
        row
        for row in queries.by_provider_message_id(session, receipt.provider_message_id)
        if kinds.get(row.provider or "", receipt.provider) == receipt.provider
    ]


def _apply_one(
    session: Session, row: Notification, receipt: Receipt, now: datetime, applied: Applied
) -> dict[str, Any]:
    effects: list[str] = []
    new_status: str | None = None
    move = _MOVES.get(receipt.outcome)
    if move is not None:
        target, sources = move
        moved = repository.move(
            session,
            [row.id],
            target,
            where=[Notification.status.in_([s.value for s in sources])],
            created=[row.created_at],  # its partition only (the row was found by message id)
            completed_at=now,
            **reasons.columns(_reason(receipt) if target == Status.FAILED else None),
        )
        if moved:
            new_status = target.value
            applied.moved[row.id] = new_status
            effects.append(f"now {new_status}")
        else:
            current = queries.status_of(session, row.id, row.created_at)
            effects.append(f"status stays {current}")
    reason = suppression_reason(receipt.outcome, row.channel)
    if reason is not None:
        repository.suppress(
            session,
            row.channel,
            row.recipient,
            reason.value,
            _reason(receipt).stored,
            row.id,
            row.service_id,
        )
        applied.suppressed.append((row.channel, row.recipient, reason.value))
        effects.append(f"the recipient is now suppressed ({reason.value})")
    return event(
        row.id,
        EventKind.RECEIPT,
        Status(new_status) if new_status else None,
        _detail(receipt, effects)[:2000],
        now,
        provider=row.provider,
        provider_message_id=receipt.provider_message_id,
        response_code=receipt.code,
    )


def _reason(receipt: Receipt) -> Reason:
    status = receipt.raw_status or receipt.outcome.value
    return reasons.receipt_failed(receipt.provider, status, receipt.code)


def _detail(receipt: Receipt, effects: list[str]) -> str:
    text = f"{receipt.provider} receipt: {receipt.raw_status or receipt.outcome.value}"
    text += f" [{receipt.outcome.value}]"
    if receipt.code:
        text += f", code {receipt.code}"
    if receipt.description:
        text += f": {receipt.description}"
    if receipt.occurred_at:
        text += f" (at {receipt.occurred_at.isoformat()})"
    if effects:
        text += "; " + "; ".join(effects)
    return text
