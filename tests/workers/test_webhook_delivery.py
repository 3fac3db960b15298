"""Status webhooks: owed in the same transaction as a final status, signed, retried, logged."""

from __future__ import annotations

import json

import httpx
from sqlalchemy import select, update

from notifier import webhook_signing as signing
from notifier.db.models import WebhookDelivery
from notifier.db.session import transaction
from notifier.keys import set_callback
from notifier.security import Sealer, parse_prefix
from tests.factories import email
from tests.fakes.webhook_receiver import WebhookReceiver
from workers import webhook_delivery
from workers.delivery import deliver_ids


def configure_callback(runtime, key: str, url: str) -> str:
    prefix = parse_prefix(key)
    assert prefix is not None
    with transaction(runtime.sessions) as s:
        configured = set_callback(s, prefix, url, Sealer(runtime.settings.secret_key, "callback"))
    assert configured is not None
    _, secret = configured
    assert secret is not None
    runtime.authenticator._cache.clear()
    return secret


def drain(runtime) -> None:
    with transaction(runtime.sessions) as s:  # everything due now
        s.execute(update(WebhookDelivery).values(next_attempt_at=WebhookDelivery.created_at))
    with runtime.sessions() as s:
        ids = list(s.scalars(select(WebhookDelivery.id).where(WebhookDelivery.status == "pending")))
    with httpx.Client(timeout=5) as client:
        webhook_delivery.send(runtime, client, ids)


def test_a_final_status_is_posted_signed_to_the_callers_url(client, auth, key, runtime, worker_app):
    with WebhookReceiver() as receiver:
        secret = configure_callback(runtime, key, receiver.url)
        notification_id = client.post(
            "/v1/notifications",
            json=email(to="permanent-failure@simulator.notifier.dev"),
            headers=auth,
        ).json()["id"]
        deliver_ids(worker_app.delivery, [notification_id])
        assert webhook_delivery.dispatch(runtime) == 1
        drain(runtime)
    [hook] = receiver.received
    assert signing.verify(secret, hook.body, hook.headers[signing.SIGNATURE_HEADER])
    assert not signing.verify("whsec_wrong", hook.body, hook.headers[signing.SIGNATURE_HEADER])
    body = json.loads(hook.body)
    assert (body["id"], body["status"], body["status_code"], body["reference"]) == (
        notification_id,
        "failed",
        "rejected_by_provider",
        "order-42",
    )
    assert "Thanks" not in hook.body.decode()  # no content in webhooks
    timeline = client.get(f"/v1/notifications/{notification_id}", headers=auth).json()["events"]
    assert timeline[-1]["kind"] == "webhook" and timeline[-1]["response_code"] == "200"


def test_5xx_and_429_are_retried_and_4xx_gives_up(client, auth, key, runtime, worker_app):
    with WebhookReceiver(script=[(503, {}), (429, {"Retry-After": "1"}), (200, {})]) as receiver:
        configure_callback(runtime, key, receiver.url)
        notification_id = client.post(
            "/v1/notifications", json=email(to="invalid@simulator.notifier.dev"), headers=auth
        ).json()["id"]
        deliver_ids(worker_app.delivery, [notification_id])
        for _ in range(3):
            drain(runtime)
    assert len(receiver.received) == 3
    with runtime.sessions() as s:
        row = s.scalars(select(WebhookDelivery)).one()
    assert (row.status, row.attempts, row.last_response_code) == ("delivered", 3, "200")
    codes = [
        e["response_code"]
        for e in client.get(f"/v1/notifications/{notification_id}", headers=auth).json()["events"]
        if e["kind"] == "webhook"
    ]
    assert codes == ["503", "429", "200"]

    with WebhookReceiver(script=[(410, {})]) as gone:
        configure_callback(runtime, key, gone.url)
        other = client.post(
            "/v1/notifications", json=email(to="invalid@simulator.notifier.dev"), headers=auth
        ).json()
        assert (
            other["status"] == "suppressed"
        )  # suppressed at intake is final too: a webhook is owed
        drain(runtime)
        drain(runtime)
    assert len(gone.received) == 1
    with runtime.sessions() as s:
        assert (
            s.scalars(select(WebhookDelivery).where(WebhookDelivery.notification_id == other["id"]))
            .one()
            .status
            == "failed"
        )


def test_connection_refused_is_retried(client, auth, key, runtime, worker_app):
    configure_callback(runtime, key, "http://127.0.0.1:1/hooks")
    notification_id = client.post(
        "/v1/notifications", json=email(to="permanent-failure@simulator.notifier.dev"), headers=auth
    ).json()["id"]
    deliver_ids(worker_app.delivery, [notification_id])
    drain(runtime)
    with runtime.sessions() as s:
        row = s.scalars(select(WebhookDelivery)).one()
    assert (
        row.status == "pending" and row.attempts == 1 and row.last_response_code == "ConnectError"
    )


def test_no_callback_no_webhook(client, auth, runtime, worker_app):
    notification_id = client.post(
        "/v1/notifications", json=email(to="permanent-failure@simulator.notifier.dev"), headers=auth
    ).json()["id"]
    deliver_ids(worker_app.delivery, [notification_id])
    with runtime.sessions() as s:
        assert s.scalars(select(WebhookDelivery)).all() == []


def test_signature_rejects_old_timestamps() -> None:
    body = b'{"id":"x"}'
    header = signing.sign("whsec_s", body, timestamp=1_000_000)
    assert signing.verify("whsec_s", body, header, now=1_000_100)
    assert not signing.verify("whsec_s", body, header, now=1_000_000 + 301)
    assert not signing.verify("whsec_s", body + b" ", header, now=1_000_100)
