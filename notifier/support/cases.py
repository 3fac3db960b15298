"""Everything the console shows about one notification or one recipient, read in one place.

Only redacted data is loaded into these objects: ``content`` (rendered with sensitive fields as
``[redacted]``), event details, suppressions. ``sealed_content`` is never read here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier.db.models import ApiKey, DeliveryEvent, Notification, Suppression
from notifier.notifications import listing, queries, repository
from notifier.ownership import ALL_SERVICES, owned_or_global, visible
from notifier.recipients import DEFAULT_SEARCH_REGIONS, normalise_for_search
from notifier.services.models import Service
from notifier.statuses import EventKind, Status
from notifier.support.summary import Facts, summarise
from notifier.suppressions import applies_to, blocking_reasons, suppression_forms
from providers.interface import Category, Channel

RECEIPT_KINDS = frozenset({EventKind.RECEIPT.value, EventKind.DELIVERED.value})
RESENDABLE = frozenset({Status.FAILED.value, Status.EXPIRED.value, Status.UNCONFIRMED.value})


@dataclass
class NotificationCase:
    notification: Notification
    events: list[DeliveryEvent]
    suppressions: list[Suppression]  # this channel + recipient, newest first
    caller: str | None
    summary: str
    resent_as: list[str] = field(default_factory=list)
    service: str | None = None  # the owning service's name

    @property
    def timeline(self) -> list[DeliveryEvent]:
        return [e for e in self.events if e.kind != EventKind.WEBHOOK.value]

    @property
    def attempts(self) -> list[DeliveryEvent]:
        return [e for e in self.events if e.kind == EventKind.ATTEMPT.value]

    @property
    def receipts(self) -> list[DeliveryEvent]:
        return [e for e in self.events if e.kind in RECEIPT_KINDS]

    @property
    def webhooks(self) -> list[DeliveryEvent]:
        return [e for e in self.events if e.kind == EventKind.WEBHOOK.value]

    @property
    def active_suppressions(self) -> list[Suppression]:
        return [s for s in self.suppressions if s.lifted_at is None]

    @property
    def blocking_suppressions(self) -> list[Suppression]:
        """The active suppressions that stop this notification's sends (its service's own and
        the global ones)."""
        reasons = blocking_reasons(Category(self.notification.category))
        service = self.notification.service_id
        return [
            s
            for s in self.active_suppressions
            if (reasons is None or s.reason in reasons) and applies_to(s, service)
        ]

    @property
    def resendable(self) -> bool:
        return self.notification.status in RESENDABLE

    @property
    def needs_confirmation(self) -> bool:
        """Resending may give the customer a second copy: it may have been delivered
        (``unconfirmed``), or it was resent already."""
        return self.notification.status == Status.UNCONFIRMED.value or bool(self.resent_as)


def suppressions_of(
    session: Session,
    channel: str | None,
    recipients: list[str],
    scope: str | None = ALL_SERVICES,
) -> list[Suppression]:
    """The recipients' suppressions that ``scope`` may see: global ones and its own."""
    if not recipients:
        return []
    forms = {f for r in recipients for c in Channel for f in suppression_forms(c.value, r)}
    stmt = select(Suppression).where(
        Suppression.recipient.in_(forms), *owned_or_global(Suppression.service_id, scope)
    )
    if channel:
        stmt = stmt.where(Suppression.channel == channel)
    return list(
        session.scalars(stmt.order_by(Suppression.created_at.desc(), Suppression.id.desc()))
    )


def load_case(
    session: Session, notification_id: str, scope: str | None = ALL_SERVICES
) -> NotificationCase | None:
    """The notification and what explains it; None when there is none within ``scope`` (the
    service a caller sees, :mod:`notifier.ownership`)."""
    row = repository.get(session, notification_id.strip()[:36])
    if row is None or not visible(row.service_id, scope):
        return None
    events = repository.events_of(session, row.id)
    suppressions = suppressions_of(session, row.channel, [row.recipient], scope)
    caused = [s for s in suppressions if s.notification_id == row.id]
    later = 0
    if caused:
        later = listing.count(
            session,
            listing.Filters(
                service_id=scope,
                recipients=[row.recipient],
                channel=row.channel,
                status=Status.SUPPRESSED.value,
                since=caused[0].created_at,
            ),
        )
    resent_as = queries.resends_of(session, row.id)
    caller = (
        session.scalar(select(ApiKey.name).where(ApiKey.id == row.api_key_id))
        if row.api_key_id
        else None
    )
    service = session.get(Service, row.service_id) if row.service_id else None
    facts = Facts(
        notification=row,
        events=events,
        suppressions=list(reversed(suppressions)),
        later_suppressed=later,
        resent_as=resent_as,
    )
    return NotificationCase(
        notification=row,
        events=events,
        suppressions=suppressions,
        caller=caller,
        summary=summarise(facts),
        resent_as=resent_as,
        service=service.name if service is not None else None,
    )


def recipient_forms(text: str, regions: Sequence[str] = DEFAULT_SEARCH_REGIONS) -> list[str]:
    return normalise_for_search(text, regions) if text.strip() else []
