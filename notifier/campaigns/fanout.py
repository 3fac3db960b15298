"""Turning one chunk of an audience into notification rows: the promotional rules in one place.

For every contact of the chunk, on the campaign's (promotional) lane:

1. no address for the channel: skipped, no notification (counted in the run);
2. no marketing consent for the channel, or any active suppression of the address: a
   notification with status ``suppressed`` and the reason, never attempted;
3. personalisation missing for this contact, or the rendered content over the bounds intake
   applies (an SMS over the segment limit): ``failed`` with the reason;
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

from notifier import reasons
from notifier.campaigns.models import Campaign, CampaignRun, Contact
from notifier.config import Settings
from notifier.content import quiet_hours
from notifier.content.templates import ResolvedTemplate, render
from notifier.content.unsubscribe import UnsubscribeTokens, add_unsubscribe_link
from notifier.errors import NotifierError
from notifier.notifications import bounds
from notifier.notifications.rows import event, notification_row
from notifier.reasons import Reason
from notifier.statuses import EventKind, Status
from notifier.suppressions import SuppressionFacts, applies_to, suppression_forms
from providers.interface import Channel, Lane

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
    settings: Settings  # the content bounds intake applies (SMS segments, body sizes)


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
    suppressions: Sequence[SuppressionFacts],
    now: datetime,
    first_slot: int,
) -> Chunk:
    channel = ctx.lane.channel
    blocked = {
        s.recipient: s.reason
        for s in suppressions
        if s.channel == channel.value and applies_to(s, ctx.campaign.service_id)
    }
    chunk = Chunk()
    for contact in contacts:
        targets = addresses(contact, channel)
        if not targets:
            chunk.skipped += 1
            continue
        for recipient, platform in targets:
            fields: dict[str, Any]
            if getattr(contact, CONSENT[channel]) is None:
                fields = _ended(Status.SUPPRESSED, reasons.no_consent(channel.value))
            elif reason := next(
                (blocked[f] for f in suppression_forms(channel.value, recipient) if f in blocked),
                None,
            ):
                fields = _ended(Status.SUPPRESSED, reasons.suppressed(reason))
            else:
                fields = _content(ctx, contact, recipient, now, first_slot + chunk.slots)
                if fields["status"] != Status.FAILED:
                    chunk.slots += 1
            fields.setdefault("expires_at", now + ctx.ttl)
            row = notification_row(
                api_key_id=ctx.campaign.api_key_id,
                service_id=ctx.campaign.service_id,
                lane=ctx.lane,
                recipient=recipient,
                now=now,
                platform=platform,
                reference=ctx.run.id,
                template_name=ctx.campaign.template_name,
                template_version=ctx.run.template_version,
                campaign_id=ctx.campaign.id,
                test=ctx.campaign.test,  # a test key's campaign: the simulator, never a provider
                **fields,
            )
            chunk.rows.append(row)
            chunk.events.append(_event(row))
    return chunk


def _ended(status: Status, reason: Reason) -> dict[str, Any]:
    return {"status": status, "reason": reason}


def _content(
    ctx: RunContext, contact: Contact, recipient: str, now: datetime, slot: int
) -> dict[str, Any]:
    """The rendered content of a sendable contact, checked by the bounds intake applies (an SMS
    over the segment limit fails visibly, never queued), and when it is due."""
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
    url = (
        ctx.tokens.url(Channel.EMAIL, recipient, ctx.campaign.service_id)
        if channel == Channel.EMAIL
        else None
    )
    if url:
        data["unsubscribe_url"] = url
    try:
        content = render(template, data, max_chars=bounds.max_chars(ctx.settings, channel)).content
    except NotifierError as e:
        return _ended(Status.FAILED, reasons.not_rendered(e.message))
    if url:
        add_unsubscribe_link(content, url)
    try:
        segments = bounds.check_content(ctx.settings, channel, content)
    except NotifierError as e:
        return _ended(Status.FAILED, reasons.content_refused(e.message))
    return {"content": content, "sms_segments": segments, **_when(ctx, contact, now, slot)}


def _when(ctx: RunContext, contact: Contact, now: datetime, slot: int) -> dict[str, Any]:
    due = now
    reason = None
    if ctx.throttle_interval:
        due = max(now, ctx.run.started_at + timedelta(seconds=slot * ctx.throttle_interval))
        if due > now:
            reason = reasons.throttled(ctx.campaign.throttle_per_minute)
    if ctx.hours is not None and ctx.lane.channel in (Channel.SMS, Channel.PUSH):
        zones: list[ZoneInfo] = quiet_hours.recipient_zones(
            contact.timezone, contact.phone, ctx.campaign.quiet_timezone
        )
        deferred = quiet_hours.deferral(due, zones, ctx.hours)
        if deferred is not None:
            due, reason = deferred
    if due > now:
        return {
            "status": Status.SCHEDULED,
            "send_at": due,
            "reason": reason,
            "expires_at": due + ctx.ttl,
        }
    return {"status": Status.QUEUED}


def _event(row: dict[str, Any]) -> dict[str, Any]:
    status = Status(row["status"])
    kind, detail = {
        Status.QUEUED: (EventKind.QUEUED, f"campaign run {row['reference']}"),
        Status.SCHEDULED: (EventKind.SCHEDULED, row["status_reason"] or "scheduled"),
        Status.SUPPRESSED: (EventKind.SUPPRESSED, f"not sent: {row['status_reason']}"),
        Status.FAILED: (EventKind.FAILED, row["status_reason"]),
    }[status]
    return event(row["id"], kind, status, detail, row["created_at"])
