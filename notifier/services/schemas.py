"""The settings of a service as the API and the CLI take them, and a service as they show it.

Per-lane settings are objects keyed by lane (``"email.transactional"``). A change replaces the
whole setting it names (send the full ``senders`` object to change one lane's sender; ``null``
or ``{}`` returns every lane to the platform's); settings it does not name stay as they are.
A sender is checked for its lane's channel here and against the platform in
:mod:`notifier.services.rules`.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from notifier.errors import NotifierError
from notifier.keys import check_callback_url, parse_rate_limit
from notifier.recipients import normalise_email
from providers.interface import Channel, Lane

NAME = re.compile(r"^[a-z][a-z0-9-]{1,61}[a-z0-9]$")
_SMS_SENDER = re.compile(r"^(\+[1-9]\d{7,14}|\d{3,8}|[A-Za-z0-9][A-Za-z0-9 ]{0,10})$")
_TWILIO_SERVICE = re.compile(r"^MG[0-9a-fA-F]{32}$")
_APNS_TOPIC = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-]{0,254}$")
_FCM_PROJECT = re.compile(r"^[a-z][a-z0-9\-]{4,29}$")
MAX_CHAIN = 10
MAX_DAILY_QUOTA = 100_000_000

Senders = dict[Lane, dict[str, str]]
ProviderName = Annotated[str, Field(min_length=1, max_length=100)]


def _email(value: Any, name: str) -> str:
    try:
        return normalise_email(str(value))
    except NotifierError as e:
        raise ValueError(f"{name}: {e.message}") from e


def _matching(value: Any, pattern: re.Pattern[str], name: str, example: str) -> str:
    text = str(value).strip()
    if not pattern.match(text):
        raise ValueError(f"{name} {text[:60]!r} is not valid (e.g. {example})")
    return text


_FIELDS = {
    Channel.EMAIL: {
        "from_address": lambda v: _email(v, "from_address"),
        "reply_to": lambda v: _email(v, "reply_to"),
    },
    Channel.SMS: {
        "sender_id": lambda v: _matching(v, _SMS_SENDER, "sender_id", "+447700900123 or ACME"),
        "messaging_service_sid": lambda v: _matching(
            v, _TWILIO_SERVICE, "messaging_service_sid", "MG followed by 32 hex digits"
        ),
    },
    Channel.PUSH: {
        "apns_topic": lambda v: _matching(v, _APNS_TOPIC, "apns_topic", "com.example.app"),
        "fcm_project_id": lambda v: _matching(v, _FCM_PROJECT, "fcm_project_id", "acme-app"),
    },
}
_REQUIRED = {Channel.EMAIL: {"from_address"}, Channel.SMS: set(), Channel.PUSH: set()}


def clean_sender(lane: Lane, sender: dict[str, Any]) -> dict[str, str]:
    """One lane's sender, checked for that lane's channel (an SMS field on an email lane is an
    error, not ignored)."""
    fields = _FIELDS[lane.channel]
    unknown = sorted(set(sender) - set(fields))
    if unknown:
        raise ValueError(f"{lane}: unknown sender fields {unknown}; known: {sorted(fields)}")
    cleaned = {key: fields[key](value) for key, value in sender.items() if value is not None}
    missing = sorted(_REQUIRED[lane.channel] - set(cleaned))
    if missing or not cleaned:
        raise ValueError(f"{lane}: a sender needs {missing or sorted(fields)}")
    return cleaned


class ServiceChanges(BaseModel):
    """Settings to set; unnamed ones stay as they are."""

    model_config = ConfigDict(extra="forbid")

    trial: bool | None = Field(
        default=None, description="false lifts trial mode (the allow-list no longer applies)"
    )
    senders: dict[Lane, dict[str, str]] | None = Field(
        default=None,
        description="per lane: email from_address, reply_to; SMS sender_id, "
        "messaging_service_sid; push apns_topic, fcm_project_id",
        examples=[{"email.transactional": {"from_address": "billing@example.com"}}],
    )
    provider_chains: dict[Lane, list[ProviderName]] | None = Field(
        default=None, description="per lane: names of providers the platform configured there"
    )
    rate_limits: dict[Lane, str] | None = Field(
        default=None,
        description="per lane, e.g. 100/second",
        examples=[{"sms.promotional": "10/second"}],
    )
    daily_quotas: dict[Lane, int] | None = Field(
        default=None, description="per lane: notifications a UTC day (429 quota_exceeded after)"
    )
    retention_days: int | None = Field(
        default=None,
        ge=1,
        description="days its notifications and their events are kept; at most the platform's "
        "(NOTIFIER_NOTIFICATION_RETENTION_DAYS)",
    )
    callback_url: str | None = Field(
        default=None, max_length=2000, description="status webhooks; a new secret is returned once"
    )

    @field_validator("senders")
    @classmethod
    def _senders(
        cls, value: dict[Lane, dict[str, str]] | None
    ) -> dict[Lane, dict[str, str]] | None:
        return None if value is None else {lane: clean_sender(lane, s) for lane, s in value.items()}

    @field_validator("provider_chains")
    @classmethod
    def _chains(cls, value: dict[Lane, list[str]] | None) -> dict[Lane, list[str]] | None:
        for lane, names in (value or {}).items():
            if not 1 <= len(names) <= MAX_CHAIN or len(set(names)) != len(names):
                raise ValueError(f"{lane}: 1 to {MAX_CHAIN} distinct provider names")
        return value

    @field_validator("rate_limits")
    @classmethod
    def _rates(cls, value: dict[Lane, str] | None) -> dict[Lane, str] | None:
        if value is None:
            return None
        return {lane: str(parse_rate_limit(rate)) for lane, rate in value.items()}

    @field_validator("daily_quotas")
    @classmethod
    def _quotas(cls, value: dict[Lane, int] | None) -> dict[Lane, int] | None:
        for lane, quota in (value or {}).items():
            if not 0 <= quota <= MAX_DAILY_QUOTA:
                raise ValueError(f"{lane}: a daily quota is 0 to {MAX_DAILY_QUOTA}")
        return value

    @field_validator("callback_url")
    @classmethod
    def _callback(cls, value: str | None) -> str | None:
        return None if value is None else check_callback_url(value)


class ServiceIn(ServiceChanges):
    name: str = Field(
        min_length=1, max_length=63, description="a slug: lower case, digits and hyphens"
    )
    trial: bool | None = Field(
        default=True, description="new services start in trial mode unless this is false"
    )


class AllowedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Channel
    recipient: str = Field(min_length=1, max_length=4096)


class AllowedOut(BaseModel):
    id: int
    channel: str
    recipient: str
    created_at: datetime


class ServiceOut(BaseModel):
    id: str
    name: str
    trial: bool
    senders: dict[str, dict[str, str]]
    provider_chains: dict[str, list[str]]
    rate_limits: dict[str, str]
    daily_quotas: dict[str, int]
    retention_days: int | None
    callback_url: str | None
    created_at: datetime
    updated_at: datetime


class ServiceCreatedOut(ServiceOut):
    callback_secret: str | None = Field(
        default=None, description="the status-webhook signing secret, shown this once"
    )
