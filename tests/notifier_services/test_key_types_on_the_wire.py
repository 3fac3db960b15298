"""Key types and per-service settings as a real SMTP server sees them: a test key's notification
reaches the simulator and never the provider fake, and says ``test`` in the API, the webhook
payload and the metric; a live key's goes out with its service's From and through its
service's chain; the simulator's addresses behave the same under every key type."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from notifier import metrics
from notifier.db.models import Notification
from notifier.keys import KeyType
from notifier.webhook_signing import payload
from tests.factories import email
from tests.fakes.smtp_server import FakeSmtpServer
from tests.notifications_api import post, timeline
from tests.notifier_services.helpers import PLATFORM_SENDER, bearer, service, smtp_context
from workers.delivery import deliver_ids


@pytest.fixture
def smtp() -> Iterator[FakeSmtpServer]:
    with FakeSmtpServer() as server:
        yield server


@pytest.fixture
def backup() -> Iterator[FakeSmtpServer]:
    with FakeSmtpServer() as server:
        yield server


def _accepted_tests() -> float:
    return metrics.TEST_ACCEPTED.labels("email.transactional")._value.get()


def test_a_test_key_reaches_the_simulator_never_the_provider(client, runtime, settings, smtp):
    ci = bearer(runtime, service(runtime, "billing"), KeyType.TEST)
    live = bearer(runtime, service(runtime, "growth"))
    ctx = smtp_context(runtime, ("smtp", smtp))
    before = _accepted_tests()
    try:
        answered = client.post("/v1/notifications", json=email(), headers=ci)
        assert answered.status_code == 202 and answered.json()["test"] is True
        test_id = answered.json()["id"]
        live_id = post(client, live, email(to="grace@example.com"))
        deliver_ids(ctx, [test_id, live_id])
    finally:
        ctx.close()
    assert [m.rcpt_tos for m in smtp.messages] == [["grace@example.com"]]  # only the live one
    shown = timeline(client, ci, test_id)
    assert shown["status"] == "sent" and shown["test"] is True
    assert shown["provider"] == "simulator"
    assert [e["kind"] for e in shown["events"]] == ["queued", "attempt", "sent"]
    written = settings.outbox_dir / "email.transactional" / f"{test_id}.json"
    assert json.loads(written.read_text())["to"] == "ada@example.com"
    assert timeline(client, live, live_id)["test"] is False
    assert _accepted_tests() == before + 1
    with runtime.sessions() as s:
        assert payload(s.get(Notification, test_id))["test"] is True
        assert payload(s.get(Notification, live_id))["test"] is False


def test_a_test_batch_says_test_per_item(client, runtime, smtp):
    ci = bearer(runtime, service(runtime, "billing"), KeyType.TEST)
    answered = client.post(
        "/v1/notifications/batch", json={"notifications": [email(), email()]}, headers=ci
    )
    assert answered.status_code == 202
    assert [r.get("test") for r in answered.json()["results"]] == [True, True]


def test_simulator_addresses_behave_the_same_under_every_key_type(client, runtime, smtp):
    billing = service(runtime, "billing", trial=True)  # not on any allow-list either
    ctx = smtp_context(runtime, ("smtp", smtp))
    outcomes = {}
    try:
        for key_type in KeyType:
            auth = bearer(runtime, billing, key_type)
            notification_id = post(
                client, auth, email(to="permanent-failure@simulator.notifier.dev")
            )
            deliver_ids(ctx, [notification_id])
            shown = timeline(client, auth, notification_id)
            outcomes[key_type] = (shown["status"], shown["provider"])
    finally:
        ctx.close()
    assert set(outcomes.values()) == {("failed", "simulator")}
    assert not smtp.messages


def test_a_services_sender_is_the_from_on_the_wire(client, runtime, smtp):
    sender = {"from_address": "billing@example.com", "reply_to": "help@example.com"}
    billing = bearer(runtime, service(runtime, "billing", senders={"email.transactional": sender}))
    growth = bearer(runtime, service(runtime, "growth"))
    ctx = smtp_context(runtime, ("smtp", smtp))
    try:
        ids = [post(client, billing, email()), post(client, growth, email())]
        deliver_ids(ctx, ids)
    finally:
        ctx.close()
    received = {m.message["X-Notifier-Notification-Id"]: m for m in smtp.messages}
    theirs, platform = received[ids[0]], received[ids[1]]
    assert theirs.message["From"] == "billing@example.com"
    assert theirs.mail_from == "billing@example.com"  # the envelope sender too
    assert theirs.message["Reply-To"] == "help@example.com"
    assert platform.message["From"] == PLATFORM_SENDER and platform.mail_from == PLATFORM_SENDER
    assert platform.message["Reply-To"] is None


def test_a_services_chain_replaces_the_platforms(client, runtime, smtp, backup):
    billing = bearer(
        runtime, service(runtime, "billing", provider_chains={"email.transactional": ["backup"]})
    )
    gone = bearer(
        runtime, service(runtime, "growth", provider_chains={"email.transactional": ["removed"]})
    )
    default = bearer(runtime, service(runtime, "support"))
    ctx = smtp_context(runtime, ("main", smtp), ("backup", backup))
    try:
        ids = [post(client, auth, email()) for auth in (billing, gone, default)]
        deliver_ids(ctx, ids)
    finally:
        ctx.close()
    assert [m.message["X-Notifier-Notification-Id"] for m in backup.messages] == [ids[0]]
    # a chain whose providers left the providers file falls back to the platform's
    assert sorted(m.message["X-Notifier-Notification-Id"] for m in smtp.messages) == sorted(ids[1:])
    assert timeline(client, billing, ids[0])["provider"] == "backup"
