"""The safety nets celery-beat runs: nothing accepted is ever left behind.

* release scheduled notifications whose time has come;
* re-publish what stayed ``queued`` too long (a publish that failed, a broker that lost a
  message, a countdown held by a worker that died);
* recover ``sending`` rows whose worker died mid-send: within seconds when the worker's
  heartbeat lapsed (``notifier.liveness``), after ``NOTIFIER_SENDING_TIMEOUT_SECONDS`` for a
  worker that is alive but stuck; what follows depends on the write-ahead record (below);
* expire what passed its TTL before it could be sent;
* purge idempotency records and sealed content past their retention, and notifications past
  the platform's (``workers/retention.py``).

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
from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from notifier import metrics, tasks
from notifier.db.models import Heartbeat, IdempotencyRecord, Notification, utcnow
from notifier.db.session import affected, transaction
from notifier.liveness import forget_workers, lapsed_worker_ids
from notifier.notifications import repository
from notifier.notifications.rows import event
from notifier.runtime import Runtime
from notifier.statuses import EventKind, Status
from workers import retention
from workers.recording import end_overdue, unconfirmed_reason
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
        rows = session.execute(
            select(Notification.id, Notification.lane, Notification.pinned_provider)
            .where(
                Notification.status.in_([Status.SCHEDULED.value, Status.QUEUED.value]),
                Notification.expires_at <= now,
            )
            .limit(CHUNK)
        ).all()
        return end_overdue(session, [(r.id, r.lane, r.pinned_provider) for r in rows], now)


def release_scheduled(runtime: Runtime) -> int:
    now = utcnow()
    due = [
        Notification.status == Status.SCHEDULED.value,
        or_(Notification.send_at.is_(None), Notification.send_at <= now),
        or_(Notification.not_before.is_(None), Notification.not_before <= now),
    ]
    return _requeue(runtime, due, EventKind.QUEUED, "released: its send time has come")


def recover_sending(runtime: Runtime, timeout: float) -> int:
    """Take back what a stopped worker held: at once when its heartbeat has lapsed, after
    ``timeout`` otherwise (a worker that is alive but stuck). What follows depends on the
    write-ahead record (see :func:`_recover`)."""
    settings = runtime.settings
    now = utcnow()
    with transaction(runtime.sessions) as session:
        lapsed = lapsed_worker_ids(session, now, settings.worker_lapse_seconds)
    held = [Notification.status == Status.SENDING.value]
    stuck = Notification.claimed_at <= now - timedelta(seconds=timeout)
    of_the_dead = Notification.claimed_by.in_(lapsed) if lapsed else None
    recovered = _recover(
        runtime, [*held, or_(stuck, of_the_dead) if of_the_dead is not None else stuck]
    )
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
        rows = session.execute(
            select(Notification.id, Notification.lane, Notification.inflight_provider)
            .where(*conditions)
            .limit(CHUNK)
        ).all()
        fresh = [(i, lane) for i, lane, provider in rows if provider is None]
        pinned = [(i, lane, p) for i, lane, p in rows if p is not None and lane in resend_lanes]
        ended = [(i, lane, p) for i, lane, p in rows if p is not None and lane not in resend_lanes]
        publish = _requeue_fresh(session, fresh, conditions, now)
        publish += _requeue_pinned(session, pinned, conditions, now)
        _end_unconfirmed(session, ended, conditions, now)
    runtime.publisher.publish(publish)
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
            f"{unconfirmed_reason(provider)}: the worker stopped while {provider} had it, and "
            f"messages of {lane} are not resent when they may have been delivered"
        ),
        lambda provider: {
            "completed_at": now,
            "status_reason": unconfirmed_reason(provider),
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
    values: Callable[[str], dict[str, object]],
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
        lanes = dict(
            session.execute(
                select(Notification.id, Notification.lane).where(*conditions).limit(CHUNK)
            ).all()
        )
        moved = repository.move(
            session, list(lanes), Status.QUEUED, where=conditions, published_at=now, not_before=None
        )
        _events(session, moved, kind, Status.QUEUED, detail)
    runtime.publisher.publish([(i, lanes[i]) for i in moved])
    return len(moved)


def republish_stale(runtime: Runtime, stale: float) -> int:
    now = utcnow()
    cutoff = now - timedelta(seconds=stale)
    with transaction(runtime.sessions) as session:
        rows = session.execute(
            select(Notification.id, Notification.lane)
            .where(
                Notification.status == Status.QUEUED.value,
                or_(Notification.published_at.is_(None), Notification.published_at <= cutoff),
                or_(Notification.not_before.is_(None), Notification.not_before <= cutoff),
            )
            .limit(CHUNK)
        ).all()
        lanes = dict(rows)
        if lanes:
            session.execute(
                update(Notification)
                .where(Notification.id.in_(list(lanes)), Notification.status == Status.QUEUED.value)
                .values(published_at=now),
                execution_options={"synchronize_session": False},
            )
            _events(
                session,
                list(lanes),
                EventKind.REPUBLISHED,
                Status.QUEUED,
                f"re-published: still queued after {stale:g}s",
            )
    runtime.publisher.publish(list(lanes.items()))
    return len(lanes)


def purge(runtime: Runtime) -> dict[str, int]:
    """Idempotency records and content past their retention; then the notifications and events
    past the platform's (``workers/retention.py``: whole partitions on PostgreSQL)."""
    now = utcnow()
    settings = runtime.settings
    with transaction(runtime.sessions) as session:
        keys = affected(
            session.execute(
                delete(IdempotencyRecord).where(
                    IdempotencyRecord.created_at
                    < now - timedelta(hours=settings.idempotency_retention_hours)
                )
            )
        )
        content = affected(
            session.execute(
                update(Notification)
                .where(
                    and_(
                        Notification.created_at
                        < now - timedelta(days=settings.content_retention_days),
                        or_(
                            Notification.content.is_not(None),
                            Notification.sealed_content.is_not(None),
                        ),
                    ),
                    Notification.status.in_(
                        [
                            s.value
                            for s in (
                                Status.SENT,
                                Status.DELIVERED,
                                Status.FAILED,
                                Status.EXPIRED,
                                Status.SUPPRESSED,
                                Status.CANCELLED,
                            )
                        ]
                    ),
                )
                .values(content=None, sealed_content=None),
                execution_options={"synchronize_session": False},
            )
        )
    return {
        "idempotency_keys": keys or 0,
        "contents": content or 0,
        **retention.expire_notifications(runtime, now),
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
