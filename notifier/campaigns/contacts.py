"""Contacts and audiences: validation, idempotent upserts on the contact key, membership.

A contact's fields are validated and normalised with the same rules as intake (email lower
case, phone E.164, push tokens per platform). Upserts only change the fields a record carries,
so importing the same file twice leaves the same contacts and memberships, and a later file with
only ``key,sms_consent`` changes consent and nothing else. Consent keeps the time it was first
given.

A contact belongs to one service (its ``service_id`` column, not derived from its audiences):
its key is the caller's own identifier and its consent is given to that service, so the same
person known to two services is two contacts, each found, changed, listed and deleted only
through its own service's keys (another service's is the same 404 as a missing one). Audiences
hold only their own service's contacts: a membership joins rows of one service.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from notifier.campaigns.models import Audience, AudienceMember, Contact
from notifier.content.quiet_hours import valid_timezone
from notifier.db.models import DEFAULT_SERVICE_ID, utcnow
from notifier.db.named import find_named, get_named
from notifier.errors import ErrorCode, NotifierError, field_error
from notifier.ownership import ALL_SERVICES, owned
from notifier.recipients import normalise_email, normalise_phone, normalise_push_token
from providers.interface import Channel, PushPlatform

CONSENT_FIELD = {
    Channel.EMAIL: "email_consent_at",
    Channel.SMS: "sms_consent_at",
    Channel.PUSH: "push_consent_at",
}
_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off"}


@dataclass
class ContactRecord:
    """What one API call or CSV row says about a contact; None means "leave as it is"."""

    key: str
    values: dict[str, Any] = field(default_factory=dict)  # email, phone, locale, timezone
    attributes: dict[str, Any] = field(default_factory=dict)
    push_tokens: list[dict[str, str]] | None = None
    consent: dict[Channel, bool] = field(default_factory=dict)


def parse_bool(value: str, name: str) -> bool:
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise field_error(ErrorCode.VALIDATION_ERROR, name, f"{name} must be yes/no, true/false or 1/0")


def build_record(
    key: str | None,
    *,
    email: str | None = None,
    phone: str | None = None,
    locale: str | None = None,
    timezone: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    push_tokens: Sequence[Mapping[str, str]] | None = None,
    consent: Mapping[str, bool] | None = None,
) -> ContactRecord:
    """Validate and normalise one contact; raises NotifierError naming the field."""
    key = (key or "").strip()
    if not key or len(key) > 255:
        raise field_error(ErrorCode.VALIDATION_ERROR, "key", "key is required (at most 255 chars)")
    record = ContactRecord(key=key)
    if email:
        record.values["email"] = _field("email", normalise_email, email)
    if phone:
        record.values["phone"] = _field("phone", normalise_phone, phone)
    if locale:
        record.values["locale"] = locale.strip().replace("_", "-")[:35]
    if timezone:
        if not valid_timezone(timezone.strip()):
            raise field_error(
                ErrorCode.VALIDATION_ERROR,
                "timezone",
                f"unknown timezone {timezone!r}: use an IANA name such as Europe/Paris",
            )
        record.values["timezone"] = timezone.strip()
    for name in attributes or {}:
        if not str(name).isidentifier():
            raise field_error(
                ErrorCode.VALIDATION_ERROR,
                f"attributes.{name}",
                f"attribute name {name!r} must be an identifier (letters, digits, _)",
            )
    record.attributes = dict(attributes or {})
    if push_tokens is not None:
        record.push_tokens = []
        for item in push_tokens:
            platform = PushPlatform(item.get("platform") or "fcm")
            token = _field(
                "push_token", partial(normalise_push_token, platform=platform), item["token"]
            )
            record.push_tokens.append({"token": token, "platform": platform.value})
    for channel_name, given in (consent or {}).items():
        record.consent[Channel(channel_name)] = bool(given)
    return record


def _field(name: str, normalise: Callable[[str], str], value: str) -> str:
    try:
        return normalise(value)
    except NotifierError as e:
        raise field_error(e.code, name, e.message) from e


def upsert(
    session: Session, service_id: str, records: Sequence[ContactRecord]
) -> tuple[list[Contact], int]:
    """Create or update ``service_id``'s contacts by key (last record wins within a call).

    Returns the contacts in the order of their first record, and how many were created.
    """
    merged: dict[str, ContactRecord] = {}
    for record in records:
        previous = merged.get(record.key)
        merged[record.key] = _merge(previous, record) if previous else record
    existing = {
        c.key: c
        for c in session.scalars(
            select(Contact).where(Contact.service_id == service_id, Contact.key.in_(list(merged)))
        )
    }
    now = utcnow()
    created: list[Contact] = []
    for key, record in merged.items():
        contact = existing.get(key)
        if contact is None:
            contact = Contact(
                service_id=service_id,
                key=key,
                attributes={},
                push_tokens=[],
                created_at=now,
                updated_at=now,
            )
            created.append(contact)
            existing[key] = contact
        _apply(contact, record, now)
    session.add_all(created)
    session.flush()
    return [existing[k] for k in merged], len(created)


def _merge(first: ContactRecord, second: ContactRecord) -> ContactRecord:
    return ContactRecord(
        key=first.key,
        values={**first.values, **second.values},
        attributes={**first.attributes, **second.attributes},
        push_tokens=second.push_tokens if second.push_tokens is not None else first.push_tokens,
        consent={**first.consent, **second.consent},
    )


def _apply(contact: Contact, record: ContactRecord, now: Any) -> None:
    for name, value in record.values.items():
        setattr(contact, name, value)
    if record.attributes:
        contact.attributes = {**(contact.attributes or {}), **record.attributes}
    if record.push_tokens is not None:
        contact.push_tokens = record.push_tokens
    for channel, given in record.consent.items():
        column = CONSENT_FIELD[channel]
        if not given:
            setattr(contact, column, None)
        elif getattr(contact, column) is None:
            setattr(contact, column, now)
    contact.updated_at = now


def get_contact(session: Session, key: str, scope: str | None = ALL_SERVICES) -> Contact:
    """The contact with this key within ``scope`` (for a platform admin, as :mod:`db.named`
    orders a name two services use: the default service's first)."""
    contact = session.scalars(
        select(Contact)
        .where(Contact.key == key, *owned(Contact.service_id, scope))
        .order_by(Contact.service_id != DEFAULT_SERVICE_ID, Contact.service_id)
    ).first()
    if contact is None:
        raise NotifierError(ErrorCode.NOT_FOUND, f"no contact with key {key!r}")
    return contact


# --------------------------------------------------------------------------- audiences


def get_or_create_audience(
    session: Session, name: str, service_id: str = DEFAULT_SERVICE_ID
) -> Audience:
    """``service_id``'s audience called ``name``, created when it has none (another service's
    audience of the same name is a different audience)."""
    audience = find_named(session, Audience, name, service_id)
    if audience is not None:
        return audience
    audience = Audience(name=name, created_at=utcnow(), service_id=service_id)
    try:
        with session.begin_nested():
            session.add(audience)
            session.flush()
    except IntegrityError:  # a concurrent call created it first (and committed): that one
        found = find_named(session, Audience, name, service_id)
        if found is None:
            raise
        return found
    return audience


def get_audience(session: Session, name: str, scope: str | None = ALL_SERVICES) -> Audience:
    return get_named(session, Audience, name, "audience", scope)


def add_members(session: Session, audience: Audience, contacts: Iterable[Contact]) -> int:
    """Add contacts to an audience; members already in it are left alone. Returns how many.
    A contact of another service is refused: an audience holds its own service's only."""
    contacts = list(contacts)
    if any(c.service_id != audience.service_id for c in contacts):
        raise ValueError("a contact may join only an audience of its own service")
    audience_id = audience.id
    ids = sorted({c.id for c in contacts})
    if not ids:
        return 0
    present = set(
        session.scalars(
            select(AudienceMember.contact_id).where(
                AudienceMember.audience_id == audience_id, AudienceMember.contact_id.in_(ids)
            )
        )
    )
    now = utcnow()
    new = [
        {"audience_id": audience_id, "contact_id": i, "created_at": now}
        for i in ids
        if i not in present
    ]
    if new:
        session.execute(insert(AudienceMember), new)
    return len(new)


def audience_size(session: Session, audience_id: str) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(AudienceMember)
            .where(AudienceMember.audience_id == audience_id)
        )
        or 0
    )
