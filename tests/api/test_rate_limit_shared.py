"""The per-key limit holds across processes: two processes, each on its own event loop with the
asyncio Redis client, hit one key's limit at once, and together they are allowed exactly the
limit. The synchronous and the asynchronous paths count in the same window."""

from __future__ import annotations

import asyncio
import multiprocessing
import uuid

from notifier.ratelimit import RateLimiter
from tests.services import REDIS_URL, require

RULE = "20/minute"


def _hammer(key: str, start, results) -> None:  # type: ignore[no-untyped-def]
    limiter = RateLimiter(REDIS_URL)

    async def run() -> int:
        await limiter.ahit("1/second", "warm-up", key)  # connected: the race starts level
        start.wait()
        verdicts = await asyncio.gather(*(limiter.ahit(RULE, "api-key", key) for _ in range(25)))
        return sum(v.allowed for v in verdicts)

    results.put(asyncio.run(run()))


def test_two_processes_together_get_exactly_the_limit() -> None:
    require("Redis", "127.0.0.1", 6379)
    key = f"shared-{uuid.uuid4()}"
    spawn = multiprocessing.get_context("spawn")
    start, results = spawn.Barrier(2), spawn.Queue()
    workers = [spawn.Process(target=_hammer, args=(key, start, results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    allowed = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(30)

    # 25 tries each, 50 in all: alone, either would have been allowed 20; together they are
    # allowed 20, however the two interleaved
    assert sum(allowed) == 20, allowed
    assert RateLimiter(REDIS_URL).hit(RULE, "api-key", key).allowed is False  # sync sees it too
