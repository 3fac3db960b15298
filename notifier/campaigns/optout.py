"""Opting out: signed unsubscribe links (RFC 8058 one-click), SMS STOP and START.

An unsubscribe token is the channel and the normalised address, encrypted and authenticated
with Fernet under a key derived from ``NOTIFIER_SECRET_KEY`` for this purpose only. It cannot be
forged (HMAC-SHA256), does not show the address, and cannot be enumerated (a random IV makes
every token different). It does not expire: an unsubscribe link must work for as long as the
email sits in an inbox.

Opting out adds a suppression (which every promotional send honours, see
:mod:`notifier.suppressions`) and withdraws the contacts' marketing consent for the channel.
STOP suppresses a number with reason ``stop``; START lifts that suppression again.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from notifier.campaigns.models import Contact
from notifier.config import Settings
from notifier.db.models import Suppression, utcnow
from notifier.notifications import repository
from notifier.security import Sealer
from notifier.suppressions import suppression_forms
from providers.interface import Channel, SuppressionReason

_CONSENT_COLUMN = {
    Channel.EMAIL: Contact.email_consent_at,
    Channel.SMS: Contact.sms_consent_at,
    Channel.PUSH: Contact.push_consent_at,
}
_ADDRESS_COLUMN = {Channel.EMAIL: Contact.email, Channel.SMS: Contact.phone}


def preview_unsubscribe_url(settings: Settings) -> str:
    """What a template preview shows for ``{{ unsubscribe_url }}``: clearly a placeholder (a
    real link is signed per recipient when a run fans out, and opens nothing here)."""
    return f"{settings.public_url.rstrip('/')}/u/preview-unsubscribe-link"


class InvalidToken(Exception):
    """The token was not made by us (or not with this secret)."""


@dataclass(frozen=True)
class Subscriber:
    channel: Channel
    recipient: str


class UnsubscribeTokens:
    def __init__(self, secret_key: str, public_url: str) -> None:
        self._sealer = Sealer(secret_key, purpose="unsubscribe")
        self._base = public_url.rstrip("/")

    def token(self, channel: Channel, recipient: str) -> str:
        return self._sealer.seal({"c": channel.value, "r": recipient})

    def url(self, channel: Channel, recipient: str) -> str:
        return f"{self._base}/u/{self.token(channel, recipient)}"

    def read(self, token: str) -> Subscriber:
        if not token or len(token) > 2048:
            raise InvalidToken
        try:
            value = self._sealer.unseal(token)
            return Subscriber(Channel(value["c"]), str(value["r"]))
        except (ValueError, KeyError, TypeError) as e:
            raise InvalidToken from e


def opt_out(
    session: Session, channel: Channel, recipient: str, reason: SuppressionReason, detail: str
) -> None:
    """Suppress the address for every promotional send and withdraw its marketing consent."""
    repository.suppress(session, channel.value, recipient, reason.value, detail, None)
    address = _ADDRESS_COLUMN.get(channel)
    if address is not None:
        session.execute(
            update(Contact)
            .where(address == recipient)
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
