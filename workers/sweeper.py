"""The safety nets celery-beat runs: nothing accepted is ever left behind.

* release scheduled notifications whose time has come;
* re-publish what stayed ``queued`` too long (a publish that failed, a broker that lost a
  message, a countdown held by a worker that died);
* recover ``sending`` rows whose worker died mid-send (back to ``queued``: the provider may or
  may not have accepted; the event says so);
* expire what passed its TTL before it could be sent;
* purge idempotency records and sealed content past their retention.

Re-publishing can put a second task for the same notification on the broker; the guarded claim
makes that harmless.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, delete, or_, select, update

from notifier.db.models import Heartbeat, IdempotencyRecord, Notification, utcnow
from notifier.db.session import transaction
from notifier.notifications import repository
from notifier.runtime import Runtime
from notifier.statuses import EventKind, Status
from workers.recording import end_overdue

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


def beat(runtime: Runtime, name: str, detail: dict | None = None) -> None:
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
        return end_overdue(session, [tuple(r) for r in rows], now)


def release_scheduled(runtime: Runtime) -> int:
    now = utcnow()
    due = [
        Notification.status == Status.SCHEDULED.value,
        or_(Notification.send_at.is_(None), Notification.send_at <= now),
        or_(Notification.not_before.is_(None), Notification.not_before <= now),
    ]
    return _requeue(runtime, due, EventKind.QUEUED, "released: its send time has come")


def recover_sending(runtime: Runtime, timeout: float) -> int:
    stuck = [
        Notification.status == Status.SENDING.value,
        Notification.claimed_at <= utcnow() - timedelta(seconds=timeout),
    ]
    return _requeue(
        runtime,
        stuck,
        EventKind.RECOVERED,
        "recovered: the worker sending it stopped without recording an answer; sending again",
    )


def _requeue(runtime: Runtime, conditions: list, kind: EventKind, detail: str) -> int:
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
    now = utcnow()
    settings = runtime.settings
    with transaction(runtime.sessions) as session:
        keys = session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.created_at
                < now - timedelta(hours=settings.idempotency_retention_hours)
            )
        ).rowcount
        content = session.execute(
            update(Notification)
            .where(
                and_(
                    Notification.created_at < now - timedelta(days=settings.content_retention_days),
                    or_(
                        Notification.content.is_not(None), Notification.sealed_content.is_not(None)
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
        ).rowcount
    return {"idempotency_keys": keys or 0, "contents": content or 0}


def _events(session, ids, kind: EventKind, status: Status, detail: str) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    repository.add_events(
        session,
        [
            {
                "notification_id": i,
                "created_at": now,
                "kind": kind.value,
                "status": status.value,
                "detail": detail,
            }
            for i in ids
        ],
    )
