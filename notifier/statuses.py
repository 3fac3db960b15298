"""Notification statuses and the only moves between them.

Status only moves forward. The one loop is a retry: ``sending -> queued`` when an attempt failed
transiently and another is scheduled. A final status never changes again, so a late or
duplicate receipt cannot move it back.

``unconfirmed`` is the final status of a message that *may have been delivered*: its last
request reached a provider and no definite answer ever came (a timeout after the request was
sent, a worker that died between the send and the record), and the retries on that same
provider ran out. It is not ``failed``: a caller or an agent who resends it may send a
duplicate, so the console asks for confirmation and the API and webhooks say so.
"""

from __future__ import annotations

import enum


class Status(enum.StrEnum):
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    UNCONFIRMED = "unconfirmed"  # may have been delivered: see below
    EXPIRED = "expired"
    SUPPRESSED = "suppressed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {
        Status.DELIVERED,
        Status.FAILED,
        Status.UNCONFIRMED,
        Status.EXPIRED,
        Status.SUPPRESSED,
        Status.CANCELLED,
    }
)

# target -> the statuses it may be reached from
ALLOWED_FROM: dict[Status, frozenset[Status]] = {
    Status.SCHEDULED: frozenset({Status.QUEUED}),  # deferred (quiet hours)
    Status.QUEUED: frozenset({Status.SCHEDULED, Status.SENDING}),  # released; retry
    Status.SENDING: frozenset({Status.QUEUED}),  # the guarded claim
    Status.SENT: frozenset({Status.SENDING}),
    Status.DELIVERED: frozenset({Status.SENT, Status.SENDING}),
    Status.FAILED: frozenset({Status.SENDING, Status.SENT, Status.QUEUED}),
    Status.UNCONFIRMED: frozenset({Status.SENDING, Status.QUEUED}),
    Status.EXPIRED: frozenset({Status.SCHEDULED, Status.QUEUED, Status.SENDING}),
    Status.SUPPRESSED: frozenset({Status.SCHEDULED, Status.QUEUED, Status.SENDING}),
    Status.CANCELLED: frozenset({Status.SCHEDULED, Status.QUEUED}),
}


def can_move(current: Status, target: Status) -> bool:
    return current in ALLOWED_FROM[target]


class EventKind(enum.StrEnum):
    """What a delivery event records. The support timeline is a list of these."""

    ACCEPTED = "accepted"
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    REPUBLISHED = "republished"
    CLAIMED = "claimed"
    ATTEMPT = "attempt"
    SENT = "sent"
    RETRY_SCHEDULED = "retry_scheduled"
    WAITING = "waiting"  # no provider could be contacted (breakers open): no attempt spent
    FAILED = "failed"
    UNCONFIRMED = "unconfirmed"
    EXPIRED = "expired"
    SUPPRESSED = "suppressed"
    RECOVERED = "recovered"
    RECEIPT = "receipt"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    RESENT = "resent"
    WEBHOOK = "webhook"
