"""Support search across every caller: by recipient (any spelling), id, reference or provider
message id, with filters for channel, lane, status, caller (API key name) and date range.

Newest first, keyset-paginated on (created_at, id) with the repository's cursors, plus counts
per status for the whole result. Each text term is an equality on an indexed column (recipient +
created_at, the primary key, reference, provider_message_id), so PostgreSQL answers from indexes;
``tests/support/test_search_postgres.py`` checks the plans with EXPLAIN.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from notifier.db.models import ApiKey, Notification
from notifier.notifications import repository
from notifier.recipients import DEFAULT_SEARCH_REGIONS, normalise_for_search

MAX_TERM_LENGTH = 4096


class SearchField(enum.StrEnum):
    ANYTHING = "anything"
    RECIPIENT = "recipient"
    ID = "id"
    REFERENCE = "reference"
    PROVIDER_MESSAGE_ID = "provider_message_id"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    SearchField.ANYTHING: "Anything",
    SearchField.RECIPIENT: "Recipient (email, phone or push token)",
    SearchField.ID: "Notification id",
    SearchField.REFERENCE: "Caller reference",
    SearchField.PROVIDER_MESSAGE_ID: "Provider message id",
}


@dataclass(frozen=True)
class Criteria:
    terms: tuple[tuple[SearchField, str], ...] = ()  # ANDed
    channel: str | None = None
    lane: str | None = None
    status: str | None = None
    caller: str | None = None  # API key name
    since: datetime | None = None
    until: datetime | None = None
    regions: tuple[str, ...] = DEFAULT_SEARCH_REGIONS  # for local-format phone numbers

    def is_empty(self) -> bool:
        return not (self.terms or self.channel or self.lane or self.status or self.caller)

    def as_audit_query(self) -> dict[str, str]:
        query = {f.value: text for f, text in self.terms}
        for name in ("channel", "lane", "status", "caller"):
            if getattr(self, name):
                query[name] = getattr(self, name)
        if self.since:
            query["since"] = self.since.isoformat()
        if self.until:
            query["until"] = self.until.isoformat()
        return query


@dataclass
class Results:
    rows: list[Notification]
    next_cursor: str | None
    counts: dict[str, int]
    caller_names: dict[str, str] = field(default_factory=dict)  # api_key_id -> name

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def term_condition(
    search_field: SearchField, text: str, regions: Sequence[str] = DEFAULT_SEARCH_REGIONS
) -> ColumnElement[bool]:
    text = text.strip()[:MAX_TERM_LENGTH]
    recipient = Notification.recipient.in_(normalise_for_search(text, regions))
    if search_field == SearchField.RECIPIENT:
        return recipient
    if search_field == SearchField.ID:
        return Notification.id == text
    if search_field == SearchField.REFERENCE:
        return Notification.reference == text
    if search_field == SearchField.PROVIDER_MESSAGE_ID:
        return Notification.provider_message_id == text
    return or_(
        recipient,
        Notification.id == text,
        Notification.reference == text,
        Notification.provider_message_id == text,
    )


def conditions(criteria: Criteria) -> list[ColumnElement[bool]]:
    found = [
        term_condition(f, text, criteria.regions) for f, text in criteria.terms if text.strip()
    ]
    if criteria.channel:
        found.append(Notification.channel == criteria.channel)
    if criteria.lane:
        found.append(Notification.lane == criteria.lane)
    if criteria.status:
        found.append(Notification.status == criteria.status)
    if criteria.caller:
        keys = select(ApiKey.id).where(ApiKey.name == criteria.caller).scalar_subquery()
        found.append(Notification.api_key_id.in_(keys))
    if criteria.since:
        found.append(Notification.created_at >= criteria.since)
    if criteria.until:
        found.append(Notification.created_at < criteria.until)
    return found


def search(session: Session, criteria: Criteria, cursor: str | None, limit: int) -> Results:
    where = conditions(criteria)
    rows, next_cursor = repository.page(session, where, cursor, limit)
    counts = repository.status_counts(session, where)
    return Results(rows, next_cursor, counts, caller_names(session, rows))


def caller_names(session: Session, rows: list[Notification]) -> dict[str, str]:
    ids = {r.api_key_id for r in rows if r.api_key_id}
    if not ids:
        return {}
    return dict(session.execute(select(ApiKey.id, ApiKey.name).where(ApiKey.id.in_(ids))).all())


def known_callers(session: Session) -> list[str]:
    return list(session.scalars(select(ApiKey.name).distinct().order_by(ApiKey.name)))
