"""POST /v1/notifications/batch: up to 1,000 notifications, one result per item, in order.

Each item is validated, rendered and checked on its own (a bad item is an error in its place, the
others are accepted); the accepted ones are stored in one transaction and published together.

Idempotency: an item may carry its own ``idempotency_key``; an ``Idempotency-Key`` header on the
batch gives item ``i`` the key ``<header>#<i>`` (unless it has its own). A keyed item seen before
with the same content is answered with its original notification (``replayed: true``), with
different content it is ``idempotency_key_reused``; so retrying a whole batch stores nothing
twice, and items rejected the first time are simply judged again. Keys and keyed hashes are the
single endpoint's (``idempotency_keys`` table, kept 48 hours).

Bounds shared by the whole batch: rendering time (``batch_render_budget_seconds``: items past it
are a ``template_error``) and stored content (``batch_max_content_chars``: items past it are
``body_too_long``), so one request cannot hold a renderer or store a gigabyte.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from notifier.db.models import IdempotencyRecord
from notifier.db.session import transaction
from notifier.errors import ErrorCode, NotifierError, field_error, from_validation_errors
from notifier.keys import Caller
from notifier.notifications import queries
from notifier.notifications.schemas import EmailRequest, PushRequest, SmsRequest
from notifier.services.quotas import refund_daily_quota, refunding
from notifier.storable import require_storable

if TYPE_CHECKING:
    from notifier.notifications.intake import Intake, IntakeResult, Prepared

KEY_MAX = 255
BATCH_HEADER_MAX = 240  # leaves room for "#<index>"


@dataclass
class _Keyed:
    key: str
    fingerprint: str


def accept_batch(
    intake: Intake, caller: Caller, items: Sequence[Any], idempotency_key: str | None
) -> list[IntakeResult]:
    """``items`` as the body carried them (dicts), or requests validated already (the direct
    path's :class:`~notifier.notifications.schemas.ValidatedBatch`, never with keys)."""
    limit = intake.settings.max_batch_items
    if len(items) > limit:
        raise NotifierError(
            ErrorCode.BATCH_TOO_LARGE, f"a batch holds at most {limit} notifications"
        )
    if idempotency_key:
        require_storable(idempotency_key, "Idempotency-Key")
    try:
        return _attempt(intake, caller, items, idempotency_key)
    except IntegrityError:
        # a concurrent retry of the same keyed items won the race: answer as it did
        return _attempt(intake, caller, items, idempotency_key)


def _attempt(
    intake: Intake, caller: Caller, items: Sequence[Any], header_key: str | None
) -> list[IntakeResult]:
    from notifier.notifications.intake import IntakeResult, _request_adapter

    outcomes: list[IntakeResult] = [IntakeResult() for _ in items]
    keyed: dict[int, _Keyed] = {}
    bodies: dict[int, Any] = {}
    for index, item in enumerate(items):
        try:
            bodies[index], key = _split_key(item, header_key, index)
            if key is not None:
                keyed[index] = _Keyed(key, intake.fingerprint(bodies[index]))
        except NotifierError as e:
            outcomes[index].error = e
    replays = _replays(intake, caller, keyed)

    prepared: list[tuple[int, Prepared]] = []
    render_deadline = time.monotonic() + intake.settings.batch_render_budget_seconds
    content_left = intake.settings.batch_max_content_chars
    for index, body in bodies.items():
        if index in replays:
            outcomes[index] = replays[index]
            continue
        try:
            request = (
                body
                if isinstance(body, EmailRequest | SmsRequest | PushRequest)  # validated already
                else _request_adapter.validate_python(body)
            )
            item = intake.prepare(caller, request, render_deadline - time.monotonic())
            content_left -= _content_size(item)
            if content_left < 0:
                refund_daily_quota(intake.limiter, [item.quota])
                raise field_error(
                    ErrorCode.BODY_TOO_LONG,
                    "body",
                    f"this batch's content passed {intake.settings.batch_max_content_chars} "
                    "characters; send the rest in another batch",
                )
            prepared.append((index, item))
        except ValidationError as e:
            outcomes[index].error = from_validation_errors(e.errors(include_url=False), skip_loc=())
        except NotifierError as e:
            outcomes[index].error = e
    if prepared:
        counted = [p.quota for _, p in prepared]
        with refunding(intake.limiter, counted), transaction(intake.sessions) as session:
            intake._store(session, [p for _, p in prepared])
            records = [
                IdempotencyRecord(
                    api_key_id=caller.id,
                    key=keyed[i].key,
                    fingerprint=keyed[i].fingerprint,
                    notification_id=p.id,
                )
                for i, p in prepared
                if i in keyed
            ]
            if records:
                session.add_all(records)
                session.flush()
        intake._publish([p for _, p in prepared])
    for index, item in prepared:
        outcomes[index].accepted = item.row  # a plain row: no ORM object per item
    return outcomes


def _split_key(item: Any, header_key: str | None, index: int) -> tuple[Any, str | None]:
    """The item without its ``idempotency_key``, and the key that applies to it."""
    own = None
    if isinstance(item, dict) and "idempotency_key" in item:
        item = dict(item)
        own = item.pop("idempotency_key")
        if not isinstance(own, str) or not 1 <= len(own) <= KEY_MAX:
            raise field_error(
                ErrorCode.VALIDATION_ERROR,
                "idempotency_key",
                f"idempotency_key must be text of 1 to {KEY_MAX} characters",
            )
        require_storable(own, "idempotency_key")
    key = own or (f"{header_key}#{index}" if header_key else None)
    return item, key


def _replays(intake: Intake, caller: Caller, keyed: dict[int, _Keyed]) -> dict[int, IntakeResult]:
    from notifier.notifications.intake import IntakeResult

    if not keyed:
        return {}
    with intake.sessions() as session:
        records = {
            r.key: r
            for r in session.scalars(
                select(IdempotencyRecord).where(
                    IdempotencyRecord.api_key_id == caller.id,
                    IdempotencyRecord.key.in_([k.key for k in keyed.values()]),
                )
            )
        }
        ids = [r.notification_id for r in records.values()]
        status = queries.statuses_of(session, ids)
    found: dict[int, IntakeResult] = {}
    for index, item in keyed.items():
        record = records.get(item.key)
        if record is None:
            continue
        if record.fingerprint != item.fingerprint:
            found[index] = IntakeResult(
                error=NotifierError(
                    ErrorCode.IDEMPOTENCY_KEY_REUSED,
                    f"idempotency key {item.key!r} was used with different content",
                )
            )
        else:
            found[index] = IntakeResult(
                replayed=True,
                accepted={
                    "id": record.notification_id,
                    "status": status.get(record.notification_id),
                },
            )
    return found


def _content_size(item: Prepared) -> int:
    content = item.row.get("content") or {}
    return sum(len(v) if isinstance(v, str) else len(str(v)) for v in content.values())
