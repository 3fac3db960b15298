"""The worker's Celery app: the shared broker configuration plus our tasks, beat schedule and
the delivery context, passed explicitly (``app.runtime``, ``app.delivery``)."""

from __future__ import annotations

from typing import Any

from celery import Celery

from notifier.broker import make_celery
from notifier.config import Settings
from notifier.runtime import Runtime
from providers.interface import Lane, Provider
from workers import campaigns, heartbeat, log_context, queues, receipts, sweeper, webhooks
from workers.context import DeliveryContext
from workers.delivery import deliver_ids
from workers.provider_config import ProviderSpec
from workers.task_policy import TASK_OPTIONS


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
    log_context.install()
    app.delivery = DeliveryContext(runtime, chains, providers)
    _register_tasks(app)
    for module in (receipts, webhooks, campaigns):
        module.register(app)
    app.conf.beat_schedule = beat_schedule(settings)
    heartbeat.install(app)  # every worker process built on this app heartbeats (notifier.liveness)
    return app


def _register_tasks(app: Celery) -> None:
    delivery: DeliveryContext = app.delivery

    @app.task(name="notifier.deliver", **TASK_OPTIONS)
    def deliver(ids: list[str]) -> None:
        deliver_ids(delivery, ids)

    @app.task(name="notifier.sweep", **TASK_OPTIONS)
    def sweep() -> dict[str, int]:
        return sweeper.sweep(delivery.runtime).as_dict()

    @app.task(name="notifier.purge", **TASK_OPTIONS)
    def purge() -> dict[str, int]:
        return sweeper.purge(delivery.runtime)


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    return {
        "sweep": {
            "task": "notifier.sweep",
            "schedule": settings.sweep_interval_seconds,
            "options": {
                "queue": queues.MAINTENANCE,
                "expires": settings.sweep_interval_seconds * 2,
            },
        },
        "purge": {
            "task": "notifier.purge",
            "schedule": 3600.0,
            "options": {"queue": queues.MAINTENANCE, "expires": 1800},
        },
        "webhooks": {
            "task": "notifier.webhooks.dispatch",
            "schedule": 2.0,
            "options": {"queue": queues.WEBHOOKS, "expires": 10},
        },
        "campaigns-resume-stalled": {
            "task": campaigns.RESUME_STALLED,
            "schedule": 60.0,
            "options": {"queue": queues.CAMPAIGNS, "expires": 60},
        },
        "campaigns-settle": {
            "task": campaigns.SETTLE,
            "schedule": settings.sweep_interval_seconds,
            "options": {"queue": queues.CAMPAIGNS, "expires": settings.sweep_interval_seconds * 2},
        },
    }
