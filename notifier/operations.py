"""What an operator asks of a running deployment: reachability, queue depths, beat, workers,
and whether anything is being delivered (``notifier.delivery_health``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from celery import Celery
from sqlalchemy import Engine, select, text

from notifier import delivery_health
from notifier.broker import broker_reachable, make_celery
from notifier.config import Settings
from notifier.db import partitions
from notifier.db.models import Heartbeat
from notifier.db.session import make_engine, make_sessionmaker
from notifier.tasks import ALL_QUEUES


@dataclass
class StatusReport:
    database_ok: bool = False
    broker_ok: bool = False
    beat_last_tick: datetime | None = None
    queue_depths: dict[str, int | None] = field(default_factory=dict)
    circuits: dict[str, str] = field(default_factory=dict)
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
