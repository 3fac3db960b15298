"""The delivery task: claim, send through the lane's providers, record.

A task carries one or more notification ids of one lane, and usually their ``created_at``, so
that on PostgreSQL each statement by id reads only the partitions holding them
(:mod:`notifier.notifications.by_id`; from the claim on, the rows' own values are used). It

1. reads the rows still ``queued`` and due, with what the sends need (each row's service: its
   sender, its chain, or the simulator for a test, :mod:`workers.routes`), and decides for
   each the provider it is about to be sent through, or that it ends here (expired, or
   suppressed since intake);
2. claims them with one guarded update per provider (``queued -> sending``, only if due and
   unchanged since the read), so a task delivered twice by the broker sends once. The claim is
   the write-ahead record: it names the worker process (``claimed_by``, whose heartbeat the
   sweeper watches) and the provider each message is about to be sent through
   (``inflight_provider``), so that if the worker dies mid-send, recovery knows a send may have
   happened, and where. Deciding before claiming makes the claim and the write-ahead record
   one row version instead of two (bench/README.md). The rows that end are claimed with no
   provider and ended in the same transaction; then the database connection is released and
   the rest are sent concurrently on the worker's delivery event loop;
3. records every attempt and the resulting status in one transaction, then publishes retries.
   While the database is away the results are held and the write retried (with a metric), for
   up to ``NOTIFIER_RECORD_RETRY_SECONDS``: an acceptance is never forgotten because one write
   failed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from celery import Celery
from sqlalchemy.orm import Session

from notifier import reasons, tasks
from notifier.db.models import Notification, utcnow
from notifier.db.session import transaction
from notifier.liveness import worker_identity
from notifier.notifications import queries, repository
from notifier.notifications.by_id import Hint
from notifier.notifications.rows import event
from notifier.publishing import created_hint
from notifier.services.snapshot import ServiceSnapshot
from notifier.statuses import EventKind, Status
from notifier.suppressions import blocking_suppression
from providers.interface import Category, Lane, Message
from workers.context import DeliveryContext
from workers.engine import DeliveryOutcome
from workers.messages import build_message
from workers.recording import end_overdue, record_durably
from workers.routes import Route, route_of, services_of
from workers.task_policy import TASK_OPTIONS

log = logging.getLogger("notifier.delivery")


@dataclass
class Job:
    id: str
    lane: str
    channel: str
    recipient: str
    attempts: int
    expires_at: datetime | None
    created_at: datetime
    pinned_provider: str | None
    inflight_provider: str | None
    message: Message
    route: Route


def deliver_ids(ctx: DeliveryContext, ids: Sequence[str], created: Hint = None) -> None:
    jobs = claim(ctx, ids, created)
    if not jobs:
        return
    outcomes = ctx.loop.run(_send_all(ctx, jobs))
    retries = record_durably(ctx, jobs, outcomes)
    created_of = {j.id: j.created_at for j in jobs}
    for notification_id, lane, delay in retries:
        ctx.runtime.publisher.publish(
            [(notification_id, lane, created_of[notification_id])], countdown=delay
        )


async def _send_all(ctx: DeliveryContext, jobs: list[Job]) -> list[DeliveryOutcome]:
    return await ctx.engine.deliver_many(
        [(j.message, j.pinned_provider) for j in jobs],
        [j.inflight_provider for j in jobs],
        [j.route for j in jobs],
    )


def claim(ctx: DeliveryContext, ids: Sequence[str], created: Hint = None) -> list[Job]:
    now = utcnow()
    with transaction(ctx.runtime.sessions) as session:
        rows = queries.by_ids(session, ids, created, where=queries.queued_and_claimable(now))
        expired = {r.id for r in rows if r.expires_at is not None and r.expires_at <= now}
        blocked = _suppressed(session, [r for r in rows if r.id not in expired])
        sendable = [r for r in rows if r.id not in expired and r.id not in blocked]
        services = services_of(session, sendable, ctx.services) if sendable else {}
        jobs = [_job(ctx, row, services.get(row.id)) for row in sendable]
        claimed = _claim(session, rows, {j.id: j.inflight_provider for j in jobs}, now)
        if len(claimed) < len(ids):
            log.info("delivery.claim.skipped", extra={"skipped": len(ids) - len(claimed)})
        _end_expired(session, [r for r in rows if r.id in expired and r.id in claimed], now)
        _end_suppressed(session, {i: r for i, r in blocked.items() if i in claimed}, rows, now)
        return [j for j in jobs if j.id in claimed]


def _claim(
    session: Session, rows: list[Notification], first_contact: dict[str, str | None], now: datetime
) -> set[str]:
    """The guarded claim and write-ahead record, one update per provider about to be contacted
    (usually one per task; rows that end here have none). Returns the ids claimed."""
    groups: dict[tuple[str | None, int, str | None], list[Notification]] = {}
    for row in rows:
        key = (first_contact.get(row.id), row.attempts, row.pinned_provider)
        groups.setdefault(key, []).append(row)
    claimed: set[str] = set()
    for (provider, attempts, pinned), held in groups.items():
        moved = repository.move(
            session,
            [r.id for r in held],
            Status.SENDING,
            where=[*queries.claimable(now), *queries.unchanged_since_read(attempts, pinned)],
            created=[r.created_at for r in held],
            claimed_at=now,
            claimed_by=worker_identity(),
            inflight_provider=provider,
        )
        claimed.update(moved)
    return claimed


def _job(ctx: DeliveryContext, row: Notification, service: ServiceSnapshot | None) -> Job:
    """The message as the row's service sends it (its sender, its chain or the simulator)."""
    lane = Lane(row.lane)
    message = build_message(row, ctx.runtime.sealer, service.sender(lane) if service else None)
    route = route_of(row, service)
    return Job(
        id=row.id,
        lane=row.lane,
        channel=row.channel,
        recipient=row.recipient,
        attempts=row.attempts,
        expires_at=row.expires_at,
        created_at=row.created_at,
        pinned_provider=row.pinned_provider,
        inflight_provider=ctx.engine.first_contact(message, row.pinned_provider, route),
        message=message,
        route=route,
    )


def _end_expired(session: Session, rows: list[Notification], now: datetime) -> None:
    if rows:
        end_overdue(session, [(r.id, r.lane, r.pinned_provider) for r in rows], now)


def _suppressed(session: Session, rows: list[Notification]) -> dict[str, str]:
    """The rows suppressed since intake: id -> the suppression's reason."""
    found = repository.active_suppressions(session, [(r.channel, r.recipient) for r in rows])
    blocked: dict[str, str] = {}
    if not found:
        return blocked
    for row in rows:
        suppression = blocking_suppression(
            found, row.channel, row.recipient, Category(row.category), row.service_id
        )
        if suppression is not None:
            blocked[row.id] = suppression.reason
    return blocked


def _end_suppressed(
    session: Session, blocked: dict[str, str], rows: list[Notification], now: datetime
) -> None:
    if not blocked:
        return
    created_of = {r.id: r.created_at for r in rows}
    for notification_id, reason in blocked.items():
        repository.move(
            session,
            [notification_id],
            Status.SUPPRESSED,
            created=[created_of[notification_id]],
            completed_at=now,
            **reasons.suppressed(reason).columns(),
        )
    repository.add_events(
        session,
        [
            event(
                i,
                EventKind.SUPPRESSED,
                Status.SUPPRESSED,
                f"not sent: the recipient is suppressed ({reason})",
                now,
            )
            for i, reason in blocked.items()
        ],
    )


def register(app: Celery) -> None:
    """Register the delivery task on ``app``, bound to its delivery context."""
    delivery: DeliveryContext = app.delivery

    @app.task(name=tasks.DELIVER, **TASK_OPTIONS)
    def deliver(ids: list[str], created: list[str] | None = None) -> None:
        deliver_ids(delivery, ids, created_hint(created))
