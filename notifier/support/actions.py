"""Admin actions: resend a failed, expired or unconfirmed notification, lift a suppression.

Resend creates a new notification linked by ``resend_of``, with a ``resent`` event on both, in
one transaction, and publishes it after commit.

The resend guard: a customer must not get the same message twice because two people (or one
person twice) pressed "resend". A notification that is ``unconfirmed`` (the request reached the
provider and no answer came: it may have been delivered) or that was already resent is resent
only with an explicit confirmation *and* a reason; the page lists the earlier resends, and every
resend is audited with its reason. It refuses, with a reason a person can act on,
when the original's content cannot be reproduced faithfully: sensitive values (a login code)
are sealed only while delivery needs them and destroyed when it ends, so resending would send
"[redacted]"; the caller must send a new one. It also refuses while a suppression blocks the
recipient (lift it first, deliberately).

Lifting a suppression always needs a reason, which is kept. A STOP is never lifted by staff: it
is the recipient's legal opt-out from that number, and only a START from the same number lifts
it (``notifier.campaigns.optout`` handles the inbound START).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from notifier.db.models import Notification, Suppression, utcnow
from notifier.notifications import repository
from notifier.notifications.rows import event, notification_row
from notifier.ownership import ALL_SERVICES
from notifier.runtime import Runtime
from notifier.statuses import EventKind, Status
from notifier.support.cases import RESENDABLE, NotificationCase, load_case
from notifier.support.summary import reason_text, when
from notifier.suppressions import applies_to
from providers.interface import Lane, SuppressionReason

MAX_REASON = MAX_LIFT_REASON = 500
STOP_RULE = (
    "The recipient replied STOP: that is their legal opt-out, and only a START sent from that "
    "number lifts it. Staff cannot lift it, whatever was said on the phone; ask the recipient "
    "to text START."
)


class ActionRefused(Exception):
    """The action cannot be done; ``message`` says why and what to do instead."""

    def __init__(self, message: str, status_code: int = 409) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


@dataclass(frozen=True)
class Resent:
    original_id: str
    new_id: str
    lane: str
    guarded: bool = False  # it needed (and had) a confirmation and a reason
    service_id: str | None = None  # the original's (and the copy's) service


def resend(
    session: Session,
    runtime: Runtime,
    notification_id: str,
    by: str,
    *,
    confirmed: bool = False,
    reason: str = "",
    scope: str | None = ALL_SERVICES,
) -> Resent:
    """Write the new notification and both events; the caller publishes after commit.

    The original's row is written first (a row lock on PostgreSQL, the write lock on SQLite),
    so two admins pressing resend at once are serialised: the second sees the first's resend
    and meets the guard. A notification outside ``scope`` is refused as one that does not
    exist (the refusal rolls the touch back)."""
    repository.touch(session, notification_id.strip()[:36], utcnow())
    case = load_case(session, notification_id, scope)
    if case is None:
        raise ActionRefused(f"There is no notification {notification_id}.", 404)
    original = case.notification
    if original.status not in RESENDABLE:
        raise ActionRefused(
            "Only failed, expired or unconfirmed notifications can be resent; "
            f"this one is {original.status}."
        )
    reason = reason.strip()
    if len(reason) > MAX_REASON:
        raise ActionRefused(f"Keep the reason under {MAX_REASON} characters.", 422)
    if case.needs_confirmation and not (confirmed and reason):
        raise ActionRefused(f"{guard_text(case)} Tick the confirmation and say why.", 409)
    if original.content is None:
        raise ActionRefused(
            "Its content was purged after the retention period, so it cannot be resent. "
            "Ask the caller to send a new one."
        )
    if original.sensitive_fields and not original.sealed_content:
        fields = ", ".join(original.sensitive_fields)
        raise ActionRefused(
            f"It contained sensitive values ({fields}) that were destroyed when delivery ended, "
            "so a resend could only send '[redacted]'. Ask the caller to send a new one."
        )
    if case.blocking_suppressions:
        s = case.blocking_suppressions[0]
        raise ActionRefused(
            f"The recipient is suppressed since {when(s.created_at)} because "
            f"{reason_text(s.reason)}. Lift the suppression first if it no longer applies."
        )
    note = f"confirmed: {reason}" if case.needs_confirmation else reason
    why = f" ({note})" if note else ""
    now = utcnow()
    ttl = _ttl(original, runtime)
    copy = notification_row(
        api_key_id=original.api_key_id,
        service_id=original.service_id,
        lane=Lane(original.lane),
        recipient=original.recipient,
        status=Status.QUEUED,
        now=now,
        expires_at=now + ttl,
        platform=original.platform,
        reference=original.reference,
        content=original.content,
        sealed_content=original.sealed_content,
        sensitive_fields=original.sensitive_fields or (),
        template_name=original.template_name,
        template_version=original.template_version,
        sms_segments=original.sms_segments,
        resend_of=original.id,
        campaign_id=original.campaign_id,
        test=original.test,  # a test notification's resend stays with the simulator
    )
    repository.insert_notifications(session, [copy], [])
    copy_id = copy["id"]
    repository.add_events(
        session,
        [
            _event(copy_id, now, Status.QUEUED, f"resend of {original.id}, requested by {by}{why}"),
            _event(original.id, now, None, f"resent as {copy_id} by {by}{why}"),
        ],
    )
    return Resent(
        original_id=original.id,
        new_id=copy_id,
        lane=copy["lane"],
        guarded=case.needs_confirmation,
        service_id=original.service_id,
    )


def guard_text(case: NotificationCase) -> str:
    """Why a resend of this notification needs a confirmation and a reason."""
    parts = []
    if case.notification.status == Status.UNCONFIRMED.value:
        provider = case.notification.provider or "the provider"
        parts.append(
            f"The request reached {provider} and no answer came: it may have been delivered, "
            "and a resend may give the customer a second copy."
        )
    if case.resent_as:
        count = len(case.resent_as)
        parts.append(
            f"It was already resent {count} time{'s' if count != 1 else ''} "
            f"(as {', '.join(case.resent_as)})."
        )
    return " ".join(parts)


def publish(runtime: Runtime, resent: Resent) -> None:
    runtime.publisher.publish([(resent.new_id, resent.lane)])


def lift(
    session: Session, suppression_id: int, reason: str, by: str, scope: str | None = ALL_SERVICES
) -> Suppression:
    """Lift a suppression seen within ``scope`` (a global one, or the service's own)."""
    reason = reason.strip()
    if not reason:
        raise ActionRefused("Say why the suppression is lifted; the reason is kept.", 422)
    if len(reason) > MAX_LIFT_REASON:
        raise ActionRefused(f"Keep the reason under {MAX_LIFT_REASON} characters.", 422)
    suppression = session.get(Suppression, suppression_id)
    if suppression is None or not applies_to(suppression, scope):
        raise ActionRefused(f"There is no suppression {suppression_id}.", 404)
    if suppression.lifted_at is not None:
        raise ActionRefused(
            f"This suppression was already lifted on {when(suppression.lifted_at)} "
            f"by {suppression.lifted_by}."
        )
    if suppression.reason == SuppressionReason.STOP.value:
        raise ActionRefused(STOP_RULE)
    suppression.lifted_at = utcnow()
    suppression.lifted_reason = reason
    suppression.lifted_by = by
    return suppression


def add_manual(
    session: Session,
    channel: str,
    recipient: str,
    detail: str | None,
    by: str,
    service_id: str | None = None,
) -> tuple[Suppression, bool]:
    """A manual suppression of a (normalised) recipient; returns it and whether it is new (an
    active manual suppression of the same recipient is returned as it is)."""
    existing = repository.active_suppression(session, channel, recipient, ["manual"], service_id)
    if existing is not None:
        return existing, False
    row = Suppression(
        channel=channel,
        recipient=recipient,
        reason=SuppressionReason.MANUAL.value,
        detail=f"{detail.strip()} (by {by})" if detail and detail.strip() else f"by {by}",
        created_at=utcnow(),
        service_id=service_id,
    )
    session.add(row)
    session.flush()
    return row, True


def _ttl(original: Notification, runtime: Runtime) -> timedelta:
    start = original.send_at or original.created_at
    if original.expires_at and start and original.expires_at > start:
        return original.expires_at - start
    return timedelta(seconds=runtime.settings.default_ttl_seconds)


def _event(
    notification_id: str, at: datetime, status: Status | None, detail: str
) -> dict[str, Any]:
    return event(notification_id, EventKind.RESENT, status, detail, at)
