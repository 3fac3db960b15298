"""`notifier dev` as a user runs it: a key from the CLI, a POST, a delivered email in the outbox,
its timeline through the API; then SIGKILL with work queued and a restart that delivers it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC
from pathlib import Path

import httpx
import pytest

NOTIFIER = Path(sys.executable).parent / "notifier"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_dev(workdir: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "NOTIFIER_PORT": str(port)}
    env.pop("NOTIFIER_DATABASE_URL", None)
    env.pop("NOTIFIER_BROKER_URL", None)
    process = subprocess.Popen(
        [str(NOTIFIER), "dev"],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    assert process.stdout is not None
    pytest.fail(f"notifier dev did not become ready: {process.stdout.read().decode()[-2000:]}")


def create_key(workdir: Path) -> str:
    result = subprocess.run(
        [
            str(NOTIFIER),
            "keys",
            "create",
            "--name",
            "billing",
            "--scopes",
            "notifications:send,notifications:read",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip().splitlines()[-1]


def wait_status(
    base: str, headers: dict, notification_id: str, status: str, timeout: float = 30
) -> dict:
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        body = httpx.get(f"{base}/v1/notifications/{notification_id}", headers=headers).json()
        if body.get("status") == status:
            return body
        time.sleep(0.2)
    return body


@pytest.mark.skipif(
    not NOTIFIER.exists(), reason="the notifier command is not installed in this environment"
)
def test_a_new_user_gets_a_delivered_email_and_nothing_is_lost_on_a_kill(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    key = create_key(tmp_path)
    assert key.startswith("ntf_")
    headers = {"Authorization": f"Bearer {key}"}
    process = start_dev(tmp_path, port)
    try:
        response = httpx.post(
            f"{base}/v1/notifications",
            headers=headers,
            json={
                "channel": "email",
                "category": "transactional",
                "to": "ada@example.com",
                "subject": "Your receipt",
                "body": "Thanks, {{ name }}",
                "data": {"name": "Ada"},
                "reference": "order-42",
            },
        )
        assert response.status_code == 202, response.text
        notification_id = response.json()["id"]
        body = wait_status(base, headers, notification_id, "sent")
        assert body["status"] == "sent", body
        assert [e["kind"] for e in body["events"]] == ["queued", "attempt", "sent"]
        delivered = json.loads(
            (
                tmp_path / ".notifier/outbox/email.transactional" / f"{notification_id}.json"
            ).read_text()
        )
        assert delivered["text"] == "Thanks, Ada"

        # queue work whose retry is due later, then kill -9: the restart must deliver what was
        # queued
        scheduled = httpx.post(
            f"{base}/v1/notifications",
            headers=headers,
            json={
                "channel": "sms",
                "to": "+447911123456",
                "body": "later",
                "send_at": _in_seconds(3),
            },
        ).json()["id"]
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    process = start_dev(tmp_path, port)
    try:
        body = wait_status(base, headers, scheduled, "sent", timeout=60)
        assert body["status"] == "sent", body
        listed = httpx.get(
            f"{base}/v1/notifications", params={"reference": "order-42"}, headers=headers
        ).json()
        assert [i["id"] for i in listed["items"]] == [notification_id]
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def _in_seconds(seconds: int) -> str:
    from datetime import datetime, timedelta

    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()
