"""Rate limits as one shared mechanism, on the `limits` library.

Backed by Redis when ``NOTIFIER_REDIS_URL`` is set (shared by every API process and worker
machine), in memory otherwise (the embedded default). Used for: requests per API key, transactional
SMS per phone number, and sends per provider account.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from limits import parse
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: float = 0.0


class RateLimiter:
    def __init__(self, redis_url: str | None = None) -> None:
        storage = storage_from_string(redis_url) if redis_url else MemoryStorage()
        self._limiter = SlidingWindowCounterRateLimiter(storage)

    def hit(self, rule: str, *identifiers: str) -> Verdict:
        """Count one event against ``rule`` (e.g. "5/10minutes") for these identifiers."""
        item = parse(rule)
        if self._limiter.hit(item, *identifiers):
            return Verdict(True)
        stats = self._limiter.get_window_stats(item, *identifiers)
        return Verdict(False, retry_after=max(1.0, stats.reset_time - time.time()))
