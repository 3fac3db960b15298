"""Daily quotas per service and lane, on the shared rate limiter.

A quota is a fixed UTC-day window: the day is part of the counter's identity, so the count
starts at zero at midnight UTC and the answer says exactly when (``Retry-After`` and
``reset_at``). Counted in Redis when the platform has it (every API process shares the count),
with the limiter's usual fallback to this process's memory while Redis is away. Test keys do
not count: they never reach a provider, which is what a quota protects; the key's rate limit
still bounds them.

Intake counts a notification here once it has passed every other check (so a refused request
costs no quota), from :meth:`notifier.notifications.intake.Intake.prepare`, the one step the
single and the batch paths share. The count is synchronous like the per-number SMS limit: intake
takes a worker thread for a lane with a quota while Redis holds the count, so the event loop
never waits on it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from notifier.errors import ErrorCode, NotifierError
from notifier.keys import Caller, KeyType
from notifier.ratelimit import RateLimiter
from providers.interface import Lane


def enforce_daily_quota(
    caller: Caller, lane: Lane, limiter: RateLimiter, now: datetime | None = None
) -> None:
    """Count one notification of ``caller``'s service on ``lane`` against today's quota;
    raise 429 ``quota_exceeded`` once it is used up (a quota of 0 closes the lane)."""
    quota = caller.service.daily_quota(lane)
    if quota is None or caller.key_type == KeyType.TEST:
        return
    now = now or datetime.now(UTC)
    day = now.astimezone(UTC).date()
    reset_at = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
    allowed = (
        quota > 0
        and (
            limiter.hit(
                f"{quota}/day", "service-quota", caller.service.id, lane.value, day.isoformat()
            )
        ).allowed
    )
    if not allowed:
        raise NotifierError(
            ErrorCode.QUOTA_EXCEEDED,
            f"the daily quota of service {caller.service.name} on {lane} ({quota}) is used up; "
            "it resets at midnight UTC",
            retry_after=max(1.0, (reset_at - now).total_seconds()),
            reset_at=reset_at,
        )
