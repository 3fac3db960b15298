"""Publishing delivery tasks: after commit, one task per lane carrying one or more ids.

The API only needs a Celery app configured with the broker to publish; it never imports the
task code. A failed publish is logged and left to the sweeper, which re-publishes anything left
``queued`` too long: the notification is already safe in the database.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable

from celery import Celery

from notifier.logcontext import request_id_var
from notifier.tasks import DELIVER, enqueue
from providers.interface import Lane

MAX_IDS_PER_TASK = 50

log = logging.getLogger("notifier.publishing")


class Publisher:
    def __init__(self, celery_app: Celery) -> None:
        self.celery = celery_app

    def publish(
        self, items: Iterable[tuple[str, Lane | str]], countdown: float | None = None
    ) -> bool:
        """Publish (id, lane) pairs grouped per lane. Returns False if the broker refused."""
        by_lane: dict[str, list[str]] = defaultdict(list)
        for notification_id, lane in items:
            by_lane[Lane(lane).queue].append(notification_id)
        try:
            for queue, ids in by_lane.items():
                for start in range(0, len(ids), MAX_IDS_PER_TASK):
                    enqueue(
                        self.celery,
                        DELIVER,
                        [ids[start : start + MAX_IDS_PER_TASK]],
                        queue,
                        countdown=countdown,
                        headers={"request_id": request_id_var.get()},
                    )
        except Exception as e:  # any broker failure: the sweeper takes over
            ids = [i for lane_ids in by_lane.values() for i in lane_ids]
            which = {"notification_id": ids[0]} if len(ids) == 1 else {"notification_ids": ids[:20]}
            log.warning(
                "publish.failed", extra={"error": type(e).__name__, "count": len(ids), **which}
            )
            return False
        return True
