"""Delivery health: ``GET /health/delivery``, ``notifier status`` and the gauges say "stopped"
when no live worker serves a lane with due work, when a due notification waits too long, and when
beat's tick is stale; and "delivering" when none of that holds. The last test kills a real
``notifier worker`` process and watches the verdict change."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import update
from typer.testing import CliRunner

from notifier.cli import app as cli
from notifier.db.models import Heartbeat, Notification, WorkerHeartbeat, utcnow
from notifier.db.session import transaction
from notifier.liveness import HeartbeatWriter
from notifier.tasks import ALL_QUEUES
from tests.factories import email, push


def tick(runtime, age: float = 0.0) -> None:
    with transaction(runtime.sessions) as session:
        session.merge(Heartbeat(name="sweeper", at=utcnow() - timedelta(seconds=age), detail={}))


def worker(runtime, worker_id: str, queues: list[str], age: float = 0.0) -> None:
    now = utcnow()
    with transaction(runtime.sessions) as session:
        session.merge(
            WorkerHeartbeat(
                worker_id=worker_id,
                hostname="h",
                pid=1,
                queues=queues,
                started_at=now,
                seen_at=now - timedelta(seconds=age),
            )
        )


def problems(response) -> set[tuple[str, str]]:
    return {(d["code"], d["field"]) for d in response.json()["error"]["details"]}


def test_nothing_running_is_reported_as_stopped(client) -> None:
    response = client.get("/health/delivery")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "stopped" and body["error"]["code"] == "service_unavailable"
    assert problems(response) == {("no_live_worker", "maintenance"), ("beat_stale", "beat")}
    assert body["live_workers"] == dict.fromkeys(ALL_QUEUES, 0)


def test_a_served_deployment_is_delivering(client, auth, runtime) -> None:
    writer = HeartbeatWriter(runtime.sessions, "all-lanes", list(ALL_QUEUES), 60)
    assert writer.beat()
    tick(runtime)
    client.post("/v1/notifications", json=email(), headers=auth)
    response = client.get("/health/delivery")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "delivering" and body["problems"] == []
    assert body["backlog"]["email.transactional"]["due"] == 1
    assert body["live_workers"]["email.transactional"] == 1
    assert (
        socket.gethostname() not in response.text and "all-lanes" not in response.text
    )  # no worker names
    writer.stop()


def test_due_work_on_a_lane_without_a_live_worker_stops_delivery(client, auth, runtime) -> None:
    tick(runtime)
    worker(runtime, "promo", ["email.promotional", "maintenance"])
    worker(
        runtime, "dead", ["email.transactional", "maintenance"], age=60
    )  # lapsed: does not count
    client.post("/v1/notifications", json=email(), headers=auth)
    response = client.get("/health/delivery")
    assert response.status_code == 503
    assert problems(response) == {("no_live_worker", "email.transactional")}
    # a retry not yet due is not work waiting for a worker
    with transaction(runtime.sessions) as session:
        session.execute(update(Notification).values(not_before=utcnow() + timedelta(minutes=5)))
    assert client.get("/health/delivery").status_code == 200


def test_a_notification_due_too_long_stops_delivery_per_lane_category(
    client, auth, runtime
) -> None:
    tick(runtime)
    worker(runtime, "all", list(ALL_QUEUES))
    transactional = client.post("/v1/notifications", json=email(), headers=auth).json()["id"]
    promotional = client.post(
        "/v1/notifications", json=push(category="promotional"), headers=auth
    ).json()["id"]
    with transaction(runtime.sessions) as session:
        session.execute(
            update(Notification)
            .where(Notification.id == promotional)
            .values(created_at=utcnow() - timedelta(hours=1))
        )  # a campaign's normal backlog
    assert client.get("/health/delivery").status_code == 200
    with transaction(runtime.sessions) as session:
        session.execute(
            update(Notification)
            .where(Notification.id == transactional)
            .values(created_at=utcnow() - timedelta(seconds=301))
        )
    response = client.get("/health/delivery")
    assert problems(response) == {("queued_too_long", "email.transactional")}
    assert response.json()["backlog"]["email.transactional"]["oldest_due_age_seconds"] >= 301


def test_a_stale_beat_stops_delivery(client, runtime) -> None:
    worker(runtime, "all", list(ALL_QUEUES))
    tick(runtime, age=121)
    assert problems(client.get("/health/delivery")) == {("beat_stale", "beat")}
    tick(runtime, age=5)
    assert client.get("/health/delivery").status_code == 200


def test_gauges_carry_live_workers_due_counts_and_ages(client, auth, runtime) -> None:
    worker(runtime, "t", ["sms.transactional", "maintenance"])
    client.post("/v1/notifications", json=email(), headers=auth)
    text = client.get("/metrics").text
    assert 'notifier_live_workers{queue="sms.transactional"} 1.0' in text
    assert 'notifier_live_workers{queue="email.transactional"} 0.0' in text
    assert 'notifier_due_notifications{queue="email.transactional"} 1.0' in text
    assert 'notifier_oldest_due_age_seconds{queue="push.promotional"} 0.0' in text


def _status(settings, monkeypatch, *options: str) -> tuple[int, str]:
    monkeypatch.setenv("NOTIFIER_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("NOTIFIER_BROKER_URL", "memory://")
    monkeypatch.setenv("NOTIFIER_DATA_DIR", str(settings.data_dir))
    result = CliRunner().invoke(cli, ["status", *options], env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_notifier_status_exits_1_when_delivery_stopped_and_0_when_delivering(
    client, auth, runtime, settings, monkeypatch
) -> None:
    client.post("/v1/notifications", json=email(), headers=auth)
    code, output = _status(settings, monkeypatch)
    assert code == 1 and "STOPPED" in output and "no_live_worker" in output
    assert _status(settings, monkeypatch, "--dependencies-only")[0] == 0  # a worker pod's readiness
    tick(runtime)
    worker(runtime, "w-all", list(ALL_QUEUES))
    code, output = _status(settings, monkeypatch)
    assert code == 0, output
    assert "delivering" in output and "w-all" in output and "due email.transactional" in output


def test_killing_the_only_worker_of_a_lane_turns_health_to_stopped(
    client, auth, runtime, settings, tmp_path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
    env.update(
        NOTIFIER_ENV="test",
        NOTIFIER_DATABASE_URL=settings.database_url,
        NOTIFIER_BROKER_URL="memory://",
        NOTIFIER_DATA_DIR=str(tmp_path / "w"),
        NOTIFIER_WORKER_HEARTBEAT_SECONDS="0.5",
        NOTIFIER_WORKER_LAPSE_SECONDS="2",
        NOTIFIER_METRICS_PORT="0",
        NOTIFIER_LOG_LEVEL="WARNING",
    )
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "notifier"),
            "worker",
            "--lanes",
            ",".join(ALL_QUEUES),
            "--concurrency",
            "2",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        tick(runtime)
        client.post(
            "/v1/notifications", json=email(), headers=auth
        )  # memory broker: it stays queued
        runtime.settings.worker_lapse_seconds = 2
        deadline = time.monotonic() + 60
        while client.get("/health/delivery").status_code != 200:
            assert time.monotonic() < deadline, client.get("/health/delivery").json()
            time.sleep(0.2)
    finally:
        process.kill()
        process.wait()
    time.sleep(2.5)
    response = client.get("/health/delivery")
    assert response.status_code == 503
    assert ("no_live_worker", "email.transactional") in problems(response)


def test_the_delivery_check_answers_503_without_a_database(client, runtime) -> None:
    runtime.engine.dispose()
    Path(runtime.settings.database_url.split("///", 1)[1]).unlink()
    Path(
        runtime.settings.database_url.split("///", 1)[1]
    ).mkdir()  # a directory: SQLite cannot open it
    response = client.get("/health/delivery")
    assert response.status_code == 503 and response.json()["error"]["code"] == "service_unavailable"
