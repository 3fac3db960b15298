"""The Celery app as the API and the workers both configure it: broker, queues, reliability.

Reliability settings: tasks are acknowledged after they ran (``acks_late``) and re-queued when a
worker process dies mid-task (``reject_on_worker_lost``); prefetch is small so a dead worker
strands little. No result backend: statuses live in our own tables.
"""

from __future__ import annotations

from celery import Celery
from kombu.entity import Queue

from notifier.config import Settings
from notifier.tasks import ALL_QUEUES


def make_celery(settings: Settings, name: str = "notifier") -> Celery:
    app = Celery(name, broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_queues=[Queue(q, routing_key=q) for q in ALL_QUEUES],
        task_default_queue="maintenance",
        task_default_routing_key="maintenance",
        task_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        result_backend=None,
        worker_prefetch_multiplier=4,
        # After a broker connection loss Celery can shrink the prefetch count and grow it back one
        # step per acknowledged task. With our thread pool that growth step (a synchronous
        # ``basic.qos``) runs on the pool thread that finished the task, while the consumer's
        # event loop reads the same AMQP connection: the two threads race on one socket, the
        # consumer stops dispatching with its prefetch full and every thread idle, until the
        # broker drops the connection (missed heartbeats, minutes later) or the frames corrupt
        # ("UnexpectedFrame"). Off, the new connection starts at the full prefetch; the tasks that
        # were running when the connection died finish, cannot be acknowledged, are redelivered,
        # and the guarded claim turns the redelivered copy into a no-op.
        worker_enable_prefetch_count_reduction=False,
        worker_hijack_root_logger=False,
        worker_consumer="workers.consumer:Consumer",  # survives a Redis broker restart (see there)
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=3,
        broker_transport_options={
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.5,
            "interval_max": 1,
            "visibility_timeout": 3600,
        },
        broker_pool_limit=64,
        task_publish_retry=True,
        task_publish_retry_policy={
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.3,
            "interval_max": 1,
        },
        timezone="UTC",
        enable_utc=True,
    )
    return app


def broker_reachable(app: Celery, timeout: float = 2.0) -> bool:
    if app.conf.broker_url.startswith("memory://"):
        return True
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)
        return True
    except Exception:  # any failure means not ready
        return False
