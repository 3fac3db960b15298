"""Per-provider-account send rates, shared by every worker on every machine.

A provider's rate comes from its ``rate_limit`` option in the providers file (``limits``
notation, e.g. ``"100/second"``) or else that option's default in its type's option schema
(Twilio's or SES's default account MPS). The count lives in the shared rate-limit storage (Redis
in production), keyed by the provider's configured name, so ten workers together respect it.
A send over the rate waits on the event loop until the window allows it; it is never failed.
The time waited is counted in ``notifier_provider_rate_wait_seconds_total{provider,lane}``: a
lane held back by its provider's rate shows there (and in the dashboard), not as an error. The
same waits are handed to ``on_wait`` (the worker's delivery context), which keeps the latest in
the heartbeats table at most every ``HELD_BACK_REPORT_SECONDS``, so ``notifier status``, which
reads no worker's metrics, can say which lanes their provider's rate is holding back.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from notifier import metrics
from notifier.ratelimit import RateLimiter
from providers.interface import Provider

HELD_BACK_REPORT_SECONDS = 10.0


def describe_rate(provider: Provider) -> str:
    """The send rate a provider instance keeps, said plainly (``providers check``, worker start)."""
    rule = rule_for(provider)
    if rule is None:
        return "no shared send rate (the provider's own limits apply)"
    if "rate_limit" in provider.config.model_fields_set:
        return f"{rule} (configured)"
    return f"{rule} ({provider.kind}'s default; set rate_limit to change it)"


def rule_for(provider: Provider) -> str | None:
    """The rate in ``limits`` notation: the configured one, else the type's default."""
    return provider.config.rate_limit


class ProviderThrottle:
    def __init__(
        self,
        limiter: RateLimiter,
        max_wait_step: float = 1.0,
        on_wait: Callable[[Provider, float], None] | None = None,
    ) -> None:
        self.limiter = limiter
        self.max_wait_step = max_wait_step
        self.on_wait = on_wait  # told of every wait: must be quick and must not raise

    async def acquire(self, provider: Provider) -> float:
        """Wait until ``provider`` may send one more message; returns the seconds waited."""
        rule = rule_for(provider)
        waited = 0.0
        if rule is None:
            return waited
        while True:
            verdict = await self.limiter.ahit(rule, "provider", provider.name)
            if verdict.allowed:
                if waited:
                    metrics.THROTTLE_WAIT.labels(provider.name, provider.lane.value).inc(waited)
                    if self.on_wait is not None:
                        self.on_wait(provider, waited)
                return waited
            pause = min(verdict.retry_after, self.max_wait_step) * random.uniform(0.5, 1.0)  # noqa: S311 - jitter
            await asyncio.sleep(pause)
            waited += pause


class HeldBackReport:
    """One process's waits per provider, handed to ``write(provider, detail)`` at most every
    ``every`` seconds (the first wait at once, then what accumulated since), on the event loop's
    executor so the database write never holds the loop. Best effort, like the circuit's row:
    a failed write is logged and the next one carries on."""

    def __init__(
        self,
        write: Callable[[str, dict[str, Any]], None],
        every: float = HELD_BACK_REPORT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._write = write
        self._every = every
        self._clock = clock
        self._lock = threading.Lock()
        self._waited: dict[str, float] = {}
        self._first: dict[str, float] = {}
        self._written: dict[str, float] = {}

    def __call__(self, provider: Provider, waited: float) -> None:
        now = self._clock()
        with self._lock:
            total = self._waited.get(provider.name, 0.0) + waited
            first = self._first.setdefault(provider.name, now - waited)
            if now - self._written.get(provider.name, -self._every) < self._every:
                self._waited[provider.name] = total
                return
            self._written[provider.name] = now
            self._waited.pop(provider.name, None)
            self._first.pop(provider.name, None)
        detail = {
            "lane": provider.lane.value,
            "rate": rule_for(provider),
            "waited_seconds": round(total, 3),
            "over_seconds": round(max(now - first, total), 3),
        }
        asyncio.get_running_loop().run_in_executor(None, self._safe_write, provider.name, detail)

    def _safe_write(self, provider: str, detail: dict[str, Any]) -> None:
        try:
            self._write(provider, detail)
        except Exception:
            logging.getLogger("notifier.delivery").warning(
                "provider.held_back.not_recorded", extra={"provider": provider}
            )
