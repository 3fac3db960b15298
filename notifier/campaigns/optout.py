"""Opting out: what an unsubscribe link (:mod:`notifier.content.unsubscribe`), SMS STOP and START
do to suppressions and marketing consent.

Opting out adds a suppression (which every promotional send honours, see
:mod:`notifier.suppressions`) and withdraws the contacts' marketing consent for the channel.
Both have the scope of the suppression's reason: an unsubscribe from one service's mail is
that service's suppression and withdraws the consent of that service's contacts only; STOP (as
hard bounces and complaints) is a fact about the number that every service shares, so it
withdraws every service's consent. START lifts the STOP suppression again and gives consent
back to every contact with the number (STOP had taken it from all of them).
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from notifier.campaigns.models import Contact
from notifier.db.models import Suppression, utcnow
from notifier.notifications import repository
from notifier.ownership import owned
from notifier.suppressions import scope_of_reason, suppression_forms
from providers.interface import Channel, SuppressionReason

_CONSENT_COLUMN = {
    Channel.EMAIL: Contact.email_consent_at,
    Channel.SMS: Contact.sms_consent_at,
    Channel.PUSH: Contact.push_consent_at,
}
_ADDRESS_COLUMN = {Channel.EMAIL: Contact.email, Channel.SMS: Contact.phone}


def opt_out(
    session: Session,
    channel: Channel,
    recipient: str,
    reason: SuppressionReason,
    detail: str,
    service_id: str | None = None,
) -> None:
    """Suppress the address for every promotional send (of ``service_id`` for an unsubscribe,
    see :func:`notifier.suppressions.scope_of_reason`) and withdraw its marketing consent from
    the contacts in the same scope."""
    repository.suppress(session, channel.value, recipient, reason.value, detail, None, service_id)
    address = _ADDRESS_COLUMN.get(channel)
    if address is not None:
        scope = scope_of_reason(reason.value, service_id)  # None: every service's contacts
        session.execute(
            update(Contact)
            .where(address == recipient, *owned(Contact.service_id, scope))
            .values({_CONSENT_COLUMN[channel]: None, Contact.updated_at: utcnow()}),
            execution_options={"synchronize_session": False},
        )


def opt_in(
    session: Session, channel: Channel, recipient: str, reason: SuppressionReason, by: str
) -> int:
    """The subscriber opted in again (START after STOP): lift the suppressions of ``reason`` and
    record consent on the contacts with this address. Returns how many suppressions ended."""
    rows = list(
        session.scalars(
            select(Suppression).where(
                Suppression.channel == channel.value,
                Suppression.recipient.in_(suppression_forms(channel.value, recipient)),
                Suppression.reason == reason.value,
                Suppression.lifted_at.is_(None),
            )
        )
    )
    now = utcnow()
    for row in rows:
        row.lifted_at, row.lifted_reason, row.lifted_by = now, f"{by} received", by
    address = _ADDRESS_COLUMN.get(channel)
    if address is not None:
        session.execute(
            update(Contact)
            .where(address == recipient)
            .values({_CONSENT_COLUMN[channel]: now, Contact.updated_at: now}),
            execution_options={"synchronize_session": False},
        )
    return len(rows)
