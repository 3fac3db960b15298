"""Authentication of callers: a bearer key to its :class:`~notifier.keys.Caller`.

401 answers "who are you?" (missing, malformed, unknown or revoked key). Results are cached for a
few seconds per process (:mod:`notifier.ttl_cache`) so intake does not read the key row on every
request; revocation therefore takes effect within ``CACHE_SECONDS``. The key's service and its
allow-list are read in the same query as the key and cached with it in the caller. Creating,
listing, rotating and revoking keys is :mod:`notifier.keys`.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Mapping
from functools import lru_cache, partial
from typing import Protocol

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from notifier.db.models import ApiKey, utcnow
from notifier.errors import ErrorCode, NotifierError
from notifier.keys import (
    CACHE_SECONDS,
    Caller,
    KeyColumns,
    KeyType,
    is_revoked,
    parse_rate_limit,
)
from notifier.security import hash_api_key, parse_prefix
from notifier.services.models import AllowedRecipient, Service
from notifier.services.snapshot import ServiceSnapshot
from notifier.ttl_cache import TTLCache

log = logging.getLogger("notifier.keys")


class CallerColumns(KeyColumns, Protocol):
    """The columns of a key a :class:`Caller` is made of."""

    @property
    def name(self) -> str: ...
    @property
    def scopes(self) -> list[str] | None: ...
    @property
    def lanes(self) -> list[str] | None: ...
    @property
    def key_type(self) -> str: ...


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
                if k.service_id not in services or is_revoked(k, now):
                    continue
                found[bytes.fromhex(k.secret_hash)] = _caller(k, services[k.service_id])
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
        bytes.fromhex(row.secret_hash): _caller(row, ServiceSnapshot.of(service, allowed))
        for row, service, allowed in grouped.values()
        if not is_revoked(row, now)
    }


def _caller(row: CallerColumns, service: ServiceSnapshot) -> Caller:
    """The caller a usable key row (a loaded key or its selected columns) stands for."""
    return Caller(
        id=row.id,
        name=row.name,
        scopes=frozenset(row.scopes or ()),
        lanes=None if row.lanes is None else frozenset(row.lanes),
        rate_limit=_usable_rate(row),
        key_type=KeyType(row.key_type),
        service=service,
    )


def _cache_key(plaintext: str) -> bytes:
    """What the key cache is keyed by: the key's hash as the database stores it, never the
    plaintext."""
    return bytes.fromhex(hash_api_key(plaintext))


def _usable_rate(row: KeyColumns) -> str | None:
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
