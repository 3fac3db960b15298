"""The one short-lived cache: values expire after their time, a full cache is emptied rather
than grown, and the API's key cache holds digests of keys, never a plaintext key."""

from __future__ import annotations

from notifier.keys import Authenticator
from notifier.runtime import Runtime
from notifier.ttl_cache import TTLCache, digest
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
    assert held == [digest(key)] and key.encode() not in held[0]
