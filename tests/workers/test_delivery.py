"""The delivery flow on the embedded database with the outbox provider: claim, send, record."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from notifier.db.models import DeliveryEvent, Notification, Suppression, utcnow
from notifier.db.session import transaction
from tests.factories import daytime_timezone, email, push, sms
from tests.notifications_api import post, timeline
from workers.delivery import deliver_ids


def test_email_is_sent_through_the_outbox_and_logged(client, auth, worker_app, settings):
    notification_id = post(client, auth, email())
    deliver_ids(worker_app.delivery, [notification_id])
    body = timeline(client, auth, notification_id)
    assert body["status"] == "sent"
    kinds = [e["kind"] for e in body["events"]]
    assert kinds == ["queued", "attempt", "sent"]
    attempt = body["events"][1]
    assert attempt["provider"] == "outbox" and attempt["response_code"] == "250"
    assert (
        attempt["latency_ms"] is not None
        and attempt["provider_message_id"] == body["provider_message_id"]
    )
    written = json.loads(
        (settings.outbox_dir / "email.transactional" / f"{notification_id}.json").read_text()
    )
    assert written["to"] == "ada@example.com" and written["text"] == "Thanks, Ada"
    assert written["provider_message_id"] == body["provider_message_id"]


def test_sensitive_value_reaches_the_provider_but_nothing_else(
    client, auth, worker_app, settings, runtime
):
    notification_id = post(client, auth, sms())
    deliver_ids(worker_app.delivery, [notification_id])
    written = json.loads(
        (settings.outbox_dir / "sms.transactional" / f"{notification_id}.json").read_text()
    )
    assert written["body"] == "Your code is 583920"
    assert "583920" not in json.dumps(timeline(client, auth, notification_id))
    with runtime.sessions() as s:
        row = s.get(Notification, notification_id)
        assert row.sealed_content is None  # wiped once sent
        assert "583920" not in json.dumps([e.detail for e in s.scalars(select(DeliveryEvent))])


def test_a_task_delivered_twice_sends_once(client, auth, worker_app, runtime):
    notification_id = post(client, auth, push())
    deliver_ids(worker_app.delivery, [notification_id])
    deliver_ids(worker_app.delivery, [notification_id])
    with runtime.sessions() as s:
        attempts = s.scalars(select(DeliveryEvent).where(DeliveryEvent.kind == "attempt")).all()
    assert len(attempts) == 1


def test_one_task_carries_several_notifications(client, auth, worker_app):
    ids = [post(client, auth, email(to=f"u{i}@example.com")) for i in range(5)]
    deliver_ids(worker_app.delivery, ids)
    assert {timeline(client, auth, i)["status"] for i in ids} == {"sent"}


def test_transient_failure_schedules_a_retry_then_gives_up(client, auth, worker_app, runtime):
    notification_id = post(client, auth, email(to="temporary-failure@simulator.notifier.dev"))
    for _ in range(runtime.settings.max_attempts):
        with transaction(runtime.sessions) as s:  # make the retry due now
            s.execute(update(Notification).values(not_before=None))
        deliver_ids(worker_app.delivery, [notification_id])
    body = timeline(client, auth, notification_id)
    assert body["status"] == "failed"
    assert body["attempts"] == runtime.settings.max_attempts
    kinds = [e["kind"] for e in body["events"]]
    assert kinds.count("attempt") == runtime.settings.max_attempts
    assert kinds.count("retry_scheduled") == runtime.settings.max_attempts - 1
    assert body["status_reason"].startswith("gave up after")
    assert body["status_code"] == "gave_up"


def test_retry_is_not_claimed_before_it_is_due(client, auth, worker_app):
    notification_id = post(client, auth, email(to="throttled@simulator.notifier.dev"))
    deliver_ids(worker_app.delivery, [notification_id])
    deliver_ids(worker_app.delivery, [notification_id])  # a duplicate task arriving early
    body = timeline(client, auth, notification_id)
    assert body["status"] == "queued" and body["attempts"] == 1
    retry = next(e for e in body["events"] if e["kind"] == "retry_scheduled")
    assert "retry in 1." in retry["detail"]  # Retry-After: 1 s honoured over the tiny backoff


def test_permanent_failure_fails_at_once(client, auth, worker_app):
    notification_id = post(client, auth, email(to="permanent-failure@simulator.notifier.dev"))
    deliver_ids(worker_app.delivery, [notification_id])
    body = timeline(client, auth, notification_id)
    assert body["status"] == "failed" and body["attempts"] == 1
    assert body["events"][-1]["kind"] == "failed"


def test_invalid_recipient_is_suppressed_for_later_sends(client, auth, worker_app, runtime):
    first = post(client, auth, sms(to="+61491570159"))
    deliver_ids(worker_app.delivery, [first])
    assert timeline(client, auth, first)["status"] == "failed"
    with runtime.sessions() as s:
        suppression = s.scalars(select(Suppression)).one()
    assert (suppression.channel, suppression.recipient, suppression.reason) == (
        "sms",
        "+61491570159",
        "invalid_address",
    )
    later = client.post("/v1/notifications", json=sms(to="+61 491 570 159"), headers=auth).json()
    assert later["status"] == "suppressed"
    assert timeline(client, auth, later["id"])["events"][0]["kind"] == "suppressed"


def test_marketing_unsubscribe_blocks_promotional_but_not_transactional(client, auth, runtime):
    with transaction(runtime.sessions) as s:
        s.add(Suppression(channel="email", recipient="ada@example.com", reason="unsubscribed"))
    promo = client.post(
        "/v1/notifications", json=email(category="promotional"), headers=auth
    ).json()
    receipt = client.post("/v1/notifications", json=email(), headers=auth).json()
    assert promo["status"] == "suppressed"
    assert receipt["status"] == "queued"


def test_expired_before_sending_is_not_sent(client, auth, worker_app, settings):
    notification_id = post(client, auth, email(ttl_seconds=1))
    time.sleep(1.1)
    deliver_ids(worker_app.delivery, [notification_id])
    body = timeline(client, auth, notification_id)
    assert body["status"] == "expired"
    assert not (settings.outbox_dir / "email.transactional" / f"{notification_id}.json").exists()


@pytest.mark.parametrize("category", ["transactional", "promotional"])
def test_each_sms_lane_is_published_to_its_own_queue(client, auth, runtime, category):
    notification_id = post(client, auth, sms(category=category, timezone=daytime_timezone()))
    with runtime.celery.connection_for_read() as connection:
        received = []
        for queue in ("sms.transactional", "sms.promotional"):
            with connection.SimpleQueue(queue) as q:
                while True:
                    try:
                        message = q.get(block=False)
                    except q.Empty:
                        break
                    message.ack()
                    if notification_id in json.dumps(message.payload):
                        received.append(queue)
    assert received == [f"sms.{category}"]


def test_suppression_added_after_intake_stops_the_send(client, auth, worker_app, runtime, settings):
    notification_id = post(client, auth, email())
    with transaction(runtime.sessions) as s:
        s.add(
            Suppression(
                channel="email",
                recipient="ada@example.com",
                reason="hard_bounce",
                created_at=utcnow() - timedelta(seconds=1),
            )
        )
    deliver_ids(worker_app.delivery, [notification_id])
    assert timeline(client, auth, notification_id)["status"] == "suppressed"


def test_a_row_changed_between_the_read_and_the_claim_is_not_claimed(
    client, auth, worker_app, runtime, settings
):
    """The claim is decided on a read; if another worker attempts the row in between (here:
    its attempts and pin change just before the claim's UPDATE reaches the database), the claim
    does not take it, so nothing is sent on the stale decision."""
    from sqlalchemy import event

    notification_id = post(client, auth, email())
    engine = worker_app.runtime.engine

    fired: list[str] = []

    def another_worker_first(conn, cursor, statement, *args):
        if statement.lstrip().startswith("UPDATE notifications SET status") and not fired:
            fired.append(statement)
            with transaction(runtime.sessions) as s:
                s.execute(
                    update(Notification)
                    .where(Notification.id == notification_id)
                    .values(attempts=1, pinned_provider="outbox")
                )

    event.listen(engine, "before_cursor_execute", another_worker_first)
    deliver_ids(worker_app.delivery, [notification_id])
    event.remove(engine, "before_cursor_execute", another_worker_first)

    assert fired and "attempts" in fired[0]  # the claim, guarded on what it read
    outbox = settings.outbox_dir / "email.transactional"
    assert not list(outbox.glob(f"{notification_id}*"))  # nothing sent on the stale read
    with runtime.sessions() as s:
        row = s.get(Notification, notification_id)
        assert (row.status, row.attempts, row.claimed_by) == ("queued", 1, None)
