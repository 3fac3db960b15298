"""Rate limits as one shared mechanism, on the `limits` library.

Backed by Redis when ``NOTIFIER_REDIS_URL`` is set (shared by every API process and worker
machine), in memory otherwise (the embedded default). Used for: requests per API key, transactional
SMS per phone number, support sign-in attempts, and sends per provider account.

**While Redis is unreachable the limits fall back to this process's memory** (fail open to local
limits, never a 500): intake keeps accepting notifications, which is the service's first job,
and every limit still holds per process, so the shared limits become at most N times looser
with N processes for the length of the outage. Each fallback decision counts in
``notifier_rate_limit_fallbacks_total``; the first one of an outage logs
``ratelimit.storage_unavailable`` (a warning) and the first shared decision after it
``ratelimit.storage_recovered``. After a failure Redis is left alone for
``RETRY_AFTER_FAILURE`` seconds, so an outage costs one short timeout per process every few
seconds instead of one per request; connecting and each command time out after
``REDIS_TIMEOUT`` seconds.

The per-key API limit is awaited with ``lease=True``: a busy key's tokens are taken from Redis a
few at a time and spent in this process (:mod:`notifier.ratelimit_leases`), so intake does not
make a Redis round trip per request, and the limit still holds across every process. Daily
quotas are counted with :meth:`RateLimiter.quota_hit`: kept leases, taken the same way and spent
until empty, since a quota's identifiers name its day; a token whose notification was then not
stored is given back (:meth:`RateLimiter.quota_refund`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from limits import RateLimitItem, parse
from limits.aio.strategies import (
    SlidingWindowCounterRateLimiter as AsyncSlidingWindowCounterRateLimiter,
)
from limits.errors import StorageError
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

from notifier import metrics
from notifier.ratelimit_leases import Leases, largest_lease

log = logging.getLogger("notifier.ratelimit")

REDIS_TIMEOUT = 0.5
RETRY_AFTER_FAILURE = 5.0


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: float = 0.0


class RateLimiter:
    def __init__(self, redis_url: str | None = None) -> None:
        self._local = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._shared: SlidingWindowCounterRateLimiter | None = None
        if redis_url:
            storage = storage_from_string(
                redis_url,
                wrap_exceptions=True,  # every Redis failure arrives as limits' StorageError
                socket_timeout=REDIS_TIMEOUT,
                socket_connect_timeout=REDIS_TIMEOUT,
            )
            self._shared = SlidingWindowCounterRateLimiter(storage)
        self._lock = threading.Lock()
        self._shared_down_until = 0.0
        self._shared_down = False
        self._redis_url = redis_url
        self._kept = Leases(keep=True)  # quotas', shared by this process's threads
        # one asyncio client per event loop (the API's loop, a worker's delivery loop): a redis
        # asyncio connection belongs to the loop that opened it
        self._async: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[AsyncSlidingWindowCounterRateLimiter, Leases]
        ] = weakref.WeakKeyDictionary()

    @property
    def shared(self) -> bool:
        """Whether decisions are shared through Redis (and so cost a round trip)."""
        return self._shared is not None

    async def ahit(self, rule: str, *identifiers: str, lease: bool = False) -> Verdict:
        """:meth:`hit` for code on an event loop: the Redis round trip is awaited, never blocks
        the loop. Same counters, same fallback to this process's memory. ``lease``: spend
        tokens leased from Redis when this process holds some (see the module docstring)."""
        item = _parse(rule)
        if self._redis_url and time.monotonic() >= self._shared_down_until:
            limiter, leases = self._async_limiter()
            try:
                if lease:
                    verdict = await _leased(limiter, leases, item, (rule, *identifiers))
                else:
                    verdict = await _adecide(limiter, item, identifiers)
            except StorageError as e:
                self._shared_failed(e)
            else:
                self._shared_answered()
                return verdict
        if self._redis_url:
            metrics.RATE_LIMIT_FALLBACKS.inc()
        return _decide(self._local, item, identifiers)

    def _async_limiter(self) -> tuple[AsyncSlidingWindowCounterRateLimiter, Leases]:
        loop = asyncio.get_running_loop()
        limiter = self._async.get(loop)
        if limiter is None:
            if self._redis_url is None:  # callers take the in-process path without a Redis URL
                raise RuntimeError("no Redis URL for an asynchronous rate limiter")
            storage = storage_from_string(
                f"async+{self._redis_url}",
                implementation="redispy",
                wrap_exceptions=True,
                socket_timeout=REDIS_TIMEOUT,
                socket_connect_timeout=REDIS_TIMEOUT,
            )
            limiter = self._async[loop] = (AsyncSlidingWindowCounterRateLimiter(storage), Leases())
        return limiter

    def hit(self, rule: str, *identifiers: str) -> Verdict:
        """Count one event against ``rule`` (e.g. "5/10minutes") for these identifiers."""
        item = _parse(rule)
        return self._shared_or_local(
            item, identifiers, lambda shared: _decide(shared, item, identifiers)
        )

    def quota_hit(self, rule: str, *identifiers: str) -> Verdict:
        """:meth:`hit` for a count whose identifiers name its fixed window (a daily quota, the
        day among them): a busy key's tokens are leased from Redis a few at a time and kept
        until spent, and a window Redis said is full stays full here, so most hits make no
        round trip (``ratelimit_leases``, kept leases). Synchronous: call it off the loop
        unless :meth:`quota_in_memory`."""
        item = _parse(rule)
        with self._kept.lock:  # a refunded token first, whichever storage counted it
            if self._kept.spend((rule, *identifiers)):
                return Verdict(True)
        return self._shared_or_local(
            item, identifiers, lambda shared: _kept(shared, self._kept, item, (rule, *identifiers))
        )

    def quota_refund(self, rule: str, *identifiers: str) -> None:
        """Give back one allowed :meth:`quota_hit` whose notification was not stored: its token,
        counted once already, is kept in this process and spent by the next hit."""
        with self._kept.lock:
            self._kept.refund((rule, *identifiers))

    def _shared_or_local(
        self,
        item: RateLimitItem,
        identifiers: tuple[str, ...],
        shared_decision: Callable[[SlidingWindowCounterRateLimiter], Verdict],
    ) -> Verdict:
        """The shared (Redis) decision while Redis answers, else this process's own count."""
        if self._shared is not None and time.monotonic() >= self._shared_down_until:
            try:
                verdict = shared_decision(self._shared)
            except StorageError as e:
                self._shared_failed(e)
            else:
                self._shared_answered()
                return verdict
        if self._shared is not None:
            metrics.RATE_LIMIT_FALLBACKS.inc()
        return _decide(self._local, item, identifiers)

    def quota_in_memory(self, rule: str, *identifiers: str) -> bool:
        """Whether the next :meth:`quota_hit` of these is answered without a round trip (no
        Redis, or a kept token or full window in memory); another thread may spend the last
        token meanwhile, which costs that one hit its round trip."""
        if self._shared is None:
            return True
        with self._kept.lock:
            return self._kept.holds((rule, *identifiers))

    def peek(self, rule: str, *identifiers: str) -> int | None:
        """How much of ``rule`` these identifiers have used in the current window, read without
        counting (the per-service views show quota use with it); None while the shared counter
        cannot be read. Without Redis it is this process's own count."""
        item = _parse(rule)
        limiter = self._shared if self._shared is not None else self._local
        try:
            stats = limiter.get_window_stats(item, *identifiers)
        except StorageError:
            return None
        return item.amount - stats.remaining

    def _shared_failed(self, error: StorageError) -> None:
        with self._lock:
            self._shared_down_until = time.monotonic() + RETRY_AFTER_FAILURE
            first = not self._shared_down
            self._shared_down = True
        if first:
            log.warning(
                "ratelimit.storage_unavailable",
                extra={"error_type": type(error.storage_error).__name__},
            )

    def _shared_answered(self) -> None:
        if self._shared_down:
            with self._lock:
                recovered, self._shared_down = self._shared_down, False
            if recovered:
                log.info("ratelimit.storage_recovered")


@lru_cache(maxsize=256)
def _parse(rule: str) -> RateLimitItem:
    """A rule's parsed form (rules are a few settings and per-key values: parsed once each)."""
    return parse(rule)


async def _leased(
    limiter: AsyncSlidingWindowCounterRateLimiter,
    leases: Leases,
    item: RateLimitItem,
    key: tuple[str, ...],
) -> Verdict:
    """A token from this process's lease of ``key``, else from the lease another request of the
    key is asking for, else from a lease of this request's own (see ``ratelimit_leases``)."""
    if largest_lease(item) <= 1 or leases.refusing(key, item):
        return await _adecide(limiter, item, key[1:])
    leases.arrive(key, item)
    while not leases.spend(key):
        answer = leases.asking(key)
        if not isinstance(answer, asyncio.Future):  # None: no request of the key is asking
            break
        await asyncio.shield(answer)
    else:
        return Verdict(True)
    size = leases.begin(key, item)
    try:
        granted = await limiter.hit(item, *key[1:], cost=size)
    except BaseException:
        leases.refused(key)
        raise
    if granted:
        leases.granted(key, item, size)
        return Verdict(True)
    leases.refused(key)
    if size == 1:
        return await _refusal(limiter, item, key[1:])
    return await _adecide(limiter, item, key[1:])


def _kept(
    limiter: SlidingWindowCounterRateLimiter,
    leases: Leases,
    item: RateLimitItem,
    key: tuple[str, ...],
) -> Verdict:
    """:func:`_leased` for threads and kept leases: a kept token, else the answer another
    thread is asking Redis for, else a lease of this thread's own."""
    with leases.lock:
        single = largest_lease(item) <= 1 or leases.refusing(key, item)
        if not single:
            leases.arrive(key, item)
    while True:
        with leases.lock:
            if (until := leases.used_up(key)) is not None:
                return Verdict(False, retry_after=max(1.0, until - time.time()))
            if single:
                break
            if leases.spend(key):
                return Verdict(True)
            answer = leases.asking(key)
            if answer is None:
                size = leases.begin(key, item, threading.Event())
                break
        if not isinstance(answer, threading.Event) or not answer.wait(4 * REDIS_TIMEOUT):
            single = True  # the asking thread is stuck: ask for this hit's own token
    if single:
        return _kept_single(limiter, leases, item, key, 1)
    try:
        granted = limiter.hit(item, *key[1:], cost=size)
    except BaseException:
        with leases.lock:
            leases.refused(key)
        raise
    with leases.lock:
        if granted:
            leases.granted(key, item, size)
            return Verdict(True)
        leases.refused(key)
    return _kept_single(limiter, leases, item, key, 1 if size > 1 else 0)


def _kept_single(
    limiter: SlidingWindowCounterRateLimiter,
    leases: Leases,
    item: RateLimitItem,
    key: tuple[str, ...],
    cost: int,
) -> Verdict:
    """Ask for this hit's single token (``cost`` 1), or with 0 take the refusal just given;
    a refused single token means the window is full: kept until it ends (windows are aligned
    on the epoch, so a day's ends at midnight UTC)."""
    if cost and limiter.hit(item, *key[1:]):
        return Verdict(True)
    expiry = item.get_expiry()
    reset = (time.time() // expiry + 1) * expiry
    with leases.lock:
        leases.mark_used_up(key, reset)
    return Verdict(False, retry_after=max(1.0, reset - time.time()))


async def _adecide(
    limiter: AsyncSlidingWindowCounterRateLimiter, item: RateLimitItem, identifiers: tuple[str, ...]
) -> Verdict:
    if await limiter.hit(item, *identifiers):
        return Verdict(True)
    return await _refusal(limiter, item, identifiers)


async def _refusal(
    limiter: AsyncSlidingWindowCounterRateLimiter, item: RateLimitItem, identifiers: tuple[str, ...]
) -> Verdict:
    stats = await limiter.get_window_stats(item, *identifiers)
    return Verdict(False, retry_after=max(1.0, stats.reset_time - time.time()))


def _decide(
    limiter: SlidingWindowCounterRateLimiter, item: RateLimitItem, identifiers: tuple[str, ...]
) -> Verdict:
    if limiter.hit(item, *identifiers):
        return Verdict(True)
    stats = limiter.get_window_stats(item, *identifiers)
    return Verdict(False, retry_after=max(1.0, stats.reset_time - time.time()))
