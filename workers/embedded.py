"""A Celery worker (and optionally beat) running on threads inside the current process.

Used by ``notifier dev`` (the embedded default: in-process broker, worker and beat) and by the
integration tests, which run a real worker against a real broker in the test process.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from celery import Celery
from celery.beat import EmbeddedService
from celery.utils.nodenames import anon_nodename
from celery.worker import WorkController, state

from workers import heartbeat

if TYPE_CHECKING:
    from celery.worker.consumer import Consumer


class _ReadyWorkController(WorkController):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.ready = threading.Event()
        super().__init__(*args, **kwargs)

    def on_consumer_ready(self, consumer: Consumer) -> None:
        self.ready.set()


@contextmanager
def embedded_worker(
    app: Celery,
    queues: Iterable[str],
    *,
    concurrency: int = 16,
    pool: str = "threads",
    beat_schedule_file: Path | None = None,
    beat_scheduler: str | None = None,
    loglevel: str = "WARNING",
    start_timeout: float = 30.0,
) -> Iterator[WorkController]:
    """Run a thread-pool worker consuming ``queues``; with ``beat_schedule_file``, also beat."""
    app.finalize()
    app.set_current()
    app.set_default()  # worker threads fall back to the default app, not this thread's current one
    worker = _ReadyWorkController(
        app=app,
        hostname=f"embedded-{os.getpid()}-{anon_nodename()}",
        pool=pool,
        concurrency=concurrency,
        queues=list(queues),
        loglevel=loglevel,
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
        ready_callback=None,
    )
    thread = threading.Thread(target=worker.start, name="embedded-worker", daemon=True)
    thread.start()
    if not worker.ready.wait(start_timeout):
        raise RuntimeError("the embedded worker did not connect to the broker in time")
    beat = None
    if beat_schedule_file is not None:
        beat_schedule_file.parent.mkdir(parents=True, exist_ok=True)
        options = {"scheduler_cls": beat_scheduler} if beat_scheduler else {}
        beat = EmbeddedService(
            app, thread=True, schedule_filename=str(beat_schedule_file), **options
        )
        beat.start()
    try:
        yield worker
    finally:
        if beat is not None:
            beat.stop()
        state.should_terminate = 0
        thread.join(30)
        state.should_terminate = None
        if not thread.is_alive():
            heartbeat.stop_heartbeat(
                worker
            )  # its pool is done: the worker may leave the liveness table
        delivery = getattr(app, "delivery", None)
        if delivery is not None:
            delivery.close()
