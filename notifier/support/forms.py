"""The console's search form: query parameters in, search criteria (or clear errors) out.

Without explicit dates a search covers the last 30 days (the period select widens it), so the
common question, "what happened to the message we sent yesterday?", is fast and the empty state
can say precisely what was searched: "No notifications for ada@example.com in the last 30 days."
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from notifier.db.models import utcnow
from notifier.recipients import DEFAULT_SEARCH_REGIONS
from notifier.statuses import Status
from notifier.support.search import Criteria, SearchField
from providers.interface import Channel, Lane

PERIODS = {
    "1d": ("the last 24 hours", timedelta(days=1)),
    "7d": ("the last 7 days", timedelta(days=7)),
    "30d": ("the last 30 days", timedelta(days=30)),
    "90d": ("the last 90 days", timedelta(days=90)),
    "all": ("all time", None),
}
DEFAULT_PERIOD = "30d"
FIELDS = ("q", "by", "channel", "lane", "status", "caller", "period", "from", "to")


@dataclass
class SearchForm:
    values: dict[str, str]
    criteria: Criteria
    errors: list[str] = field(default_factory=list)
    submitted: bool = False
    period_text: str = ""

    def empty_message(self) -> str:
        text = self.values.get("q", "").strip()
        parts = ["No notifications"]
        if text:
            parts.append(f" for {text}")
        filters = [
            f"{name} {self.values[name]}"
            for name in ("channel", "lane", "status", "caller")
            if self.values.get(name)
        ]
        if filters:
            parts.append(f" with {', '.join(filters)}")
        if self.period_text and self.period_text != "all time":
            parts.append(f" in {self.period_text}")
        return "".join(parts) + "."


def _choice(value: str, allowed: set[str], label: str, errors: list[str]) -> str | None:
    if not value:
        return None
    if value not in allowed:
        errors.append(f"{label} must be one of: {', '.join(sorted(allowed))}.")
        return None
    return value


def _day(value: str, label: str, errors: list[str]) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors.append(f"{label} must be a date like 2026-11-21.")
        return None


def parse(params: Mapping[str, str], regions: Sequence[str] = DEFAULT_SEARCH_REGIONS) -> SearchForm:
    values = {name: (params.get(name) or "").strip()[:4096] for name in FIELDS}
    errors: list[str] = []
    by = _choice(values["by"], {f.value for f in SearchField}, "Search by", errors)
    search_field = SearchField(by) if by else SearchField.ANYTHING
    values["by"] = search_field.value
    channel = _choice(values["channel"], {c.value for c in Channel}, "Channel", errors)
    lane = _choice(values["lane"], {lane.value for lane in Lane}, "Lane", errors)
    status = _choice(values["status"], {s.value for s in Status}, "Status", errors)
    start = _day(values["from"], "From", errors)
    end = _day(values["to"], "To", errors)
    if start and end and end < start:
        errors.append("The To date is before the From date.")
    since = datetime.combine(start, datetime.min.time(), UTC) if start else None
    until = datetime.combine(end, datetime.min.time(), UTC) + timedelta(days=1) if end else None
    if start or end:
        period_text = _range_text(start, end)
        values["period"] = ""
    else:
        period = values["period"] if values["period"] in PERIODS else DEFAULT_PERIOD
        values["period"] = period
        period_text, span = PERIODS[period]
        since = utcnow() - span if span else None
    criteria = Criteria(
        terms=((search_field, values["q"]),) if values["q"] else (),
        channel=channel,
        lane=lane,
        status=status,
        caller=values["caller"] or None,
        since=since,
        until=until,
        regions=tuple(regions),
    )
    submitted = any(name in params for name in ("q", "channel", "lane", "status", "caller"))
    return SearchForm(values, criteria, errors, submitted, period_text)


def _range_text(start: date | None, end: date | None) -> str:
    if start and end:
        return f"{start.isoformat()} to {end.isoformat()}"
    if start:
        return f"the period since {start.isoformat()}"
    return f"the period up to {end.isoformat() if end else ''}"
