"""The threads a provider instance runs a synchronous vendor SDK on (boto3, twilio, pyfcm).

Those SDKs block, and the worker delivers on one event loop: each instance owns a pool of
``max_concurrency`` threads and awaits its SDK calls there, so many sends wait on the vendor
together without blocking the loop, and one slow vendor cannot take another's threads. One
mechanism for the four adapters that need it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class SdkThreads:
    def __init__(self, size: int, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix=name)

    async def run(self, call: Callable[[], T]) -> T:
        """``call()`` on one of the threads, awaited on the running loop."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def close(self, *, drop_waiting: bool = False) -> None:
        """Wait for the calls in flight (``drop_waiting``: never start those still queued)."""
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=drop_waiting)
