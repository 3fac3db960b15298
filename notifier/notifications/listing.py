"""Listing notifications: one filters value, one mapping from it to a WHERE clause, one keyset
pagination.

The API's ``GET /v1/notifications`` (one caller's notifications) and the support search (across
callers, in any spelling) used to build their WHERE clauses separately; they now both describe
what they want as a :class:`Filters` and get their conditions from :func:`conditions`, so a
filter means the same thing on both, and the caller's service (:mod:`notifier.ownership`) is
one of the filters, so no listing can forget it. Every condition is an equality (or a range on
``created_at``) on an indexed column, so PostgreSQL answers from indexes.

Pagination is newest first on (created_at, id) with an opaque cursor; :func:`newest_first` is
also what the campaign listings page with, on their own (created, id) columns.
"""

from __future__ import annotations

import base64
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.elements import ColumnElement

from notifier.db.models import ApiKey, Notification
from notifier.errors import ErrorCode, field_error
from notifier.ownership import owned
from notifier.recipients import DEFAULT_SEARCH_REGIONS, normalise_for_search

MAX_TERM_LENGTH = 4096
M = TypeVar("M")


class SearchField(enum.StrEnum):
    """What a free-text search term is matched against."""

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
class Filters:
    """What to list. Exact fields are compared as given; ``terms`` are what a person typed
    (trimmed, a recipient in any spelling, local phone numbers read in ``regions``), ANDed."""

    service_id: str | None = None  # None: across services (a platform admin)
    api_key_id: str | None = None  # None: across callers (support)
    caller: str | None = None  # an API key's name (support)
    recipients: Sequence[str] = ()  # normalised forms, any of which matches
    reference: str | None = None
    status: str | None = None
    channel: str | None = None
    lane: str | None = None
    provider_message_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    terms: tuple[tuple[SearchField, str], ...] = ()
    regions: tuple[str, ...] = DEFAULT_SEARCH_REGIONS


def conditions(filters: Filters) -> list[ColumnElement[bool]]:
    """The one mapping from a :class:`Filters` to the conditions of a WHERE clause."""
    found = [_term(f, text, filters.regions) for f, text in filters.terms if text.strip()]
    found.extend(owned(Notification.service_id, filters.service_id))
    if filters.api_key_id is not None:
        found.append(Notification.api_key_id == filters.api_key_id)
    if filters.caller:
        keys = select(ApiKey.id).where(ApiKey.name == filters.caller).scalar_subquery()
        found.append(Notification.api_key_id.in_(keys))
    if filters.recipients:
        found.append(Notification.recipient.in_(list(filters.recipients)))
    equal = {
        Notification.reference: filters.reference,
        Notification.status: filters.status,
        Notification.channel: filters.channel,
        Notification.lane: filters.lane,
        Notification.provider_message_id: filters.provider_message_id,
    }
    found.extend(column == value for column, value in equal.items() if value)
    if filters.since:
        found.append(Notification.created_at >= filters.since)
    if filters.until:
        found.append(Notification.created_at < filters.until)
    return found


def _term(search_field: SearchField, text: str, regions: Sequence[str]) -> ColumnElement[bool]:
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


def encode_cursor(created_at: datetime, row_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{row_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created, row_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return datetime.fromisoformat(created), row_id
    except Exception as e:
        raise field_error(
            ErrorCode.INVALID_CURSOR, "cursor", "cursor is not one this API returned"
        ) from e


def newest_first(
    session: Session,
    stmt: Select[M],
    created: InstrumentedAttribute[datetime],
    ident: InstrumentedAttribute[str],
    cursor: str | None,
    limit: int,
) -> tuple[list[M], str | None]:
    """The rows of ``stmt`` newest first on (created, id), after ``cursor``; and the cursor of
    the next page (None on the last). The one keyset pagination of every listing."""
    if cursor:
        at, last = decode_cursor(cursor)
        stmt = stmt.where(or_(created < at, and_(created == at, ident < last)))
    rows = list(session.scalars(stmt.order_by(created.desc(), ident.desc()).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    last_row = rows[limit - 1]
    return rows[:limit], encode_cursor(getattr(last_row, created.key), getattr(last_row, ident.key))


def page(
    session: Session, filters: Filters, cursor: str | None, limit: int
) -> tuple[list[Notification], str | None]:
    """Notifications matching ``filters``, newest first, keyset-paginated on (created_at, id)."""
    stmt = select(Notification).where(*conditions(filters))
    return newest_first(session, stmt, Notification.created_at, Notification.id, cursor, limit)


def status_counts(session: Session, filters: Filters) -> dict[str, int]:
    """How many notifications match ``filters``, by status (the whole result, not one page)."""
    stmt = (
        select(Notification.status, func.count())
        .where(*conditions(filters))
        .group_by(Notification.status)
    )
    return {status: count for status, count in session.execute(stmt)}


def count(session: Session, filters: Filters) -> int:
    """How many notifications match ``filters``."""
    stmt = select(func.count()).select_from(Notification).where(*conditions(filters))
    return session.scalar(stmt) or 0
