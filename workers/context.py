"""What a worker process needs to deliver: the runtime, the provider chains, the event loop.

Built lazily on first use in each worker process (after a prefork fork), so no connection or
thread crosses a fork.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from functools import cached_property
from typing import Any

from notifier.db.session import transaction
from notifier.notifications import repository
from notifier.operations import HELD_BACK_PREFIX
from notifier.provider_config import ProviderSpec, build_chains, load_chains, simulator_chains
from notifier.runtime import Runtime
from providers.interface import Lane, Message, Provider
from workers.circuit import CircuitBreaker, CircuitState
from workers.engine import DeliveryEngine
from workers.event_loop import LoopThread
from workers.retry_policy import RetryPolicy
from workers.routes import ServiceCache
from workers.sweeper import beat
from workers.throttle import HeldBackReport, ProviderThrottle


class DeliveryContext:
    def __init__(
        self,
        runtime: Runtime,
        chains: dict[Lane, list[ProviderSpec]] | None = None,
        providers: dict[Lane, list[Provider]] | None = None,
    ) -> None:
        """``chains`` overrides the providers file; ``providers`` hands in ready instances."""
        self.runtime = runtime
        self._specs = chains
        self._providers = providers
        self._lock = threading.Lock()
        self.services = ServiceCache()  # the claimed notifications' services, a few seconds

    @property
    def specs(self) -> dict[Lane, list[ProviderSpec]]:
        if self._specs is None:
            settings = self.runtime.settings
            self._specs = load_chains(settings.providers_file, settings.outbox_dir)
        return self._specs

    @cached_property
    def retry_policy(self) -> RetryPolicy:
        s = self.runtime.settings
        return RetryPolicy(
            max_attempts=s.max_attempts,
            base_seconds=s.retry_base_seconds,
            cap_seconds=s.retry_cap_seconds,
        )

    @property
    def loop(self) -> LoopThread:
        with self._lock:
            if "_loop" not in self.__dict__:
                self.__dict__["_loop"] = LoopThread()
            loop: LoopThread = self.__dict__["_loop"]
            return loop

    @property
    def engine(self) -> DeliveryEngine:
        with self._lock:
            if "_engine" not in self.__dict__:
                providers = (
                    self._providers if self._providers is not None else build_chains(self.specs)
                )
                settings = self.runtime.settings
                engine = DeliveryEngine(
                    providers,
                    timeout=settings.provider_timeout_seconds,
                    throttle=ProviderThrottle(
                        self.runtime.limiter, on_wait=HeldBackReport(self._record_held_back)
                    ),
                    breaker_factory=lambda: CircuitBreaker(
                        settings.circuit_failure_threshold, settings.circuit_cooldown_seconds
                    ),
                    simulators=build_chains(simulator_chains(settings.outbox_dir)),
                )
                engine.on_circuit_change = self._record_circuit
                engine.before_contact = self._write_ahead
                self.__dict__["_engine"] = engine
            made: DeliveryEngine = self.__dict__["_engine"]
            return made

    async def _write_ahead(self, message: Message, provider: Provider) -> None:
        """Before a provider other than the one the claim recorded is contacted (a failover),
        record it, off the event loop."""
        await asyncio.to_thread(self._write_inflight, message.notification_id, provider.name)

    def _write_inflight(self, notification_id: str, provider: str) -> None:
        with transaction(self.runtime.sessions) as session:
            repository.record_inflight(session, [notification_id], provider)

    def _record_circuit(self, provider: str, state: CircuitState) -> None:
        """Breaker changes are rare: keep the latest in the heartbeats table for /readyz and
        `notifier status` (best effort: a failure here must not disturb delivery)."""
        try:
            beat(self.runtime, f"circuit:{provider}", {"state": state.name.lower()})
        except Exception:
            logging.getLogger("notifier.delivery").warning(
                "provider.circuit.not_recorded", extra={"provider": provider}
            )

    def _record_held_back(self, provider: str, detail: dict[str, Any]) -> None:
        """The latest waits for ``provider``'s send rate, for `notifier status`."""
        beat(self.runtime, f"{HELD_BACK_PREFIX}{provider}", detail)

    def close(self) -> None:
        """Close provider connections and stop the loop; safe to call more than once."""
        with self._lock:
            engine = self.__dict__.pop("_engine", None)
            loop = self.__dict__.pop("_loop", None)
        if engine is not None and loop is not None:
            loop.run(engine.close(), timeout=10)
        if loop is not None:
            loop.stop()
