"""Request and response models of the campaigns API (templates, contacts, audiences,
imports, campaigns)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from notifier.sms_segments import count_segments
from providers.interface import Channel, Lane

Name = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- templates


class TemplateIn(_In):
    name: str = Name
    channel: Channel
    locale: str = Field(default="en", min_length=2, max_length=35, description="default locale")
    subject: str | None = None
    body: str | None = None
    html: str | None = None
    title: str | None = None
    data: dict[str, str] | None = None
    variants: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="other locales: {locale: {field: source}}"
    )

    def all_variants(self) -> dict[str, dict[str, Any]]:
        base = {
            k: v
            for k, v in {
                "subject": self.subject,
                "body": self.body,
                "html": self.html,
                "title": self.title,
                "data": self.data,
            }.items()
            if v is not None
        }
        return {self.locale: base, **self.variants}


class TemplateOut(BaseModel):
    name: str
    channel: str
    version: int
    latest_version: int
    default_locale: str
    variants: dict[str, dict[str, Any]]
    created_at: datetime
    archived_at: datetime | None = None


class PreviewIn(_In):
    data: dict[str, Any] = Field(default_factory=dict)
    locale: str | None = None
    version: int | None = Field(default=None, ge=1)


class SegmentsOut(BaseModel):
    segments: int
    encoding: str
    characters: int


class PreviewOut(BaseModel):
    name: str
    version: int
    locale: str
    content: dict[str, Any]
    sms: SegmentsOut | None = None

    @classmethod
    def of(
        cls, name: str, version: int, locale: str, channel: Channel, content: dict[str, Any]
    ) -> PreviewOut:
        sms = None
        if channel == Channel.SMS:
            count = count_segments(content["body"])
            sms = SegmentsOut(
                segments=count.segments,
                encoding=count.encoding.value,
                characters=len(content["body"]),
            )
        return cls(name=name, version=version, locale=locale, content=content, sms=sms)


# --------------------------------------------------------------------------- contacts


class PushTokenIn(_In):
    token: str = Field(min_length=1, max_length=4096)
    platform: Literal["fcm", "apns"] = "fcm"


class ContactIn(_In):
    email: str | None = None
    phone: str | None = None
    locale: str | None = None
    timezone: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    push_tokens: list[PushTokenIn] | None = None
    consent: dict[Channel, bool] = Field(
        default_factory=dict, description="marketing consent per channel"
    )
    audiences: list[str] = Field(default_factory=list, description="audience names to join")


class ContactOut(BaseModel):
    key: str
    email: str | None
    phone: str | None
    locale: str | None
    timezone: str | None
    attributes: dict[str, Any]
    push_tokens: list[dict[str, str]]
    consent: dict[str, datetime | None]
    updated_at: datetime


class AudienceIn(_In):
    name: str = Name


class AudienceOut(BaseModel):
    id: str
    name: str
    size: int
    created_at: datetime
    archived_at: datetime | None = None


class ImportOut(BaseModel):
    id: str
    audience: str
    status: str
    filename: str | None
    bytes_total: int | None
    bytes_read: int
    rows_read: int
    created: int
    updated: int
    error_count: int
    errors: list[dict[str, Any]]
    started_at: datetime
    finished_at: datetime | None


# --------------------------------------------------------------------------- campaigns


class ScheduleIn(_In):
    at: AwareDatetime | None = Field(default=None, description="one-off send time")
    cron: str | None = Field(default=None, max_length=120, description="e.g. '0 9 * * 1'")
    timezone: str = Field(default="UTC", description="the cron's timezone")


class QuietHoursIn(_In):
    enabled: bool = True
    start: str = Field(default="21:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field(default="08:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    timezone: str | None = Field(
        default=None, description="when neither contact nor phone number gives one"
    )


class CampaignIn(_In):
    name: str = Field(min_length=1, max_length=200)
    template: str
    template_version: int | None = Field(default=None, ge=1, description="default: latest")
    audience: str
    lane: Lane
    schedule: ScheduleIn | None = None
    throttle_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)
    quiet_hours: QuietHoursIn = Field(default_factory=QuietHoursIn)
    data: dict[str, Any] = Field(default_factory=dict, description="shared personalisation")


class CampaignPatch(_In):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    template_version: int | None = Field(default=None, ge=1)
    schedule: ScheduleIn | None = None
    throttle_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)
    quiet_hours: QuietHoursIn | None = None
    data: dict[str, Any] | None = None


class RunProgress(BaseModel):
    total: int
    processed: int
    skipped: int
    created: int
    queued: int
    sent: int
    delivered: int
    failed: int
    suppressed: int
    cancelled: int
    by_status: dict[str, int]


class RunOut(BaseModel):
    id: str
    run_at: datetime
    status: str
    template_version: int
    started_at: datetime
    finished_at: datetime | None
    progress: RunProgress


class CampaignOut(BaseModel):
    id: str
    name: str
    template: str
    template_version: int | None
    audience: str
    lane: str
    status: str
    schedule: ScheduleIn | None
    throttle_per_minute: int | None
    quiet_hours: QuietHoursIn
    created_at: datetime
    updated_at: datetime
    runs: list[RunOut] = []
    archived_at: datetime | None = None
    # created with a test key: its runs' notifications are test ones (the outbox, no provider)
    test: bool = False
