"""The one short-lived cache: values expire after their time, a full cache is emptied rather
than grown, and the API's key cache holds digests of keys, never a plaintext key."""

from __future__ import annotations

import time

from notifier.authentication import Authenticator
from notifier.runtime import Runtime
from notifier.security import hash_api_key
from notifier.ttl_cache import TTLCache
from tests.factories import api_key


def test_values_expire_and_a_full_cache_is_emptied() -> None:
    now = [100.0]
    cache: TTLCache[str, int] = TTLCache(5.0, max_entries=2, clock=lambda: now[0])
    cache.put("a", 1)
    now[0] += 4.9
    assert cache.get("a") == 1
    now[0] += 0.2
    assert cache.get("a") is None
    cache.put("b", 2)
    cache.put("c", 3)  # full: emptied first
    assert len(cache) == 1 and cache.get("c") == 3 and cache.get("b") is None


def test_the_key_cache_holds_no_plaintext_key(runtime: Runtime) -> None:
    key = api_key(runtime)
    authenticator = Authenticator()
    with runtime.sessions() as session:
        caller = authenticator.authenticate(session, f"Bearer {key}")
    assert authenticator.cached(f"Bearer {key}") is caller
    held = list(authenticator._cache._entries)  # what the process keeps, looked at
    assert held == [bytes.fromhex(hash_api_key(key))] and key.encode() not in held[0]


def test_keys_in_use_are_refreshed_ahead_and_a_revocation_still_takes_effect(
    runtime: Runtime,
) -> None:
    """A key read often never expires (its refresher reloads it before), a change to its
    service is seen and a revoked key dropped at the next refresh, within the cache's time."""
    from sqlalchemy import update

    from notifier.db.session import transaction
    from notifier.keys import revoke_key
    from notifier.security import parse_prefix
    from notifier.services.models import Service

    key = api_key(runtime)
    authenticator = Authenticator(runtime.sessions, seconds=0.4)
    try:
        with runtime.sessions() as session:
            authenticator.authenticate(session, f"Bearer {key}")
        deadline = time.monotonic() + 1.5  # almost four times the entry's time
        while time.monotonic() < deadline:
            assert authenticator.cached(f"Bearer {key}") is not None
            time.sleep(0.02)
        with transaction(runtime.sessions) as session:  # a change to the key's service
            session.execute(update(Service).values(trial=True))
        time.sleep(0.45)
        refreshed = authenticator.cached(f"Bearer {key}")
        assert refreshed is not None and refreshed.service.trial is True
        with transaction(runtime.sessions) as session:
            revoke_key(session, parse_prefix(key) or "")
        time.sleep(0.45)
        assert authenticator.cached(f"Bearer {key}") is None
    finally:
        authenticator.close()
