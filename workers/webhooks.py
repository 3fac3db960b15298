"""Outbound status webhooks on the ``webhooks`` queue.

``notifier.webhooks.dispatch`` (beat, every few seconds) publishes what is due from the
``webhook_deliveries`` outbox; ``notifier.webhooks.send`` POSTs each one, signed, and records the
attempt as a delivery event of kind ``webhook`` and a log line. 2xx: delivered. 5xx, 429 (honouring
Retry-After) and connection errors: retried with exponential backoff and full jitter, up to
``MAX_ATTEMPTS`` over about a day. Other 4xx: the caller refused it; failed, not retried.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

import httpx
from celery import Celery
from sqlalchemy import select, update

from notifier import tasks
from notifier import webhooks as signing
from notifier.db.models import ApiKey, Notification, WebhookDelivery, utcnow
from notifier.db.session import transaction
from notifier.notifications import repository
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


def dispatch(runtime: Runtime, limit: int = 500) -> int:
    """Publish send tasks for due webhooks (pushed forward so a slow send is not published
    twice)."""
    now = utcnow()
    with transaction(runtime.sessions) as session:
        ids = list(
            session.scalars(
                select(WebhookDelivery.id)
                .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
                .order_by(WebhookDelivery.next_attempt_at)
                .limit(limit)
            )
        )
        if ids:
            session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(ids))
                .values(next_attempt_at=now + timedelta(seconds=60))
            )
    for start in range(0, len(ids), 50):
        batch = [ids[start : start + 50]]
        tasks.enqueue(runtime.celery, tasks.WEBHOOKS_SEND, batch, tasks.WEBHOOKS)
    return len(ids)


def send(runtime: Runtime, client: httpx.Client, delivery_ids: list[int]) -> None:
    sealer = Sealer(runtime.settings.secret_key, "callback")
    for delivery_id in delivery_ids:
        with runtime.sessions() as session:
            delivery = session.get(WebhookDelivery, delivery_id)
            if delivery is None or delivery.status != "pending":
                continue
            notification = session.get(Notification, delivery.notification_id)
            key = session.get(ApiKey, delivery.api_key_id)
            if (
                notification is None
                or key is None
                or not key.callback_url
                or not key.callback_secret_sealed
            ):
                continue
            url, secret = key.callback_url, sealer.unseal(key.callback_secret_sealed)
            body = signing.encode(
                {**signing.payload(notification), "status": delivery.notification_status}
            )
            attempt = delivery.attempts + 1
        code, retry_after, latency_ms = _post(client, url, secret, body)
        _record(
            runtime, delivery_id, delivery.notification_id, attempt, code, retry_after, latency_ms
        )


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
        session.execute(
            update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(**values)
        )
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
