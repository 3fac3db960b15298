"""The one short-lived cache of what the hot paths would otherwise read from the database.

The API caches a key's authentication (the key, its service, the allow-list) and a delivery
worker caches the services of the notifications it claims, both for a few seconds: a revoked key
or a changed service takes effect within that time, and a busy key or service costs no query per
request or task. Both use this cache, so they expire, bound their size and lock alike.

**Refreshed ahead** (``reload``): with many keys each one is seen rarely, so plain expiry would
make a fair share of requests pay a query (1,000 keys at 600 requests/s and 5 seconds: a third
of them). Given ``reload``, a thread of the cache's own reloads every entry read within the
last ``IDLE_AFTER`` refresh periods in one call every half ``seconds`` (one query for all of
them), before they expire; what ``reload`` no longer returns (a revoked key) is dropped. The
hot path then finds every busy entry fresh, and a change still takes effect within ``seconds``:
if reloading fails, entries expire as without it.

Written here rather than taken from a library: it is small, typed, and needs nothing a general
cache adds (eviction order does not matter when entries live seconds: a full cache is simply
emptied, which costs one reload per entry). Keys must not be secrets: the key cache is keyed by
the key's stored hash, never the plaintext.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Hashable, Mapping
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

IDLE_AFTER = 12  # refresh periods (30 s at 5 s entries) without a read: left to expire
log = logging.getLogger("notifier.ttl_cache")


class TTLCache(Generic[K, V]):
    """Values for ``seconds`` after they were put; at most ``max_entries`` (then emptied);
    with ``reload``, refreshed ahead while they are read (see the module docstring)."""

    def __init__(
        self,
        seconds: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        reload: Callable[[Mapping[K, V]], Mapping[K, V]] | None = None,
    ) -> None:
        self.seconds = seconds
        self._max = max_entries
        self._clock = clock
        self._entries: dict[K, tuple[float, V]] = {}
        self._read: dict[K, float] = {}  # when each entry was last found (refreshed ones only)
        self._lock = threading.Lock()
        self._reload = reload
        self._stop = threading.Event()
        self._refresher: threading.Thread | None = None

    def get(self, key: K) -> V | None:
        """The value put for ``key`` less than ``seconds`` ago, else None (no lock: one dict
        read is atomic, and a stale read costs only a reload)."""
        entry = self._entries.get(key)
        if entry is not None and entry[0] > self._clock():
            if self._reload is not None:
                self._read[key] = self._clock()
            return entry[1]
        return None

    def put(self, key: K, value: V) -> V:
        with self._lock:
            if len(self._entries) >= self._max and key not in self._entries:
                self._entries.clear()
                self._read.clear()
            self._entries[key] = (self._clock() + self.seconds, value)
            if self._reload is not None:
                self._read[key] = self._clock()
                if self._refresher is None:
                    self._start()
        return value

    def clear(self) -> None:
        """Forget every entry: the next read of each loads it again."""
        with self._lock:
            self._entries.clear()
            self._read.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def refresh(self) -> None:
        """Reload the entries read lately in one ``reload`` call (the refresher's step)."""
        if self._reload is None:
            return
        now = self._clock()
        idle = now - IDLE_AFTER * self.seconds / 2
        with self._lock:
            read = dict(self._read)  # one copy in C: ``get`` writes it without the lock
            for key in [k for k, t in read.items() if t < idle]:
                self._read.pop(key, None)
            current = {
                k: e[1]
                for k, t in read.items()
                if t >= idle and (e := self._entries.get(k)) is not None
            }
        if not current:
            return
        fresh = self._reload(current)
        with self._lock:
            until = self._clock() + self.seconds
            for key in current:
                if key in fresh:
                    self._entries[key] = (until, fresh[key])
                else:
                    self._entries.pop(key, None)
                    self._read.pop(key, None)

    def close(self) -> None:
        self._stop.set()

    def _start(self) -> None:
        self._refresher = threading.Thread(
            target=_refresh_while_alive,
            args=(weakref.ref(self), self._stop, self.seconds / 2),
            name="ttl-cache-refresh",
            daemon=True,
        )
        self._refresher.start()


def _refresh_while_alive(
    cache: weakref.ref[TTLCache[K, V]], stop: threading.Event, period: float
) -> None:
    """Refresh the cache every ``period`` until it is closed or collected."""
    while not stop.wait(period):
        alive = cache()
        if alive is None:
            return
        try:
            alive.refresh()
        except Exception as e:  # the database away: entries expire as without refreshing
            log.warning("cache.refresh_failed", extra={"error_type": type(e).__name__})
        del alive
