"""Read queries on notifications that the workers and the safety nets run.

The sweeper, the delivery claim, receipts and campaign runs each need "the notifications in
this state": what is due, what is overdue, what a dead worker held. Those selections live here,
as conditions (so a guarded :func:`notifier.notifications.repository.move` can re-check the very
same conditions when it changes the rows) and as :func:`find`, the one way to read the
(id, lane, providers) of what matches. Listing for people (the API, the support search) is in
:mod:`notifier.notifications.listing`; writes and status moves are in
:mod:`notifier.notifications.repository`. Every query goes through the models, so it survives a
change of the tables' physical layout.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.elements import ColumnElement

from notifier.db.models import Notification
from notifier.notifications import by_id
from notifier.statuses import Status

Conditions = list[ColumnElement[bool]]


class Found(NamedTuple):
    """What the safety nets need of a notification to move and re-publish it."""

    id: str
    lane: str
    pinned_provider: str | None
    inflight_provider: str | None
    created_at: datetime  # the partition key: what a re-published task carries


def find(session: Session, where: Sequence[ColumnElement[bool]], limit: int | None) -> list[Found]:
    """At most ``limit`` (None: every) notifications matching ``where``, in no particular
    order."""
    stmt = select(
        Notification.id,
        Notification.lane,
        Notification.pinned_provider,
        Notification.inflight_provider,
        Notification.created_at,
    ).where(*where)
    return [Found(*row) for row in session.execute(stmt.limit(limit))]


def to_recipients(session: Session, recipients: Iterable[str]) -> list[Found]:
    """Every notification sent to any of these (stored, normalised) recipients."""
    return find(session, [Notification.recipient.in_(list(recipients))], None)


def by_ids(
    session: Session,
    ids: Sequence[str],
    created: by_id.Hint = None,
    where: Sequence[ColumnElement[bool]] = (),
) -> list[Notification]:
    """The rows of these notifications (those that exist and match ``where``), loaded whole;
    ``created``: their created_at values when known (:mod:`notifier.notifications.by_id`)."""
    if not ids:
        return []
    stmt = select(Notification).where(*by_id.conditions(session, ids, created), *where)
    return list(session.scalars(stmt))


def by_provider_message_id(session: Session, provider_message_id: str) -> list[Notification]:
    """Every notification a provider knows by this message id (a receipt names it so)."""
    stmt = select(Notification).where(Notification.provider_message_id == provider_message_id)
    return list(session.scalars(stmt))


def status_of(
    session: Session, notification_id: str, created_at: datetime | None = None
) -> str | None:
    """The current status as stored now (not as loaded earlier in the session)."""
    hint = [created_at] if created_at is not None else None
    where = by_id.conditions(session, [notification_id], hint)
    return session.scalar(select(Notification.status).where(*where))


def resends_of(session: Session, notification_id: str) -> list[str]:
    """The ids of the resends support made of this notification, oldest first."""
    stmt = (
        select(Notification.id)
        .where(Notification.resend_of == notification_id)
        .order_by(Notification.created_at)
    )
    return list(session.scalars(stmt))


def statuses_of(session: Session, ids: Sequence[str]) -> dict[str, str]:
    """The current status of each of these notifications that exists."""
    if not ids:
        return {}
    stmt = select(Notification.id, Notification.status).where(Notification.id.in_(list(ids)))
    return {i: status for i, status in session.execute(stmt)}


def _due(column: InstrumentedAttribute[datetime | None], now: datetime) -> ColumnElement[bool]:
    return or_(column.is_(None), column <= now)


def overdue(now: datetime) -> Conditions:
    """Not yet sent (scheduled or queued) and past its TTL."""
    return [
        Notification.status.in_([Status.SCHEDULED.value, Status.QUEUED.value]),
        Notification.expires_at <= now,
    ]


def due_for_release(now: datetime) -> Conditions:
    """Scheduled, and both its send time and any deferral (``not_before``) have come."""
    return [
        Notification.status == Status.SCHEDULED.value,
        _due(Notification.send_at, now),
        _due(Notification.not_before, now),
    ]


def held_sending(claimed_before: datetime, lapsed_workers: Sequence[str]) -> Conditions:
    """``sending`` and claimed before ``claimed_before`` (a stuck worker) or by one of the
    ``lapsed_workers`` (a dead one)."""
    stuck = Notification.claimed_at <= claimed_before
    held = (
        or_(stuck, Notification.claimed_by.in_(list(lapsed_workers))) if lapsed_workers else stuck
    )
    return [Notification.status == Status.SENDING.value, held]


def stale_queued(cutoff: datetime) -> Conditions:
    """``queued``, last published (and any deferral ended) before ``cutoff``."""
    return [
        Notification.status == Status.QUEUED.value,
        _due(Notification.published_at, cutoff),
        _due(Notification.not_before, cutoff),
    ]


def claimable(now: datetime) -> Conditions:
    """What a worker may claim besides the status guard: no deferral still running."""
    return [_due(Notification.not_before, now)]


def queued_and_claimable(now: datetime) -> Conditions:
    """What a worker loads to claim: still ``queued``, and :func:`claimable`."""
    return [Notification.status == Status.QUEUED.value, *claimable(now)]


def unchanged_since_read(attempts: int, pinned_provider: str | None) -> Conditions:
    """A claim's guard that the row is as the worker read it: no other send attempted or pinned
    it in between (a claim decided on a stale read would send the wrong attempt, or through an
    unpinned provider)."""
    pinned = (
        Notification.pinned_provider.is_(None)
        if pinned_provider is None
        else Notification.pinned_provider == pinned_provider
    )
    return [Notification.attempts == attempts, pinned]


def of_run_due(run_id: str, now: datetime) -> Conditions:
    """A campaign run's scheduled notifications whose time has come and that nothing holds
    (a pause or quiet hours set ``not_before``)."""
    return [
        Notification.reference == run_id,
        Notification.status == Status.SCHEDULED.value,
        Notification.not_before.is_(None),
        _due(Notification.send_at, now),
    ]


def of_runs(run_ids: Sequence[str]) -> Conditions:
    """The notifications of these campaign runs (a run's id is its notifications' reference)."""
    return [Notification.reference.in_(list(run_ids))]


def held(marker: datetime, *, is_held: bool = True) -> ColumnElement[bool]:
    """Held by a paused campaign (``not_before`` is the pause's ``marker``), or not."""
    if is_held:
        return Notification.not_before == marker
    return or_(Notification.not_before.is_(None), Notification.not_before != marker)


def references(session: Session, where: Sequence[ColumnElement[bool]]) -> set[str]:
    """The distinct caller references of the notifications matching ``where``."""
    stmt = select(Notification.reference).where(*where, Notification.reference.is_not(None))
    return {r for r in session.scalars(stmt.distinct()) if r is not None}


def queued_backlog(session: Session, now: datetime) -> list[tuple[str, int, datetime | None]]:
    """Per lane: how many are queued and due, and since when the oldest of them is due."""
    due_since = func.coalesce(
        Notification.not_before, Notification.send_at, Notification.created_at
    )
    stmt = (
        select(Notification.lane, func.count(), func.min(due_since))
        .where(Notification.status == Status.QUEUED.value, _due(Notification.not_before, now))
        .group_by(Notification.lane)
    )
    return [(lane, int(count), oldest) for lane, count, oldest in session.execute(stmt)]
