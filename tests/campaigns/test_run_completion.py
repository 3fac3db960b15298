"""A throttled run is not complete until nothing of it is held back; pause and resume work for
as long as it has anything left to send, and a resume keeps the throttle's pace."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

import pytest
from sqlalchemy import select, update

from notifier.campaigns import completion, runs
from notifier.campaigns.models import CampaignRun
from notifier.db.models import DeliveryEvent, Notification, utcnow
from notifier.db.session import transaction
from tests.campaigns.conftest import campaign, run_now, template
from tests.campaigns.test_runs import audience
from tests.factories import make_settings
from tests.services import fresh_postgres_database
from workers.sweeper import release_scheduled


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request, tmp_path):
    """Both databases: the completion check and the throttle shift are plain SQL on each."""
    extra = {"public_url": "https://notify.example.com"}
    if request.param == "sqlite":
        yield make_settings(tmp_path, **extra)
        return
    with fresh_postgres_database() as url:
        yield make_settings(tmp_path, database_url=url, **extra)


def _rows(runtime, run_id):
    with runtime.sessions() as s:
        return s.execute(
            select(
                Notification.id,
                Notification.status,
                Notification.send_at,
                Notification.status_reason,
            )
            .where(Notification.reference == run_id)
            .order_by(Notification.recipient)
        ).all()


def _make_due(runtime, run_id: str) -> None:
    """Let the throttle's clock run out: every scheduled send time is now in the past."""
    with transaction(runtime.sessions) as s:
        s.execute(
            update(Notification)
            .where(Notification.reference == run_id, Notification.send_at.is_not(None))
            .values(send_at=utcnow() - timedelta(seconds=1))
        )


def test_throttled_run_stays_running_and_pausable_until_the_last_message_is_released(
    client, manager, runtime
):
    template(client, manager, "sale", "email", subject="S", body="B")
    audience(client, manager, 6)
    created = campaign(client, manager, throttle_per_minute=2)
    path = f"/v1/campaigns/{created['id']}"
    run_id = run_now(client, manager, created["id"])
    report = runs.run(runtime, run_id)
    assert report.finished  # the whole audience fanned out in one go ...
    shown = client.get(path, headers=manager).json()
    assert shown["status"] == "running"  # ... but five messages wait for their slot
    assert shown["runs"][0]["status"] == "running" and shown["runs"][0]["finished_at"] is None
    assert completion.settle(runtime) == []  # beat's check leaves it running

    paused = client.post(f"{path}/pause", headers=manager)
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "paused" and paused.json()["runs"][0]["status"] == "paused"
    held = [r for r in _rows(runtime, run_id) if r.status == "scheduled"]
    # the first (queued, no worker took it yet) and the five throttled ones are all held
    assert len(held) == 6 and {r.status_reason for r in held} == {"held: the campaign was paused"}
    before = {r.id: r.send_at for r in held if r.send_at is not None}
    assert len(before) == 5

    # the pause lasted ten minutes
    with transaction(runtime.sessions) as s:
        s.execute(
            update(CampaignRun)
            .where(CampaignRun.id == run_id)
            .values(paused_at=utcnow() - timedelta(minutes=10))
        )
    resumed = client.post(f"{path}/resume", headers=manager)
    assert resumed.status_code == 200 and resumed.json()["status"] == "running"
    after = {r.id: r for r in _rows(runtime, run_id) if r.status == "scheduled"}
    assert {r.status_reason for r in after.values()} == {"released: the campaign was resumed"}
    shifts = {round((after[i].send_at - before[i]).total_seconds()) for i in before}
    assert shifts == {600}  # the throttle's pace survives the pause: no burst on resume
    with runtime.sessions() as s:
        details = set(
            s.scalars(
                select(DeliveryEvent.detail).where(DeliveryEvent.notification_id.in_(list(after)))
            )
        )
    assert {"held: the campaign was paused", "released: the campaign was resumed"} <= details

    _make_due(runtime, run_id)
    assert release_scheduled(runtime) == 6
    assert completion.settle(runtime) == [run_id]
    done = client.get(path, headers=manager).json()
    assert done["status"] == "completed" and done["runs"][0]["status"] == "completed"
    assert done["runs"][0]["progress"]["queued"] == 6
    refused = client.post(f"{path}/pause", headers=manager)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "conflict"


def test_a_run_paused_mid_fan_out_queues_later_messages_behind_the_shifted_ones(
    client, manager, runtime
):
    template(client, manager, "sale", "email", subject="S", body="B")
    audience(client, manager, 6)
    created = campaign(client, manager, throttle_per_minute=60)
    path = f"/v1/campaigns/{created['id']}"
    run_id = run_now(client, manager, created["id"])
    runs.fan_out(
        runtime,
        run_id,
        chunk_size=3,
        on_chunk=lambda n: client.post(f"{path}/pause", headers=manager) if n == 1 else None,
    )
    with transaction(runtime.sessions) as s:
        s.execute(
            update(CampaignRun)
            .where(CampaignRun.id == run_id)
            .values(paused_at=utcnow() - timedelta(minutes=5))
        )
    assert client.post(f"{path}/resume", headers=manager).status_code == 200
    runs.run(runtime, run_id)  # the task the resume enqueued fans out the rest
    # in audience order: the two held before the pause, then the three fanned out after it
    times = [r.send_at for r in _rows(runtime, run_id) if r.send_at is not None]
    assert len(times) == 5
    gaps = [(b - a).total_seconds() for a, b in pairwise(times)]
    # one a second (a partial slot of the pause rounds up), nobody jumps the queue
    assert all(0.9 <= g <= 2.1 for g in gaps), gaps
