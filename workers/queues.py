"""The one place that lists every Celery queue. Lanes are queues; so are the service queues."""

from __future__ import annotations

from providers.interface import Lane

LANE_QUEUES: tuple[str, ...] = tuple(lane.queue for lane in Lane)

CAMPAIGNS = "campaigns"
RECEIPTS = "receipts"
WEBHOOKS = "webhooks"
MAINTENANCE = "maintenance"
SERVICE_QUEUES: tuple[str, ...] = (CAMPAIGNS, RECEIPTS, WEBHOOKS, MAINTENANCE)

ALL_QUEUES: tuple[str, ...] = LANE_QUEUES + SERVICE_QUEUES
