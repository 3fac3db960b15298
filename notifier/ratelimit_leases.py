"""Token leases: the per-key API limit shared through Redis without a round trip per request.

An API process that sees a key busy takes a small batch of that key's tokens from Redis at once
(one ``hit`` with ``cost=n`` on the shared sliding-window counter) and spends them locally; only
when they are spent, or too old, does it go back to Redis. Every token is counted in Redis before
it is spent, so all processes together are never allowed more than the limit in a window: the
shared limit still holds across processes (``tests/api/test_rate_limit_shared.py``). What leasing
changes is only who may spend a counted token:

- **At most one lease per key and process is outstanding**, of at most ``MAX_SHARE`` of the limit
  (and ``MAX_TOKENS``): a limit of 3000/minute leases at most 30 at a time, so another process
  can be refused at most 30 tokens early per process holding some. Limits under 200 per window
  are never leased (every request asks Redis, exactly as without leases).
- **A lease is sized to what the key used recently**: half of what the key's rate over the last
  lifetime would spend in a lease's lifetime, at most double the previous lease, starting from
  one token. A key sending a few requests a second asks Redis for each one, so the tokens left
  unspent when a lease expires (counted, never used) stay a small fraction of what a key sends.
- **A lease lives at most** ``LIFETIME`` **seconds** (at most a twentieth of the limit's window),
  so a leased token is spent close to the moment Redis counted it.

At most one request per key and process asks Redis at a time; the key's other requests wait for
that answer (about the round trip they would have made themselves) and spend from the lease, or
ask next. A refused lease is no verdict: the request then asks for its single token, which gives
a refusal its Retry-After as before, and for a lifetime after a refusal (a key at its limit) every
request of the key asks for its single token, side by side, exactly as without leases.

**Kept leases** (``Leases(keep=True)``) serve counts whose identifiers name a fixed window, the
daily quotas (:mod:`notifier.services.quotas`): a token counted for today is as good at noon as
at nine, so a kept lease does not expire; it is spent until empty, and the window's next day is
another key. Tokens still leased at midnight are the only ones lost, at most one lease (1 % of
the quota, at most ``MAX_TOKENS``) per process and service lane: with a quota of 500 and two
processes, at least 490 are accepted and never more than 500. Once Redis refuses a key's single
token its window is used up, which nothing but the next window undoes: the refusal is kept too,
and the key's later requests are refused without asking Redis again. Kept leases are counted
synchronously, from intake's worker threads (:meth:`notifier.ratelimit.RateLimiter.quota_hit`):
one thread asks Redis for a key while the key's other threads wait for that answer. A token
counted for a notification that could not then be stored is put back in its kept lease
(:meth:`Leases.refund`) and spent by the next hit, so a failed store costs no quota.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from dataclasses import dataclass, field

from limits import RateLimitItem

MAX_SHARE = 0.01
MAX_TOKENS = 64
LIFETIME = 1.0
MAX_KEYS = 10_000  # leases are dropped (and re-taken) beyond this many keys

Asking = asyncio.Future[None] | threading.Event  # an event loop's or a thread's wait


@dataclass
class _Lease:
    size: int = 1  # tokens of the last lease asked for
    tokens: int = 0  # unspent tokens of the current lease
    expires: float = 0.0
    started: float = field(default_factory=time.monotonic)
    arrived: int = 0  # this key's requests since ``started``
    asking: Asking | None = None  # done when Redis answers this key's request
    refused_at: float = -1e9  # when Redis last had fewer tokens left than asked
    used_up_until: float | None = None  # kept leases: the window is full until then (wall clock)


def largest_lease(item: RateLimitItem) -> int:
    """The most tokens one process may hold for ``item``: 1 (no leasing) for small limits."""
    return max(1, min(MAX_TOKENS, int(item.amount * MAX_SHARE)))


class Leases:
    """One event loop's leases (an instance per loop: no locking, the loop runs one at a time),
    or with ``keep`` a process's kept leases (callers hold :attr:`lock` around every call)."""

    def __init__(self, keep: bool = False) -> None:
        self._by_key: dict[tuple[str, ...], _Lease] = {}
        self.keep = keep
        self.lock = threading.Lock()

    def arrive(self, key: tuple[str, ...], item: RateLimitItem) -> None:
        """Count a request of ``key`` (the rate that sizes its next lease)."""
        lease = self._by_key.get(key)
        now = time.monotonic()
        if lease is None:
            if len(self._by_key) >= MAX_KEYS:
                self._by_key.clear()
            lease = self._by_key[key] = _Lease(started=now)
        elif now - lease.started > _lifetime(item):  # the rate of recent requests only
            lease.started, lease.arrived = now, 0
        lease.arrived += 1

    def refusing(self, key: tuple[str, ...], item: RateLimitItem) -> bool:
        """Whether Redis refused this key a lease within the last lifetime: the key is at its
        limit, and its requests ask for their single tokens side by side, as without leases."""
        lease = self._by_key.get(key)
        return lease is not None and time.monotonic() - lease.refused_at < _lifetime(item)

    def spend(self, key: tuple[str, ...]) -> bool:
        """Spend one leased token of ``key`` if an unexpired one is left."""
        lease = self._by_key.get(key)
        if lease is None or lease.tokens <= 0:
            return False
        if not self.keep and lease.expires <= time.monotonic():
            return False
        lease.tokens -= 1
        return True

    def holds(self, key: tuple[str, ...]) -> bool:
        """Whether the next request of ``key`` is answered from memory (a token or a used-up
        window kept): kept leases only."""
        lease = self._by_key.get(key)
        return lease is not None and (lease.tokens > 0 or self.used_up(key) is not None)

    def used_up(self, key: tuple[str, ...]) -> float | None:
        """Kept leases: when the window Redis said is full ends (epoch seconds), if it did."""
        lease = self._by_key.get(key)
        if lease is None or lease.used_up_until is None:
            return None
        if lease.used_up_until <= time.time():
            lease.used_up_until = None
            return None
        return lease.used_up_until

    def refund(self, key: tuple[str, ...]) -> None:
        """Kept leases: put back a token counted for a notification that was then not stored
        (it was counted once, so spending it again keeps the count exact)."""
        if self.keep:
            if key not in self._by_key and len(self._by_key) >= MAX_KEYS:
                self._by_key.clear()
            self._by_key.setdefault(key, _Lease()).tokens += 1

    def mark_used_up(self, key: tuple[str, ...], until: float) -> None:
        if self.keep:
            if key not in self._by_key and len(self._by_key) >= MAX_KEYS:
                self._by_key.clear()
            self._by_key.setdefault(key, _Lease()).used_up_until = until

    def asking(self, key: tuple[str, ...]) -> Asking | None:
        """The answer a request of ``key`` is waiting for from Redis, if one is."""
        lease = self._by_key.get(key)
        return lease.asking if lease is not None else None

    def begin(self, key: tuple[str, ...], item: RateLimitItem, asking: Asking | None = None) -> int:
        """How many tokens to ask Redis for now, this request's own included: half of what the
        key's recent rate would spend in a lease's lifetime, at most double the previous lease
        (1: no lease). Marks the key as asking until :meth:`granted` or :meth:`refused`; a
        thread passes the event its key's other threads wait on."""
        lease = self._by_key.get(key)
        if lease is None:  # dropped meanwhile (MAX_KEYS)
            lease = self._by_key[key] = _Lease(arrived=1)
        elapsed = time.monotonic() - lease.started
        rate = (lease.arrived - 1) / elapsed if elapsed > 0 else 0.0
        wanted = int(rate * _lifetime(item) / 2)
        lease.size = max(1, min(wanted, 2 * lease.size, largest_lease(item)))
        lease.asking = asking or asyncio.get_running_loop().create_future()
        return lease.size

    def granted(self, key: tuple[str, ...], item: RateLimitItem, tokens: int) -> None:
        """Redis counted ``tokens`` for this key: one is the asking request's, the rest leased."""
        lease = self._by_key.get(key)
        if lease is None:
            return
        _answer(lease)
        # a kept lease may have had a token refunded meanwhile: keep it
        lease.tokens = (lease.tokens if self.keep else 0) + tokens - 1
        lease.expires = math.inf if self.keep else time.monotonic() + _lifetime(item)

    def refused(self, key: tuple[str, ...]) -> None:
        """Redis had fewer tokens left than asked (or failed): start again from single tokens."""
        lease = self._by_key.get(key)
        if lease is not None:
            _answer(lease)
            lease.size, lease.tokens = 1, 0
            lease.refused_at = time.monotonic()


def _answer(lease: _Lease) -> None:
    if isinstance(lease.asking, threading.Event):
        lease.asking.set()
    elif lease.asking is not None and not lease.asking.done():
        lease.asking.set_result(None)
    lease.asking = None


def _lifetime(item: RateLimitItem) -> float:
    return min(LIFETIME, item.get_expiry() / 20)
