"""Recording what the providers answered: attempt events, the next status, suppressions, retries.

All of one task's results are written in one transaction after the sends, never while a
provider call is in flight; every statement names each row's ``created_at`` beside its id, so
PostgreSQL reads only its partition.

What happens next, per outcome:

* sent -> ``sent``; a message-level permanent answer -> ``failed`` (suppressing an invalid
  recipient);
* nothing contacted (every provider's breaker open, or no provider serves it) -> back to
  ``queued`` until the earliest cool-down ends, with no attempt spent; the TTL still applies;
* a transient answer -> a retry under the retry policy, pinned to the provider where acceptance
  is unknown if there is one;
* out of retries or TTL: ``unconfirmed`` when acceptance is unknown at the pinned provider (it
  may have been delivered), otherwise ``failed`` or ``expired``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from notifier import metrics, reasons
from notifier.db.models import utcnow
from notifier.db.session import transaction
from notifier.notifications import repository
from notifier.notifications.rows import event
from notifier.statuses import EventKind, Status
from providers.interface import PermanentError, SendResult
from workers.engine import Attempt, DeliveryOutcome

if TYPE_CHECKING:
    from workers.context import DeliveryContext
    from workers.delivery import Job

log = logging.getLogger("notifier.delivery")

Retry = tuple[str, str, float]  # (notification id, lane, delay seconds)


def record_durably(
    ctx: DeliveryContext, jobs: Sequence[Job], outcomes: Sequence[DeliveryOutcome]
) -> list[Retry]:
    """Record the outcomes, holding them and retrying the write while the database is away
    (backoff up to 5 s, for at most ``NOTIFIER_RECORD_RETRY_SECONDS``): a provider's acceptance
    held in memory is worth waiting for, because a row left ``sending`` is recovered later as
    "may have been sent". Gives up (and re-raises) only past that bound."""
    for job, outcome in zip(jobs, outcomes, strict=True):
        _observe(job, outcome)
    deadline = time.monotonic() + ctx.runtime.settings.record_retry_seconds
    delay = 0.25
    while True:
        try:
            return record_outcomes(ctx, jobs, outcomes)
        except (OperationalError, InterfaceError):
            if time.monotonic() + delay > deadline:
                metrics.RECORD_ABANDONED.inc(len(jobs))
                log.error(
                    "delivery.record.abandoned",
                    extra={
                        "notifications": len(jobs),
                        "notification_ids": [j.id for j in jobs][:50],
                    },
                )
                raise
            metrics.RECORD_RETRIES.inc()
            log.warning(
                "delivery.record.retrying",
                extra={"notifications": len(jobs), "retry_in_seconds": delay},
            )
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def record_outcomes(
    ctx: DeliveryContext, jobs: Sequence[Job], outcomes: Sequence[DeliveryOutcome]
) -> list[Retry]:
    now = utcnow()
    retries: list[Retry] = []
    unconfirmed: list[str] = []
    with transaction(ctx.runtime.sessions) as session:
        events: list[dict[str, Any]] = []
        sent: list[repository.Sent] = []
        for job, outcome in zip(jobs, outcomes, strict=True):
            attempts = job.attempts + len(outcome.attempts)
            events.extend(
                _attempt_event(job.id, now, a, job.attempts + n)
                for n, a in enumerate(outcome.attempts, start=1)
            )
            # An outcome's ``sent`` attempt always has a result and a ``permanent`` error always
            # has a last attempt: the second half of each test only narrows the types.
            if (attempt := outcome.sent) is not None and (result := attempt.result) is not None:
                sent.append(
                    (job.id, attempt.provider, result.provider_message_id, attempts, job.created_at)
                )
                events.append(_sent_event(job, attempt.provider, result, now))
            elif (error := outcome.permanent) is not None and (last := outcome.last) is not None:
                events.append(
                    _mark_failed(session, job, outcome, last.provider, error, attempts, now)
                )
            else:
                step, retry = _next_step(ctx, session, job, outcome, attempts, now)
                events.append(step)
                if retry is not None:
                    retries.append(retry)
                if step["kind"] == EventKind.UNCONFIRMED.value:
                    unconfirmed.append(job.lane)
        repository.mark_sent(session, sent, now)
        repository.add_events(session, events)
    for lane in unconfirmed:  # counted once it is on record
        metrics.UNCONFIRMED.labels(lane).inc()
    return retries


def _observe(job: Job, outcome: DeliveryOutcome) -> None:
    """Metrics and one log line per attempt: ids, provider, outcome, latency; never content."""
    for attempt in outcome.attempts:
        result = metrics.outcome_of(attempt.error)
        metrics.SENDS.labels(attempt.provider, job.lane, result).inc()
        metrics.PROVIDER_LATENCY.labels(attempt.provider, job.lane).observe(
            attempt.latency_ms / 1000
        )
        code = (
            attempt.result.response_code
            if attempt.result
            else (attempt.error.code if attempt.error else None)
        )
        log.info(
            "delivery.attempt",
            extra={
                "notification_id": job.id,
                "provider": attempt.provider,
                "lane": job.lane,
                "outcome": result,
                "latency_ms": attempt.latency_ms,
                "response_code": code,
            },
        )
    if outcome.sent is not None:
        metrics.TIME_TO_SEND.labels(job.lane).observe((utcnow() - job.created_at).total_seconds())
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
    return event(
        notification_id,
        EventKind.ATTEMPT,
        None,
        detail[:2000],
        now,
        provider=attempt.provider,
        latency_ms=attempt.latency_ms,
        response_code=code,
        provider_message_id=message_id,
        attempt=number,
    )


def _sent_event(job: Job, provider: str, result: SendResult, now: datetime) -> dict[str, Any]:
    return event(
        job.id,
        EventKind.SENT,
        Status.SENT,
        f"sent via {provider}",
        now,
        provider=provider,
        provider_message_id=result.provider_message_id,
    )


def _mark_failed(
    session: Session,
    job: Job,
    outcome: DeliveryOutcome,
    provider: str,
    error: PermanentError,
    attempts: int,
    now: datetime,
) -> dict[str, Any]:
    why = reasons.rejected_by_provider(error.code, error.message)
    reason = why.stored
    repository.move(
        session,
        [job.id],
        Status.FAILED,
        created=[job.created_at],
        completed_at=now,
        provider=provider,
        attempts=attempts,
        **why.columns(),
    )
    detail = f"failed permanently at {provider}: {reason}"
    invalid = outcome.invalid_recipient
    if invalid is not None:
        repository.suppress(
            session, job.channel, job.recipient, invalid.reason.value, reason, job.id
        )
        detail += f"; the recipient is now suppressed ({invalid.reason.value})"
    return event(
        job.id,
        EventKind.FAILED,
        Status.FAILED,
        detail,
        now,
        provider=provider,
        response_code=error.code,
    )


def _next_step(
    ctx: DeliveryContext,
    session: Session,
    job: Job,
    outcome: DeliveryOutcome,
    attempts: int,
    now: datetime,
) -> tuple[dict[str, Any], Retry | None]:
    """Retry, wait for a breaker, or end the notification."""
    if outcome.pin_lost:
        return _end(session, job, outcome, attempts, now, lost=True), None
    if not outcome.attempts:
        wait = outcome.wait_seconds
        wake = now + timedelta(seconds=wait if wait is not None else ctx.retry_policy.base_seconds)
        if job.expires_at is not None and wake >= job.expires_at:
            return _end(session, job, outcome, attempts, now, ttl=True), None
        return _requeue(
            session,
            job,
            outcome,
            attempts,
            now,
            wake,
            _waiting_detail(outcome),
            kind=EventKind.WAITING,
        )
    when = ctx.retry_policy.next_attempt_at(now, attempts, job.expires_at, outcome.retry_after)
    if when is None:
        ttl = attempts < ctx.retry_policy.max_attempts
        return _end(session, job, outcome, attempts, now, ttl=ttl), None
    delay = (when - now).total_seconds()
    detail = f"attempt {attempts} failed transiently; retry in {delay:.1f}s"
    if outcome.pinned:
        detail += f" on {outcome.pinned} only"
    return _requeue(session, job, outcome, attempts, now, when, detail)


def _waiting_detail(outcome: DeliveryOutcome) -> str:
    if not outcome.skipped:
        return (
            "not sent yet: the delivery deadline passed before a provider was contacted; "
            "no attempt used"
        )
    skipped = ", ".join(f"{s.provider} ({s.reason})" for s in outcome.skipped)
    wait = outcome.wait_seconds or 0.0
    return f"waiting {wait:.1f}s: no provider could be contacted [{skipped}]; no attempt used"


def _requeue(
    session: Session,
    job: Job,
    outcome: DeliveryOutcome,
    attempts: int,
    now: datetime,
    when: datetime,
    detail: str,
    kind: EventKind = EventKind.RETRY_SCHEDULED,
) -> tuple[dict[str, Any], Retry]:
    repository.move(
        session,
        [job.id],
        Status.QUEUED,
        created=[job.created_at],
        not_before=when,
        published_at=now,
        pinned_provider=outcome.pinned,
        attempts=attempts,
    )
    delay = (when - now).total_seconds()
    return event(job.id, kind, Status.QUEUED, detail, now), (job.id, job.lane, delay)


def _end(
    session: Session,
    job: Job,
    outcome: DeliveryOutcome,
    attempts: int,
    now: datetime,
    *,
    lost: bool = False,
    ttl: bool = False,
) -> dict[str, Any]:
    """No more tries: unconfirmed if a provider may have it, else expired (its TTL ran out) or
    failed (its attempts ran out)."""
    if outcome.pinned:
        target, kind = Status.UNCONFIRMED, EventKind.UNCONFIRMED
        reason = reasons.unconfirmed(outcome.pinned, lost)
    elif ttl or lost:
        target, kind = Status.EXPIRED, EventKind.EXPIRED
        reason = reasons.ran_out(attempts)
    else:
        target, kind = Status.FAILED, EventKind.FAILED
        reason = reasons.gave_up(attempts)
    repository.move(
        session,
        [job.id],
        target,
        created=[job.created_at],
        completed_at=now,
        attempts=attempts,
        provider=outcome.pinned,
        **reason.columns(),
    )
    return event(job.id, kind, target, reason.text, now, provider=outcome.pinned)


def end_overdue(
    session: Session, rows: Sequence[tuple[str, str, str | None]], now: datetime
) -> int:
    """End notifications whose TTL passed before they could be sent: (id, lane, pinned
    provider). ``expired`` — never sent — unless a provider may already have one, which is then
    ``unconfirmed``. Used by the claim and by the sweeper alike."""
    never = [i for i, _, pinned in rows if not pinned]
    moved = repository.move(
        session,
        never,
        Status.EXPIRED,
        completed_at=now,
        **reasons.expired_before_sending().columns(),
    )
    events = [
        event(
            i,
            EventKind.EXPIRED,
            Status.EXPIRED,
            "not sent: its time to live passed before it could be sent",
            now,
        )
        for i in moved
    ]
    for notification_id, lane, pinned in rows:
        if not pinned:
            continue
        reason = reasons.unconfirmed(pinned)
        if repository.move(
            session,
            [notification_id],
            Status.UNCONFIRMED,
            completed_at=now,
            provider=pinned,
            **reason.columns(),
        ):
            metrics.UNCONFIRMED.labels(lane).inc()
            events.append(
                event(
                    notification_id,
                    EventKind.UNCONFIRMED,
                    Status.UNCONFIRMED,
                    reason.text + "; its time to live has passed",
                    now,
                    provider=pinned,
                )
            )
    repository.add_events(session, events)
    return len(events)
