"""/v1/notifications: send one, send a batch, read one, list the caller's own."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Response
from fastapi.responses import JSONResponse

from notifier.api.deps import ApiKeyDep, RuntimeDep, SessionDep
from notifier.errors import ErrorCode, NotifierError
from notifier.keys import Scope
from notifier.notifications import listing, repository
from notifier.notifications.batch import BATCH_HEADER_MAX
from notifier.notifications.schemas import (
    BatchRequest,
    BatchResponse,
    NotificationOut,
    NotificationPage,
    NotificationRequest,
)
from notifier.notifications.views import notification_out
from notifier.ownership import require_sent_by, scope_of, sender_key
from notifier.recipients import normalise_for_search
from notifier.statuses import Status
from providers.interface import Channel

router = APIRouter(prefix="/v1/notifications", tags=["notifications"])


@router.post("", status_code=202, response_model=NotificationOut)
async def send_notification(
    request: Annotated[NotificationRequest, Body()],
    caller: ApiKeyDep,
    runtime: RuntimeDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=255)] = None,
) -> NotificationOut:
    """Intake chooses the path (see :meth:`Intake.submit`); a replay says so in a header."""
    caller.require_scope(Scope.SEND)
    result = await runtime.intake.submit(caller, request, idempotency_key)
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    if result.notification is None:  # submit raises for every refusal
        raise RuntimeError("an accepted notification without its row")
    return notification_out(result.notification)


@router.post("/batch", status_code=202, response_model=BatchResponse)
def send_batch(
    batch: BatchRequest,
    caller: ApiKeyDep,
    runtime: RuntimeDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=BATCH_HEADER_MAX,
            description="Item i gets the key `<this>#<i>` unless it carries its own",
        ),
    ] = None,
) -> JSONResponse:
    """Each item is judged on its own; see notifier/notifications/batch.py for idempotency."""
    caller.require_scope(Scope.SEND)
    results: list[dict[str, Any]] = []
    outcomes = runtime.intake.submit_batch(caller, batch.notifications, idempotency_key)
    for index, outcome in enumerate(outcomes):
        if outcome.error is not None:
            results.append({"index": index, "error": outcome.error.envelope()["error"]})
        else:
            stored = outcome.accepted or {}  # every item without an error was accepted
            result = {"index": index, "id": stored["id"], "status": stored["status"]}
            if outcome.replayed:
                result["replayed"] = True
            if stored.get("test"):
                result["test"] = True
            results.append(result)
    accepted = sum(1 for r in results if "error" not in r)
    # built as plain JSON (the shape is BatchResponse, documented above): validating a thousand
    # result models again would cost more than accepting the notifications did
    body = {"results": results, "accepted": accepted, "rejected": len(results) - accepted}
    return JSONResponse(body, status_code=202)


@router.get("/{notification_id}", response_model=NotificationOut)
def get_notification(
    notification_id: str, caller: ApiKeyDep, session: SessionDep
) -> NotificationOut:
    caller.require_scope(Scope.READ)
    row = repository.get(session, notification_id)
    if row is None:
        raise NotifierError(ErrorCode.NOT_FOUND, "no such notification for this API key")
    require_sent_by(caller, row.api_key_id, row.service_id)
    return notification_out(row, repository.events_of(session, row.id))


@router.get("", response_model=NotificationPage)
def list_notifications(
    caller: ApiKeyDep,
    session: SessionDep,
    runtime: RuntimeDep,
    recipient: str | None = None,
    reference: str | None = None,
    status: Status | None = None,
    channel: Channel | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> NotificationPage:
    caller.require_scope(Scope.READ)
    filters = listing.Filters(
        service_id=scope_of(caller),
        api_key_id=sender_key(caller),
        recipients=normalise_for_search(recipient, runtime.settings.phone_search_regions)
        if recipient
        else (),
        reference=reference,
        status=status.value if status else None,
        channel=channel.value if channel else None,
        since=_aware(since),
        until=_aware(until),
    )
    rows, next_cursor = listing.page(session, filters, cursor, limit)
    return NotificationPage(items=[notification_out(r) for r in rows], next_cursor=next_cursor)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise NotifierError(
            ErrorCode.VALIDATION_ERROR, "since/until need a UTC offset, e.g. 2026-11-22T10:00:00Z"
        )
    return value
