"""Creating, finding, changing services and their allow-lists: the one place the API and the
CLI go through, so both apply the same name rule and the same platform rules."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from notifier.db.models import utcnow
from notifier.errors import ErrorCode, NotifierError, field_error
from notifier.keys import new_callback_secret
from notifier.recipients import normalise
from notifier.security import Sealer
from notifier.services import rules
from notifier.services.models import AllowedRecipient, Service
from notifier.services.platform import Platform
from notifier.services.schemas import NAME, ServiceChanges, ServiceOut
from notifier.suppressions import fingerprint
from providers.interface import Channel

PER_LANE = ("senders", "provider_chains", "rate_limits", "daily_quotas")


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise field_error(
            ErrorCode.INVALID_SERVICE_NAME,
            "name",
            f"service name {name[:70]!r} must be 3 to 63 lower-case letters, digits or hyphens, "
            "starting with a letter and not ending with a hyphen",
        )
    return name


def find(session: Session, name: str) -> Service | None:
    return session.scalars(select(Service).where(Service.name == name)).first()


def find_named(session: Session, name_or_id: str) -> Service | None:
    """The service an operator named on a command line: by its name or its id."""
    text = name_or_id.strip()
    return session.scalars(
        select(Service).where(or_(Service.name == text, Service.id == text))
    ).first()


def get(session: Session, name: str) -> Service:
    row = find(session, name)
    if row is None:
        raise NotifierError(ErrorCode.NOT_FOUND, f"no service {name[:70]!r}")
    return row


def list_services(session: Session) -> list[Service]:
    return list(session.scalars(select(Service).order_by(Service.name)))


def create(
    session: Session,
    name: str,
    changes: ServiceChanges,
    platform: Platform,
    sealer: Sealer,
) -> tuple[Service, str | None]:
    """A new service (in trial mode unless ``changes.trial`` is False) and the plaintext of
    its webhook secret when a callback URL was given."""
    check_name(name)
    if find(session, name) is not None:
        raise NotifierError(ErrorCode.SERVICE_EXISTS, f"a service {name!r} exists already")
    row = Service(
        name=name,
        trial=True,
        senders={},
        provider_chains={},
        rate_limits={},
        daily_quotas={},
    )
    secret = apply(row, changes, platform, sealer)
    session.add(row)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as e:  # created by someone else between the check and the insert
        raise NotifierError(ErrorCode.SERVICE_EXISTS, f"a service {name!r} exists already") from e
    return row, secret


def apply(row: Service, changes: ServiceChanges, platform: Platform, sealer: Sealer) -> str | None:
    """Set what ``changes`` names on ``row`` after checking the result against the platform;
    returns a new webhook secret when the callback URL changed to a URL."""
    given = changes.model_fields_set
    merged: dict[str, dict[str, Any]] = {
        setting: _lane_keys(getattr(changes, setting))
        if setting in given
        else dict(getattr(row, setting) or {})
        for setting in PER_LANE
    }
    retention = changes.retention_days if "retention_days" in given else row.retention_days
    rules.check(platform, merged["senders"], merged["provider_chains"], retention)
    for setting, value in merged.items():
        setattr(row, setting, value)
    row.retention_days = retention
    if "trial" in given and changes.trial is not None:
        row.trial = changes.trial
    secret = None
    if "callback_url" in given:
        row.callback_url = changes.callback_url
        row.callback_secret_sealed, secret = new_callback_secret(changes.callback_url, sealer)
    row.updated_at = utcnow()
    return secret


def _lane_keys(value: dict[Any, Any] | None) -> dict[str, Any]:
    """JSON keys are the lane values; None clears the setting (the platform's applies)."""
    return {str(lane): setting for lane, setting in (value or {}).items()}


def allow(session: Session, row: Service, channel: Channel, recipient: str) -> AllowedRecipient:
    """Add a recipient to the allow-list (normalised as intake normalises it; adding one twice
    returns the existing entry)."""
    normalised = normalise(channel, recipient)
    mark = fingerprint(channel.value, normalised)
    existing = session.scalars(
        select(AllowedRecipient).where(
            AllowedRecipient.service_id == row.id, AllowedRecipient.fingerprint == mark
        )
    ).first()
    if existing is not None:
        return existing
    entry = AllowedRecipient(
        service_id=row.id, channel=channel.value, recipient=normalised, fingerprint=mark
    )
    session.add(entry)
    session.flush()
    return entry


def disallow(session: Session, row: Service, entry_id: int) -> AllowedRecipient:
    entry = session.get(AllowedRecipient, entry_id)
    if entry is None or entry.service_id != row.id:
        raise NotifierError(ErrorCode.NOT_FOUND, "no such allowed recipient of this service")
    session.delete(entry)
    return entry


def allowed(session: Session, row: Service) -> list[AllowedRecipient]:
    return list(
        session.scalars(
            select(AllowedRecipient)
            .where(AllowedRecipient.service_id == row.id)
            .order_by(AllowedRecipient.id)
        )
    )


def is_allowed(session: Session, service_id: str, channel: Channel, normalised: str) -> bool:
    """Whether a (normalised) recipient is on the service's allow-list: the check intake makes
    for team keys and services in trial mode (phase 2 wires it)."""
    mark = fingerprint(channel.value, normalised)
    return (
        session.scalar(
            select(AllowedRecipient.id).where(
                AllowedRecipient.service_id == service_id, AllowedRecipient.fingerprint == mark
            )
        )
        is not None
    )


def describe(row: Service) -> ServiceOut:
    return ServiceOut(
        id=row.id,
        name=row.name,
        trial=row.trial,
        senders=row.senders or {},
        provider_chains=row.provider_chains or {},
        rate_limits=row.rate_limits or {},
        daily_quotas=row.daily_quotas or {},
        retention_days=row.retention_days,
        callback_url=row.callback_url,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
