"""The ceiling for delivery: a no-op Celery task on the same broker, with the same reliability
settings as ours (acks_late, no result backend). Each run counts itself in Redis so the benchmark
knows when all have run."""

from __future__ import annotations

import os

import redis
from celery import Celery

app = Celery("noop", broker=os.environ["BENCH_BROKER_URL"])
app.conf.update(
    task_acks_late=True,
    task_ignore_result=True,
    worker_prefetch_multiplier=4,
    task_serializer="json",
    accept_content=["json"],
    worker_hijack_root_logger=False,
)
_counter = redis.Redis.from_url(os.environ.get("BENCH_COUNTER_URL", "redis://127.0.0.1:6379/11"))


@app.task(name="bench.noop")
def noop(key: str) -> None:
    _counter.incr(key)
