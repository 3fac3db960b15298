"""The delivery engine: try a lane's providers in order and classify what happened.

Runs on the worker's delivery event loop. It never touches the database: it takes a message and
returns an :class:`Outcome` listing every attempt, which the task records afterwards.

Failover happens only on errors that prove the message was not accepted. An error that leaves
acceptance unknown (a timeout after the request was sent) stops the chain: the retry goes to the
same provider, never blindly elsewhere, because that could send twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from notifier import metrics
from providers.interface import (
    InvalidRecipientError,
    Lane,
    Message,
    PermanentError,
    Provider,
    ProviderError,
    SendResult,
    TransientError,
)
from workers.circuit import CircuitBreaker, CircuitState
from workers.throttle import ProviderThrottle


@dataclass(frozen=True)
class Attempt:
    provider: str
    latency_ms: float
    result: SendResult | None = None
    error: ProviderError | None = None


@dataclass
class Outcome:
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def last(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def sent(self) -> Attempt | None:
        last = self.last
        return last if last is not None and last.result is not None else None

    @property
    def permanent(self) -> PermanentError | None:
        last = self.last
        return last.error if last is not None and isinstance(last.error, PermanentError) else None

    @property
    def invalid_recipient(self) -> InvalidRecipientError | None:
        error = self.permanent
        return error if isinstance(error, InvalidRecipientError) else None

    @property
    def retry_after(self) -> float | None:
        errors = [
            a.error.retry_after
            for a in self.attempts
            if a.error is not None and a.error.retry_after
        ]
        return max(errors) if errors else None

    @property
    def resume_with(self) -> str | None:
        """The provider a retry must go back to, when acceptance is unknown there."""
        last = self.last
        if last is not None and last.error is not None and last.error.accepted_unknown:
            return last.provider
        return None


class DeliveryEngine:
    def __init__(
        self, chains: dict[Lane, list[Provider]], timeout: float = 30.0, throttle: ProviderThrottle | None = None
    ) -> None:
        self.chains = chains
        self.timeout = timeout
        self.throttle = throttle
        self.on_circuit_change: Callable[[str, CircuitState], None] | None = None
        self.breakers: dict[str, CircuitBreaker] = {}
        for providers in chains.values():
            for provider in providers:
                self.breakers.setdefault(provider.name, CircuitBreaker())

    def chain_for(self, lane: Lane, resume_with: str | None = None) -> list[Provider]:
        providers = self.chains.get(lane, [])
        if resume_with:
            pinned = [p for p in providers if p.name == resume_with]
            if pinned:
                return pinned
        return providers

    async def deliver_many(self, messages: Sequence[tuple[Message, str | None]]) -> list[Outcome]:
        """Deliver concurrently under one deadline for the whole group (``timeout``): one timer,
        not one per send. Whatever has not finished by then is cancelled and recorded as a
        timeout whose acceptance is unknown if the request had been sent."""
        outcomes = [Outcome() for _ in messages]
        tasks = [asyncio.ensure_future(self.deliver(m, r, o)) for (m, r), o in zip(messages, outcomes)]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return outcomes

    async def deliver(self, message: Message, resume_with: str | None = None, outcome: Outcome | None = None) -> Outcome:
        """Try the lane's providers in order, appending each attempt to ``outcome`` as it ends
        (so a cancellation keeps what happened so far)."""
        outcome = outcome if outcome is not None else Outcome()
        chain = [p for p in self.chain_for(message.lane, resume_with) if p.serves(message)]
        if not chain:
            outcome.attempts.append(
                Attempt("none", 0.0, error=TransientError(
                    f"no provider configured for lane {message.lane} serves this message"))
            )
            return outcome
        for provider in chain:
            breaker = self.breakers[provider.name]
            if not breaker.allow():
                outcome.attempts.append(
                    Attempt(provider.name, 0.0, error=TransientError("circuit open: provider skipped", code="circuit_open"))
                )
                continue
            attempt = await self._attempt(provider, message, outcome)
            outcome.attempts.append(attempt)
            before = breaker.state
            if attempt.result is not None or isinstance(attempt.error, PermanentError):
                breaker.record_success()  # a definite answer: the provider is healthy
                self._circuit_changed(provider.name, before, breaker.state)
                return outcome
            breaker.record_failure()
            self._circuit_changed(provider.name, before, breaker.state)
            if attempt.error is not None and attempt.error.accepted_unknown:
                return outcome  # never fail over when the message may have been accepted
        return outcome

    def _circuit_changed(self, provider: str, before: CircuitState, after: CircuitState) -> None:
        if before == after:
            return
        metrics.CIRCUIT_STATE.labels(provider).set(int(after))
        log.warning("provider.circuit.changed", extra={"provider": provider, "state": after.name.lower()})
        if self.on_circuit_change is not None:
            self.on_circuit_change(provider, after)

    async def _attempt(self, provider: Provider, message: Message, outcome: Outcome) -> Attempt:
        if self.throttle is not None:
            await self.throttle.acquire(provider)  # the account's shared send rate, before the clock starts
        started = time.perf_counter()
        try:
            result = await provider.send(message)
            return Attempt(provider.name, _ms(started), result=result)
        except ProviderError as e:
            return Attempt(provider.name, _ms(started), error=e)
        except asyncio.CancelledError:
            # the group's deadline passed while this request was with the provider
            error = TransientError(f"no answer within {self.timeout:g}s", code="timeout", accepted_unknown=True)
            outcome.attempts.append(Attempt(provider.name, _ms(started), error=error))
            raise
        except Exception as e:  # noqa: BLE001 - an adapter bug must not lose the message
            error = TransientError(
                f"unexpected {type(e).__name__} in provider adapter",
                code="adapter_error",
                accepted_unknown=True,
            )
            return Attempt(provider.name, _ms(started), error=error)

    async def close(self) -> None:
        for providers in self.chains.values():
            for provider in providers:
                try:
                    await provider.close()
                except Exception:  # noqa: BLE001 - closing is best effort
                    pass


log = logging.getLogger("notifier.delivery")


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
