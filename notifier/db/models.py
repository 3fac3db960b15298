"""SQLAlchemy models. The same schema runs on SQLite (embedded) and PostgreSQL (production).

``notifications`` holds one row per message and its current state; ``delivery_events`` is the
append-only log of everything that happened to it (the support timeline). Indexes serve the
support searches: normalised recipient + time, caller reference, provider message id.

On PostgreSQL both are partitioned by ``created_at`` (migration 0009,
``notifier/db/partitions.py``): there their primary key is ``(id, created_at)`` and no foreign
key points at ``notifications``; the models keep ``id`` as the primary key the ORM knows
(``session.get`` by id works on both databases; Alembic does not compare primary keys) and the
foreign keys SQLite enforces.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

BigIntPK = BigInteger().with_variant(Integer(), "sqlite")
# the service that owns every key and row created before services existed (and every key
# created without naming one); notifier/services/models.py creates the table
DEFAULT_SERVICE_ID = "00000000-0000-4000-8000-000000000000"


def utcnow() -> datetime:
    return datetime.now(UTC)


_ids = random.Random(os.urandom(32))  # noqa: S311 - ids must be unique, not secret (see new_id)
os.register_at_fork(after_in_child=lambda: _ids.seed(os.urandom(32)))


def new_id(at: datetime | None = None) -> str:
    """A time-ordered (version 7, RFC 9562) UUID: the millisecond ``at`` (default: now) in its
    first 48 bits, 74 random bits after. A notification's id is made from its own
    ``created_at``, so the id names the partition that holds it and a lookup by id alone can
    read that partition first (:func:`notifier.notifications.by_id.around`). Without a system
    call per id: ids only need to be unique, not secret (every read is scoped to the caller's
    key), and ``uuid4`` costs a ``getrandom`` call that releases and re-takes the GIL on the
    intake hot path."""
    ms = int((at.timestamp() if at is not None else time.time()) * 1000) & _MS_BITS
    random_bits = _ids.getrandbits(74)
    value = (
        (ms << 80)
        | (7 << 76)  # version
        | ((random_bits >> 62) << 64)  # 12 random bits
        | (0b10 << 62)  # the RFC's variant
        | (random_bits & _LOW_62)
    )
    h = f"{value:032x}"  # the UUID's text without building a uuid.UUID (5 % of intake's CPU)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_MS_BITS = (1 << 48) - 1
_LOW_62 = (1 << 62) - 1


def id_time(value: str) -> datetime | None:
    """The time a version-7 id was made at (to the millisecond); None for any other id (the
    random version-4 ids of rows made before time-ordered ones, or text that is no UUID)."""
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return None
    if parsed.version != 7:
        return None
    return datetime.fromtimestamp((parsed.int >> 80) / 1000, UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both SQLite (which drops tzinfo) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    # Every model here is mapped to a Table (none to a join or a select), so Core code can use
    # ``Model.__table__`` where a Table is needed.
    __table__: ClassVar[Table]


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # the owning service (notifier/services/). No foreign key: SQLite cannot add one to a table
    # with rows without rebuilding it; authentication joins the service (a key whose service
    # is missing cannot authenticate), and services are never deleted.
    service_id: Mapped[str] = mapped_column(
        String(36), index=True, server_default=DEFAULT_SERVICE_ID
    )
    key_type: Mapped[str] = mapped_column(  # notifier.keys.KeyType
        String(10), default="live", server_default="live"
    )
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    lanes: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)  # None: every lane
    rate_limit: Mapped[str | None] = mapped_column(String(50), nullable=True)
    callback_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    callback_secret_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Notification(Base):
    __tablename__ = "notifications"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    api_key_id: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id"), nullable=True)
    # the owning service, on every row (NOT NULL since migration 0015; no foreign key: the
    # table may be partitioned, and the key's service is the authority)
    service_id: Mapped[str] = mapped_column(String(36), server_default=DEFAULT_SERVICE_ID)
    # sent with a test key: handled as live, delivered only to the outbox (migration 0013)
    test: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    channel: Mapped[str] = mapped_column(String(10))
    category: Mapped[str] = mapped_column(String(20))
    lane: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(20))
    status_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)  # a sentence
    status_code: Mapped[str | None] = mapped_column(String(40), nullable=True)  # ReasonCode
    recipient: Mapped[str] = mapped_column(String(4096))  # normalised
    platform: Mapped[str | None] = mapped_column(String(10), nullable=True)
    reference: Mapped[str | None] = mapped_column(String(255), nullable=True)
    content: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # redacted, shown
    sealed_content: Mapped[str | None] = mapped_column(Text, nullable=True)  # delivery only
    sensitive_fields: Mapped[list[str]] = mapped_column(JSON, default=list)
    template_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    template_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sms_segments: Mapped[int | None] = mapped_column(Integer, nullable=True)
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    provider: Mapped[str | None] = mapped_column(String(100), nullable=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    pinned_provider: Mapped[str | None] = mapped_column(
        String(100), nullable=True
    )  # acceptance unknown there: retry there only
    # the claim, written before any provider is contacted (write-ahead): which worker process
    # holds it, and which provider it is being sent through — so recovery knows a send may
    # have happened, and where
    claimed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    inflight_provider: Mapped[str | None] = mapped_column(String(100), nullable=True)
    resend_of: Mapped[str | None] = mapped_column(ForeignKey("notifications.id"), nullable=True)
    campaign_id: Mapped[str | None] = mapped_column(String(36), nullable=True)

    # PostgreSQL: partitioned by RANGE (created_at), primary key (id, created_at); the indexes
    # below exist in every partition (notifier/db/partitions.py)
    __table_args__ = (
        Index("ix_notifications_recipient_created", "recipient", "created_at"),
        Index("ix_notifications_key_created", "api_key_id", "created_at"),
        Index("ix_notifications_key_reference", "api_key_id", "reference"),
        Index("ix_notifications_reference", "reference"),
        Index("ix_notifications_provider_message_id", "provider_message_id"),
        Index("ix_notifications_status_published", "status", "published_at"),
        Index("ix_notifications_created", "created_at"),
        Index("ix_notifications_service_created", "service_id", "created_at"),
    )


class DeliveryEvent(Base):
    """PostgreSQL: partitioned by RANGE (created_at), the event's own time, primary key
    (id, created_at); ``notification_id`` is enforced by the writers there, not by a foreign key
    (notifier/db/partitions.py)."""

    __tablename__ = "delivery_events"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    notification_id: Mapped[str] = mapped_column(ForeignKey("notifications.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(30))
    status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    provider: Mapped[str | None] = mapped_column(String(100), nullable=True)
    latency_ms: Mapped[float | None] = mapped_column(nullable=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    response_code: Mapped[str | None] = mapped_column(String(50), nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)  # redacted prose
    attempt: Mapped[int | None] = mapped_column(Integer, nullable=True)


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_keys"

    api_key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    notification_id: Mapped[str] = mapped_column(ForeignKey("notifications.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class Suppression(Base):
    """An opt-out or a recipient that cannot receive. ``service_id`` is the scope: set for an
    unsubscribe (billing's newsletter is not growth's), NULL for what holds for every service
    (hard bounces, complaints, STOP, invalid addresses and tokens, manual do-not-contact), as
    carriers and mailbox providers see those."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    service_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    channel: Mapped[str] = mapped_column(String(10))
    recipient: Mapped[str] = mapped_column(String(4096))  # normalised
    reason: Mapped[str] = mapped_column(String(30))
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    notification_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lifted_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    lifted_by: Mapped[str | None] = mapped_column(String(255), nullable=True)

    __table_args__ = (
        Index("ix_suppressions_channel_recipient", "channel", "recipient"),
        UniqueConstraint(
            "channel", "recipient", "reason", "created_at", name="uq_suppression_event"
        ),
    )


class Heartbeat(Base):
    """Last time a periodic job ran (``beat``: the sweeper ran, so beat ticks and a maintenance
    worker consumes). ``notifier status`` and the metrics read it."""

    __tablename__ = "heartbeats"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class WorkerHeartbeat(Base):
    """One row per live worker process, upserted every ``NOTIFIER_WORKER_HEARTBEAT_SECONDS`` by
    :class:`notifier.liveness.HeartbeatWriter` and deleted on a clean stop. A row whose
    ``seen_at`` is older than ``NOTIFIER_WORKER_LAPSE_SECONDS`` belongs to a worker that died (or
    cannot reach the database): the sweeper recovers its claims, health counts it as gone."""

    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    queues: Mapped[list[str]] = mapped_column(JSON, default=list)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class WebhookDelivery(Base):
    """A status webhook owed to a caller: written in the same transaction as the final status
    (a transactional outbox), then sent and retried by the ``webhooks`` queue."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    notification_id: Mapped[str] = mapped_column(ForeignKey("notifications.id"), index=True)
    api_key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"))
    status: Mapped[str] = mapped_column(
        String(20), default="pending"
    )  # pending | delivered | failed
    notification_status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_response_code: Mapped[str | None] = mapped_column(String(20), nullable=True)

    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)
