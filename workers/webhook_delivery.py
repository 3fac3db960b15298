"""Delivering the status webhooks the outbox owes, on the ``webhooks`` queue.

The ``notifier.webhooks.dispatch`` task (beat, every few seconds) publishes what is due from
the ``webhook_deliveries`` outbox (``notifier.notifications.webhook_outbox``);
``notifier.webhooks.send`` POSTs each one, signed (``notifier.webhook_signing``), and records
the attempt as a delivery event of kind ``webhook`` and a log line. 2xx: delivered. 5xx, 429
(honouring Retry-After) and connection errors: retried with exponential backoff and full
jitter, up to ``MAX_ATTEMPTS`` over about a day. Other 4xx: the caller refused it; failed, not
retried.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

import httpx
from celery import Celery

from notifier import tasks
from notifier import webhook_signing as signing
from notifier.db.models import utcnow
from notifier.db.session import transaction
from notifier.notifications import repository, webhook_outbox
from notifier.notifications.rows import event
from notifier.runtime import Runtime
from notifier.security import Sealer
from notifier.statuses import EventKind
from providers.interface import parse_retry_after
from workers.retry_policy import RetryPolicy
from workers.task_policy import TASK_OPTIONS

log = logging.getLogger("notifier.webhooks")

MAX_ATTEMPTS = 12
POLICY = RetryPolicy(max_attempts=MAX_ATTEMPTS, base_seconds=5, cap_seconds=3 * 3600)
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
CLAIM_HOLD = timedelta(seconds=60)  # a dispatched webhook is due again only if never recorded


def dispatch(runtime: Runtime, limit: int = 500) -> int:
    """Publish send tasks for due webhooks (pushed forward so a slow send is not published
    twice)."""
    with transaction(runtime.sessions) as session:
        ids = webhook_outbox.claim_due(session, utcnow(), limit, CLAIM_HOLD)
    for start in range(0, len(ids), 50):
        batch = [ids[start : start + 50]]
        tasks.enqueue(runtime.celery, tasks.WEBHOOKS_SEND, batch, tasks.WEBHOOKS)
    return len(ids)


def send(runtime: Runtime, client: httpx.Client, delivery_ids: list[int]) -> None:
    sealer = Sealer(runtime.settings.secret_key, "callback")
    for delivery_id in delivery_ids:
        with runtime.sessions() as session:
            owed = webhook_outbox.pending(session, delivery_id)
            if owed is None:
                continue
            key, delivery = owed.key, owed.delivery
            url = key.callback_url or ""  # pending() returns only keys with a callback URL
            secret = sealer.unseal(key.callback_secret_sealed or "")
            body = signing.encode(
                {**signing.payload(owed.notification), "status": delivery.notification_status}
            )
            attempt, notification_id = delivery.attempts + 1, delivery.notification_id
        code, retry_after, latency_ms = _post(client, url, secret, body)
        _record(runtime, delivery_id, notification_id, attempt, code, retry_after, latency_ms)


def _post(
    client: httpx.Client, url: str, secret: str, body: bytes
) -> tuple[str, float | None, float]:
    started = time.perf_counter()
    headers = {
        "Content-Type": "application/json",
        signing.SIGNATURE_HEADER: signing.sign(secret, body),
        "User-Agent": "notifier-webhooks/1",
    }
    try:
        response = client.post(url, content=body, headers=headers)
        code, retry_after = (
            str(response.status_code),
            parse_retry_after(response.headers.get("Retry-After")),
        )
    except httpx.HTTPError as e:
        code, retry_after = type(e).__name__, None
    return code, retry_after, round((time.perf_counter() - started) * 1000, 2)


def _record(
    runtime: Runtime,
    delivery_id: int,
    notification_id: str,
    attempt: int,
    code: str,
    retry_after: float | None,
    latency_ms: float,
) -> None:
    now = utcnow()
    delivered = code.isdigit() and 200 <= int(code) < 300
    retryable = not code.isdigit() or int(code) >= 500 or int(code) == 429
    values: dict[str, Any] = {"attempts": attempt, "last_response_code": code, "updated_at": now}
    if delivered:
        values["status"], outcome = "delivered", "delivered"
    elif (
        retryable and (when := POLICY.next_attempt_at(now, attempt, None, retry_after)) is not None
    ):
        values["next_attempt_at"], outcome = (
            when,
            f"will retry at {when.isoformat(timespec='seconds')}",
        )
    else:
        values["status"], outcome = "failed", "given up"
    with transaction(runtime.sessions) as session:
        webhook_outbox.record_attempt(session, delivery_id, **values)
        repository.add_events(
            session,
            [
                event(
                    notification_id,
                    EventKind.WEBHOOK,
                    None,
                    f"status webhook to the caller: {code}; {outcome}",
                    now,
                    response_code=code,
                    latency_ms=latency_ms,
                    attempt=attempt,
                )
            ],
        )
    log.info(
        "webhook.attempt",
        extra={
            "notification_id": notification_id,
            "attempt": attempt,
            "response_code": code,
            "outcome": outcome,
        },
    )


def register(app: Celery) -> None:
    """Register the webhook tasks on ``app`` (closures over its runtime; never shared)."""
    runtime: Runtime = app.runtime
    client = httpx.Client(timeout=TIMEOUT, follow_redirects=False)

    @app.task(name=tasks.WEBHOOKS_DISPATCH, **TASK_OPTIONS)
    def dispatch_task() -> int:
        return dispatch(runtime)

    @app.task(name=tasks.WEBHOOKS_SEND, **TASK_OPTIONS)
    def send_task(delivery_ids: list[int]) -> None:
        send(runtime, client, delivery_ids)
