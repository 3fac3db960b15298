"""The worker's Celery app: the shared broker configuration plus our tasks, beat schedule and
the delivery context, passed explicitly (``app.runtime``, ``app.delivery``)."""

from __future__ import annotations

from typing import Any

from celery import Celery

from notifier import tasks
from notifier.broker import make_celery
from notifier.config import Settings
from notifier.provider_config import ProviderSpec
from notifier.runtime import Runtime
from providers.interface import Lane, Provider
from workers import (
    campaigns,
    delivery,
    heartbeat,
    partition_upkeep,
    receipts,
    request_ids,
    sweeper,
    webhook_delivery,
)
from workers.context import DeliveryContext


def create_worker_app(
    settings: Settings,
    *,
    chains: dict[Lane, list[ProviderSpec]] | None = None,
    providers: dict[Lane, list[Provider]] | None = None,
    pool_size: int | None = None,
) -> Celery:
    app = make_celery(settings)
    runtime = Runtime.build(settings, celery=app, pool_size=pool_size, kind="worker")
    app.runtime = runtime
    request_ids.install()
    app.delivery = DeliveryContext(runtime, chains, providers)
    for module in (delivery, sweeper, partition_upkeep, receipts, webhook_delivery, campaigns):
        module.register(app)
    app.conf.beat_schedule = beat_schedule(settings)
    heartbeat.install(app)  # every worker process built on this app heartbeats (notifier.liveness)
    return app


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    return {
        "sweep": {
            "task": tasks.SWEEP,
            "schedule": settings.sweep_interval_seconds,
            "options": {
                "queue": tasks.MAINTENANCE,
                "expires": settings.sweep_interval_seconds * 2,
            },
        },
        "purge": {
            "task": tasks.PURGE,
            "schedule": 3600.0,
            "options": {"queue": tasks.MAINTENANCE, "expires": 1800},
        },
        "partitions": {  # PostgreSQL: partitions made ahead; elsewhere it does nothing
            "task": tasks.PARTITIONS,
            "schedule": 3600.0,
            "options": {"queue": tasks.MAINTENANCE, "expires": 1800},
        },
        "webhooks": {
            "task": tasks.WEBHOOKS_DISPATCH,
            "schedule": 2.0,
            "options": {"queue": tasks.WEBHOOKS, "expires": 10},
        },
        "campaigns-resume-stalled": {
            "task": tasks.CAMPAIGNS_RESUME_STALLED,
            "schedule": 60.0,
            "options": {"queue": tasks.CAMPAIGNS, "expires": 60},
        },
        "campaigns-settle": {
            "task": tasks.CAMPAIGNS_SETTLE,
            "schedule": settings.sweep_interval_seconds,
            "options": {"queue": tasks.CAMPAIGNS, "expires": settings.sweep_interval_seconds * 2},
        },
    }
