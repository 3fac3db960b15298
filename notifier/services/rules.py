"""A service may narrow the platform's settings, never widen them.

* Provider chains name providers the platform configured on that same lane: a provider
  instance serves one lane, so a service cannot route its promotional SMS through the
  transactional sender's instance by naming it.
* A sender identity the platform uses only on the other category of a channel cannot be a
  service's sender on this lane (a promotional sender on a transactional lane stays
  impossible, and the reverse), nor can a service use one identity on both categories.
* Retention is at most the platform's.
"""

from __future__ import annotations

from collections.abc import Mapping

from notifier.errors import ErrorCode, field_error
from notifier.services.platform import IDENTITY_FIELDS, Platform
from providers.interface import Category, Lane


def check(
    platform: Platform,
    senders: Mapping[str, Mapping[str, str]],
    chains: Mapping[str, list[str]],
    retention_days: int | None,
) -> None:
    """Raise the first rule the service's (merged) settings break."""
    for lane_name, names in chains.items():
        lane = Lane(lane_name)
        configured = platform.chains.get(lane, ())
        unknown = [n for n in names if n not in configured]
        if unknown:
            raise field_error(
                ErrorCode.UNKNOWN_PROVIDER,
                f"provider_chains.{lane}",
                f"{lane} has no provider {unknown} on this platform; "
                f"configured there: {list(configured) or 'none'}",
            )
    for lane_name, sender in senders.items():
        lane = Lane(lane_name)
        other = Lane.of(lane.channel, _other(lane.category))
        mine = {v.casefold() for k, v in sender.items() if k in IDENTITY_FIELDS}
        theirs = {
            v.casefold() for k, v in senders.get(other.value, {}).items() if k in IDENTITY_FIELDS
        }
        crossing = (mine & platform.senders.get(other, frozenset())) - platform.senders.get(
            lane, frozenset()
        )
        if crossing or mine & theirs:
            raise field_error(
                ErrorCode.SENDER_NOT_ALLOWED,
                f"senders.{lane}",
                f"{sorted(crossing or mine & theirs)} is a {other.category} sender; "
                f"it cannot send on {lane}",
            )
    if retention_days is not None and retention_days > platform.retention_days:
        raise field_error(
            ErrorCode.RETENTION_TOO_LONG,
            "retention_days",
            f"retention_days {retention_days} is longer than the platform keeps notifications "
            f"({platform.retention_days} days, NOTIFIER_NOTIFICATION_RETENTION_DAYS); a service "
            "may only keep them for less",
        )


def _other(category: Category) -> Category:
    return Category.PROMOTIONAL if category == Category.TRANSACTIONAL else Category.TRANSACTIONAL
