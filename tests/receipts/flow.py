"""Steps the receipts tests share: send through the fakes, post signed callbacks, apply."""

from __future__ import annotations

from typing import Any

from celery import Celery
from fastapi.testclient import TestClient
from twilio.request_validator import RequestValidator

from notifier.tasks import RECEIPTS
from notifier.tasks import RECEIPTS_APPLY as APPLY_TASK
from tests.fakes.twilio_api import DEFAULT_AUTH_TOKEN
from tests.notifications_api import post, timeline
from workers.delivery import deliver_ids

TWILIO_PATH = "/v1/receipts/twilio"


def send(
    client: TestClient, auth: dict[str, str], worker_app: Celery, payload: dict[str, Any]
) -> dict[str, Any]:
    """Post and deliver one notification; its timeline once sent."""
    notification_id = post(client, auth, payload)
    deliver_ids(worker_app.delivery, [notification_id])
    body = timeline(client, auth, notification_id)
    assert body["status"] == "sent", body
    return body


def twilio_signature(url: str, params: dict[str, str], token: str = DEFAULT_AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


def post_twilio(
    client: TestClient, params: dict[str, str], signature: str | None, path: str = TWILIO_PATH
) -> Any:
    headers = {} if signature is None else {"X-Twilio-Signature": signature}
    return client.post(path, data=params, headers=headers)


def post_sns(client: TestClient, message: dict[str, Any]) -> Any:
    import json

    return client.post(
        "/v1/receipts/ses",
        content=json.dumps(message),
        headers={
            "Content-Type": "text/plain; charset=UTF-8",
            "x-amz-sns-message-type": str(message.get("Type")),
        },
    )


def apply_queued_receipts(worker_app: Celery, limit: int | None = None) -> list[dict[str, int]]:
    """Run every ``notifier.receipts.apply`` task waiting on the receipts queue, in this thread
    (re-published late receipts included), and return what each run reported."""
    results: list[dict[str, int]] = []
    task = worker_app.tasks[APPLY_TASK]
    with worker_app.connection_for_read() as connection, connection.SimpleQueue(RECEIPTS) as queue:
        while limit is None or len(results) < limit:
            try:
                message = queue.get(block=False)
            except queue.Empty:
                break
            message.ack()
            if message.headers.get("task") != APPLY_TASK:
                continue
            args, kwargs, _ = message.payload
            results.append(task(*args, **kwargs))
    return results
