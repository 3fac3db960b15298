"""The safety nets: release, re-publish, recover, expire, purge."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from notifier.db.models import Heartbeat, IdempotencyRecord, Notification, utcnow
from notifier.db.session import transaction
from notifier.notifications import repository
from notifier.statuses import Status
from tests.factories import email, insert_notifications, notification_row
from workers import sweeper
from workers.delivery import deliver_ids


def status_of(runtime, notification_id) -> str:
    with runtime.sessions() as s:
        return s.get(Notification, notification_id).status


def kinds(client, auth, notification_id) -> list[str]:
    return [
        e["kind"]
        for e in client.get(f"/v1/notifications/{notification_id}", headers=auth).json()["events"]
    ]


def test_a_send_whose_worker_died_is_recovered_and_sent_once(client, auth, runtime, worker_app):
    notification_id = client.post("/v1/notifications", json=email(), headers=auth).json()["id"]
    with transaction(runtime.sessions) as s:  # a worker claimed it, then was SIGKILLed
        repository.move(
            s, [notification_id], Status.SENDING, claimed_at=utcnow() - timedelta(hours=1)
        )
    assert sweeper.sweep(runtime, queued_stale=3600).recovered == 1
    assert status_of(runtime, notification_id) == "queued"
    deliver_ids(worker_app.delivery, [notification_id])
    deliver_ids(worker_app.delivery, [notification_id])
    assert status_of(runtime, notification_id) == "sent"
    assert kinds(client, auth, notification_id) == ["queued", "recovered", "attempt", "sent"]


def test_a_recent_send_is_left_alone(client, auth, runtime):
    notification_id = client.post("/v1/notifications", json=email(), headers=auth).json()["id"]
    with transaction(runtime.sessions) as s:
        repository.move(s, [notification_id], Status.SENDING, claimed_at=utcnow())
    assert sweeper.sweep(runtime).recovered == 0
    assert status_of(runtime, notification_id) == "sending"


def events_of(runtime, notification_id) -> list[tuple[str, str | None]]:
    with runtime.sessions() as s:
        return [(e.kind, e.provider) for e in repository.events_of(s, notification_id)]


def test_stale_queued_is_republished_and_fresh_is_not(runtime):
    stale, fresh = insert_notifications(
        runtime,
        [notification_row(published_at=utcnow() - timedelta(minutes=10)), notification_row()],
    )
    assert sweeper.sweep(runtime).republished == 1
    assert events_of(runtime, stale) == [("republished", None)]
    assert events_of(runtime, fresh) == []
    assert status_of(runtime, stale) == status_of(runtime, fresh) == "queued"


def test_due_scheduled_are_released_and_overdue_expire(runtime):
    now = utcnow()
    due, gone, later, deferred = insert_notifications(
        runtime,
        [
            notification_row(Status.SCHEDULED, send_at=now),
            notification_row(Status.SCHEDULED, send_at=now, ttl=timedelta(seconds=-1)),
            notification_row(Status.SCHEDULED, send_at=now + timedelta(days=1)),
            notification_row(Status.SCHEDULED, send_at=now, not_before=now + timedelta(hours=1)),
        ],
    )
    report = sweeper.sweep(runtime)
    assert (report.released, report.expired) == (1, 1)
    assert status_of(runtime, due) == "queued" and status_of(runtime, gone) == "expired"
    assert status_of(runtime, later) == status_of(runtime, deferred) == "scheduled"
    with runtime.sessions() as s:
        assert s.get(Heartbeat, "sweeper") is not None


def test_a_stuck_send_is_requeued_or_ended_by_what_the_write_ahead_record_says(runtime):
    """Never handed to a provider: queued again. Handed to one on a lane that is resent after a
    crash: queued again pinned to it. Handed to one elsewhere: ended unconfirmed."""
    long_ago = utcnow() - timedelta(hours=1)
    fresh, pinned, ended, recent = insert_notifications(
        runtime,
        [
            notification_row(Status.SENDING, claimed_at=long_ago),
            notification_row(Status.SENDING, claimed_at=long_ago, inflight_provider="ses-main"),
            notification_row(
                Status.SENDING,
                lane="email.promotional",
                claimed_at=long_ago,
                inflight_provider="ses-bulk",
            ),
            notification_row(Status.SENDING, claimed_at=utcnow(), inflight_provider="ses-main"),
        ],
    )
    assert sweeper.sweep(runtime, queued_stale=3600).recovered == 3
    assert [status_of(runtime, i) for i in (fresh, pinned, ended, recent)] == [
        "queued",
        "queued",
        "unconfirmed",
        "sending",
    ]
    assert events_of(runtime, fresh) == [("recovered", None)]
    assert events_of(runtime, pinned) == [("recovered", "ses-main")]
    with runtime.sessions() as s:
        assert s.get(Notification, pinned).pinned_provider == "ses-main"
        assert s.get(Notification, ended).attempts == 1


def test_purge_drops_the_content_only_of_what_nothing_will_send(runtime):
    old = utcnow() - timedelta(days=30)
    content = {"body": "hi"}
    sent, unconfirmed, queued, recent = insert_notifications(
        runtime,
        [
            notification_row(Status.SENT, now=old, content=content),
            notification_row(Status.UNCONFIRMED, now=old, content=content),
            notification_row(Status.QUEUED, now=old, ttl=timedelta(days=60), content=content),
            notification_row(Status.SENT, content=content),
        ],
    )
    assert sweeper.purge(runtime)["contents"] == 1
    with runtime.sessions() as s:
        kept = [s.get(Notification, i).content for i in (sent, unconfirmed, queued, recent)]
    assert kept == [None, content, content, content]


def test_purge_drops_old_idempotency_keys(client, auth, runtime):
    client.post("/v1/notifications", json=email(), headers={**auth, "Idempotency-Key": "old"})
    client.post("/v1/notifications", json=email(), headers={**auth, "Idempotency-Key": "new"})
    with transaction(runtime.sessions) as s:
        s.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.key == "old")
            .values(created_at=utcnow() - timedelta(days=3))
        )
    assert sweeper.purge(runtime)["idempotency_keys"] == 1
    with runtime.sessions() as s:
        assert [r.key for r in s.scalars(select(IdempotencyRecord))] == ["new"]
