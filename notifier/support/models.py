"""Support console tables (staff, sessions, audit). Alembic finds them through
notifier.db.all_models; ``migrations/versions/0002_support.py`` creates them.

* ``staff_accounts``: people who sign in to the console, separate from API keys. Passwords are
  Argon2 hashes. Staff belong to a service (``service_id``) and see only its rows, as its keys
  do: ``role`` is ``support`` (read-only) or ``admin`` (may also resend, lift and read the
  service's audit log). A ``platform_admin`` belongs to no service (``service_id`` NULL) and sees
  every service (migration ``0014_staff_services``).
* ``staff_sessions``: server-side sessions, so signing out and expiry really end them. The row's
  id is the SHA-256 of the random token in the cookie, never the token itself.
* ``support_audit``: one row per search, per notification or recipient view, per action and per
  refusal (failed sign-in, action not allowed), by staff or by an API key, with the source
  address and user agent of console requests, and the service the look belonged to
  (``service_id``: the viewed notification's, else the actor's; NULL for a platform-wide look).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from notifier.db.models import Base, BigIntPK, UTCDateTime, new_id, utcnow


class StaffRole(enum.StrEnum):
    SUPPORT = "support"  # one service: search and read
    ADMIN = "admin"  # one service: also resend, lift suppressions, read its audit log
    PLATFORM_ADMIN = "platform_admin"  # every service (no service of its own)


class ActorKind(enum.StrEnum):
    STAFF = "staff"
    API_KEY = "api_key"


class AuditAction(enum.StrEnum):
    SEARCH = "search"
    VIEW_NOTIFICATION = "view_notification"
    VIEW_RECIPIENT = "view_recipient"
    RESEND = "resend"
    LIFT_SUPPRESSION = "lift_suppression"
    ADD_SUPPRESSION = "add_suppression"
    LIST_SUPPRESSIONS = "list_suppressions"
    CREATE_KEY = "create_key"
    REVOKE_KEY = "revoke_key"
    ROTATE_KEY = "rotate_key"
    CREATE_SERVICE = "create_service"  # a platform admin, in the console
    UPDATE_SERVICE = "update_service"  # trial mode set or lifted, in the console
    ERASE = "erase"  # a data-protection erasure: counts and the request reference only
    SIGN_IN = "sign_in"
    SIGN_IN_FAILED = "sign_in_failed"
    SIGN_OUT = "sign_out"
    REFUSED = "refused"  # an action the account may not do, or a form not from the console


class StaffAccount(Base):
    __tablename__ = "staff_accounts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # lower case
    role: Mapped[str] = mapped_column(String(20))
    # the service the account belongs to; NULL for a platform admin (StaffRole.PLATFORM_ADMIN)
    service_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class StaffSession(Base):
    __tablename__ = "staff_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the cookie token
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff_accounts.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)  # absolute end
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    client_address: Mapped[str | None] = mapped_column(String(100), nullable=True)


class AuditEntry(Base):
    __tablename__ = "support_audit"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_kind: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[str] = mapped_column(String(36))
    actor: Mapped[str] = mapped_column(String(320))  # staff email or API key name
    action: Mapped[str] = mapped_column(String(30))
    notification_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    query: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    client_address: Mapped[str | None] = mapped_column(String(100), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(300), nullable=True)
    service_id: Mapped[str | None] = mapped_column(String(36), nullable=True)  # None: platform

    __table_args__ = (
        Index("ix_support_audit_service_at", "service_id", "at"),
        Index("ix_support_audit_at", "at"),
        Index("ix_support_audit_actor_at", "actor", "at"),
        Index("ix_support_audit_notification", "notification_id"),
    )
