"""A worker SIGKILLed between the provider's acceptance and the record of it, counted at the relay.

A real ``notifier worker`` process on PostgreSQL and RabbitMQ sends through a local SMTP relay
that takes every message in and never answers, and is killed while both messages are with the
relay. The claim's write-ahead record names the relay, the worker's heartbeat lapses, and the
sweeper takes its claims back within seconds: the transactional message is sent again through
the same relay with the same Message-ID, the promotional one ends ``unconfirmed``. The relay's
own count is compared with what our timeline says.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from notifier.api.app import create_app
from notifier.config import Settings
from notifier.db.migrate import upgrade
from notifier.runtime import Runtime
from notifier.tasks import ALL_QUEUES
from tests.factories import api_key, email, make_settings
from tests.fakes.smtp_server import FakeSmtpServer
from tests.integration.conftest import broker_url, purge
from tests.integration.providers_fakes import write_providers_file
from workers import sweeper

LAPSE = 2.0


@pytest.fixture
def relay() -> Iterator[FakeSmtpServer]:
    with FakeSmtpServer() as server:
        yield server


@pytest.fixture
def settings(tmp_path: Path, pg_url: str, relay: FakeSmtpServer) -> Settings:
    providers = write_providers_file(
        tmp_path / "providers.toml",
        {
            "relay": {
                "type": "smtp",
                "host": relay.host,
                "port": relay.port,
                "tls": "none",
                "from_address": "notify@notifier.example",
                "timeout_seconds": 60,
            }
        },
        {"email.transactional": ["relay"], "email.promotional": ["relay"]},
    )
    return make_settings(
        tmp_path,
        database_url=pg_url,
        broker_url=broker_url("rabbitmq"),
        providers_file=providers,
        worker_lapse_seconds=LAPSE,
        worker_heartbeat_seconds=0.5,
        provider_timeout_seconds=60,
    )


def start_worker(settings: Settings) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "NOTIFIER_ENV": "test",
        "NOTIFIER_DATA_DIR": str(settings.data_dir),
        "NOTIFIER_DATABASE_URL": settings.database_url,
        "NOTIFIER_BROKER_URL": settings.broker_url,
        "NOTIFIER_PROVIDERS_FILE": str(settings.providers_file),
        "NOTIFIER_WORKER_HEARTBEAT_SECONDS": "0.5",
        "NOTIFIER_PROVIDER_TIMEOUT_SECONDS": "60",
        "NOTIFIER_METRICS_PORT": "0",
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "notifier.cli",
            "worker",
            "--lanes",
            "email.transactional,email.promotional",
            "--concurrency",
            "4",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def wait_until(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_worker_killed_after_the_relay_took_the_message_is_recovered_in_seconds(
    settings: Settings, relay: FakeSmtpServer
) -> None:
    upgrade(settings.database_url)
    runtime = Runtime.build(settings)
    purge(runtime.celery, ALL_QUEUES)
    headers = {"Authorization": f"Bearer {api_key(runtime)}"}
    relay.accept_then_stall(600)  # takes the message in, never answers
    worker = start_worker(settings)
    try:
        with TestClient(create_app(runtime=runtime)) as client:
            code = client.post(
                "/v1/notifications",
                headers=headers,
                json=email(to="ada@example.com", subject="Your code"),
            ).json()["id"]
            news = client.post(
                "/v1/notifications",
                headers=headers,
                json=email(category="promotional", to="bob@example.com", subject="News"),
            ).json()["id"]
            wait_until(lambda: len(relay.messages) == 2)  # both are with the relay now

            alive = sweeper.recover_sending(runtime, timeout=300)
            assert alive == 0  # a live worker's claims are left alone
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
            killed_at = time.monotonic()
            relay.reset()  # the relay answers again, and counts afresh from here
            while sweeper.recover_sending(runtime, timeout=300) == 0:
                assert time.monotonic() - killed_at < LAPSE + 5
                time.sleep(0.2)
            recovered_after = time.monotonic() - killed_at

            worker = start_worker(settings)
            wait_until(
                lambda: (
                    client.get(f"/v1/notifications/{code}", headers=headers).json()["status"]
                    == "sent"
                )
            )
            resent = client.get(f"/v1/notifications/{code}", headers=headers).json()
            ended = client.get(f"/v1/notifications/{news}", headers=headers).json()
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
        runtime.close()

    assert recovered_after < LAPSE + 5  # seconds, not the five-minute sending timeout
    # the login code reached the relay twice, with one Message-ID, and our timeline says why
    assert [m.message["Message-ID"] for m in relay.messages] == [f"<{code}@notifier.example>"]
    recovered = [e for e in resent["events"] if e["kind"] == "recovered"]
    assert len(recovered) == 1 and "may have been sent" in recovered[0]["detail"]
    assert resent["attempts"] == 2 and resent["provider"] == "relay"
    # the newsletter reached it once and is not sent again: it may have been delivered
    assert ended["status"] == "unconfirmed", ended
    assert "may have been delivered" in ended["status_reason"]
    assert all(m.rcpt_tos != ["bob@example.com"] for m in relay.messages)
