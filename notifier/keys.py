"""API keys: who a caller is (:class:`Caller`), and creating, listing, rotating, revoking keys.

403 answers "you may not" (a scope or lane the key lacks: :meth:`Caller.require_scope`,
:meth:`Caller.require_lane`); 401, "who are you?", is :mod:`notifier.authentication`, which turns
a bearer key into its caller and caches it for ``CACHE_SECONDS``, so a revocation or a change to
the key's service takes effect within that time.

Every key belongs to a service and has a type (:class:`KeyType`); the caller carries a snapshot
of its service and allow-list.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

from limits import parse_many
from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier.db.models import ApiKey, utcnow
from notifier.errors import ErrorCode, NotifierError
from notifier.security import Sealer, generate_api_key
from notifier.services.models import DEFAULT_SERVICE_ID, Service
from notifier.services.snapshot import DEFAULT_SERVICE, ServiceSnapshot
from providers.interface import Lane

CACHE_SECONDS = 5.0


class KeyColumns(Protocol):
    """What the rules on a key read: a loaded :class:`ApiKey` or a row of those columns."""

    @property
    def id(self) -> str: ...
    @property
    def rate_limit(self) -> str | None: ...
    @property
    def revoked_at(self) -> datetime | None: ...


log = logging.getLogger("notifier.keys")


class Scope(enum.StrEnum):
    SEND = "notifications:send"
    READ = "notifications:read"
    SUPPORT_READ = "support:read"
    CAMPAIGNS = "campaigns:manage"
    SUPPRESSIONS = "suppressions:manage"  # list, add and lift suppressions (personal data)
    KEYS = "keys:manage"  # admin: create, list, revoke and rotate API keys
    ERASE = "data:erase"  # admin: erase a person's data for a data-protection request
    SERVICES = "services:manage"  # platform admin: every service, its settings and its keys


class KeyType(enum.StrEnum):
    """``live`` sends; ``test`` is handled exactly as live but delivered only to the outbox;
    ``team`` sends, but only to its service's allow-list of recipients."""

    LIVE = "live"
    TEST = "test"
    TEAM = "team"


@dataclass(frozen=True)
class Caller:
    id: str
    name: str
    scopes: frozenset[str]
    lanes: frozenset[str] | None
    rate_limit: str | None
    key_type: KeyType = KeyType.LIVE
    service: ServiceSnapshot = DEFAULT_SERVICE

    @property
    def is_platform_admin(self) -> bool:
        return Scope.SERVICES.value in self.scopes

    @property
    def restricted_to_allow_list(self) -> bool:
        """Team keys, and live keys of a service still in trial mode, send only to the
        service's allow-list. Test keys may name anyone: nothing they send is delivered."""
        if self.key_type == KeyType.TEST:
            return False
        return self.key_type == KeyType.TEAM or self.service.trial

    @property
    def is_test(self) -> bool:
        return self.key_type == KeyType.TEST

    def require_scope(self, scope: Scope) -> None:
        if scope.value not in self.scopes:
            raise NotifierError(
                ErrorCode.FORBIDDEN_SCOPE, f"this API key lacks the scope {scope.value}"
            )

    def require_lane(self, lane: Lane) -> None:
        if self.lanes is not None and lane.value not in self.lanes:
            raise NotifierError(
                ErrorCode.FORBIDDEN_LANE, f"this API key may not send on the lane {lane.value}"
            )


def parse_scopes(text: str) -> list[str]:
    scopes = [s.strip() for s in text.split(",") if s.strip()]
    valid = {s.value for s in Scope}
    unknown = [s for s in scopes if s not in valid]
    if unknown or not scopes:
        raise ValueError(f"unknown scopes {unknown}; known: {sorted(valid)}")
    return scopes


def parse_lanes(text: str | None) -> list[str] | None:
    if text is None:
        return None
    lanes = [s.strip() for s in text.split(",") if s.strip()]
    valid = {lane.value for lane in Lane}
    unknown = [lane for lane in lanes if lane not in valid]
    if unknown or not lanes:
        raise ValueError(f"unknown lanes {unknown or [text]}; known: {sorted(valid)}")
    return lanes


def parse_rate_limit(text: str | None) -> str | None:
    """A rate in the `limits` notation (``100/second``, ``6000/minute``, ``5/10minutes``), checked
    now: a key stored with an unparsable rate would make every one of its requests fail."""
    if text is None:
        return None
    try:
        items = parse_many(text)
    except ValueError as e:
        raise ValueError(
            f"--rate-limit {text!r} is not a rate such as 100/second or 6000/minute"
        ) from e
    if len(items) != 1 or items[0].amount < 1:
        raise ValueError(f"--rate-limit {text!r} must be one positive rate such as 100/second")
    return text.strip()


def parse_key_type(text: str) -> KeyType:
    try:
        return KeyType(text.strip().lower())
    except ValueError as e:
        raise ValueError(
            f"unknown key type {text!r}; known: {', '.join(t.value for t in KeyType)}"
        ) from e


def check_callback_url(url: str) -> str:
    """The one check of a status-webhook URL (a key's or a service's): absolute http(s) with a
    host, storable. Raises ValueError with the reason."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("the callback URL must be an absolute http(s) URL with a host")
    if len(url) > 2000:
        raise ValueError("the callback URL must be at most 2000 characters")
    return url


CALLBACK_SEAL_PURPOSE = "callback"  # the webhooks worker unseals keys' and services' secrets


def callback_sealer(secret_key: str) -> Sealer:
    return Sealer(secret_key, CALLBACK_SEAL_PURPOSE)


def new_callback_secret(url: str | None, sealer: Sealer) -> tuple[str | None, str | None]:
    """(sealed, plaintext) signing secret for a callback URL; (None, None) when it is removed."""
    from notifier.webhook_signing import new_secret

    if not url:
        return None, None
    secret = new_secret()
    return sealer.seal(secret), secret


def describe(row: ApiKey, service_name: str | None = None) -> dict[str, Any]:
    """A key as the CLI shows it (never its secret or hash)."""
    return {
        "id": row.id,
        "name": row.name,
        "service": service_name or row.service_id,
        "type": row.key_type,
        "prefix": row.prefix,
        "scopes": list(row.scopes or ()),
        "lanes": None if row.lanes is None else list(row.lanes),
        "rate_limit": row.rate_limit,
        "created": row.created_at.isoformat(timespec="seconds"),
        "revoked": row.revoked_at.isoformat(timespec="seconds") if row.revoked_at else None,
    }


def create_key(
    session: Session,
    name: str,
    scopes: list[str],
    lanes: list[str] | None = None,
    rate_limit: str | None = None,
    service_id: str = DEFAULT_SERVICE_ID,
    key_type: KeyType = KeyType.LIVE,
) -> tuple[ApiKey, str]:
    """A new key of ``service_id`` (the default service unless named)."""
    new = generate_api_key()
    row = ApiKey(
        service_id=service_id,
        key_type=key_type.value,
        name=name,
        prefix=new.prefix,
        secret_hash=new.secret_hash,
        scopes=scopes,
        lanes=lanes,
        rate_limit=rate_limit,
    )
    session.add(row)
    session.flush()
    return row, new.plaintext


def set_callback(
    session: Session, id_or_prefix: str, url: str | None, sealer: Sealer
) -> tuple[ApiKey, str | None] | None:
    """Set (or with ``url=None`` clear) the status-webhook URL of a key; a new signing secret is
    generated, kept sealed, and returned once."""
    row = session.scalars(
        select(ApiKey).where((ApiKey.id == id_or_prefix) | (ApiKey.prefix == id_or_prefix))
    ).first()
    if row is None:
        return None
    row.callback_url = check_callback_url(url) if url else None
    row.callback_secret_sealed, secret = new_callback_secret(row.callback_url, sealer)
    return row, secret


def list_keys(session: Session) -> list[tuple[ApiKey, str]]:
    """Every key with its service's name, oldest first."""
    rows = session.execute(
        select(ApiKey, Service.name)
        .join(Service, ApiKey.service_id == Service.id)
        .order_by(ApiKey.created_at, ApiKey.id)
    )
    return [(key, name) for key, name in rows.tuples()]


def revoke_key(session: Session, id_or_prefix: str) -> ApiKey | None:
    """Revoke now (also cutting short a rotation's overlap that has not ended yet)."""
    row = session.scalars(
        select(ApiKey).where((ApiKey.id == id_or_prefix) | (ApiKey.prefix == id_or_prefix))
    ).first()
    now = utcnow()
    if row is not None and (row.revoked_at is None or row.revoked_at > now):
        row.revoked_at = now
    return row


def is_revoked(row: KeyColumns, now: datetime | None = None) -> bool:
    """``revoked_at`` in the future is a rotation's overlap: the key works until then."""
    return row.revoked_at is not None and row.revoked_at <= (now or utcnow())


def rotate_key(session: Session, row: ApiKey, overlap: timedelta) -> tuple[ApiKey, str]:
    """A new key with the same service, type, name, scopes, lanes, rate limit and webhook; the
    old one keeps working for ``overlap`` (so callers can switch without an outage), then
    stops."""
    new, plaintext = create_key(
        session,
        row.name,
        list(row.scopes or []),
        row.lanes,
        row.rate_limit,
        row.service_id,
        KeyType(row.key_type),
    )
    new.callback_url = row.callback_url
    new.callback_secret_sealed = row.callback_secret_sealed
    end = utcnow() + overlap
    if row.revoked_at is None or row.revoked_at > end:
        row.revoked_at = end
    return new, plaintext
