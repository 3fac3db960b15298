"""The safety nets: release, re-publish, recover, expire, purge."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from notifier.db.models import Heartbeat, IdempotencyRecord, Notification, utcnow
from notifier.db.session import transaction
from notifier.notifications import repository
from notifier.statuses import Status
from tests.factories import email
from workers import sweeper
from workers.delivery import deliver_ids


def status_of(runtime, notification_id) -> str:  # type: ignore[no-untyped-def]
    with runtime.sessions() as s:
        return s.get(Notification, notification_id).status


def kinds(client, auth, notification_id) -> list[str]:  # type: ignore[no-untyped-def]
    return [
        e["kind"]
        for e in client.get(f"/v1/notifications/{notification_id}", headers=auth).json()["events"]
    ]


def test_a_send_whose_worker_died_is_recovered_and_sent_once(client, auth, runtime, worker_app):  # type: ignore[no-untyped-def]
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


def test_a_recent_send_is_left_alone(client, auth, runtime):  # type: ignore[no-untyped-def]
    notification_id = client.post("/v1/notifications", json=email(), headers=auth).json()["id"]
    with transaction(runtime.sessions) as s:
        repository.move(s, [notification_id], Status.SENDING, claimed_at=utcnow())
    assert sweeper.sweep(runtime).recovered == 0
    assert status_of(runtime, notification_id) == "sending"


def test_stale_queued_is_republished_and_fresh_is_not(client, auth, runtime):  # type: ignore[no-untyped-def]
    stale = client.post("/v1/notifications", json=email(), headers=auth).json()["id"]
    fresh = client.post("/v1/notifications", json=email(), headers=auth).json()["id"]
    with transaction(runtime.sessions) as s:
        s.execute(
            update(Notification)
            .where(Notification.id == stale)
            .values(published_at=utcnow() - timedelta(minutes=10))
        )
    assert sweeper.sweep(runtime).republished == 1
    assert "republished" in kinds(client, auth, stale)
    assert "republished" not in kinds(client, auth, fresh)


def test_due_scheduled_are_released_and_overdue_expire(client, auth, runtime):  # type: ignore[no-untyped-def]
    later = (utcnow() + timedelta(days=1)).isoformat()
    due = client.post("/v1/notifications", json=email(send_at=later), headers=auth).json()["id"]
    gone = client.post("/v1/notifications", json=email(send_at=later), headers=auth).json()["id"]
    with transaction(runtime.sessions) as s:
        s.execute(update(Notification).where(Notification.id == due).values(send_at=utcnow()))
        s.execute(
            update(Notification)
            .where(Notification.id == gone)
            .values(send_at=utcnow(), expires_at=utcnow() - timedelta(seconds=1))
        )
    report = sweeper.sweep(runtime)
    assert (report.released, report.expired) == (1, 1)
    assert status_of(runtime, due) == "queued" and status_of(runtime, gone) == "expired"
    with runtime.sessions() as s:
        assert s.get(Heartbeat, "sweeper") is not None


def test_purge_drops_old_idempotency_keys(client, auth, runtime):  # type: ignore[no-untyped-def]
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
