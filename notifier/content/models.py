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

from notifier.db.models import Base, BigIntPK, UTCDateTime, new_id, utcnow


class Template(Base):
    __tablename__ = "templates"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # the owning service; nullable until phase 2 writes it on every new row
    service_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    channel: Mapped[str] = mapped_column(String(10))
    latest_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class TemplateVersion(Base):
    __tablename__ = "template_versions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    template_id: Mapped[str] = mapped_column(ForeignKey("templates.id"))
    version: Mapped[int] = mapped_column(Integer)
    default_locale: Mapped[str] = mapped_column(String(35))
    variants: Mapped[dict[str, Any]] = mapped_column(JSON)  # locale -> {field: source}
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("template_id", "version", name="uq_template_version"),)
