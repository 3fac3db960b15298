"""/v1/notifications: send one, send a batch, read one, list the caller's own."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError

from notifier.api.deps import ApiKeyDep, RuntimeDep, SessionDep, authenticated_caller
from notifier.api.direct_route import body_of, direct_post, headers_named, is_json, is_json_type
from notifier.errors import ErrorCode, NotifierError
from notifier.keys import Caller, Scope
from notifier.notifications import listing, repository
from notifier.notifications.batch import BATCH_HEADER_MAX
from notifier.notifications.schemas import (
    NOTIFICATION_REQUEST,
    BatchRequest,
    BatchResponse,
    EmailRequest,
    NotificationOut,
    NotificationPage,
    NotificationRequest,
    PushRequest,
    SmsRequest,
    ValidatedBatch,
)
from notifier.notifications.views import accepted_out, notification_out
from notifier.ownership import require_sent_by, scope_of, sender_key
from notifier.recipients import normalise_for_search
from notifier.runtime import Runtime
from notifier.statuses import Status
from providers.interface import Channel

router = APIRouter(prefix="/v1/notifications", tags=["notifications"])

IDEMPOTENCY_KEY_MAX = 255


_SEND_HEADERS = frozenset({b"content-type", b"idempotency-key", b"authorization"})


async def _send_direct(request: Request) -> Response | None:
    """:func:`send_notification` for a well-formed request: the body validated once from its
    bytes, the caller as its dependency finds it, the answer serialised once. ``None`` for
    anything else, which the declared endpoint then handles (notifier/api/direct_route.py)."""
    headers = headers_named(request.scope, _SEND_HEADERS)
    if not is_json_type(headers.get(b"content-type")):
        return None
    idempotency_key = headers.get(b"idempotency-key")
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= IDEMPOTENCY_KEY_MAX:
        return None
    body = await body_of(request)
    try:
        notification = NOTIFICATION_REQUEST.validate_json(body)
    except (ValidationError, NotifierError):  # NotifierError: the unstorable-text validator
        return None
    runtime: Runtime = request.app.state.runtime
    caller = await authenticated_caller(runtime, headers.get(b"authorization"))
    replayed, out = await _send(runtime, caller, notification, idempotency_key)
    response = Response(
        _NOTIFICATION_OUT.dump_json(out, by_alias=True),
        status_code=202,
        media_type="application/json",
    )
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@direct_post(router, "", _send_direct, status_code=202, response_model=NotificationOut)
async def send_notification(
    request: Annotated[NotificationRequest, Body()],
    caller: ApiKeyDep,
    runtime: RuntimeDep,
    response: Response,
    idempotency_key: Annotated[
        str | None, Header(min_length=1, max_length=IDEMPOTENCY_KEY_MAX)
    ] = None,
) -> NotificationOut:
    """Intake chooses the path (see :meth:`Intake.submit`); a replay says so in a header."""
    replayed, out = await _send(runtime, caller, request, idempotency_key)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return out


async def _send(
    runtime: Runtime,
    caller: Caller,
    request: EmailRequest | SmsRequest | PushRequest,
    idempotency_key: str | None,
) -> tuple[bool, NotificationOut]:
    caller.require_scope(Scope.SEND)
    result = await runtime.intake.submit(caller, request, idempotency_key)
    if result.notification is not None:
        return result.replayed, notification_out(result.notification)
    if result.accepted is None:  # submit raises for every refusal
        raise RuntimeError("an accepted notification without its row")
    return result.replayed, accepted_out(result.accepted)


_NOTIFICATION_OUT: TypeAdapter[NotificationOut] = TypeAdapter(NotificationOut)


async def _send_batch_direct(request: Request) -> Response | None:
    """:func:`send_batch` for a batch without an Idempotency-Key whose items are all valid
    requests: validated once from its bytes (:class:`ValidatedBatch`); a batch with an invalid
    item is parsed once as :class:`BatchRequest` and judged item by item, as declared. ``None``
    for anything else (notifier/api/direct_route.py)."""
    if not is_json(request) or "idempotency-key" in request.headers:
        return None
    items = await run_in_threadpool(_batch_items, await body_of(request))  # ms per 1,000 items
    if items is None:
        return None
    runtime: Runtime = request.app.state.runtime
    caller = await authenticated_caller(runtime, request.headers.get("authorization"))
    return await run_in_threadpool(_batch, runtime, caller, items, None)


def _batch_items(body: bytes) -> Sequence[Any] | None:
    try:
        return ValidatedBatch.model_validate_json(body).notifications
    except (ValidationError, NotifierError):  # NotifierError: the unstorable-text validator
        try:
            return BatchRequest.model_validate_json(body).notifications
        except ValidationError:
            return None


@direct_post(router, "/batch", _send_batch_direct, status_code=202, response_model=BatchResponse)
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
    return _batch(runtime, caller, batch.notifications, idempotency_key)


def _batch(
    runtime: Runtime, caller: Caller, items: Sequence[Any], idempotency_key: str | None
) -> JSONResponse:
    caller.require_scope(Scope.SEND)
    results: list[dict[str, Any]] = []
    outcomes = runtime.intake.submit_batch(caller, items, idempotency_key)
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
