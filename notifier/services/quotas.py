"""Daily quotas per service and lane, on the shared rate limiter.

A quota is a fixed UTC-day window: the day is part of the counter's identity, so the count
starts at zero at midnight UTC and the answer says exactly when (``Retry-After`` and
``reset_at``). Counted in Redis when the platform has it (every API process shares the count),
with the limiter's usual fallback to this process's memory while Redis is away. Test keys do
not count: they never reach a provider, which is what a quota protects; the key's rate limit
still bounds them.

Intake counts a notification here once it has passed every other check (so a refused request
costs no quota), from :meth:`notifier.notifications.intake.Intake.prepare`, the one step the
single and the batch paths share. A busy service lane costs no Redis round trip per
notification: its tokens are leased from Redis a few at a time and kept until spent, and a
used-up day is remembered until midnight (:meth:`notifier.ratelimit.RateLimiter.quota_hit`, the
leases of the per-key limit, kept). Every token is counted in Redis before it is spent, so all
API processes together never accept more than the quota; what leasing costs is at most one
lease per process (1 % of the quota, at most 64) left unspent at midnight, and so refused a few
early. The count is synchronous: when it would ask Redis (:func:`quota_needs_round_trip`)
intake runs it on a worker thread, so the event loop never waits on it. A notification
counted and then not stored (its store failed: 503 ``database_unavailable``) gives its token
back (:func:`refund_daily_quota`): the quota counts what was accepted.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from notifier.errors import ErrorCode, NotifierError
from notifier.keys import Caller, KeyType
from notifier.ratelimit import RateLimiter
from providers.interface import Lane


def _counter(caller: Caller, lane: Lane, now: datetime) -> tuple[int, datetime, tuple[str, ...]]:
    """The quota, when today's count resets, and the count's rule and identifiers (the day
    among them: a fixed UTC-day window)."""
    quota = caller.service.daily_quota(lane) or 0
    day = now.astimezone(UTC).date()
    reset_at = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
    return (
        quota,
        reset_at,
        (f"{quota}/day", "service-quota", caller.service.id, lane.value, day.isoformat()),
    )


def counts(caller: Caller, lane: Lane) -> bool:
    return caller.service.daily_quota(lane) is not None and caller.key_type != KeyType.TEST


def quota_needs_round_trip(caller: Caller, lane: Lane, limiter: RateLimiter) -> bool:
    """Whether counting this notification would now wait on Redis (then intake counts it on a
    worker thread)."""
    if not counts(caller, lane):
        return False
    quota, _, (rule, *identifiers) = _counter(caller, lane, datetime.now(UTC))
    return quota > 0 and not limiter.quota_in_memory(rule, *identifiers)


Counted = tuple[str, ...]  # a counted notification's rule and identifiers, for its refund


def enforce_daily_quota(
    caller: Caller, lane: Lane, limiter: RateLimiter, now: datetime | None = None
) -> Counted | None:
    """Count one notification of ``caller``'s service on ``lane`` against today's quota;
    raise 429 ``quota_exceeded`` once it is used up (a quota of 0 closes the lane). Returns what
    was counted (None: nothing), for :func:`refund_daily_quota` if the notification is then not
    stored."""
    if not counts(caller, lane):
        return None
    now = now or datetime.now(UTC)
    quota, reset_at, (rule, *identifiers) = _counter(caller, lane, now)
    if not (quota > 0 and limiter.quota_hit(rule, *identifiers).allowed):
        raise NotifierError(
            ErrorCode.QUOTA_EXCEEDED,
            f"the daily quota of service {caller.service.name} on {lane} ({quota}) is used up; "
            "it resets at midnight UTC",
            retry_after=max(1.0, (reset_at - now).total_seconds()),
            reset_at=reset_at,
        )
    return (rule, *identifiers)


def refund_daily_quota(limiter: RateLimiter, counted: Iterable[Counted | None]) -> None:
    """Give back the quota notifications counted when they were not stored after all (their
    store failed, or a batch refused one after counting)."""
    for each in counted:
        if each is not None:
            limiter.quota_refund(*each)


@contextmanager
def refunding(limiter: RateLimiter, counted: Iterable[Counted | None]) -> Iterator[None]:
    """Refund what was counted when the block (the notifications' store) fails."""
    try:
        yield
    except Exception:
        refund_daily_quota(limiter, counted)
        raise
