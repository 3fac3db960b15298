"""Turning one chunk of an audience into notification rows: the promotional rules in one place.

For every contact of the chunk, on the campaign's (promotional) lane:

1. no address for the channel: skipped, no notification (counted in the run);
2. no marketing consent for the channel, or any active suppression of the address: a
   notification with status ``suppressed`` and the reason, never attempted;
3. personalisation missing for this contact: ``failed`` with the reason;
4. otherwise queued, or ``scheduled`` (released by the sweeper) when the throttle gives it a
   later slot or quiet hours (SMS, push) defer it to the recipient's morning.

Promotional emails carry their signed unsubscribe link in the body (``{{ unsubscribe_url }}``
in the template, else a footer) and in ``content["unsubscribe_url"]``, from which delivery sets
the RFC 8058 ``List-Unsubscribe`` headers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from notifier.campaigns import quiet_hours
from notifier.campaigns.models import Campaign, CampaignRun, Contact
from notifier.campaigns.optout import UnsubscribeTokens
from notifier.campaigns.templates import ResolvedTemplate, render
from notifier.db.models import Suppression, new_id
from notifier.errors import NotifierError
from notifier.rendering import Rendered
from notifier.sms_segments import count_segments
from notifier.statuses import EventKind, Status
from notifier.suppressions import suppression_forms
from providers.interface import Category, Channel, Lane

CONSENT = {
    Channel.EMAIL: "email_consent_at",
    Channel.SMS: "sms_consent_at",
    Channel.PUSH: "push_consent_at",
}


@dataclass
class RunContext:
    """What every chunk of one run needs, loaded once."""

    campaign: Campaign
    run: CampaignRun
    lane: Lane
    pick: Callable[[str | None], ResolvedTemplate]  # the variant for a contact's locale
    tokens: UnsubscribeTokens
    ttl: timedelta
    hours: quiet_hours.QuietHours | None
    throttle_interval: float | None  # seconds between two sendable messages


@dataclass
class Chunk:
    rows: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0
    slots: int = 0

    def queued(self) -> list[tuple[str, str]]:
        return [(r["id"], r["lane"]) for r in self.rows if r["status"] == Status.QUEUED.value]


def addresses(contact: Contact, channel: Channel) -> list[tuple[str, str | None]]:
    """(recipient, push platform) pairs of a contact on a channel."""
    if channel == Channel.EMAIL:
        return [(contact.email, None)] if contact.email else []
    if channel == Channel.SMS:
        return [(contact.phone, None)] if contact.phone else []
    return [(t["token"], t.get("platform") or "fcm") for t in contact.push_tokens or []]


def build_chunk(
    ctx: RunContext,
    contacts: Sequence[Contact],
    suppressions: Sequence[Suppression],
    now: datetime,
    first_slot: int,
) -> Chunk:
    channel = ctx.lane.channel
    blocked = {s.recipient: s.reason for s in suppressions if s.channel == channel.value}
    chunk = Chunk()
    for contact in contacts:
        targets = addresses(contact, channel)
        if not targets:
            chunk.skipped += 1
            continue
        for recipient, platform in targets:
            row = _row(ctx, contact, recipient, platform, now)
            if getattr(contact, CONSENT[channel]) is None:
                _end(row, Status.SUPPRESSED, f"no marketing consent for {channel.value}", now)
            elif reason := next(
                (blocked[f] for f in suppression_forms(channel.value, recipient) if f in blocked),
                None,
            ):
                _end(row, Status.SUPPRESSED, f"recipient suppressed: {reason}", now)
            else:
                _content(ctx, row, contact, recipient, now, first_slot + chunk.slots)
                if row["status"] != Status.FAILED.value:
                    chunk.slots += 1
            chunk.rows.append(row)
            chunk.events.append(_event(row))
    return chunk


def _row(
    ctx: RunContext, contact: Contact, recipient: str, platform: str | None, now: datetime
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "api_key_id": ctx.campaign.api_key_id,
        "channel": ctx.lane.channel.value,
        "category": Category.PROMOTIONAL.value,
        "lane": ctx.lane.value,
        "status": Status.QUEUED.value,
        "status_reason": None,
        "recipient": recipient,
        "platform": platform,
        "reference": ctx.run.id,
        "content": None,
        "sealed_content": None,
        "sensitive_fields": [],
        "template_name": ctx.campaign.template_name,
        "template_version": ctx.run.template_version,
        "sms_segments": None,
        "send_at": None,
        "expires_at": now + ctx.ttl,
        "created_at": now,
        "updated_at": now,
        "published_at": None,
        "completed_at": None,
        "attempts": 0,
        "campaign_id": ctx.campaign.id,
    }


def _end(row: dict[str, Any], status: Status, reason: str, now: datetime) -> None:
    row.update(status=status.value, status_reason=reason[:200], completed_at=now)


def _content(
    ctx: RunContext,
    row: dict[str, Any],
    contact: Contact,
    recipient: str,
    now: datetime,
    slot: int,
) -> None:
    channel = ctx.lane.channel
    template = ctx.pick(contact.locale)
    data = {
        **(ctx.campaign.data or {}),
        **(contact.attributes or {}),
        "key": contact.key,
        "email": contact.email,
        "phone": contact.phone,
        "locale": template.locale,
    }
    url = ctx.tokens.url(Channel.EMAIL, recipient) if channel == Channel.EMAIL else None
    if url:
        data["unsubscribe_url"] = url
    try:
        content = render(template, data).content
    except NotifierError as e:
        _end(row, Status.FAILED, f"not rendered: {e.message}", now)
        return
    if url:
        add_unsubscribe_link(content, url)
    if channel == Channel.SMS:
        row["sms_segments"] = count_segments(content["body"]).segments
    row["content"] = content
    _when(ctx, row, contact, recipient, now, slot)


def unsubscribe_link(rendered: Rendered, url: str) -> None:
    """Put the signed unsubscribe link in a promotional email (as shown and as delivered)."""
    add_unsubscribe_link(rendered.content, url)
    add_unsubscribe_link(rendered.redacted, url)


def add_unsubscribe_link(content: dict[str, Any], url: str) -> None:
    """``{{ unsubscribe_url }}`` in the template, else a footer; the URL also travels in
    ``content["unsubscribe_url"]`` for the RFC 8058 headers."""
    content["unsubscribe_url"] = url
    if url not in content["body"]:
        content["body"] = f"{content['body'].rstrip()}\n\nUnsubscribe: {url}\n"
    if content.get("html") and url not in content["html"]:
        content["html"] = f'{content["html"]}\n<p><a href="{url}">Unsubscribe</a></p>'


def _when(
    ctx: RunContext,
    row: dict[str, Any],
    contact: Contact,
    recipient: str,
    now: datetime,
    slot: int,
) -> None:
    due = now
    reason = None
    if ctx.throttle_interval:
        due = max(now, ctx.run.started_at + timedelta(seconds=slot * ctx.throttle_interval))
        if due > now:
            reason = f"throttled: {ctx.campaign.throttle_per_minute} per minute"
    if ctx.hours is not None and ctx.lane.channel in (Channel.SMS, Channel.PUSH):
        zones: list[ZoneInfo] = quiet_hours.recipient_zones(
            contact.timezone, contact.phone, ctx.campaign.quiet_timezone
        )
        deferred = quiet_hours.deferral(due, zones, ctx.hours)
        if deferred is not None:
            due, reason = deferred
    if due > now:
        row.update(
            status=Status.SCHEDULED.value,
            send_at=due,
            status_reason=reason,
            expires_at=due + ctx.ttl,
        )
    else:
        row["published_at"] = now


def _event(row: dict[str, Any]) -> dict[str, Any]:
    status = Status(row["status"])
    kind, detail = {
        Status.QUEUED: (EventKind.QUEUED, f"campaign run {row['reference']}"),
        Status.SCHEDULED: (EventKind.SCHEDULED, row["status_reason"] or "scheduled"),
        Status.SUPPRESSED: (EventKind.SUPPRESSED, f"not sent: {row['status_reason']}"),
        Status.FAILED: (EventKind.FAILED, row["status_reason"]),
    }[status]
    return {
        "notification_id": row["id"],
        "created_at": row["created_at"],
        "kind": kind.value,
        "status": status.value,
        "detail": detail,
    }
