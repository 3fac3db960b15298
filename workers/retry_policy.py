"""When to try again: exponential backoff with full jitter, honouring Retry-After, bounded by
the number of attempts and the notification's TTL. Defined once, used by every delivery."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_seconds: float = 2.0
    cap_seconds: float = 600.0

    def delay(
        self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.cap_seconds, self.base_seconds * (2 ** max(0, attempt - 1)))
        jittered = (rng or random).uniform(0, ceiling)
        return max(jittered, retry_after or 0.0)

    def next_attempt_at(
        self,
        now: datetime,
        attempt: int,
        expires_at: datetime | None,
        retry_after: float | None = None,
    ) -> datetime | None:
        """When to retry, or None when attempts or the TTL have run out."""
        if attempt >= self.max_attempts:
            return None
        when = now + timedelta(seconds=self.delay(attempt, retry_after))
        if expires_at is not None and when >= expires_at:
            return None
        return when
