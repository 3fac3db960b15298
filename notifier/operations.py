"""What an operator asks of a running deployment: reachability, queue depths, beat, workers,
and whether anything is being delivered (``notifier.delivery_health``); and per service, today
(UTC): the volume and failures per lane, the daily quota used, and the providers each lane
sends through (``service_views``, shown by ``notifier status --service`` and the console's
services page).

Quota use is read from the limiter's own counter, without counting (``RateLimiter.peek``): the
count intake keeps in Redis, so it is exact across every API process. Without Redis each
process counts in its own memory, and a command in another process cannot read it: the CLI
then says "not shared" instead of a figure. The providers of a lane are the service's chain
when it names providers the platform still configures on that lane (as the workers route,
``workers/routes.py``), else the platform's chain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from celery import Celery
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from notifier import delivery_health
from notifier.broker import broker_reachable, make_celery
from notifier.config import Settings
from notifier.db import partitions
from notifier.db.models import Heartbeat, utcnow
from notifier.db.session import make_engine, make_sessionmaker
from notifier.errors import NotifierError
from notifier.notifications import usage as day_usage
from notifier.ownership import ALL_SERVICES, owned
from notifier.ratelimit import RateLimiter
from notifier.services import registry
from notifier.services.models import Service
from notifier.services.platform import load_platform
from notifier.services.snapshot import ServiceSnapshot
from notifier.tasks import ALL_QUEUES
from providers.interface import Lane

# heartbeat rows ``held_back:<provider>``: a worker's latest waits for that provider's send rate
# (workers/throttle.py HeldBackReport); fresh for HELD_BACK_FRESH_SECONDS
HELD_BACK_PREFIX = "held_back:"
HELD_BACK_FRESH_SECONDS = 60.0


@dataclass
class StatusReport:
    database_ok: bool = False
    broker_ok: bool = False
    beat_last_tick: datetime | None = None
    queue_depths: dict[str, int | None] = field(default_factory=dict)
    circuits: dict[str, str] = field(default_factory=dict)
    # providers whose send rate held a lane back within the last minute: lane, rate, seconds
    # waited over how many seconds (a backlog there is the rate, not a fault)
    held_back: dict[str, dict[str, Any]] = field(default_factory=dict)
    delivery: delivery_health.DeliveryHealth | None = None  # None: the database was unreachable
    # rows waiting in a default time partition, per table (PostgreSQL; notifier/db/partitions.py):
    # more than 0 means partitions were not made in time
    partition_default_rows: dict[str, int] = field(default_factory=dict)

    @property
    def workers(self) -> dict[str, list[str]]:
        """Live workers (from their heartbeats) and the queues each consumes."""
        return self.delivery.workers if self.delivery else {}

    @property
    def healthy(self) -> bool:
        """Reachable and delivering: what ``notifier status`` exits 0 on."""
        return (
            self.database_ok
            and self.broker_ok
            and self.delivery is not None
            and self.delivery.delivering
        )


def collect_status(
    settings: Settings, engine: Engine | None = None, celery: Celery | None = None
) -> StatusReport:
    """Pass a running process's ``engine`` and ``celery`` to reuse their connections (the API's
    metrics scrape does); without them a short-lived engine and app are made (the CLI)."""
    report = StatusReport()
    own_engine = engine is None
    engine = engine or make_engine(
        settings.database_url, pool_size=1, pooler=settings.database_pooler
    )
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            report.database_ok = True
            report.partition_default_rows = partitions.default_rows(connection)
        with make_sessionmaker(engine)() as session:
            row = session.get(Heartbeat, "sweeper")
            report.beat_last_tick = row.at if row else None
            for circuit in session.scalars(
                select(Heartbeat).where(Heartbeat.name.like("circuit:%"))
            ):
                report.circuits[circuit.name.split(":", 1)[1]] = (circuit.detail or {}).get(
                    "state", "unknown"
                )
            report.held_back = held_back(session)
            report.delivery = delivery_health.assess(session, settings)
    except Exception:  # noqa: S110 - unreachable or not migrated: reported (database_ok False), not raised
        pass
    finally:
        if own_engine:
            engine.dispose()
    celery = celery or make_celery(settings)
    report.broker_ok = broker_reachable(celery)
    report.queue_depths = (
        queue_depths(celery) if report.broker_ok else {q: None for q in ALL_QUEUES}
    )
    return report


def held_back(session: Session, now: datetime | None = None) -> dict[str, dict[str, Any]]:
    """The providers whose send rate made a worker wait within the last minute."""
    since = (now or utcnow()) - timedelta(seconds=HELD_BACK_FRESH_SECONDS)
    rows = session.scalars(
        select(Heartbeat).where(Heartbeat.name.like(f"{HELD_BACK_PREFIX}%"), Heartbeat.at >= since)
    )
    return {row.name.removeprefix(HELD_BACK_PREFIX): dict(row.detail or {}) for row in rows}


def queue_depths(celery: Celery) -> dict[str, int | None]:
    depths: dict[str, int | None] = {}
    with celery.connection_for_read() as connection:
        channel = connection.default_channel
        for queue in ALL_QUEUES:
            try:
                depths[queue] = channel.queue_declare(
                    queue=queue, durable=True, auto_delete=False
                ).message_count
            except Exception:  # a queue nobody declared yet
                depths[queue] = None
                channel = connection.channel()
    return depths


@dataclass(frozen=True)
class LaneView:
    """One lane of one service today."""

    lane: Lane
    usage: day_usage.LaneUsage
    providers: tuple[str, ...] | None  # None: the providers file cannot be read here
    own_chain: bool  # the service's chain (else the platform's)
    quota: int | None  # None: no daily quota
    quota_used: int | None  # None: no quota, or a count this process cannot read

    def as_json(self) -> dict[str, object]:
        return {
            "lane": self.lane.value,
            "total": self.usage.total,
            "test": self.usage.test,
            "failures": [
                {"status": f.status, "reason": f.code, "count": n}
                for f, n in sorted(self.usage.failures.items(), key=_failure_order)
            ],
            "providers": list(self.providers) if self.providers is not None else None,
            "chain": "service" if self.own_chain else "platform",
            "quota": self.quota,
            "quota_used": self.quota_used,
        }


@dataclass(frozen=True)
class ServiceView:
    id: str
    name: str
    trial: bool
    day: date
    lanes: list[LaneView]

    @property
    def total(self) -> int:
        return sum(lane.usage.total for lane in self.lanes)

    @property
    def failed(self) -> int:
        return sum(lane.usage.failed for lane in self.lanes)

    def as_json(self) -> dict[str, object]:
        return {
            "service": self.name,
            "id": self.id,
            "trial": self.trial,
            "day": self.day.isoformat(),
            "total": self.total,
            "failed": self.failed,
            "lanes": [lane.as_json() for lane in self.lanes],
        }


def _failure_order(item: tuple[day_usage.Failure, int]) -> tuple[int, str, str]:
    failure, count = item
    return (-count, failure.status, failure.code or "")


def service_views(
    session: Session,
    settings: Settings,
    limiter: RateLimiter | None,
    scope: str | None = ALL_SERVICES,
    *,
    service_id: str | None = None,
    now: datetime | None = None,
) -> list[ServiceView]:
    """Today's view of every service within ``scope`` (of ``service_id`` alone when given), by
    name. ``limiter``: the one intake counts with, or None when its counts cannot be read here
    (the quota used is then None)."""
    day = (now or datetime.now(UTC)).astimezone(UTC).date()
    stmt = select(Service).where(*owned(Service.id, scope)).order_by(Service.name)
    if service_id is not None:
        stmt = stmt.where(Service.id == service_id)
    services = list(session.scalars(stmt))
    counts = day_usage.of_day(session, day, service_id or scope)
    try:
        platform_chains: dict[Lane, tuple[str, ...]] | None = dict(load_platform(settings).chains)
    except NotifierError:
        platform_chains = None
    return [
        _view(ServiceSnapshot.of(row), counts.get(row.id, {}), platform_chains, limiter, day)
        for row in services
    ]


def _view(
    service: ServiceSnapshot,
    counts: dict[str, day_usage.LaneUsage],
    platform_chains: dict[Lane, tuple[str, ...]] | None,
    limiter: RateLimiter | None,
    day: date,
) -> ServiceView:
    lanes = []
    for lane in Lane:
        providers, own = _providers(service, lane, platform_chains)
        quota = service.daily_quota(lane)
        lanes.append(
            LaneView(
                lane=lane,
                usage=counts.get(lane.value, day_usage.LaneUsage()),
                providers=providers,
                own_chain=own,
                quota=quota,
                quota_used=_quota_used(limiter, service, lane, quota, day),
            )
        )
    return ServiceView(service.id, service.name, service.trial, day, lanes)


def _providers(
    service: ServiceSnapshot, lane: Lane, platform_chains: dict[Lane, tuple[str, ...]] | None
) -> tuple[tuple[str, ...] | None, bool]:
    if platform_chains is None:
        return None, False
    platform = platform_chains.get(lane, ())
    own = tuple(name for name in service.chain(lane) or () if name in platform)
    return (own, True) if own else (platform, False)


def _quota_used(
    limiter: RateLimiter | None,
    service: ServiceSnapshot,
    lane: Lane,
    quota: int | None,
    day: date,
) -> int | None:
    if quota is None or limiter is None:
        return None
    if quota == 0:
        return 0
    # the counter notifier.services.quotas.enforce_daily_quota counts in: same rule, same key
    return limiter.peek(f"{quota}/day", "service-quota", service.id, lane.value, day.isoformat())


class UnknownService(LookupError):
    """``notifier status --service`` named no service."""


ALL = "all"  # ``--service all``: every service


def collect_service_views(
    settings: Settings, service: str, now: datetime | None = None
) -> list[ServiceView]:
    """The views of the service named (by name or id) or of every one (``all``), for the CLI:
    a short-lived engine, and the limiter's counts only when they are shared (Redis)."""
    engine = make_engine(settings.database_url, pool_size=1, pooler=settings.database_pooler)
    try:
        with make_sessionmaker(engine)() as session:
            service_id = None
            if service != ALL:
                row = registry.find_named(session, service)
                if row is None:
                    raise UnknownService(service)
                service_id = row.id
            limiter = RateLimiter(settings.redis_url) if settings.redis_url else None
            return service_views(session, settings, limiter, service_id=service_id, now=now)
    finally:
        engine.dispose()
