"""Suppressions for operators without the console (scope ``suppressions:manage``).

    GET  /v1/suppressions?channel=sms&reason=stop&recipient=07911 123456&active=true
    POST /v1/suppressions                {"channel": "email", "to": "ada@example.com",
                                          "detail": "..."}
    POST /v1/suppressions/{id}/lift      {"reason": "the mailbox works again"}

The rules are the console's (one implementation, :mod:`notifier.support.actions`): a lift needs
a reason, which is kept; a STOP is never lifted by anyone but the recipient (a START from the
number), so lifting one is a 409. Every change is written to the support audit log under the
key's name, in the same transaction. Listing is newest first, keyset-paginated on the id.

A key sees (and may lift) the suppressions every service shares (bounces, complaints, STOP) and
its own service's (unsubscribes, manual ones, which it adds for its service); another service's
are a 404 (:mod:`notifier.ownership`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from notifier.api.deps import ApiKeyDep, RuntimeDep, SessionDep
from notifier.db.models import Suppression
from notifier.errors import ErrorCode, NotifierError, field_error
from notifier.keys import Scope
from notifier.ownership import owned_or_global, scope_of
from notifier.recipients import normalise, normalise_for_search
from notifier.support import actions, audit
from notifier.support.models import AuditAction
from notifier.support.schemas import SuppressionOut, suppression_out
from providers.interface import Channel, SuppressionReason

router = APIRouter(prefix="/v1/suppressions", tags=["suppressions"])


class SuppressionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Channel
    to: str = Field(min_length=1, max_length=4096, description="address, number or device token")
    detail: str | None = Field(default=None, max_length=500)


class LiftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=actions.MAX_REASON)


class SuppressionPage(BaseModel):
    items: list[SuppressionOut]
    next_cursor: str | None = None


def refusal(error: actions.ActionRefused) -> NotifierError:
    """The console's refusal as the API's error envelope."""
    code = {404: ErrorCode.NOT_FOUND, 422: ErrorCode.VALIDATION_ERROR}.get(
        error.status_code, ErrorCode.CONFLICT
    )
    return NotifierError(code, error.message)


@router.get("", response_model=SuppressionPage)
def list_suppressions(
    caller: ApiKeyDep,
    session: SessionDep,
    runtime: RuntimeDep,
    channel: Channel | None = None,
    reason: SuppressionReason | None = None,
    recipient: Annotated[str | None, Query(max_length=4096, description="any spelling")] = None,
    active: bool | None = None,
    cursor: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> SuppressionPage:
    caller.require_scope(Scope.SUPPRESSIONS)
    stmt = select(Suppression).where(*owned_or_global(Suppression.service_id, scope_of(caller)))
    if cursor is not None:
        if not cursor.isdigit():
            raise field_error(
                ErrorCode.INVALID_CURSOR, "cursor", "cursor is not one this API returned"
            )
        stmt = stmt.where(Suppression.id < int(cursor))
    if channel:
        stmt = stmt.where(Suppression.channel == channel.value)
    if reason:
        stmt = stmt.where(Suppression.reason == reason.value)
    if recipient and recipient.strip():
        forms = normalise_for_search(recipient, runtime.settings.phone_search_regions)
        stmt = stmt.where(Suppression.recipient.in_(forms))
    if active is not None:
        lifted = Suppression.lifted_at.is_(None)
        stmt = stmt.where(lifted if active else ~lifted)
    rows = list(session.scalars(stmt.order_by(Suppression.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    audit.record(
        session,
        audit.Actor.of_api_key(caller),
        AuditAction.LIST_SUPPRESSIONS,
        query={
            "channel": channel.value if channel else None,
            "reason": reason.value if reason else None,
            "recipient": recipient,
        },
    )
    return SuppressionPage(
        items=[suppression_out(r) for r in rows], next_cursor=str(rows[-1].id) if more else None
    )


@router.post("", status_code=201, response_model=SuppressionOut)
def add_suppression(body: SuppressionIn, caller: ApiKeyDep, session: SessionDep) -> SuppressionOut:
    caller.require_scope(Scope.SUPPRESSIONS)
    recipient = normalise(body.channel, body.to)
    row, created = actions.add_manual(
        session, body.channel.value, recipient, body.detail, caller.name, caller.service.id
    )
    if created:
        audit.record(
            session,
            audit.Actor.of_api_key(caller),
            AuditAction.ADD_SUPPRESSION,
            query={"suppression_id": row.id, "channel": row.channel, "recipient": row.recipient},
        )
    return suppression_out(row)


@router.post("/{suppression_id}/lift", response_model=SuppressionOut)
def lift_suppression(
    suppression_id: int, body: LiftIn, caller: ApiKeyDep, session: SessionDep
) -> SuppressionOut:
    caller.require_scope(Scope.SUPPRESSIONS)
    try:
        row = actions.lift(
            session, suppression_id, body.reason, f"API key {caller.name}", scope_of(caller)
        )
    except actions.ActionRefused as e:
        raise refusal(e) from e
    audit.record(
        session,
        audit.Actor.of_api_key(caller),
        AuditAction.LIFT_SUPPRESSION,
        notification_id=row.notification_id,
        query={"suppression_id": row.id, "reason": body.reason.strip()},
    )
    return suppression_out(row)
