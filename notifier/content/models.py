"""The stored-template tables: a named template for one channel, and its immutable versions.

Every change is a new version whose ``variants`` map a locale (``en``, ``fr``, ``fr-CA``) to the
template's fields; a notification records the name and version it used. Intake and campaigns
both read them, so they live below both. ``migrations/versions/0003_campaigns.py`` creates them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from notifier.db.models import DEFAULT_SERVICE_ID, Base, BigIntPK, UTCDateTime, new_id, utcnow


class Template(Base):
    __tablename__ = "templates"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # the owning service: a name is unique within its service only (migration 0015)
    service_id: Mapped[str] = mapped_column(
        String(36), index=True, default=DEFAULT_SERVICE_ID, server_default=DEFAULT_SERVICE_ID
    )
    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(10))
    latest_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (UniqueConstraint("service_id", "name", name="uq_templates_service_name"),)


class TemplateVersion(Base):
    __tablename__ = "template_versions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    template_id: Mapped[str] = mapped_column(ForeignKey("templates.id"))
    version: Mapped[int] = mapped_column(Integer)
    default_locale: Mapped[str] = mapped_column(String(35))
    variants: Mapped[dict[str, Any]] = mapped_column(JSON)  # locale -> {field: source}
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("template_id", "version", name="uq_template_version"),)
