"""The ``services`` and ``service_allowed_recipients`` tables.

A service's per-lane settings are JSON objects keyed by lane value (``"sms.promotional"``):
they are read whole, with the key, into the caller's snapshot and never queried by content,
so one column per setting keeps the schema small while lanes stay an enum in code. Existing
keys and data belong to the ``default`` service, created by migration ``0011_services`` with
the fixed id :data:`DEFAULT_SERVICE_ID` so that code creating a key without naming a service
needs no lookup.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from notifier.db.models import DEFAULT_SERVICE_ID, Base, BigIntPK, UTCDateTime, new_id, utcnow

__all__ = ["DEFAULT_SERVICE_ID", "DEFAULT_SERVICE_NAME", "AllowedRecipient", "Service"]

DEFAULT_SERVICE_NAME = "default"


class Service(Base):
    __tablename__ = "services"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    trial: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # lane value -> {field: value}: sender identities, provider names, rates, daily counts
    senders: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    provider_chains: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    rate_limits: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    daily_quotas: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    retention_days: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: platform
    callback_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    callback_secret_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)


class AllowedRecipient(Base):
    """A recipient a team key (or any key of a service in trial mode) may send to, normalised
    as intake normalises recipients. Unique on the suppression fingerprint of (channel,
    recipient) rather than the recipient itself: a push token can be longer than a PostgreSQL
    index entry may be, and the fingerprint is the one lookup key intake needs."""

    __tablename__ = "service_allowed_recipients"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    service_id: Mapped[str] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(10))
    recipient: Mapped[str] = mapped_column(String(4096))
    fingerprint: Mapped[str] = mapped_column(String(71))  # notifier.suppressions.fingerprint
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("service_id", "fingerprint", name="uq_service_allowed_recipient"),
    )
