"""Campaign runs on the embedded database: the consent/suppression matrix, the lane rule,
throttle, pause/resume/cancel, the double-fire guard and crash-resume without duplicates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from notifier.campaigns import runs
from notifier.campaigns.models import CampaignRun
from notifier.db.models import Notification, Suppression, utcnow
from notifier.db.session import transaction
from notifier.statuses import Status
from tests.campaigns.conftest import campaign, contact, run_now, template
from tests.factories import email

NO_QUIET = {"enabled": False}


def statuses(runtime, run_id: str) -> dict[str, str]:
    with runtime.sessions() as s:
        return dict(
            s.execute(
                select(Notification.recipient, Notification.status).where(
                    Notification.reference == run_id
                )
            ).all()
        )


def test_a_campaign_on_a_transactional_lane_is_refused(client, manager, runtime):
    template(client, manager, "sale", "sms", body="Sale")
    client.post("/v1/audiences", json={"name": "everyone"}, headers=manager)
    response = client.post(
        "/v1/campaigns",
        json={"name": "x", "template": "sale", "audience": "everyone", "lane": "sms.transactional"},
        headers=manager,
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"][0] == {
        "field": "lane",
        "message": error["message"],
        "code": "campaign_lane_not_promotional",
    }
    assert client.get("/v1/campaigns", headers=manager).json() == []


@pytest.mark.parametrize(
    ("lane", "channel", "address"),
    [
        ("email.promotional", "email", {"email": "{k}@example.com"}),
        ("sms.promotional", "sms", {"phone": "+4479111234{n:02d}"}),
        (
            "push.promotional",
            "push",
            {"push_tokens": [{"token": "{k}-token-0123456789", "platform": "fcm"}]},
        ),
    ],
)
def test_consent_and_suppression_matrix(client, manager, runtime, lane, channel, address):
    fields = {
        "email": {"subject": "Hi {{ name }}", "body": "Sale"},
        "sms": {"body": "Sale {{ name }}"},
        "push": {"title": "Sale", "body": "{{ name }}"},
    }[channel]
    template(client, manager, "sale", channel, **fields)
    reasons = ["unsubscribed", "hard_bounce", "complaint", "stop", "invalid_token", "manual"]
    people = {}
    for n, (consent, reason) in enumerate(
        [(True, None), (False, None)] + [(True, r) for r in reasons] + [(False, "manual")]
    ):
        key = f"c{n}"
        filled = {
            k: (
                v.format(k=key, n=n)
                if isinstance(v, str)
                else [{**t, "token": t["token"].format(k=key)} for t in v]
            )
            for k, v in address.items()
        }
        made = contact(
            client,
            manager,
            key,
            consent={channel: consent},
            attributes={"name": key},
            audiences=["everyone"],
            **filled,
        )
        recipient = made["email"] or made["phone"] or made["push_tokens"][0]["token"]
        people[recipient] = (consent, reason)
        if reason:
            with transaction(runtime.sessions) as s:
                s.add(Suppression(channel=channel, recipient=recipient, reason=reason))
    contact(
        client, manager, "nobody", audiences=["everyone"], consent={channel: True}
    )  # no address
    created = campaign(client, manager, lane=lane, quiet_hours=NO_QUIET)
    run_id = run_now(client, manager, created["id"])
    runs.run(runtime, run_id)
    result = statuses(runtime, run_id)
    for recipient, (consent, reason) in people.items():
        expected = "queued" if consent and reason is None else "suppressed"
        assert result[recipient] == expected, (recipient, consent, reason)
    with runtime.sessions() as s:
        why = dict(
            s.execute(
                select(Notification.recipient, Notification.status_reason).where(
                    Notification.reference == run_id
                )
            ).all()
        )
    no_consent = [r for r, (c, _) in people.items() if not c]
    assert all(why[r] == f"no marketing consent for {channel}" for r in no_consent)
    assert {why[r] for r, (c, s) in people.items() if c and s} == {
        f"recipient suppressed: {x}" for x in reasons
    }
    run = client.get(f"/v1/campaigns/{created['id']}/runs/{run_id}", headers=manager).json()
    assert run["status"] == "completed"
    assert run["progress"] | {"by_status": None} == {
        "total": 10,
        "processed": 10,
        "skipped": 1,
        "created": 9,
        "queued": 1,
        "sent": 0,
        "delivered": 0,
        "failed": 0,
        "suppressed": 8,
        "cancelled": 0,
        "by_status": None,
    }
    assert (
        client.get(f"/v1/campaigns/{created['id']}", headers=manager).json()["status"]
        == "completed"
    )


def test_a_campaign_sms_over_the_segment_limit_fails_visibly_never_queued(client, manager, runtime):
    """Fan-out applies intake's content bounds: a 1,000 x "€" SMS (14 GSM-7 segments, the euro
    sign being a two-septet escape; the limit is 10) is stored ``failed`` with the reason, and
    never published."""
    template(client, manager, "sale", "sms", body="{{ text }}")
    for n, text in enumerate(["Sale", "€" * 1000]):
        contact(
            client,
            manager,
            f"c{n}",
            phone=f"+44791112340{n}",
            consent={"sms": True},
            attributes={"text": text},
            audiences=["everyone"],
        )
    created = campaign(client, manager, lane="sms.promotional", quiet_hours=NO_QUIET)
    run_id = run_now(client, manager, created["id"])
    runs.run(runtime, run_id)

    with runtime.sessions() as s:
        found = {
            n.recipient: n
            for n in s.scalars(select(Notification).where(Notification.reference == run_id))
        }
    short, long = found["+447911123400"], found["+447911123401"]
    assert (short.status, short.sms_segments) == ("queued", 1)
    assert long.status == "failed" and long.published_at is None
    assert long.completed_at is not None
    assert long.status_reason == (
        "not sent: SMS body needs 14 gsm7 segments; at most 10 are allowed"
    )
    progress = client.get(f"/v1/campaigns/{created['id']}/runs/{run_id}", headers=manager).json()[
        "progress"
    ]
    assert (progress["queued"], progress["failed"]) == (1, 1)


@pytest.mark.parametrize(
    ("reason", "blocks_transactional"),
    [
        ("unsubscribed", False),
        ("stop", True),  # carriers block every message after STOP
        ("manual", False),
        ("hard_bounce", True),
        ("complaint", True),
        ("invalid_address", True),
    ],
)
def test_transactional_sends_skip_only_undeliverable_addresses(
    client, manager, runtime, reason, blocks_transactional
):
    with transaction(runtime.sessions) as s:
        s.add(Suppression(channel="email", recipient="ada@example.com", reason=reason))
    for category, blocked in (("transactional", blocks_transactional), ("promotional", True)):
        body = client.post(
            "/v1/notifications", json=email(category=category), headers=manager
        ).json()
        assert body["status"] == ("suppressed" if blocked else "queued"), (reason, category)


def audience(client, manager, count: int, **extra) -> None:
    rows = "".join(f"k{i:05d},k{i:05d}@example.com,yes\n" for i in range(count))
    response = client.post(
        "/v1/audiences/everyone/import",
        content="key,email,email_consent\n" + rows,
        headers={**manager, "Content-Type": "text/csv"},
    )
    assert response.json()["created"] == count


def test_throttle_spreads_send_times(client, manager, runtime):
    template(client, manager, "sale", "email", subject="S", body="B")
    audience(client, manager, 6)
    created = campaign(client, manager, throttle_per_minute=2)
    run_id = run_now(client, manager, created["id"])
    runs.run(runtime, run_id)
    with runtime.sessions() as s:
        rows = s.execute(
            select(Notification.status, Notification.send_at, Notification.status_reason)
            .where(Notification.reference == run_id)
            .order_by(Notification.recipient)
        ).all()
        started = s.get(CampaignRun, run_id).started_at
    assert rows[0].status == "queued"
    offsets = [round((r.send_at - started).total_seconds()) for r in rows[1:]]
    assert offsets == [30, 60, 90, 120, 150]
    assert {r.status for r in rows[1:]} == {"scheduled"} and rows[
        1
    ].status_reason == "throttled: 2 per minute"


def test_pause_holds_resume_releases_cancel_cancels(client, manager, runtime):
    template(client, manager, "sale", "email", subject="S", body="B")
    audience(client, manager, 50)
    created = campaign(client, manager)
    run_id = run_now(client, manager, created["id"])
    runs.fan_out(
        runtime,
        run_id,
        chunk_size=20,
        on_chunk=lambda n: (
            client.post(f"/v1/campaigns/{created['id']}/pause", headers=manager) if n == 1 else None
        ),
    )
    paused = client.get(f"/v1/campaigns/{created['id']}", headers=manager).json()
    assert paused["status"] == "paused" and paused["runs"][0]["status"] == "paused"
    assert paused["runs"][0]["progress"]["processed"] == 20  # stopped at the next chunk
    with runtime.sessions() as s:
        held = s.scalars(select(Notification).where(Notification.reference == run_id)).all()
    assert len(held) == 20 and {(n.status, n.status_reason) for n in held} == {
        ("scheduled", "held: the campaign was paused")
    }
    from workers.sweeper import release_scheduled

    assert release_scheduled(runtime) == 0  # the sweeper leaves held messages alone

    resumed = client.post(f"/v1/campaigns/{created['id']}/resume", headers=manager).json()
    assert resumed["status"] == "running"
    runs.run(runtime, run_id)  # the task the resume enqueued
    done = client.get(f"/v1/campaigns/{created['id']}/runs/{run_id}", headers=manager).json()
    assert done["status"] == "completed" and done["progress"]["queued"] == 50
    assert done["progress"]["by_status"] == {"queued": 50}

    cancelled = client.post(f"/v1/campaigns/{created['id']}/cancel", headers=manager).json()
    assert cancelled["status"] == "cancelled"
    progress = client.get(f"/v1/campaigns/{created['id']}/runs/{run_id}", headers=manager).json()[
        "progress"
    ]
    assert progress["cancelled"] == 50 and progress["queued"] == 0
    assert client.post(f"/v1/campaigns/{created['id']}/resume", headers=manager).status_code == 409


def test_two_concurrent_fires_of_one_occurrence_start_one_run(client, manager, runtime):
    template(client, manager, "sale", "email", subject="S", body="B")
    audience(client, manager, 3)
    created = campaign(client, manager, schedule={"cron": "0 9 * * 1", "timezone": "Europe/Paris"})
    monday_9_paris = utcnow().replace(
        year=2026, month=6, day=8, hour=7, minute=0, second=5, microsecond=0
    )
    barrier = threading.Barrier(4)
    results: list[str | None] = []

    def fire() -> None:
        barrier.wait()
        results.append(runs.fire(runtime, created["id"], now=monday_9_paris))

    threads = [threading.Thread(target=fire) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len([r for r in results if r]) == 1
    with runtime.sessions() as s:
        run = s.scalars(select(CampaignRun)).one()
    assert run.run_at == monday_9_paris.replace(second=0)
    # a beat that fires a few seconds early still names the same occurrence
    assert runs.fire(runtime, created["id"], now=monday_9_paris - timedelta(seconds=8)) is None


def test_concurrent_fan_outs_of_one_run_send_nobody_twice(client, manager, runtime):
    template(client, manager, "sale", "email", subject="S", body="B")
    audience(client, manager, 300)
    run_id = run_now(client, manager, campaign(client, manager)["id"])
    threads = [threading.Thread(target=runs.fan_out, args=(runtime, run_id, 25)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with runtime.sessions() as s:
        count, distinct = s.execute(
            select(func.count(), func.count(func.distinct(Notification.recipient))).where(
                Notification.reference == run_id
            )
        ).one()
    assert count == distinct == 300


CRASHING_RUN = """
import sys
import time
from notifier.campaigns import runs
from notifier.runtime import Runtime
from tests.factories import make_settings
from pathlib import Path
settings = make_settings(Path(sys.argv[1]))
runtime = Runtime.build(settings)
print("started", flush=True)
runs.fan_out(runtime, sys.argv[2], chunk_size=100, on_chunk=lambda n: time.sleep(0.05))
"""


def test_a_held_message_that_expired_during_the_pause_stays_expired_on_resume(
    client, manager, runtime
):
    """Resume releases held messages through the guarded move: one the sweeper expired while
    the campaign was paused is final and is not brought back to ``scheduled``."""
    template(client, manager, "sale", "email", subject="S", body="B")
    audience(client, manager, 5)
    created = campaign(client, manager)
    run_id = run_now(client, manager, created["id"])
    pause = f"/v1/campaigns/{created['id']}/pause"
    runs.fan_out(
        runtime,
        run_id,
        chunk_size=2,
        on_chunk=lambda n: client.post(pause, headers=manager) if n == 1 else None,
    )
    with transaction(runtime.sessions) as s:
        held = list(s.scalars(select(Notification.id).where(Notification.reference == run_id)))
        s.execute(
            update(Notification)
            .where(Notification.id == held[0])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    from workers.sweeper import expire_overdue

    assert expire_overdue(runtime) == 1
    assert client.post(f"/v1/campaigns/{created['id']}/resume", headers=manager).status_code == 200
    with runtime.sessions() as s:
        statuses = {i: s.get(Notification, i).status for i in held}
    assert statuses[held[0]] == "expired"
    assert {statuses[i] for i in held[1:]} <= {"scheduled", "queued"}


def test_a_run_killed_mid_way_resumes_without_duplicates(client, manager, runtime, tmp_path):
    template(client, manager, "sale", "email", subject="S", body="B")
    audience(client, manager, 3000)
    run_id = run_now(client, manager, campaign(client, manager)["id"])
    process = subprocess.Popen(
        [sys.executable, "-c", CRASHING_RUN, str(tmp_path), run_id],
        cwd=os.getcwd(),
        stdout=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    processed = 0
    while time.monotonic() < deadline and processed < 500:
        with runtime.sessions() as s:
            processed = s.get(CampaignRun, run_id).processed
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)  # a real crash, whatever it was doing
    process.wait(10)
    with runtime.sessions() as s:
        run = s.get(CampaignRun, run_id)
        before = s.scalar(select(func.count()).select_from(Notification))
    assert run.status == "running" and 0 < run.processed < 3000
    assert before == run.processed  # the cursor moved with exactly the rows committed

    assert runs.resume_stalled(runtime, now=utcnow() + timedelta(minutes=5)) == [run_id]
    runs.run(runtime, run_id)  # what the re-enqueued task does
    with runtime.sessions() as s:
        count, distinct = s.execute(
            select(func.count(), func.count(func.distinct(Notification.recipient)))
        ).one()
        assert s.get(CampaignRun, run_id).status == "completed"
    assert count == distinct == 3000
    assert {Status.QUEUED.value} == set(statuses(runtime, run_id).values())
