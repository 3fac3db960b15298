"""Starts the liveness heartbeat (``notifier.liveness``) in every worker process, as a Celery
worker bootstep, so that ``notifier worker`` and the embedded worker of ``notifier dev`` (both
build their blueprint from ``app.steps["worker"]``) get it the same way, with the queues the
worker actually consumes.

With the thread and solo pools the worker process itself runs the tasks, so it heartbeats.
With the prefork pool the tasks run in the pool's child processes, each with its own
``worker_identity()``, so each child heartbeats (started on ``worker_process_init``, stopped on
``worker_process_shutdown``) and the parent, which claims nothing, does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from celery import Celery, bootsteps, signals

from notifier.liveness import HeartbeatWriter, worker_identity

if TYPE_CHECKING:
    from celery.worker import WorkController


def install(app: Celery) -> None:
    app.steps["worker"].add(HeartbeatStep)


def writer_for(app: Celery, queues: list[str]) -> HeartbeatWriter:
    runtime = app.runtime
    return HeartbeatWriter(
        runtime.sessions, worker_identity(), queues, runtime.settings.worker_heartbeat_seconds
    )


def _consumed_queues(worker: WorkController) -> list[str]:
    return sorted(worker.app.amqp.queues.consume_from or worker.app.amqp.queues)


def _is_prefork(worker: WorkController) -> bool:
    return getattr(worker.pool_cls, "__module__", "") == "celery.concurrency.prefork"


class HeartbeatStep(bootsteps.StartStopStep):
    """Heartbeats from the worker's start until its warm shutdown has finished.

    The row is deleted on ``worker_shutdown``, which Celery sends after the blueprint stopped and
    the pool finished the tasks in flight, not when this step stops (bootsteps stop before the
    pool drains): a worker still completing sends must not look gone, or its claims would be
    recovered and sent again. A cold shutdown (tasks cut short) sends no ``worker_shutdown``: the
    row lapses and the claims are recovered, which is then right.
    """

    label = "Liveness heartbeat"

    def create(self, worker: WorkController) -> HeartbeatWriter | None:
        queues = _consumed_queues(worker)
        if _is_prefork(worker):
            _heartbeat_in_pool_children(worker.app, queues)
            return None
        writer = writer_for(worker.app, queues)

        def _stop_after_shutdown(sender: object = None, **_kwargs: object) -> None:
            if sender is worker:
                signals.worker_shutdown.disconnect(_stop_after_shutdown)
                writer.stop()

        signals.worker_shutdown.connect(_stop_after_shutdown, weak=False)
        return writer

    def stop(self, worker: WorkController) -> None:
        """Keep beating: see the class docstring."""

    def terminate(self, worker: WorkController) -> None:
        """Keep beating until the process ends; the row then lapses."""


def stop_heartbeat(worker: WorkController) -> None:
    """Delete the row of a worker whose pool has finished (the embedded worker, which ends with a
    cold shutdown after its thread joined: nothing is in flight any more)."""
    for step in getattr(worker, "steps", []):
        if isinstance(step, HeartbeatStep) and step.obj is not None:
            step.obj.stop()


def _heartbeat_in_pool_children(app: Celery, queues: list[str]) -> None:
    writers: list[HeartbeatWriter] = []

    @signals.worker_process_init.connect(weak=False)
    def _start(**_kwargs: object) -> None:
        app.runtime.engine.dispose(close=False)  # the parent's connections are not ours
        writer = writer_for(app, queues)
        writers.append(writer)
        writer.start()

    @signals.worker_process_shutdown.connect(weak=False)
    def _stop(**_kwargs: object) -> None:
        while writers:
            writers.pop().stop()
