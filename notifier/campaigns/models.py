"""Campaign tables (contacts, audiences, imports, campaigns, runs). Alembic finds them through
notifier.db.all_models; ``migrations/versions/0003_campaigns.py`` creates them (and the template
tables, whose models are in :mod:`notifier.content.models`: intake uses templates too).
* ``contacts``: one row per person, found by the caller's own ``key`` (the import's idempotency
  key). Marketing consent per channel is the time it was given (NULL: no consent).
* ``audiences`` / ``audience_members``: named lists of contacts; the member key (audience,
  contact id) is what a run paginates on.
* ``contact_imports``: progress and line-numbered errors of one CSV import.
* ``campaigns`` / ``campaign_runs``: what to send to whom and when; one row per run, unique on
  (campaign, run_at) so that a run is fired once even when two beat processes fire it. The run's
  ``cursor`` (last contact id fanned out) moves in the same transaction as the notifications of
  its chunk, so a crashed run resumes where it stopped without sending anyone twice.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from notifier.db.models import DEFAULT_SERVICE_ID, Base, UTCDateTime, new_id, utcnow

ContactId = BigInteger().with_variant(Integer(), "sqlite")
# ``not_before`` of a campaign message held by a pause: neither the sweeper nor a worker's claim
# touches it until a resume clears it
HELD = datetime(9999, 12, 31, tzinfo=UTC)


class CampaignStatus(enum.StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class RunStatus(enum.StrEnum):
    RUNNING = "running"  # fanning out, or fanned out with messages still held back
    PAUSED = "paused"
    COMPLETED = "completed"  # every recipient queued (or settled) and nothing held back
    CANCELLED = "cancelled"


class ImportStatus(enum.StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(ContactId, primary_key=True, autoincrement=True)
    # the owning service: a contact is a person as one service knows them (its key, its
    # consent); the same person in two services is two contacts (migration 0015)
    service_id: Mapped[str] = mapped_column(
        String(36), default=DEFAULT_SERVICE_ID, server_default=DEFAULT_SERVICE_ID
    )
    key: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)  # normalised
    phone: Mapped[str | None] = mapped_column(String(20), nullable=True)  # E.164
    locale: Mapped[str | None] = mapped_column(String(35), nullable=True)
    timezone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    push_tokens: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    email_consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    sms_consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    push_consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("service_id", "key", name="uq_contacts_service_key"),
        Index("ix_contacts_email", "email"),
        Index("ix_contacts_phone", "phone"),
    )


class Audience(Base):
    __tablename__ = "audiences"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # the owning service: a name is unique within its service only (migration 0015)
    service_id: Mapped[str] = mapped_column(
        String(36), index=True, default=DEFAULT_SERVICE_ID, server_default=DEFAULT_SERVICE_ID
    )
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (UniqueConstraint("service_id", "name", name="uq_audiences_service_name"),)


class AudienceMember(Base):
    __tablename__ = "audience_members"

    audience_id: Mapped[str] = mapped_column(ForeignKey("audiences.id"), primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        ContactId, ForeignKey("contacts.id"), primary_key=True, autoincrement=False
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ContactImport(Base):
    __tablename__ = "contact_imports"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    audience_id: Mapped[str] = mapped_column(ForeignKey("audiences.id"), index=True)
    status: Mapped[str] = mapped_column(String(20))
    filename: Mapped[str | None] = mapped_column(String(255), nullable=True)
    bytes_total: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    bytes_read: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # first 1000
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    service_id: Mapped[str] = mapped_column(
        String(36), index=True, default=DEFAULT_SERVICE_ID, server_default=DEFAULT_SERVICE_ID
    )  # the owning service
    name: Mapped[str] = mapped_column(String(200))
    # created with a test key: its runs fan out notifications marked ``test`` (migration 0015)
    test: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    api_key_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    template_name: Mapped[str] = mapped_column(String(200))
    template_version: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: latest
    audience_id: Mapped[str] = mapped_column(ForeignKey("audiences.id"))
    lane: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(20))
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cron: Mapped[str | None] = mapped_column(String(120), nullable=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    throttle_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    quiet_hours: Mapped[bool] = mapped_column(Boolean, default=True)
    quiet_start: Mapped[str] = mapped_column(String(5), default="21:00")
    quiet_end: Mapped[str] = mapped_column(String(5), default="08:00")
    quiet_timezone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class CampaignRun(Base):
    __tablename__ = "campaign_runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"))
    run_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20))
    template_version: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer, default=0)  # audience size when it started
    processed: Mapped[int] = mapped_column(Integer, default=0)  # contacts fanned out
    created: Mapped[int] = mapped_column(Integer, default=0)  # notifications created
    skipped: Mapped[int] = mapped_column(Integer, default=0)  # no address for the channel
    slots: Mapped[int] = mapped_column(Integer, default=0)  # sendable: the throttle's position
    cursor: Mapped[int] = mapped_column(ContactId, default=0)  # last contact id fanned out
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    fanned_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        UniqueConstraint("campaign_id", "run_at", name="uq_campaign_run_at"),
        Index("ix_campaign_runs_status", "status", "heartbeat_at"),
    )
