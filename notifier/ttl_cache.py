"""The one short-lived cache of what the hot paths would otherwise read from the database.

The API caches a key's authentication (the key, its service, the allow-list) and a delivery
worker caches the services of the notifications it claims, both for a few seconds: a revoked key
or a changed service takes effect within that time, and a busy key or service costs no query per
request or task. Both use this cache, so they expire, bound their size and lock alike.

Written here rather than taken from a library: it is a dozen lines, typed, and needs nothing a
general cache adds (eviction order does not matter when entries live seconds: a full cache is
simply emptied, which costs one reload per entry). Keys must not be secrets: callers holding a
secret key it by a digest (:func:`digest`).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    """Values for ``seconds`` after they were put; at most ``max_entries`` (then emptied)."""

    def __init__(
        self,
        seconds: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seconds = seconds
        self._max = max_entries
        self._clock = clock
        self._entries: dict[K, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        """The value put for ``key`` less than ``seconds`` ago, else None (no lock: one dict
        read is atomic, and a stale read costs only a reload)."""
        entry = self._entries.get(key)
        if entry is not None and entry[0] > self._clock():
            return entry[1]
        return None

    def put(self, key: K, value: V) -> V:
        with self._lock:
            if len(self._entries) >= self._max and key not in self._entries:
                self._entries.clear()
            self._entries[key] = (self._clock() + self.seconds, value)
        return value

    def __len__(self) -> int:
        return len(self._entries)


def digest(secret: str) -> bytes:
    """What a cache holding a secret is keyed by: the secret is not kept in memory as a key."""
    return hashlib.sha256(secret.encode()).digest()
