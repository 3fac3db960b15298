"""Group commit for intake: what concurrent requests write and publish goes out together.

A request that passed validation hands its prepared row to the :class:`GroupCommitter` and waits.
A writer thread per API process (one measured faster than two: bigger groups, less GIL
contention; see bench/README.md) takes everything that arrived while the previous group was
being written (up to ``max_items``), checks suppressions for all of it in one query, inserts
all rows and first events with one multi-row insert each, commits once, then publishes one task
per lane carrying many ids, and wakes every waiting request. Under load a request waits for at
most one group write; alone, it is written at once (no timer).

This is the way databases group commits: one transaction and one publish per group instead of
per request, which is what lifts a 2-core intake past the ~1,200 requests/s ceiling of one
transaction per request.

A row that cannot be stored fails only its own request: when a group's transaction fails, each
of its rows is written again in a transaction of its own, so the others are stored and answered
normally and only the bad one gets the error. Validation refuses what the database cannot store
(:mod:`notifier.storable`), so this fallback is for the unforeseen, not the hot path.

Waking the waiting requests: a request submitted from an event loop waits on an asyncio future
of that loop, and the writer wakes all of a group's requests on a loop with one
``call_soon_threadsafe`` (one write to the loop's wake-up pipe per group, instead of one per
request, as ``asyncio.wrap_future`` on a thread's future does). Submitted from a plain thread, a
request gets a ``concurrent.futures.Future``.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from notifier.notifications.intake import Prepared

log = logging.getLogger("notifier.intake.group_commit")


@dataclass
class _Pending:
    prepared: Prepared
    future: Future[Prepared] | asyncio.Future[Prepared]
    loop: asyncio.AbstractEventLoop | None  # the loop of an asyncio future


class GroupCommitter:
    def __init__(
        self,
        store: Callable[[list[Prepared]], None],
        publish: Callable[[list[Prepared]], None],
        max_items: int = 500,
        writers: int = 1,
    ) -> None:
        self._store = store
        self._publish = publish
        self._max_items = max_items
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._writers = writers
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def submit(self, prepared: Prepared) -> Future[Prepared] | asyncio.Future[Prepared]:
        """Queue ``prepared`` for the next group; the future resolves once it is stored and
        published (an asyncio future of the running loop, if there is one; see above)."""
        self._ensure_started()
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        future: Future[Prepared] | asyncio.Future[Prepared] = (
            loop.create_future() if loop is not None else Future()
        )
        self._queue.put(_Pending(prepared, future, loop))
        return future

    def _ensure_started(self) -> None:
        if not self._threads:
            with self._lock:
                if not self._threads:
                    for number in range(self._writers):
                        thread = threading.Thread(
                            target=self._run, name=f"intake-group-commit-{number}", daemon=True
                        )
                        thread.start()
                        self._threads.append(thread)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            while len(group) < self._max_items:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
                group.append(item)
            self._write(group)

    def _write(self, group: list[_Pending]) -> None:
        items = [p.prepared for p in group]
        started = time.perf_counter()
        try:
            self._store(items)
        except Exception as e:  # isolate: write each row on its own
            if len(group) == 1:
                _settle([(group[0], e)])
                return
            log.warning(
                "intake.group_commit.isolating",
                extra={"size": len(group), "error": type(e).__name__},
            )
            group = self._write_one_by_one(group)
            items = [p.prepared for p in group]
        stored = time.perf_counter()
        try:
            if items:
                self._publish(items)
        finally:
            _settle([(pending, None) for pending in group])
        log.debug(
            "intake.group_commit.written",
            extra={
                "size": len(group),
                "store_ms": round((stored - started) * 1000, 2),
                "publish_ms": round((time.perf_counter() - stored) * 1000, 2),
            },
        )

    def _write_one_by_one(self, group: list[_Pending]) -> list[_Pending]:
        """Each row in its own transaction; the failures get their error. Returns the stored."""
        stored: list[_Pending] = []
        failed: list[tuple[_Pending, BaseException | None]] = []
        for pending in group:
            try:
                self._store([pending.prepared])
            except Exception as e:  # this request's own error
                failed.append((pending, e))
            else:
                stored.append(pending)
        _settle(failed)
        return stored

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=10)


def _settle(outcomes: list[tuple[_Pending, BaseException | None]]) -> None:
    """Resolve each future with its prepared row, or its error: thread futures at once, asyncio
    futures with one call into each loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Pending, BaseException | None]]] = {}
    for pending, error in outcomes:
        if pending.loop is None:
            _resolve(pending, error)
        else:
            by_loop.setdefault(pending.loop, []).append((pending, error))
    for loop, on_loop in by_loop.items():
        try:
            loop.call_soon_threadsafe(_resolve_all, on_loop)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass


def _resolve_all(outcomes: list[tuple[_Pending, BaseException | None]]) -> None:
    for pending, error in outcomes:
        _resolve(pending, error)


def _resolve(pending: _Pending, error: BaseException | None) -> None:
    if pending.future.done():  # an asyncio future whose request was cancelled
        return
    if error is None:
        pending.future.set_result(pending.prepared)
    else:
        pending.future.set_exception(error)
