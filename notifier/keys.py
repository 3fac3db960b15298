"""API keys: creation, listing, revocation and authentication of callers.

401 answers "who are you?" (missing, malformed, unknown or revoked key); 403 answers "you may
not" (a scope or lane the key lacks). Authentication results are cached for a few seconds per
process so intake does not read the key row on every request; revocation therefore takes effect
within ``CACHE_SECONDS``.

Every key belongs to a service and has a type (:class:`KeyType`). The service's row and its
allow-list are read in the same query as the key (one join on a cache miss, one row per
allowed recipient) and cached with it in the caller, so changes to a service, like
revocations, take effect within ``CACHE_SECONDS``.
"""

from __future__ import annotations

import enum
import hmac
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache, partial
from typing import Any
from urllib.parse import urlsplit

from limits import parse_many
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from notifier.db.models import ApiKey, utcnow
from notifier.errors import ErrorCode, NotifierError
from notifier.security import Sealer, generate_api_key, hash_api_key, parse_prefix
from notifier.services.models import DEFAULT_SERVICE_ID, AllowedRecipient, Service
from notifier.services.snapshot import DEFAULT_SERVICE, ServiceSnapshot
from notifier.ttl_cache import TTLCache
from providers.interface import Lane

CACHE_SECONDS = 5.0
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


def is_revoked(row: ApiKey, now: datetime | None = None) -> bool:
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


class Authenticator:
    """Callers by key, cached for ``CACHE_SECONDS`` (:mod:`notifier.ttl_cache`), keyed by the
    key's stored hash so that no plaintext key is held in memory as a dictionary key. Given the
    sessions, the keys in use are refreshed ahead in one query every half ``CACHE_SECONDS``,
    so a request of a busy key (of any of thousands) never waits on the database, and a
    revocation or a change to the service still takes effect within ``CACHE_SECONDS``."""

    def __init__(
        self,
        sessions: Callable[[], Session] | None = None,
        seconds: float = CACHE_SECONDS,
    ) -> None:
        self._cache: TTLCache[bytes, Caller] = TTLCache(
            seconds, reload=partial(_reload, sessions) if sessions is not None else None
        )

    def cached(self, authorization: str | None) -> Caller | None:
        """The caller for this header if it was authenticated in the last few seconds."""
        return self._cache.get(_cache_key(_bearer(authorization)))

    def authenticate(self, session: Session, authorization: str | None) -> Caller:
        plaintext = _bearer(authorization)
        key = _cache_key(plaintext)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        prefix = parse_prefix(plaintext)
        found = _callers(session, ApiKey.prefix == prefix) if prefix else {}
        caller = next((c for k, c in found.items() if hmac.compare_digest(k, key)), None)
        if caller is None:
            raise NotifierError(ErrorCode.UNAUTHENTICATED, "unknown or revoked API key")
        return self._cache.put(key, caller)

    def close(self) -> None:
        self._cache.close()


def _reload(
    sessions: Callable[[], Session], current: Mapping[bytes, Caller]
) -> dict[bytes, Caller]:
    """The cached keys as the database has them now (a key revoked or gone is missing, so it is
    dropped): their columns, then each of their services once with its allow-list, 500 keys a
    query, so that refreshing thousands of keys costs a few milliseconds."""
    ids = sorted({c.id for c in current.values()})
    found: dict[bytes, Caller] = {}
    now = utcnow()
    with sessions() as session:
        for start in range(0, len(ids), 500):
            keys = session.execute(
                select(
                    ApiKey.id,
                    ApiKey.secret_hash,
                    ApiKey.name,
                    ApiKey.scopes,
                    ApiKey.lanes,
                    ApiKey.rate_limit,
                    ApiKey.key_type,
                    ApiKey.service_id,
                    ApiKey.revoked_at,
                ).where(ApiKey.id.in_(ids[start : start + 500]))
            ).all()
            services = _snapshots(session, {k.service_id for k in keys})
            for k in keys:
                if k.service_id not in services or is_revoked(k, now):  # type: ignore[arg-type]
                    continue
                found[bytes.fromhex(k.secret_hash)] = Caller(
                    id=k.id,
                    name=k.name,
                    scopes=frozenset(k.scopes or ()),
                    lanes=None if k.lanes is None else frozenset(k.lanes),
                    rate_limit=_usable_rate(k),  # type: ignore[arg-type]
                    key_type=KeyType(k.key_type),
                    service=services[k.service_id],
                )
    return {k: found[k] for k in current if k in found}


def _snapshots(session: Session, ids: set[str]) -> dict[str, ServiceSnapshot]:
    """Each service once, with its allow-list (two queries for any number of them)."""
    allowed: dict[str, list[str]] = {}
    for service_id, mark in session.execute(
        select(AllowedRecipient.service_id, AllowedRecipient.fingerprint).where(
            AllowedRecipient.service_id.in_(ids)
        )
    ).tuples():
        allowed.setdefault(service_id, []).append(mark)
    return {
        row.id: ServiceSnapshot.of(row, allowed.get(row.id, ()))
        for row in session.scalars(select(Service).where(Service.id.in_(ids)))
    }


def _callers(session: Session, which: ColumnElement[bool]) -> dict[bytes, Caller]:
    """The usable keys ``which`` selects, with their services and the services' allow-lists
    (one joined query), by their stored hash (:func:`_cache_key`)."""
    rows = session.execute(
        select(ApiKey, Service, AllowedRecipient.fingerprint)
        .join(Service, ApiKey.service_id == Service.id)
        .outerjoin(AllowedRecipient, AllowedRecipient.service_id == Service.id)
        .where(which)
    ).tuples()
    grouped: dict[str, tuple[ApiKey, Service, list[str]]] = {}
    for key, service, mark in rows:
        entry = grouped.setdefault(key.id, (key, service, []))
        if mark is not None:
            entry[2].append(mark)
    now = utcnow()
    return {
        bytes.fromhex(row.secret_hash): Caller(
            id=row.id,
            name=row.name,
            scopes=frozenset(row.scopes or ()),
            lanes=None if row.lanes is None else frozenset(row.lanes),
            rate_limit=_usable_rate(row),
            key_type=KeyType(row.key_type),
            service=ServiceSnapshot.of(service, allowed),
        )
        for row, service, allowed in grouped.values()
        if not is_revoked(row, now)
    }


def _cache_key(plaintext: str) -> bytes:
    """What the key cache is keyed by: the key's hash as the database stores it, never the
    plaintext."""
    return bytes.fromhex(hash_api_key(plaintext))


def _usable_rate(row: ApiKey) -> str | None:
    """The key's own rate, or None (the default) for one stored before rates were checked: a
    bad value must not turn every request of that key into a 500."""
    try:
        return _checked_rate(row.rate_limit)
    except ValueError:
        log.warning("keys.invalid_rate_limit", extra={"api_key_id": row.id})
        return None


@lru_cache(maxsize=1024)
def _checked_rate(text: str | None) -> str | None:
    """:func:`parse_rate_limit` once per distinct stored rate (a refresh checks thousands)."""
    return parse_rate_limit(text)


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise NotifierError(
            ErrorCode.UNAUTHENTICATED, "missing API key: send 'Authorization: Bearer <key>'"
        )
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotifierError(
            ErrorCode.UNAUTHENTICATED, "malformed Authorization header: use 'Bearer <key>'"
        )
    return token.strip()
