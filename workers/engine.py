"""The delivery engine: try a lane's providers in order and classify what happened.

Runs on the worker's delivery event loop. It never touches the database: it takes a message and
returns a :class:`DeliveryOutcome` listing every contact with a provider (an attempt) and every
provider it skipped, which the task records afterwards.

The rules it keeps:

* Failover happens only on errors that prove the message was not accepted. An error that leaves
  acceptance unknown (a timeout after the request was sent) stops the chain and *pins* the
  message to that provider: every later retry goes there only, because anywhere else could
  send twice. The pin is durable (``notifications.pinned_provider``) and survives open-circuit
  periods; only a definite answer from that provider ends it.
* An attempt is a contact with a provider. A provider skipped because its circuit breaker is
  open is not an attempt: when nothing could be contacted the message waits for the earliest
  breaker's cool-down instead of spending its retry budget.
* Breakers belong to one configured provider instance (a provider of one lane) and move only on
  provider-health signals (see :mod:`workers.circuit`).
* The chain is the message's route (:mod:`workers.routes`): the simulator for a test, the
  service's own chain, or the platform's.
* Write-ahead: the provider a message is about to be sent through is recorded before it is
  contacted. The claim records the one :meth:`DeliveryEngine.first_contact` predicts; when the
  engine is about to contact another (a failover, a breaker that changed meanwhile) it awaits
  ``before_contact`` first, and a message whose record cannot be written is not sent now.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from notifier import metrics
from providers.interface import (
    InvalidRecipientError,
    Lane,
    Message,
    PermanentError,
    Provider,
    ProviderAccountError,
    ProviderError,
    ProviderUnavailableError,
    SendResult,
    TransientError,
)
from workers.circuit import CircuitBreaker, CircuitState
from workers.routes import PLATFORM, Route
from workers.throttle import ProviderThrottle

# How long a message waits when no configured provider of its lane can carry it at all.
NO_PROVIDER_WAIT_SECONDS = 60.0
# How long it waits when the provider it was about to be sent through could not be recorded.
WRITE_AHEAD_RETRY_SECONDS = 5.0

log = logging.getLogger("notifier.delivery")


@dataclass(frozen=True)
class Attempt:
    """One contact with a provider and its answer."""

    provider: str
    latency_ms: float
    result: SendResult | None = None
    error: ProviderError | None = None


@dataclass(frozen=True)
class Skip:
    """A provider not contacted, and in how many seconds it may be tried again."""

    provider: str
    retry_in: float
    reason: str = "circuit open"


@dataclass
class DeliveryOutcome:
    pinned: str | None = None  # acceptance is unknown at this provider: retries go there only
    attempts: list[Attempt] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    pin_lost: bool = False  # the pinned provider is no longer configured for the lane
    inflight: str | None = None  # the provider recorded (write-ahead) as the one being contacted

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
    def wait_seconds(self) -> float | None:
        """When no provider was contacted because of skips: how long until one may be."""
        if self.attempts or not self.skipped:
            return None
        return min(s.retry_in for s in self.skipped)


class DeliveryEngine:
    def __init__(
        self,
        chains: dict[Lane, list[Provider]],
        timeout: float = 30.0,
        throttle: ProviderThrottle | None = None,
        breaker_factory: Callable[[], CircuitBreaker] = CircuitBreaker,
        simulators: dict[Lane, list[Provider]] | None = None,
    ) -> None:
        """``simulators``: the chain per lane of test notifications (never a real provider)."""
        self.chains = chains
        self.simulators = simulators or {}
        self.timeout = timeout
        self.throttle = throttle
        self.on_circuit_change: Callable[[str, CircuitState], None] | None = None
        self.before_contact: Callable[[Message, Provider], Awaitable[None]] | None = None
        self.breakers: dict[tuple[str, Lane], CircuitBreaker] = {
            (p.name, p.lane): breaker_factory()
            for group in (chains, self.simulators)
            for providers in group.values()
            for p in providers
        }

    def breaker(self, provider: Provider) -> CircuitBreaker:
        return self.breakers[(provider.name, provider.lane)]

    def chain_for(
        self, lane: Lane, pinned: str | None = None, route: Route = PLATFORM
    ) -> list[Provider]:
        providers = self.chains.get(lane, [])
        if route.simulate:  # the lane's own outbox when it has one (the embedded default)
            providers = [p for p in providers if p.kind == "outbox"] or self.simulators.get(
                lane, []
            )
        elif route.chain and not pinned:  # a pin is kept wherever the service's chain went since
            own = [p for name in route.chain for p in providers if p.name == name]
            providers = own or providers  # none of its providers configured: the platform's
        if pinned:
            return [p for p in providers if p.name == pinned]
        return providers

    def first_contact(
        self, message: Message, pinned: str | None = None, route: Route = PLATFORM
    ) -> str | None:
        """The provider a delivery of ``message`` would contact first, as things stand (without
        taking a breaker's trial): what the claim records as in flight."""
        for provider in self.chain_for(message.lane, pinned, route):
            if provider.serves(message) and self.breaker(provider).state != CircuitState.OPEN:
                return provider.name
        return None

    async def deliver_many(
        self,
        messages: Sequence[tuple[Message, str | None]],
        inflight: Sequence[str | None] | None = None,
        routes: Sequence[Route] | None = None,
    ) -> list[DeliveryOutcome]:
        """Deliver concurrently under one deadline for the whole group (``timeout``): one timer,
        not one per send. Whatever has not finished by then is cancelled and recorded as a
        timeout whose acceptance is unknown if the request had been sent. ``inflight`` is what
        the claim recorded for each message, ``routes`` its chain (the platform's if None)."""
        recorded = list(inflight) if inflight is not None else [None] * len(messages)
        chosen = list(routes) if routes is not None else [PLATFORM] * len(messages)
        outcomes = [
            DeliveryOutcome(pinned=pinned, inflight=first)
            for (_, pinned), first in zip(messages, recorded, strict=True)
        ]
        tasks = [
            asyncio.ensure_future(self.deliver(m, p, o, r))
            for (m, p), o, r in zip(messages, outcomes, chosen, strict=True)
        ]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return outcomes

    async def deliver(
        self,
        message: Message,
        pinned: str | None = None,
        outcome: DeliveryOutcome | None = None,
        route: Route = PLATFORM,
    ) -> DeliveryOutcome:
        """Try the lane's providers in order (only the pinned one if acceptance is unknown
        there), appending each attempt to ``outcome`` as it ends, so a cancellation keeps what
        happened so far."""
        outcome = outcome if outcome is not None else DeliveryOutcome(pinned=pinned)
        chain = self.chain_for(message.lane, pinned, route)
        if pinned and not chain:
            outcome.pin_lost = True
            return outcome
        chain = [p for p in chain if p.serves(message)]
        if not chain:
            outcome.skipped.append(Skip("none", NO_PROVIDER_WAIT_SECONDS, "no provider serves it"))
            return outcome
        for provider in chain:
            breaker = self.breaker(provider)
            if not breaker.allow():
                outcome.skipped.append(Skip(provider.name, breaker.retry_in()))
                continue
            if not await self._written_ahead(provider, message, outcome):
                breaker.release()
                return outcome
            attempt = await self._attempt(provider, message, outcome)
            outcome.attempts.append(attempt)
            if attempt.result is not None or isinstance(attempt.error, PermanentError):
                return outcome
            if attempt.error is not None and attempt.error.accepted_unknown:
                outcome.pinned = provider.name  # never fail over: it may have been accepted
                return outcome
        return outcome

    async def _written_ahead(
        self, provider: Provider, message: Message, outcome: DeliveryOutcome
    ) -> bool:
        """Make sure the record says ``provider`` is being contacted before it is."""
        if outcome.inflight == provider.name or self.before_contact is None:
            return True
        try:
            await self.before_contact(message, provider)
        except Exception:  # not recorded: not sent now, retried later
            log.warning(
                "delivery.write_ahead.failed",
                extra={"notification_id": message.notification_id, "provider": provider.name},
            )
            outcome.skipped.append(
                Skip(
                    provider.name,
                    WRITE_AHEAD_RETRY_SECONDS,
                    "the attempt could not be recorded before sending",
                )
            )
            return False
        outcome.inflight = provider.name
        return True

    async def _attempt(
        self, provider: Provider, message: Message, outcome: DeliveryOutcome
    ) -> Attempt:
        if self.throttle is not None:
            await self.throttle.acquire(
                provider
            )  # the account's shared send rate, before the clock
        started = time.perf_counter()
        try:
            result = await provider.deliver(message)
        except ProviderError as e:
            self._feedback(provider, e)
            return Attempt(provider.name, _ms(started), error=e)
        except asyncio.CancelledError:
            # the group's deadline passed while this request was with the provider
            error = ProviderUnavailableError(
                f"no answer within {self.timeout:g}s", code="timeout", accepted_unknown=True
            )
            self._feedback(provider, error)
            outcome.attempts.append(Attempt(provider.name, _ms(started), error=error))
            outcome.pinned = provider.name
            raise
        except Exception as e:  # an adapter bug must not lose the message
            self.breaker(provider).release()
            unexpected = TransientError(
                f"unexpected {type(e).__name__} in provider adapter",
                code="adapter_error",
                accepted_unknown=True,
            )
            return Attempt(provider.name, _ms(started), error=unexpected)
        self._feedback(provider, None)
        return Attempt(provider.name, _ms(started), result=result)

    def _feedback(self, provider: Provider, error: ProviderError | None) -> None:
        """Tell the provider's breaker what this answer says about its health."""
        breaker = self.breaker(provider)
        before = breaker.state
        if isinstance(error, ProviderAccountError):
            breaker.trip()
            metrics.ACCOUNT_REFUSALS.labels(provider.name, provider.lane.value).inc()
            log.error(
                "provider.account.refused",
                extra={
                    "provider": provider.name,
                    "lane": provider.lane.value,
                    "response_code": error.code,
                    "reason": error.message,
                },
            )
        elif isinstance(error, ProviderUnavailableError):
            breaker.record_failure()
        else:
            breaker.record_success()  # any other answer shows the provider is up
        after = breaker.state
        if before != after:
            self._circuit_changed(provider, after)

    def _circuit_changed(self, provider: Provider, state: CircuitState) -> None:
        metrics.CIRCUIT_STATE.labels(provider.name, provider.lane.value).set(int(state))
        log.warning(
            "provider.circuit.changed",
            extra={
                "provider": provider.name,
                "lane": provider.lane.value,
                "state": state.name.lower(),
            },
        )
        if self.on_circuit_change is not None:
            self.on_circuit_change(f"{provider.name}@{provider.lane.value}", state)

    async def close(self) -> None:
        for providers in [*self.chains.values(), *self.simulators.values()]:
            for provider in providers:
                try:
                    await provider.close()
                except Exception:  # noqa: S110 - closing is best effort
                    pass


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
