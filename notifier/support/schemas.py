"""Support API responses: the notification views of the intake API, plus what support needs
(caller name, the plain-language summary, suppressions). Redacted data only."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from notifier.db.models import Suppression
from notifier.notifications.schemas import NotificationOut
from notifier.notifications.views import notification_out
from notifier.support.cases import NotificationCase
from notifier.support.search import Results


class SuppressionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # read straight from a Suppression row

    id: int
    channel: str
    recipient: str
    reason: str
    detail: str | None = None
    notification_id: str | None = None
    created_at: datetime
    lifted_at: datetime | None = None
    lifted_reason: str | None = None
    lifted_by: str | None = None


class SupportNotificationOut(NotificationOut):
    caller: str | None = None
    summary: str | None = None
    suppressions: list[SuppressionOut] | None = None


class SupportPage(BaseModel):
    items: list[SupportNotificationOut]
    next_cursor: str | None = None
    counts: dict[str, int]
    total: int


def suppression_out(row: Suppression) -> SuppressionOut:
    return SuppressionOut.model_validate(row)


def page_out(results: Results) -> SupportPage:
    items = [
        SupportNotificationOut(
            **notification_out(row).model_dump(),
            caller=results.caller_names.get(row.api_key_id or ""),
        )
        for row in results.rows
    ]
    return SupportPage(
        items=items, next_cursor=results.next_cursor, counts=results.counts, total=results.total
    )


def case_out(case: NotificationCase) -> SupportNotificationOut:
    base = notification_out(case.notification, case.events).model_dump()
    return SupportNotificationOut(
        **base,
        caller=case.caller,
        summary=case.summary,
        suppressions=[suppression_out(s) for s in case.suppressions],
    )
