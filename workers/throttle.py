"""Per-provider-account send rates, shared by every worker on every machine.

A provider's rate comes from its ``rate_limit`` option in the providers file (``limits``
notation, e.g. ``"100/second"``) or else that option's default in its type's option schema
(Twilio's or SES's default account MPS). The count lives in the shared rate-limit storage (Redis
in production), keyed by the provider's configured name, so ten workers together respect it.
A send over the rate waits on the event loop until the window allows it; it is never failed.
The time waited is counted in ``notifier_provider_rate_wait_seconds_total{provider,lane}``: a
lane held back by its provider's rate shows there (and in the dashboard), not as an error.
"""

from __future__ import annotations

import asyncio
import random

from notifier import metrics
from notifier.ratelimit import RateLimiter
from providers.interface import Provider


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
    def __init__(self, limiter: RateLimiter, max_wait_step: float = 1.0) -> None:
        self.limiter = limiter
        self.max_wait_step = max_wait_step

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
                return waited
            pause = min(verdict.retry_after, self.max_wait_step) * random.uniform(0.5, 1.0)  # noqa: S311 - jitter
            await asyncio.sleep(pause)
            waited += pause
