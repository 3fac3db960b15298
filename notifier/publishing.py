"""Publishing delivery tasks: after commit, one task per lane carrying one or more ids.

The API only needs a Celery app configured with the broker to publish; it never imports the
task code. A failed publish is logged and left to the sweeper, which re-publishes anything left
``queued`` too long: the notification is already safe in the database.

The task's arguments are ``(ids, created)``: ``created`` lists the notifications' ``created_at``
(ISO 8601) when every one of them is known, so the worker's claim reads only the partitions
holding them (:mod:`notifier.notifications.by_id`); otherwise the task carries the ids alone, as
tasks published before this argument existed do, and the claim names ids only. Deploy workers
before the API: an older worker does not take the second argument.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime

from celery import Celery

from notifier.logcontext import request_id_var
from notifier.tasks import DELIVER, enqueue
from providers.interface import Lane

MAX_IDS_PER_TASK = 50

# (id, lane) or (id, lane, created_at): what is published for one notification
Publishable = tuple[str, Lane | str] | tuple[str, Lane | str, datetime | None]

log = logging.getLogger("notifier.publishing")


def delivery_args(ids: Sequence[str], created: Sequence[datetime | None]) -> list[object]:
    """The delivery task's arguments: the ids, and their ``created_at`` if all are known."""
    if created and all(c is not None for c in created):
        return [list(ids), [c.isoformat() for c in created if c is not None]]
    return [list(ids)]


def created_hint(created: Sequence[str] | None) -> frozenset[datetime] | None:
    """The ``created_at`` values a delivery task carries, or None (absent or unreadable: the
    claim then names ids only)."""
    if not created:
        return None
    try:
        return frozenset(datetime.fromisoformat(c) for c in created)
    except (TypeError, ValueError):
        log.warning("publish.hint_unreadable", extra={"count": len(created)})
        return None


class Publisher:
    def __init__(self, celery_app: Celery) -> None:
        self.celery = celery_app

    def publish(self, items: Iterable[Publishable], countdown: float | None = None) -> bool:
        """Publish notifications grouped per lane (up to ``MAX_IDS_PER_TASK`` a task), with
        their ``created_at`` where given. Returns False if the broker refused."""
        by_lane: dict[str, list[tuple[str, datetime | None]]] = defaultdict(list)
        for item in items:
            created = item[2] if len(item) == 3 else None
            by_lane[Lane(item[1]).queue].append((item[0], created))
        try:
            for queue, pairs in by_lane.items():
                for start in range(0, len(pairs), MAX_IDS_PER_TASK):
                    chunk = pairs[start : start + MAX_IDS_PER_TASK]
                    enqueue(
                        self.celery,
                        DELIVER,
                        delivery_args([i for i, _ in chunk], [c for _, c in chunk]),
                        queue,
                        countdown=countdown,
                        headers={"request_id": request_id_var.get()},
                    )
        except Exception as e:  # any broker failure: the sweeper takes over
            ids = [i for pairs in by_lane.values() for i, _ in pairs]
            which = {"notification_id": ids[0]} if len(ids) == 1 else {"notification_ids": ids[:20]}
            log.warning(
                "publish.failed", extra={"error": type(e).__name__, "count": len(ids), **which}
            )
            return False
        return True
