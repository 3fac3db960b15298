"""Retention of notifications and their events, and the time partitions that carry it.

The platform keeps a notification and its events for ``NOTIFIER_NOTIFICATION_RETENTION_DAYS``
(90 by default), then removes them, as part of the hourly ``purge`` (``workers/sweeper.py``):

* **PostgreSQL** (partitioned: ``notifier/db/partitions.py``): every partition of
  ``notifications`` and ``delivery_events`` whose whole range is older than the cut-off is
  dropped, a table at a time: no ``DELETE``, no dead rows for vacuum, no WAL per row. A row
  therefore lives from the retention to the retention plus one partition width. Events are
  partitioned by their own time, so the late events of a notification (retries within its TTL,
  receipts) go with the later partitions, up to that much after it. ``webhook_deliveries``
  (not partitioned) loses its rows older than the cut-off in bounded batches, oldest first.
  The hourly ``partitions`` task makes the partitions ahead (:func:`prepare_partitions`).
* **SQLite** (not partitioned, unchanged): rows older than the cut-off are deleted in bounded
  batches (:data:`CHUNK` notifications per transaction, at most :data:`MAX_BATCHES` per run, so
  one run never holds the single writer for long), their events, idempotency records and
  webhook deliveries first, and ``resend_of`` links to them cleared.

Per-service retention. A service may keep its notifications for less time than the platform
(``retention_days`` on the service; a longer value is refused by the admin API, see
``notifier/services/rules.py``). Partitions carry the platform's maximum. After the platform's
pass, every service with a shorter retention gets row-level deletes of its own rows older than
its cut-off (by service and ``created_at``, the index on both serving it), in the same bounded
batches (:data:`CHUNK` notifications with their events per transaction, at most
:data:`MAX_BATCHES` per service, per partition on PostgreSQL, per run). On PostgreSQL the
deletes go one notification partition at a time, each batch bounded to that partition's range
so that it opens only that partition (and the event partitions from its oldest row on); rows
that wait in a default partition are left to the platform's pass. Dropping a partition later
removes whatever is left, for every service. No retention on a service means the platform's.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from celery import Celery
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.sql.elements import ColumnElement

from notifier import tasks
from notifier.db import partitions
from notifier.db.models import (
    utcnow,
)
from notifier.db.session import transaction
from notifier.notifications import retention
from notifier.runtime import Runtime
from notifier.services.models import Service
from workers.task_policy import TASK_OPTIONS

log = logging.getLogger("notifier.retention")
CHUNK = 1000
MAX_BATCHES = 50


def expire_notifications(runtime: Runtime, now: datetime | None = None) -> dict[str, int]:
    """Remove the notifications (and their events) older than the platform retention."""
    cutoff = (now or utcnow()) - timedelta(days=runtime.settings.notification_retention_days)
    with runtime.engine.connect() as connection:
        partitioned = partitions.is_partitioned(connection, "notifications")
    if not partitioned:
        report = {"notifications_deleted": _delete_rows(runtime, retention.older_than(cutoff))}
    else:
        report = {
            "partitions_dropped": _drop_partitions(runtime, cutoff),
            "webhook_deliveries_deleted": _delete_old_webhook_deliveries(runtime, cutoff),
        }
    report["service_notifications_deleted"] = expire_service_rows(runtime, now, partitioned)
    return report


def shorter_retentions(runtime: Runtime) -> dict[str, int]:
    """The services that keep their notifications for less time than the platform: id -> days."""
    platform_days = runtime.settings.notification_retention_days
    with transaction(runtime.sessions) as session:
        rows = session.execute(
            select(Service.id, Service.retention_days).where(
                Service.retention_days.is_not(None),
                Service.retention_days > 0,
                Service.retention_days < platform_days,
            )
        ).all()
    return {service_id: days for service_id, days in rows if days is not None}


def expire_service_rows(
    runtime: Runtime, now: datetime | None = None, partitioned: bool = False
) -> int:
    """Delete each shorter-retention service's notifications (and events) older than its own
    cut-off; returns how many notifications went."""
    now = now or utcnow()
    ranges: list[tuple[datetime, datetime]] | None = None
    if partitioned:
        with runtime.engine.connect() as connection:
            ranges = [(p.start, p.end) for p in partitions.partitions(connection, "notifications")]
    deleted = 0
    for service_id, days in shorter_retentions(runtime).items():
        for conditions in retention.service_batches(service_id, now - timedelta(days=days), ranges):
            deleted += _delete_rows(runtime, conditions)
    if deleted:
        log.info("retention.service_notifications_deleted", extra={"count": deleted})
    return deleted


def _drop_partitions(runtime: Runtime, cutoff: datetime) -> int:
    with runtime.engine.begin() as connection:
        old = partitions.expired(connection, cutoff)
        partitions.purge_default(connection, cutoff)
    dropped = []
    for partition in old:
        try:
            with runtime.engine.begin() as connection:
                partitions.drop(connection, partition)
        except OperationalError as e:  # the lock timeout: the next run tries again
            log.warning(
                "retention.drop_postponed", extra={"partition": partition.name, "error": str(e)}
            )
            continue
        dropped.append(partition.name)
    if dropped:
        log.info("retention.partitions_dropped", extra={"partitions": dropped})
    return len(dropped)


def _delete_old_webhook_deliveries(runtime: Runtime, cutoff: datetime) -> int:
    """Oldest first by id (the primary key's order is the creation order): each batch reads the
    first ``CHUNK`` ids through the index, however large the table, and stops at the first
    batch that is not all old."""
    deleted = 0
    for _ in range(MAX_BATCHES):
        with transaction(runtime.sessions) as session:
            old = retention.old_webhook_deliveries(session, cutoff, CHUNK)
            deleted += retention.delete_webhook_deliveries(session, old)
        if len(old) < CHUNK:
            break
    return deleted


def _delete_rows(runtime: Runtime, conditions: list[ColumnElement[bool]]) -> int:
    deleted = 0
    for _ in range(MAX_BATCHES):
        with transaction(runtime.sessions) as session:
            batch = retention.delete_oldest(session, conditions, CHUNK)
        deleted += batch
        if batch < CHUNK:
            break
    if deleted:
        log.info("retention.notifications_deleted", extra={"count": deleted})
    return deleted


def prepare_partitions(runtime: Runtime, now: datetime | None = None) -> dict[str, int]:
    """Make the partitions ahead (PostgreSQL; nothing elsewhere), and say whether rows waited in
    a default partition: beat, or this task, fell behind."""
    with runtime.engine.begin() as connection:
        made = partitions.prepare(connection, runtime.settings.partition_layout, now or utcnow())
        waiting = partitions.default_rows(connection)
    if made:
        log.info("partitions.made", extra={"partitions": made})
    for table, count in waiting.items():
        if count:
            log.warning("partitions.default_not_empty", extra={"table": table, "rows": count})
    return {"made": len(made), **{f"default_rows_{t}": n for t, n in waiting.items()}}


def register(app: Celery) -> None:
    """Register the partition upkeep (the retention itself runs in ``purge``)."""
    runtime: Runtime = app.runtime

    @app.task(name=tasks.PARTITIONS, **TASK_OPTIONS)
    def partitions_task() -> dict[str, int]:
        return prepare_partitions(runtime)
