"""Recording what the providers answered: attempt events, the next status, suppressions, retries.

All of one task's results are written in one transaction after the sends, never while a
provider call is in flight.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from notifier import metrics
from notifier.db.models import utcnow
from notifier.db.session import transaction
from notifier.notifications import repository
from notifier.statuses import EventKind, Status
from workers.engine import Attempt, Outcome

if TYPE_CHECKING:
    from workers.context import DeliveryContext
    from workers.delivery import Job

log = logging.getLogger("notifier.delivery")

Retry = tuple[str, str, float]  # (notification id, lane, delay seconds)


def record_outcomes(
    ctx: DeliveryContext, jobs: Sequence[Job], outcomes: Sequence[Outcome]
) -> list[Retry]:
    now = utcnow()
    retries: list[Retry] = []
    with transaction(ctx.runtime.sessions) as session:
        events: list[dict[str, Any]] = []
        sent: list[tuple[Job, Attempt]] = []
        for job, outcome in zip(jobs, outcomes):
            events.extend(_attempt_event(job.id, now, a, job.attempts) for a in outcome.attempts)
            _observe(job, outcome, now)
            if outcome.sent is not None:
                sent.append((job, outcome.sent))
                events.append(_sent_event(job, outcome.sent, now))
            elif outcome.permanent is not None:
                events.append(_mark_failed(session, job, outcome, now))
            else:
                event, retry = _retry_or_give_up(ctx, session, job, outcome, now)
                events.append(event)
                if retry is not None:
                    retries.append(retry)
        repository.mark_sent(session, [(job.id, a.provider, a.result.provider_message_id) for job, a in sent], now)
        repository.add_events(session, events)
    return retries


def _observe(job: "Job", outcome: Outcome, now: datetime) -> None:
    """Metrics and one log line per attempt: ids, provider, outcome, latency; never content."""
    for attempt in outcome.attempts:
        result = metrics.outcome_of(attempt.error)
        metrics.SENDS.labels(attempt.provider, job.lane, result).inc()
        metrics.PROVIDER_LATENCY.labels(attempt.provider, job.lane).observe(attempt.latency_ms / 1000)
        log.info("delivery.attempt", extra={
            "notification_id": job.id, "provider": attempt.provider, "lane": job.lane, "outcome": result,
            "latency_ms": attempt.latency_ms, "response_code": attempt.result.response_code if attempt.result
            else (attempt.error.code if attempt.error else None),
        })
    if outcome.sent is not None:
        metrics.TIME_TO_SEND.labels(job.lane).observe((now - job.created_at).total_seconds())
    invalid = outcome.invalid_recipient
    if invalid is not None:
        metrics.SUPPRESSIONS.labels(job.channel, invalid.reason.value).inc()


def _attempt_event(
    notification_id: str, now: datetime, attempt: Attempt, number: int
) -> dict[str, Any]:
    if attempt.result is not None:
        detail = "accepted by the provider"
        code = attempt.result.response_code
        message_id = attempt.result.provider_message_id
    else:
        error = attempt.error
        detail = f"{type(error).__name__}: {error.message}" if error else "no answer"
        if error is not None and error.accepted_unknown:
            detail += " (acceptance unknown: retried on the same provider only)"
        code = error.code if error else None
        message_id = None
    return {
        "notification_id": notification_id,
        "created_at": now,
        "kind": EventKind.ATTEMPT.value,
        "provider": attempt.provider,
        "latency_ms": attempt.latency_ms,
        "response_code": code,
        "provider_message_id": message_id,
        "detail": detail[:2000],
        "attempt": number,
    }


def _sent_event(job: Job, attempt: Attempt, now: datetime) -> dict[str, Any]:
    assert attempt.result is not None
    return {
        "notification_id": job.id,
        "created_at": now,
        "kind": EventKind.SENT.value,
        "status": Status.SENT.value,
        "provider": attempt.provider,
        "provider_message_id": attempt.result.provider_message_id,
        "detail": f"sent via {attempt.provider}",
    }


def _mark_failed(session: Session, job: Job, outcome: Outcome, now: datetime) -> dict[str, Any]:
    error = outcome.permanent
    assert error is not None and outcome.last is not None
    reason = f"{error.code or 'error'}: {error.message}"[:200]
    repository.move(
        session,
        [job.id],
        Status.FAILED,
        completed_at=now,
        provider=outcome.last.provider,
        sealed_content=None,
        status_reason=reason,
    )
    detail = f"failed permanently at {outcome.last.provider}: {reason}"
    invalid = outcome.invalid_recipient
    if invalid is not None:
        repository.suppress(
            session, job.channel, job.recipient, invalid.reason.value, reason, job.id
        )
        detail += f"; the recipient is now suppressed ({invalid.reason.value})"
    return {
        "notification_id": job.id,
        "created_at": now,
        "kind": EventKind.FAILED.value,
        "status": Status.FAILED.value,
        "provider": outcome.last.provider,
        "response_code": error.code,
        "detail": detail,
    }


def _retry_or_give_up(
    ctx: DeliveryContext, session: Session, job: Job, outcome: Outcome, now: datetime
) -> tuple[dict[str, Any], Retry | None]:
    when = ctx.retry_policy.next_attempt_at(now, job.attempts, job.expires_at, outcome.retry_after)
    if when is not None:
        pinned = outcome.resume_with
        repository.move(
            session,
            [job.id],
            Status.QUEUED,
            not_before=when,
            published_at=now,
            pinned_provider=pinned,
        )
        delay = (when - now).total_seconds()
        detail = f"attempt {job.attempts} failed transiently; retry in {delay:.1f}s"
        if pinned:
            detail += f" on {pinned} only"
        event = {
            "notification_id": job.id,
            "created_at": now,
            "kind": EventKind.RETRY_SCHEDULED.value,
            "status": Status.QUEUED.value,
            "detail": detail,
        }
        return event, (job.id, job.lane, delay)
    expired = job.expires_at is not None and job.expires_at <= now + timedelta(
        seconds=ctx.retry_policy.base_seconds
    )
    target = (
        Status.EXPIRED
        if expired and job.attempts < ctx.retry_policy.max_attempts
        else Status.FAILED
    )
    reason = (
        f"gave up after {job.attempts} attempts"
        if target == Status.FAILED
        else "time to live ran out while retrying"
    )
    repository.move(
        session, [job.id], target, completed_at=now, sealed_content=None, status_reason=reason
    )
    kind = EventKind.FAILED if target == Status.FAILED else EventKind.EXPIRED
    return {
        "notification_id": job.id,
        "created_at": now,
        "kind": kind.value,
        "status": target.value,
        "detail": reason,
    }, None
