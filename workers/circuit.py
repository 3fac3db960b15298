"""A circuit breaker per configured provider instance (one provider of one lane).

closed -> open after ``threshold`` provider-health failures in a row (connection refused or
reset, TLS failure, 5xx, timeout), or at once on an account-level refusal (:meth:`trip`);
open -> half-open after ``cooldown`` seconds, when exactly one trial request is let through;
the trial's healthy answer closes it, its failure opens it again.

Only health signals move it. Any answer that shows the provider is up — sent, a refusal of one
recipient, a message-level transient, throttling — counts as healthy; throttling is paced by
Retry-After and the shared send rate instead.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable


class CircuitState(enum.IntEnum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    def __init__(
        self,
        threshold: int = 5,
        cooldown: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False
        self._lock = threading.Lock()

    @property
    def state(self) -> CircuitState:
        if self._opened_at is None:
            return CircuitState.CLOSED
        if self._clock() - self._opened_at >= self.cooldown:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def retry_in(self) -> float:
        """Seconds until a trial request may go through (0 when one may go now)."""
        with self._lock:
            if self._opened_at is None:
                return 0.0
            return max(0.0, self._opened_at + self.cooldown - self._clock())

    def allow(self) -> bool:
        with self._lock:
            state = self.state
            if state == CircuitState.CLOSED:
                return True
            if state == CircuitState.HALF_OPEN and not self._probing:
                self._probing = True
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._probing = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._probing or self._failures >= self.threshold:
                self._opened_at = self._clock()
            self._probing = False

    def trip(self) -> None:
        """Open now: the provider refused our account, so every other message would fail too."""
        with self._lock:
            self._failures = max(self._failures, self.threshold)
            self._opened_at = self._clock()
            self._probing = False

    def release(self) -> None:
        """An answer that says nothing either way (an adapter bug): let the next trial through."""
        with self._lock:
            self._probing = False
