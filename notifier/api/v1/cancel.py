"""``POST /v1/notifications/{id}/cancel``: cancel a notification that has not set off yet.

Only the key that sent it may cancel it (scope ``notifications:send``: cancelling is part of
sending). It can be cancelled while it is ``scheduled``: waiting for its ``send_at``, deferred
by quiet hours or held by a paused campaign. Once it is ``queued`` it is on its way (a worker
may be claiming it this instant), so the answer is 409 ``conflict`` and nothing changes; a
cancelled notification stays cancelled (a second cancel is a 409 too).

The status moves with the repository's guarded update (``scheduled -> cancelled`` only), so a
cancel racing the sweeper's release either wins, and nothing is sent, or loses with a 409. The
sealed copy of sensitive values is wiped, a ``cancelled`` event is recorded, and a status
webhook is owed in the same transaction, as for every final status.
"""

from __future__ import annotations

from fastapi import APIRouter

from notifier import reasons
from notifier.api.deps import ApiKeyDep, SessionDep
from notifier.db.models import Notification, utcnow
from notifier.errors import ErrorCode, NotifierError
from notifier.keys import Scope
from notifier.notifications import repository
from notifier.notifications.rows import event
from notifier.notifications.schemas import NotificationOut
from notifier.notifications.views import notification_out
from notifier.ownership import require_sent_by
from notifier.statuses import EventKind, Status

router = APIRouter(prefix="/v1/notifications", tags=["notifications"])


@router.post("/{notification_id}/cancel", response_model=NotificationOut)
def cancel_notification(
    notification_id: str, caller: ApiKeyDep, session: SessionDep
) -> NotificationOut:
    caller.require_scope(Scope.SEND)
    row = repository.get(session, notification_id[:36])
    if row is None:
        raise NotifierError(ErrorCode.NOT_FOUND, "no such notification for this API key")
    require_sent_by(caller, row.api_key_id, row.service_id)
    now = utcnow()
    moved = repository.move(
        session,
        [row.id],
        Status.CANCELLED,
        where=[Notification.status == Status.SCHEDULED.value],
        **reasons.cancelled("cancelled by the caller").columns(),
        completed_at=now,
    )
    if not moved:
        session.refresh(row)
        raise NotifierError(
            ErrorCode.CONFLICT,
            f"the notification is {row.status}: only a scheduled notification (waiting for its "
            "send time or quiet hours) can be cancelled",
        )
    repository.add_events(
        session,
        [
            event(
                row.id,
                EventKind.CANCELLED,
                Status.CANCELLED,
                f"cancelled by the caller ({caller.name})",
                now,
            )
        ],
    )
    session.flush()
    session.refresh(row)
    return notification_out(row, repository.events_of(session, row.id))
