"""Is delivery happening? The facts an operator needs, read from the database, and the verdict.

Dependency readiness (``/readyz``: database and broker reachable) says nothing about whether
anything is being delivered: with every worker dead, or stalled on a broker, or with beat
stopped, the API still accepts and the queues still answer. This module looks at the outcome
instead:

* **backlog per lane**: how many queued notifications are due now, and how long the oldest of
  them has been waiting (since it became due: its retry time, its send time, or its creation);
* **live workers per queue**, from the liveness heartbeats (``notifier.liveness``);
* **beat's last tick**: when the sweeper last ran (which needs beat *and* a worker consuming
  ``maintenance``).

Delivery counts as stopped when any of these holds:

* ``no_live_worker``: a lane has due work and no live worker consumes its queue, or no live
  worker consumes ``maintenance`` (the safety nets would not run);
* ``queued_too_long``: the oldest due notification of a lane has waited longer than
  ``NOTIFIER_HEALTH_QUEUED_AGE_SECONDS`` (transactional lanes, default 300 s) or
  ``NOTIFIER_HEALTH_PROMOTIONAL_QUEUED_AGE_SECONDS`` (promotional lanes, default 6 h: a large
  campaign legitimately keeps a backlog for hours);
* ``beat_stale``: the sweeper has not run for ``NOTIFIER_HEALTH_BEAT_STALE_SECONDS`` (default
  120 s), or never.

It is served at ``GET /health/delivery`` and by ``notifier status``, and its figures are
Prometheus gauges that the alert rules in ``deploy/prometheus/alerts.yml`` watch. It is
deliberately not part of ``/readyz``: an API process that can accept and store notifications
must stay in its load balancer while the workers are being fixed, or a delivery outage would
become an intake outage too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from notifier.config import Settings
from notifier.db.models import Heartbeat, utcnow
from notifier.liveness import live_workers
from notifier.notifications import queries
from notifier.tasks import ALL_QUEUES, MAINTENANCE
from providers.interface import Category, Lane


@dataclass(frozen=True)
class Backlog:
    due: int
    oldest_due_age_seconds: float


@dataclass(frozen=True)
class Problem:
    code: str  # no_live_worker | queued_too_long | beat_stale
    queue: str | None
    message: str

    def as_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "queue": self.queue, "message": self.message}


@dataclass
class DeliveryHealth:
    checked_at: datetime
    backlog: dict[str, Backlog] = field(default_factory=dict)  # lanes with due work only
    live_workers: dict[str, int] = field(default_factory=dict)  # every queue, 0 included
    workers: dict[str, list[str]] = field(default_factory=dict)  # live worker id -> its queues
    beat_last_tick: datetime | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def delivering(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        """The public summary (no worker host names: ``notifier status`` shows those)."""
        return {
            "status": "delivering" if self.delivering else "stopped",
            "checked_at": self.checked_at.isoformat(),
            "beat_last_tick": self.beat_last_tick.isoformat() if self.beat_last_tick else None,
            "live_workers": self.live_workers,
            "backlog": {
                queue: {"due": b.due, "oldest_due_age_seconds": round(b.oldest_due_age_seconds, 1)}
                for queue, b in sorted(self.backlog.items())
            },
            "problems": [p.as_dict() for p in self.problems],
        }


def assess(session: Session, settings: Settings, now: datetime | None = None) -> DeliveryHealth:
    now = now or utcnow()
    health = DeliveryHealth(checked_at=now)
    health.backlog = _backlog(session, now)
    health.live_workers = dict.fromkeys(ALL_QUEUES, 0)
    for worker in live_workers(session, now, settings.worker_lapse_seconds):
        health.workers[worker.worker_id] = list(worker.queues)
        for queue in worker.queues:
            health.live_workers[queue] = health.live_workers.get(queue, 0) + 1
    tick = session.get(Heartbeat, "sweeper")
    health.beat_last_tick = tick.at if tick else None
    health.problems = _problems(health, settings, now)
    return health


def _backlog(session: Session, now: datetime) -> dict[str, Backlog]:
    backlog = {}
    for lane, count, oldest_row in queries.queued_backlog(session, now):
        oldest = _aware(oldest_row)
        backlog[lane] = Backlog(
            int(count), max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
        )
    return backlog


def _aware(value: datetime | str | None) -> datetime | None:
    """``min()`` over a UTC column comes back untyped on SQLite (a string, or a naive datetime)."""
    if value is None or (isinstance(value, datetime) and value.tzinfo is not None):
        return value
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _age_limit(queue: str, settings: Settings) -> float:
    try:
        promotional = Lane(queue).category == Category.PROMOTIONAL
    except ValueError:
        promotional = False
    return (
        settings.health_promotional_queued_age_seconds
        if promotional
        else settings.health_queued_age_seconds
    )


def _problems(health: DeliveryHealth, settings: Settings, now: datetime) -> list[Problem]:
    problems = []
    for queue, backlog in sorted(health.backlog.items()):
        if health.live_workers.get(queue, 0) == 0:
            problems.append(
                Problem(
                    "no_live_worker",
                    queue,
                    f"{backlog.due} due on {queue} and no live worker consumes it",
                )
            )
        limit = _age_limit(queue, settings)
        if backlog.oldest_due_age_seconds > limit:
            problems.append(
                Problem(
                    "queued_too_long",
                    queue,
                    f"the oldest due notification on {queue} has waited "
                    f"{backlog.oldest_due_age_seconds:.0f} s (limit {limit:.0f} s)",
                )
            )
    if health.live_workers.get(MAINTENANCE, 0) == 0:
        problems.append(
            Problem(
                "no_live_worker",
                MAINTENANCE,
                "no live worker consumes maintenance: the safety nets do not run",
            )
        )
    tick = health.beat_last_tick
    if tick is None or (now - tick).total_seconds() > settings.health_beat_stale_seconds:
        age = "never" if tick is None else f"{(now - tick).total_seconds():.0f} s ago"
        problems.append(Problem("beat_stale", None, f"the sweeper (beat) last ran {age}"))
    return problems
