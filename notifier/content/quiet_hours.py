"""Quiet hours: promotional SMS and push are not sent between 21:00 and 08:00 where the recipient
lives. Pure functions of explicit times, so the rules (and DST changes) are testable as they are.

The recipient's timezone is the contact's, else the phone number's region (phonenumbers'
timezone module), else the campaign's fallback. A number whose region spans several zones (much
of North America) must be quiet in all of them: the message waits for the first moment that is
allowed in every one.

Wall-clock arithmetic happens in local time and is converted back through ``zoneinfo``, so
"08:00 tomorrow" is 08:00 on the day after a DST change too (7 or 9 hours after 22:00, not 10).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import phonenumbers
from phonenumbers import timezone as phone_timezones

from notifier import reasons
from notifier.errors import ErrorCode, field_error
from notifier.reasons import Reason
from providers.interface import Lane

DEFAULT_START = time(21, 0)
DEFAULT_END = time(8, 0)
_UNKNOWN = phone_timezones.UNKNOWN_TIMEZONE


@dataclass(frozen=True)
class QuietHours:
    start: time = DEFAULT_START
    end: time = DEFAULT_END

    @classmethod
    def parse(cls, start: str, end: str) -> QuietHours:
        return cls(time.fromisoformat(start), time.fromisoformat(end))

    def is_quiet(self, local: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:  # a window within one day, e.g. 12:00-14:00
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # across midnight

    def next_allowed_in(self, moment: datetime, zone: ZoneInfo) -> datetime | None:
        """None when ``moment`` is allowed in ``zone``; else the first allowed instant (UTC)."""
        local = moment.astimezone(zone)
        if not self.is_quiet(local.time().replace(tzinfo=None)):
            return None
        day = local.date()
        if self.start > self.end and local.time().replace(tzinfo=None) >= self.start:
            day = day + timedelta(days=1)  # evening: allowed again tomorrow morning
        allowed = datetime.combine(day, self.end, tzinfo=zone)
        # an end time inside a DST gap does not exist: zoneinfo maps it past the gap
        return allowed.astimezone(UTC)

    def next_allowed(self, moment: datetime, zones: list[ZoneInfo]) -> datetime | None:
        """None when ``moment`` is allowed in every zone; else the first instant that is."""
        candidate = moment
        for _ in range(8):
            later = [t for z in zones if (t := self.next_allowed_in(candidate, z)) is not None]
            if not later:
                return None if candidate == moment else candidate
            candidate = max(later)
        return candidate  # zones too far apart to agree: the last candidate, still deferred


def valid_timezone(name: str) -> bool:
    return name in _all_zones()


@lru_cache(maxsize=1)
def _all_zones() -> frozenset[str]:
    return frozenset(available_timezones())


@lru_cache(maxsize=4096)
def zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


@lru_cache(maxsize=65536)
def phone_zones(e164: str) -> tuple[str, ...]:
    """The IANA zones of a phone number's region (several for a country with many)."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return ()
    return tuple(z for z in phone_timezones.time_zones_for_number(number) if z != _UNKNOWN)


def recipient_zones(
    contact_timezone: str | None, phone: str | None, fallback: str | None
) -> list[ZoneInfo]:
    """The recipient's zones: the contact's, else the phone's region, else the fallback."""
    if contact_timezone and (z := zone(contact_timezone)) is not None:
        return [z]
    if phone:
        zones = [z for name in phone_zones(phone) if (z := zone(name)) is not None]
        if zones:
            return zones
    if fallback and (z := zone(fallback)) is not None:
        return [z]
    return []


def deferral(
    moment: datetime, zones: list[ZoneInfo], hours: QuietHours | None = None
) -> tuple[datetime, Reason] | None:
    """When a promotional message due at ``moment`` must wait: (release time, reason)."""
    if not zones:
        return None
    hours = hours or QuietHours()
    allowed = hours.next_allowed(moment, zones)
    if allowed is None:
        return None
    return allowed, reasons.quiet_hours(hours.start, hours.end, [z.key for z in zones], allowed)


def quiet_hours_deferral(
    lane: Lane, recipient: str, timezone: str | None, moment: datetime
) -> tuple[datetime, Reason] | None:
    """Intake's rule for a single notification: promotional SMS and push wait for the morning
    in the recipient's timezone (given, else the phone number's region). A push without a
    timezone cannot be placed and is not deferred."""
    if lane not in (Lane.SMS_PROMOTIONAL, Lane.PUSH_PROMOTIONAL):
        return None
    if timezone and not valid_timezone(timezone):
        raise field_error(
            ErrorCode.VALIDATION_ERROR,
            "timezone",
            f"unknown timezone {timezone!r}: use an IANA name such as Europe/Paris",
        )
    phone = recipient if lane == Lane.SMS_PROMOTIONAL else None
    return deferral(moment, recipient_zones(timezone, phone, None))
