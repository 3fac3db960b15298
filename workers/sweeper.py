"""The safety nets celery-beat runs: nothing accepted is ever left behind.

* release scheduled notifications whose time has come;
* re-publish what stayed ``queued`` too long (a publish that failed, a broker that lost a
  message, a countdown held by a worker that died);
* recover ``sending`` rows whose worker died mid-send: within seconds when the worker's
  heartbeat lapsed (``notifier.liveness``), after ``NOTIFIER_SENDING_TIMEOUT_SECONDS`` for a
  worker that is alive but stuck; what follows depends on the write-ahead record (below);
* expire what passed its TTL before it could be sent;
* purge idempotency records and sealed content past their retention, and notifications past
  the platform's (``workers/partition_upkeep.py``).

Re-publishing can put a second task for the same notification on the broker; the guarded claim
makes that harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery import Celery
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from notifier import metrics, reasons, tasks
from notifier.db.models import Heartbeat, Notification, utcnow
from notifier.db.session import transaction
from notifier.liveness import forget_workers, lapsed_worker_ids
from notifier.notifications import queries, repository, retention
from notifier.notifications.rows import event
from notifier.runtime import Runtime
from notifier.statuses import EventKind, Status
from workers import partition_upkeep
from workers.recording import end_overdue
from workers.task_policy import TASK_OPTIONS

log = logging.getLogger("notifier.sweeper")
CHUNK = 1000


@dataclass
class SweepReport:
    released: int = 0
    republished: int = 0
    recovered: int = 0
    expired: int = 0

    def as_dict(self) -> dict[str, int]:
        return self.__dict__.copy()


def sweep(
    runtime: Runtime, *, queued_stale: float | None = None, sending_timeout: float | None = None
) -> SweepReport:
    settings = runtime.settings
    report = SweepReport()
    report.expired = expire_overdue(runtime)
    report.released = release_scheduled(runtime)
    report.recovered = recover_sending(
        runtime, settings.sending_timeout_seconds if sending_timeout is None else sending_timeout
    )
    report.republished = republish_stale(
        runtime, settings.queued_stale_seconds if queued_stale is None else queued_stale
    )
    if any(report.as_dict().values()):
        log.info("sweeper.swept", extra=report.as_dict())
    beat(runtime, "sweeper", report.as_dict())
    return report


def beat(runtime: Runtime, name: str, detail: dict[str, Any] | None = None) -> None:
    """Record that a periodic job ran now."""
    with transaction(runtime.sessions) as session:
        row = session.get(Heartbeat, name)
        if row is None:
            session.add(Heartbeat(name=name, at=utcnow(), detail=detail))
        else:
            row.at, row.detail = utcnow(), detail


def expire_overdue(runtime: Runtime) -> int:
    now = utcnow()
    with transaction(runtime.sessions) as session:
        rows = queries.find(session, queries.overdue(now), CHUNK)
        return end_overdue(session, [(r.id, r.lane, r.pinned_provider) for r in rows], now)


def release_scheduled(runtime: Runtime) -> int:
    due = queries.due_for_release(utcnow())
    return _requeue(runtime, due, EventKind.QUEUED, "released: its send time has come")


def recover_sending(runtime: Runtime, timeout: float) -> int:
    """Take back what a stopped worker held: at once when its heartbeat has lapsed, after
    ``timeout`` otherwise (a worker that is alive but stuck). What follows depends on the
    write-ahead record (see :func:`_recover`)."""
    settings = runtime.settings
    now = utcnow()
    with transaction(runtime.sessions) as session:
        lapsed = lapsed_worker_ids(session, now, settings.worker_lapse_seconds)
    recovered = _recover(runtime, queries.held_sending(now - timedelta(seconds=timeout), lapsed))
    if lapsed:
        with transaction(runtime.sessions) as session:
            forget_workers(
                session, lapsed, seen_before=now - timedelta(seconds=settings.worker_lapse_seconds)
            )
    return recovered


def _recover(runtime: Runtime, conditions: list[ColumnElement[bool]]) -> int:
    """A recovered notification that was never handed to a provider goes back to ``queued``.
    One whose write-ahead record names a provider may have been sent: on the lanes of
    ``NOTIFIER_RESEND_AFTER_CRASH_LANES`` it goes back pinned to that provider (retried there
    only, with the same identity: Message-ID, apns-id), elsewhere it ends ``unconfirmed``.
    Either way the timeline says so and ``notifier_recovered_total`` counts it."""
    now = utcnow()
    resend_lanes = set(runtime.settings.resend_after_crash_lanes)
    with transaction(runtime.sessions) as session:
        found = queries.find(session, conditions, CHUNK)
        rows = [(r.id, r.lane, r.inflight_provider) for r in found]
        fresh = [(i, lane) for i, lane, provider in rows if provider is None]
        pinned = [(i, lane, p) for i, lane, p in rows if p is not None and lane in resend_lanes]
        ended = [(i, lane, p) for i, lane, p in rows if p is not None and lane not in resend_lanes]
        publish = _requeue_fresh(session, fresh, conditions, now)
        publish += _requeue_pinned(session, pinned, conditions, now)
        _end_unconfirmed(session, ended, conditions, now)
    created = {r.id: r.created_at for r in found}
    runtime.publisher.publish([(i, lane, created[i]) for i, lane in publish])
    return len(rows)


def _requeue_fresh(
    session: Session,
    rows: list[tuple[str, str]],
    conditions: Sequence[ColumnElement[bool]],
    now: datetime,
) -> list[tuple[str, str]]:
    moved = repository.move(
        session,
        [i for i, _ in rows],
        Status.QUEUED,
        where=conditions,
        published_at=now,
        not_before=None,
    )
    _events(
        session,
        moved,
        EventKind.RECOVERED,
        Status.QUEUED,
        "recovered: the worker holding it stopped before contacting a provider; sending again",
    )
    lanes = dict(rows)
    for i in moved:
        metrics.RECOVERED.labels(lanes[i], "requeued").inc()
    return [(i, lanes[i]) for i in moved]


def _requeue_pinned(
    session: Session,
    rows: list[tuple[str, str, str]],
    conditions: Sequence[ColumnElement[bool]],
    now: datetime,
) -> list[tuple[str, str]]:
    """Back to ``queued``, pinned to the provider in flight: resent there only, same identity."""
    return _recover_in_flight(
        session,
        rows,
        conditions,
        Status.QUEUED,
        "resent_pinned",
        lambda provider, _lane: (
            f"recovered: the worker stopped while sending it through {provider}, so it may "
            f"have been sent; sending again through {provider} only, with the same identity"
        ),
        lambda provider: {"published_at": now, "not_before": None, "pinned_provider": provider},
    )


def _end_unconfirmed(
    session: Session,
    rows: list[tuple[str, str, str]],
    conditions: Sequence[ColumnElement[bool]],
    now: datetime,
) -> None:
    """Ended ``unconfirmed``: a lane whose messages are never resent when they may have arrived."""
    moved = _recover_in_flight(
        session,
        rows,
        conditions,
        Status.UNCONFIRMED,
        "unconfirmed",
        lambda provider, lane: (
            f"{reasons.unconfirmed(provider).text}: the worker stopped while {provider} had it, "
            f"and messages of {lane} are not resent when they may have been delivered"
        ),
        lambda provider: {
            "completed_at": now,
            **reasons.unconfirmed(provider).columns(),
            "provider": provider,
        },
    )
    for _, lane in moved:
        metrics.UNCONFIRMED.labels(lane).inc()


def _recover_in_flight(
    session: Session,
    rows: list[tuple[str, str, str]],
    conditions: Sequence[ColumnElement[bool]],
    target: Status,
    outcome: str,
    detail: Callable[[str, str], str],
    values: Callable[[str], dict[str, Any]],
) -> list[tuple[str, str]]:
    """Move each (id, lane, provider in flight) to ``target``, counting the attempt the dead
    worker made, with a ``recovered`` event naming that provider; returns (id, lane) moved."""
    moved: list[tuple[str, str]] = []
    for notification_id, lane, provider in rows:
        if not repository.move(
            session,
            [notification_id],
            target,
            where=conditions,
            attempts=Notification.attempts + 1,
            **values(provider),
        ):
            continue
        _events(
            session,
            [notification_id],
            EventKind.RECOVERED,
            target,
            detail(provider, lane),
            provider=provider,
        )
        metrics.RECOVERED.labels(lane, outcome).inc()
        moved.append((notification_id, lane))
    return moved


def _requeue(
    runtime: Runtime, conditions: list[ColumnElement[bool]], kind: EventKind, detail: str
) -> int:
    """Move what matches ``conditions`` (re-checked in the guarded update) back to ``queued``,
    record why, and publish it after commit."""
    now = utcnow()
    with transaction(runtime.sessions) as session:
        found = {r.id: r for r in queries.find(session, conditions, CHUNK)}
        moved = repository.move(
            session,
            list(found),
            Status.QUEUED,
            where=conditions,
            created=[r.created_at for r in found.values()],
            published_at=now,
            not_before=None,
        )
        _events(session, moved, kind, Status.QUEUED, detail)
    runtime.publisher.publish([(i, found[i].lane, found[i].created_at) for i in moved])
    return len(moved)


def republish_stale(runtime: Runtime, stale: float) -> int:
    now = utcnow()
    cutoff = now - timedelta(seconds=stale)
    with transaction(runtime.sessions) as session:
        found = queries.find(session, queries.stale_queued(cutoff), CHUNK)
        if found:
            repository.mark_republished(
                session, [r.id for r in found], now, [r.created_at for r in found]
            )
            _events(
                session,
                [r.id for r in found],
                EventKind.REPUBLISHED,
                Status.QUEUED,
                f"re-published: still queued after {stale:g}s",
            )
    runtime.publisher.publish([(r.id, r.lane, r.created_at) for r in found])
    return len(found)


def purge(runtime: Runtime) -> dict[str, int]:
    """Idempotency records and content past their retention; then the notifications and events
    past the platform's (``workers/partition_upkeep.py``: whole partitions on PostgreSQL)."""
    now = utcnow()
    settings = runtime.settings
    with transaction(runtime.sessions) as session:
        keys = retention.purge_idempotency(
            session, now - timedelta(hours=settings.idempotency_retention_hours)
        )
        content = retention.purge_content(
            session, now - timedelta(days=settings.content_retention_days)
        )
    return {
        "idempotency_keys": keys,
        "contents": content,
        **partition_upkeep.expire_notifications(runtime, now),
    }


def _events(
    session: Session,
    ids: Sequence[str],
    kind: EventKind,
    status: Status,
    detail: str,
    provider: str | None = None,
) -> None:
    """``provider`` on a recovery event: the write-ahead record said a send through it may have
    happened (what the chaos benchmark counts as a recorded possible send)."""
    now = utcnow()
    repository.add_events(
        session,
        [event(i, kind, status, detail, now, provider=provider) for i in ids],
    )


def register(app: Celery) -> None:
    """Register the safety nets (``sweep``) and retention (``purge``) on ``app``."""
    runtime: Runtime = app.runtime

    @app.task(name=tasks.SWEEP, **TASK_OPTIONS)
    def sweep_task() -> dict[str, int]:
        return sweep(runtime).as_dict()

    @app.task(name=tasks.PURGE, **TASK_OPTIONS)
    def purge_task() -> dict[str, int]:
        return purge(runtime)
