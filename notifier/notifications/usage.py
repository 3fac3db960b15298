"""A UTC day's notifications counted per service, lane and outcome: the figures of the
per-service views (the console's services page and ``notifier status --service``).

One grouped query over the day's rows, bounded by ``created_at`` on both sides so PostgreSQL
opens only that day's partition (``notifier/db/partitions.py``), and for one service through
``ix_notifications_service_created`` (service_id, created_at). A notification counts on the day
it was created, whatever its status now; test notifications count too, and apart (``test``).

Failures are the rows that will not (or may not) reach their recipient: ``failed``,
``expired``, ``suppressed`` and ``unconfirmed``, each by its typed reason (``status_code``, a
:class:`notifier.reasons.ReasonCode`; None for rows of before reason codes).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from notifier.db.models import Notification
from notifier.ownership import ALL_SERVICES, owned
from notifier.statuses import Status

FAILURE_STATUSES = frozenset(
    {Status.FAILED.value, Status.EXPIRED.value, Status.SUPPRESSED.value, Status.UNCONFIRMED.value}
)


@dataclass(frozen=True)
class Failure:
    status: str
    code: str | None  # ReasonCode value


@dataclass
class LaneUsage:
    total: int = 0
    test: int = 0  # of which sent with test keys
    failures: dict[Failure, int] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC day as the half-open range of ``created_at`` it covers."""
    start = datetime.combine(day, time(), tzinfo=UTC)
    return start, start + timedelta(days=1)


def day_statement(
    day: date, scope: str | None = ALL_SERVICES
) -> Select[str | None, str, str, str | None, bool, int]:
    """The one grouped query of a day's counts (service, lane, status, reason, test)."""
    start, end = day_bounds(day)
    return (
        select(
            Notification.service_id,
            Notification.lane,
            Notification.status,
            Notification.status_code,
            Notification.test,
            func.count(),
        )
        .where(
            *owned(Notification.service_id, scope),
            Notification.created_at >= start,
            Notification.created_at < end,
        )
        .group_by(
            Notification.service_id,
            Notification.lane,
            Notification.status,
            Notification.status_code,
            Notification.test,
        )
    )


def of_day(
    session: Session, day: date, scope: str | None = ALL_SERVICES
) -> dict[str, dict[str, LaneUsage]]:
    """service id -> lane value -> that day's counts, within ``scope``."""
    found: dict[str, dict[str, LaneUsage]] = defaultdict(dict)
    for service_id, lane, status, code, test, count in session.execute(
        day_statement(day, scope)
    ).tuples():
        usage = found[service_id or ""].setdefault(lane, LaneUsage())
        usage.total += count
        if test:
            usage.test += count
        if status in FAILURE_STATUSES:
            failure = Failure(status, code)
            usage.failures[failure] = usage.failures.get(failure, 0) + count
    return dict(found)
