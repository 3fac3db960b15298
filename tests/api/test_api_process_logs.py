"""``notifier api --workers 2`` as an operator runs it: every process that serves requests logs
JSON lines with time, level and pid, INFO included, with the request id on what happens while
serving a request and the notification id on what concerns one notification (logging used to be
configured in the supervising parent only: the children's lines were bare messages)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from notifier.db.migrate import upgrade
from notifier.runtime import Runtime
from tests.factories import api_key, email, make_settings
from tests.private_processes import free_port


def test_every_api_process_logs_json_with_ids(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    settings.data_dir.mkdir(parents=True)
    upgrade(settings.database_url)
    runtime = Runtime.build(settings)
    key = api_key(runtime)
    runtime.close()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFIER_", "PROMETHEUS_"))}
    env.update(
        NOTIFIER_ENV="test",
        NOTIFIER_DATABASE_URL=settings.database_url,
        NOTIFIER_DATA_DIR=str(settings.data_dir),
        NOTIFIER_LOG_FORMAT="json",
        NOTIFIER_LOG_LEVEL="INFO",
        # a broker and a rate-limit Redis nobody listens on: the publish fails and is logged
        # (the sweeper would retry it), the rate limit falls back to memory and says so
        NOTIFIER_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0",
        NOTIFIER_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
    )
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "notifier"),
            "api",
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and process.poll() is None, "the API did not start"
            time.sleep(0.2)
        answer = httpx.post(
            f"http://127.0.0.1:{port}/v1/notifications",
            json=email(),
            timeout=30,
            headers={"Authorization": f"Bearer {key}", "X-Request-ID": "req-logs-1"},
        )
        assert answer.status_code == 202, answer.text
        notification_id = answer.json()["id"]
        time.sleep(1)
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=60)
    lines = [line for line in stderr.decode().splitlines() if line.strip()]
    entries = []
    for line in lines:
        entry = json.loads(line)  # every line is JSON, the children's included
        assert {"ts", "level", "logger", "event", "pid"} <= set(entry), entry
        entries.append(entry)
    children = {e["pid"] for e in entries if e["event"].startswith("Started server process")}
    assert len(children) == 2 and process.pid not in children, entries  # INFO from each child
    fallback = [e for e in entries if e["event"] == "ratelimit.storage_unavailable"]
    assert fallback and fallback[0]["level"] == "warning" and fallback[0]["pid"] in children, (
        entries
    )
    assert fallback[0]["request_id"] == "req-logs-1"  # logged while serving that request
    failed = [e for e in entries if e["event"] == "publish.failed"]
    assert failed and failed[0]["level"] == "warning" and failed[0]["pid"] in children, entries
    assert failed[0]["notification_id"] == notification_id
