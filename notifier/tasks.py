"""Every Celery queue and task name, and the one way to enqueue a task.

The API, the campaign runner and the workers all publish tasks, and only the workers define
them; the names live here, below both, so ``notifier/`` never imports ``workers/`` to publish
and a name is never written twice. Lanes are queues; so are the service queues.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from celery import Celery

from providers.interface import Lane

# ----------------------------------------------------------------------------- queues

LANE_QUEUES: tuple[str, ...] = tuple(lane.queue for lane in Lane)

CAMPAIGNS = "campaigns"
RECEIPTS = "receipts"
WEBHOOKS = "webhooks"
MAINTENANCE = "maintenance"
SERVICE_QUEUES: tuple[str, ...] = (CAMPAIGNS, RECEIPTS, WEBHOOKS, MAINTENANCE)

ALL_QUEUES: tuple[str, ...] = LANE_QUEUES + SERVICE_QUEUES

# ----------------------------------------------------------------------------- task names

DELIVER = "notifier.deliver"  # on the notification's lane queue
SWEEP = "notifier.sweep"  # the safety nets, on MAINTENANCE
PURGE = "notifier.purge"  # retention, on MAINTENANCE
PARTITIONS = "notifier.partitions"  # time partitions made ahead (PostgreSQL), on MAINTENANCE
RECEIPTS_APPLY = "notifier.receipts.apply"  # a list of receipt payloads, on RECEIPTS
WEBHOOKS_DISPATCH = "notifier.webhooks.dispatch"  # beat: hand due webhooks out, on WEBHOOKS
WEBHOOKS_SEND = "notifier.webhooks.send"  # a list of webhook delivery ids, on WEBHOOKS
CAMPAIGNS_FIRE = "notifier.campaigns.fire"  # celery-beat's per-campaign entry
CAMPAIGNS_RUN = "notifier.campaigns.run"  # one run's fan-out, on CAMPAIGNS
CAMPAIGNS_RESUME_STALLED = "notifier.campaigns.resume_stalled"
CAMPAIGNS_SETTLE = "notifier.campaigns.settle"


def enqueue(
    celery: Celery,
    name: str,
    args: Sequence[Any],
    queue: str,
    *,
    countdown: float | None = None,
    headers: dict[str, Any] | None = None,
) -> None:
    """Publish task ``name`` on ``queue`` (routed by the queue's name). Broker errors propagate:
    each caller decides what a refused publish means (left to the sweeper, a 503, a retry)."""
    celery.send_task(
        name,
        args=list(args),
        queue=queue,
        routing_key=queue,
        countdown=countdown,
        headers=headers,
    )
