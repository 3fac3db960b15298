"""Support search across every caller: by recipient (any spelling), id, reference or provider
message id, with filters for channel, lane, status, caller (API key name) and date range.

The criteria a person gives become the listing's one ``Filters`` (in
``notifier.notifications.listing``: the same mapping to SQL as the API's list), newest first and
keyset-paginated, plus counts per status for the whole result. Each text term is an equality on
an indexed column (recipient + created_at, the primary key, reference, provider_message_id), so
PostgreSQL answers from indexes; ``tests/support/test_search_postgres.py`` checks the plans with
EXPLAIN.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier.db.models import ApiKey, Notification
from notifier.notifications import listing
from notifier.notifications.listing import SearchField
from notifier.ownership import ALL_SERVICES, owned
from notifier.recipients import DEFAULT_SEARCH_REGIONS
from notifier.services.models import Service

__all__ = [
    "Criteria",
    "Results",
    "SearchField",
    "caller_names",
    "filters",
    "known_callers",
    "search",
]


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
    service_id: str | None = None  # None: every service (see notifier.ownership)

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
        if self.service_id:  # the audit says which service's rows a search looked at
            query["service_id"] = self.service_id
        return query


@dataclass
class Results:
    rows: list[Notification]
    next_cursor: str | None
    counts: dict[str, int]
    caller_names: dict[str, str] = field(default_factory=dict)  # api_key_id -> name
    # service_id -> name, for a search across every service (a platform admin's) only
    service_names: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def filters(criteria: Criteria) -> listing.Filters:
    """The support search as the listing's filters (across callers: no API key id)."""
    return listing.Filters(
        terms=criteria.terms,
        channel=criteria.channel,
        lane=criteria.lane,
        status=criteria.status,
        caller=criteria.caller,
        since=criteria.since,
        until=criteria.until,
        regions=criteria.regions,
        service_id=criteria.service_id,
    )


def search(session: Session, criteria: Criteria, cursor: str | None, limit: int) -> Results:
    where = filters(criteria)
    rows, next_cursor = listing.page(session, where, cursor, limit)
    counts = listing.status_counts(session, where)
    services = service_names(session, rows) if criteria.service_id is ALL_SERVICES else {}
    return Results(rows, next_cursor, counts, caller_names(session, rows), services)


def service_names(session: Session, rows: list[Notification]) -> dict[str, str]:
    ids = {r.service_id for r in rows if r.service_id}
    if not ids:
        return {}
    return dict(
        session.execute(select(Service.id, Service.name).where(Service.id.in_(ids))).tuples().all()
    )


def caller_names(session: Session, rows: list[Notification]) -> dict[str, str]:
    ids = {r.api_key_id for r in rows if r.api_key_id}
    if not ids:
        return {}
    return dict(session.execute(select(ApiKey.id, ApiKey.name).where(ApiKey.id.in_(ids))).all())


def known_callers(session: Session, scope: str | None = ALL_SERVICES) -> list[str]:
    """The API key names the caller filter offers: the scope's keys only (another service's key
    names are its own business)."""
    return list(
        session.scalars(
            select(ApiKey.name)
            .where(*owned(ApiKey.service_id, scope))
            .distinct()
            .order_by(ApiKey.name)
        )
    )
