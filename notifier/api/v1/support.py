"""Support search through the API for keys with ``support:read`` (issue 5).

The console's searches across every caller of the key's service (every service for a platform
admin key, :mod:`notifier.ownership`), returning the same redacted data, each request written
to the support audit log under the key's name and with the service it looked at: the key's for
a search (none for a platform admin's), the notification's for a view.

    GET /v1/support/notifications?recipient=07911 123456&status=failed&since=2026-11-20T00:00:00Z
    GET /v1/support/notifications/{id}
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from notifier.api.deps import ApiKeyDep, RuntimeDep, SessionDep
from notifier.errors import ErrorCode, NotifierError
from notifier.keys import Scope
from notifier.ownership import scope_of
from notifier.statuses import Status
from notifier.support import audit
from notifier.support.cases import load_case
from notifier.support.models import AuditAction
from notifier.support.schemas import SupportNotificationOut, SupportPage, case_out, page_out
from notifier.support.search import Criteria, SearchField, search
from providers.interface import Channel, Lane

router = APIRouter(prefix="/v1/support", tags=["support"])

Text = Annotated[str | None, Query(max_length=4096)]


@router.get("/notifications", response_model=SupportPage)
def search_notifications(
    caller: ApiKeyDep,
    session: SessionDep,
    runtime: RuntimeDep,
    q: Annotated[str | None, Query(max_length=4096, description="any of the fields below")] = None,
    recipient: Text = None,
    notification_id: Text = None,
    reference: Text = None,
    provider_message_id: Text = None,
    channel: Channel | None = None,
    lane: Lane | None = None,
    status: Status | None = None,
    api_key_name: Annotated[
        str | None, Query(alias="caller", max_length=100, description="the API key's name")
    ] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> SupportPage:
    caller.require_scope(Scope.SUPPORT_READ)
    given = (
        (SearchField.ANYTHING, q),
        (SearchField.RECIPIENT, recipient),
        (SearchField.ID, notification_id),
        (SearchField.REFERENCE, reference),
        (SearchField.PROVIDER_MESSAGE_ID, provider_message_id),
    )
    criteria = Criteria(
        terms=tuple((f, text) for f, text in given if text and text.strip()),
        channel=channel.value if channel else None,
        lane=lane.value if lane else None,
        status=status.value if status else None,
        caller=api_key_name,
        since=_aware(since),
        until=_aware(until),
        regions=tuple(runtime.settings.phone_search_regions),
        service_id=scope_of(caller),
    )
    results = search(session, criteria, cursor, limit)
    audit.record(
        session, audit.Actor.of_api_key(caller), AuditAction.SEARCH, query=criteria.as_audit_query()
    )
    return page_out(results)


@router.get("/notifications/{notification_id}", response_model=SupportNotificationOut)
def get_notification(
    notification_id: str, caller: ApiKeyDep, session: SessionDep
) -> SupportNotificationOut:
    caller.require_scope(Scope.SUPPORT_READ)
    case = load_case(session, notification_id, scope_of(caller))
    if case is None:
        raise NotifierError(ErrorCode.NOT_FOUND, "no such notification")
    audit.record(
        session,
        audit.Actor.of_api_key(caller),
        AuditAction.VIEW_NOTIFICATION,
        notification_id=case.notification.id,
        query={"service_id": case.notification.service_id},
        service_id=case.notification.service_id,
    )
    return case_out(case)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise NotifierError(
            ErrorCode.VALIDATION_ERROR, "since/until need a UTC offset, e.g. 2026-11-22T10:00:00Z"
        )
    return value
