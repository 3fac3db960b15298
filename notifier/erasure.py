"""Erasing a person's personal data, for a data-protection request (``POST /v1/erasures``).

A person is named by any of their addresses (email, phone, push token) or contact keys; the
contacts found that way add their other addresses, so one call erases the person everywhere we
keep data, in one transaction:

* notifications to any of the addresses keep the minimal, non-personal record that a message
  was sent (id, channel, lane, category, status and times, provider and its message id, attempt
  count): the recipient becomes ``[erased]``; the content, the sealed sensitive values and the
  caller's reference are removed; their events keep kind, status, provider, latency and response
  code but lose the free-text detail (a provider's error can quote the address); their
  idempotency records (a fingerprint of the request body) are deleted;
* suppressions: an opt-out the law requires us to remember (STOP, unsubscribe, complaint, a
  manual do-not-contact) keeps only its fingerprint (see :mod:`notifier.suppressions`), which
  still blocks every send and is still lifted by a START; other suppressions (bounces, invalid
  addresses or tokens) are deleted;
* contacts are deleted with their audience memberships;
* the logs we keep: support audit entries whose query named an address have those values
  replaced by ``[erased]``; import errors quoting an address are replaced the same way; the
  outbox provider's files (development) of the erased notifications are deleted. Application
  logs never contain recipients or content (a test greps them), so there is nothing to erase.

The erasure is itself audited, with the counts and the caller's request reference, never the
addresses (the audit log must not become the list of people who asked to be forgotten).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import ScalarResult, String, cast, delete, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from notifier.campaigns.models import AudienceMember, Contact, ContactImport
from notifier.db.models import Suppression, utcnow
from notifier.notifications import queries, retention
from notifier.support.models import AuditEntry
from notifier.suppressions import fingerprint
from providers.interface import SuppressionReason

M = TypeVar("M")

ERASED = "[erased]"
REMEMBERED = frozenset(
    {
        SuppressionReason.STOP.value,
        SuppressionReason.UNSUBSCRIBED.value,
        SuppressionReason.COMPLAINT.value,
        SuppressionReason.MANUAL.value,
    }
)


@dataclass
class Person:
    emails: set[str]
    phones: set[str]
    push_tokens: set[str]
    contact_keys: set[str]

    def addresses(self) -> set[str]:
        return self.emails | self.phones | self.push_tokens


@dataclass
class Erased:
    notifications: int = 0
    events: int = 0
    idempotency_records: int = 0
    suppressions_fingerprinted: int = 0
    suppressions_deleted: int = 0
    contacts: int = 0
    audit_entries_scrubbed: int = 0
    import_errors_scrubbed: int = 0
    outbox_files: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _contacts_of(session: Session, person: Person) -> list[Contact]:
    conditions = []
    if person.contact_keys:
        conditions.append(Contact.key.in_(person.contact_keys))
    if person.emails:
        conditions.append(Contact.email.in_(person.emails))
    if person.phones:
        conditions.append(Contact.phone.in_(person.phones))
    found = list(session.scalars(select(Contact).where(or_(*conditions)))) if conditions else []
    if person.push_tokens:  # tokens live in a JSON list: check them in Python
        for contact in session.scalars(select(Contact).where(Contact.push_tokens.is_not(None))):
            tokens = {t.get("token") for t in contact.push_tokens or []}
            if tokens & person.push_tokens and contact not in found:
                found.append(contact)
    return found


def _widen(person: Person, found: Iterable[Contact]) -> None:
    for contact in found:
        person.contact_keys.add(contact.key)
        if contact.email:
            person.emails.add(contact.email)
        if contact.phone:
            person.phones.add(contact.phone)
        person.push_tokens |= {t["token"] for t in contact.push_tokens or [] if t.get("token")}


def _scrub(value: Any, addresses: set[str]) -> tuple[Any, bool]:
    """``value`` with every string that contains one of the addresses replaced."""
    if isinstance(value, str):
        return (ERASED, True) if any(a in value for a in addresses) else (value, False)
    if isinstance(value, dict):
        changed = False
        out = {}
        for k, v in value.items():
            out[k], hit = _scrub(v, addresses)
            changed |= hit
        return out, changed
    if isinstance(value, list):
        pairs = [_scrub(v, addresses) for v in value]
        return [p[0] for p in pairs], any(p[1] for p in pairs)
    return value, False


def _json_rows(
    session: Session, model: type[M], column: InstrumentedAttribute[Any], addresses: set[str]
) -> ScalarResult[M]:
    """Rows whose JSON ``column`` mentions any address (found by text match, both dialects)."""
    text = cast(column, String)
    return session.scalars(select(model).where(or_(*(text.contains(a) for a in addresses))))


def erase(session: Session, person: Person, outbox_dir: Path | None = None) -> Erased:
    result = Erased()
    found = _contacts_of(session, person)
    _widen(person, found)
    addresses = person.addresses()
    if not addresses and not found:
        return result
    now = utcnow()
    rows = queries.to_recipients(session, addresses)
    for start in range(0, len(rows), 500):
        erased = retention.erase_personal_data(
            session, [r.id for r in rows[start : start + 500]], ERASED, now
        )
        result.events += erased.events
        result.idempotency_records += erased.idempotency_records
        result.notifications += erased.notifications
    for suppression in session.scalars(
        select(Suppression).where(Suppression.recipient.in_(addresses))
    ):
        if suppression.reason in REMEMBERED:
            suppression.recipient = fingerprint(suppression.channel, suppression.recipient)
            suppression.detail = None
            result.suppressions_fingerprinted += 1
        else:
            session.delete(suppression)
            result.suppressions_deleted += 1
    contact_ids = [c.id for c in found]
    if contact_ids:
        session.execute(delete(AudienceMember).where(AudienceMember.contact_id.in_(contact_ids)))
        session.execute(delete(Contact).where(Contact.id.in_(contact_ids)))
    result.contacts = len(contact_ids)
    for entry in _json_rows(session, AuditEntry, AuditEntry.query, addresses):
        entry.query, changed = _scrub(entry.query, addresses)
        result.audit_entries_scrubbed += changed
    for job in _json_rows(session, ContactImport, ContactImport.errors, addresses):
        job.errors, changed = _scrub(job.errors, addresses)
        result.import_errors_scrubbed += changed
    if outbox_dir is not None:
        for row in rows:
            path = outbox_dir / row.lane / f"{row.id}.json"
            if path.exists():
                path.unlink()
                result.outbox_files += 1
    return result
