"""The per-key limit holds across processes: two processes, each on its own event loop with the
asyncio Redis client, hit one key's limit at once, and together they are allowed exactly the
limit (or, with the leases intake uses, never more than it). The synchronous and the
asynchronous paths count in the same window."""

from __future__ import annotations

import asyncio
import multiprocessing
import uuid

from limits.aio.storage import RedisStorage as AsyncRedisStorage

from notifier.ratelimit import RateLimiter
from tests.services import REDIS_URL, require

RULE = "20/minute"


LEASED = "5000/minute"  # large enough to be leased: at most 50 tokens per process at a time


def _hammer(key: str, rule: str, waves: int, lease: bool, start, results) -> None:
    """``waves`` rounds of 20 concurrent hits (as an API process serves them), in one process."""
    limiter = RateLimiter(REDIS_URL)

    async def run() -> int:
        await limiter.ahit("1/second", "warm-up", key)  # connected: the race starts level
        start.wait()
        allowed = 0
        for _ in range(waves):
            verdicts = await asyncio.gather(
                *(limiter.ahit(rule, "api-key", key, lease=lease) for _ in range(20))
            )
            allowed += sum(v.allowed for v in verdicts)
        return allowed

    results.put(asyncio.run(run()))


def _two_processes(rule: str, waves: int, lease: bool) -> tuple[str, list[int]]:
    """The key both processes hammered and how many hits each was allowed."""
    require("Redis", "127.0.0.1", 6379)
    key = f"shared-{uuid.uuid4()}"
    spawn = multiprocessing.get_context("spawn")
    start, results = spawn.Barrier(2), spawn.Queue()
    workers = [
        spawn.Process(target=_hammer, args=(key, rule, waves, lease, start, results))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    allowed = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(30)
    return key, allowed


def test_two_processes_together_get_exactly_the_limit() -> None:
    key, allowed = _two_processes(RULE, waves=1, lease=False)
    # 20 tries each, 40 in all: alone, either would have been allowed 20; together they are
    # allowed 20, however the two interleaved
    assert sum(allowed) == 20, allowed
    assert RateLimiter(REDIS_URL).hit(RULE, "api-key", key).allowed is False  # sync sees it too


def test_leased_tokens_never_let_two_processes_past_the_limit() -> None:
    """With leases (intake's per-key limit), each process takes tokens from Redis a batch at a
    time: together they are never allowed more than the limit, and the tokens left unspent in
    a lease cost the other process at most one lease each (50 here)."""
    key, allowed = _two_processes(LEASED, waves=200, lease=True)
    # 4,000 tries each, 8,000 in all, against 5,000 a minute
    assert 5000 - 2 * 50 <= sum(allowed) <= 5000, allowed
    assert RateLimiter(REDIS_URL).hit(LEASED, "api-key", key).allowed is False


def test_a_key_that_sends_slowly_is_not_charged_for_unspent_leases() -> None:
    """A key sending a request now and then asks Redis for each one (no lease to waste); a
    burst leases, and what Redis counted stays within one lease of what was sent."""
    require("Redis", "127.0.0.1", 6379)
    key = f"slow-{uuid.uuid4()}"
    limiter = RateLimiter(REDIS_URL)

    asked: list[int] = []  # the cost of every hit that reached Redis

    async def run() -> int:
        storage = limiter._async_limiter()[0].storage  # the real Redis storage, only observed
        assert isinstance(storage, AsyncRedisStorage)
        acquire = storage.acquire_sliding_window_entry

        async def counted(key, limit, expiry, amount=1):
            asked.append(amount)
            return await acquire(key, limit, expiry, amount)

        storage.acquire_sliding_window_entry = counted  # type: ignore[method-assign]  # counts calls
        for _ in range(5):
            assert (await limiter.ahit(LEASED, "api-key", key, lease=True)).allowed
            await asyncio.sleep(0.3)
        sent = 5
        for _ in range(15):
            verdicts = await asyncio.gather(
                *(limiter.ahit(LEASED, "api-key", key, lease=True) for _ in range(20))
            )
            sent += sum(v.allowed for v in verdicts)
        return sent

    sent = asyncio.run(run())
    assert sent == 305
    assert asked[:5] == [1] * 5  # slow: one token at a time
    assert len(asked) < 305 / 3 and max(asked) > 1  # the burst went out in leases
    remaining = asyncio.run(_remaining(key))
    assert 5000 - 305 - 50 <= remaining <= 5000 - 305


async def _remaining(key: str) -> int:
    from limits import parse
    from limits.aio.storage import RedisStorage
    from limits.aio.strategies import SlidingWindowCounterRateLimiter

    storage = RedisStorage(REDIS_URL, implementation="redispy")
    stats = await SlidingWindowCounterRateLimiter(storage).get_window_stats(
        parse(LEASED), "api-key", key
    )
    return int(stats.remaining)


def test_a_leased_key_at_its_limit_is_refused_with_retry_after() -> None:
    require("Redis", "127.0.0.1", 6379)
    key = f"full-{uuid.uuid4()}"
    limiter = RateLimiter(REDIS_URL)

    async def run() -> list:
        verdicts = []
        for _ in range(20):
            verdicts += await asyncio.gather(
                *(limiter.ahit("300/minute", "api-key", key, lease=True) for _ in range(20))
            )
        return verdicts

    verdicts = asyncio.run(run())
    allowed = [v for v in verdicts if v.allowed]
    assert 300 - 3 <= len(allowed) <= 300  # leases of at most 3 (1% of 300)
    assert all(v.retry_after >= 1 for v in verdicts if not v.allowed)
