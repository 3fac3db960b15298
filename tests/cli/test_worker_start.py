"""``notifier worker`` refuses to start when a provider of its lanes cannot be built: a worker
that claimed messages it can never send would leave them ``sending`` until the sweeper noticed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.integration.providers_fakes import write_providers_file


def start_worker(
    tmp_path: Path, lanes: str, until: str | None = None, seconds: float = 90
) -> subprocess.CompletedProcess[str]:
    """Run ``notifier worker`` until it exits, or (a worker that starts) until its output says
    ``until``, then stop it; at most ``seconds`` either way (start-up is slow on a loaded box)."""
    env = {
        **os.environ,
        "NOTIFIER_ENV": "test",
        "NOTIFIER_DATA_DIR": str(tmp_path / "data"),
        "NOTIFIER_PROVIDERS_FILE": str(tmp_path / "providers.toml"),
        "NOTIFIER_BROKER_URL": "memory://",
    }
    log = tmp_path / "worker.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "notifier.cli", "worker", "--lanes", lanes],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + seconds
        while process.poll() is None and time.monotonic() < deadline:
            if until is not None and until in log.read_text():
                break
            time.sleep(0.2)
        if process.poll() is None:
            process.terminate()
            process.wait(30)
    return subprocess.CompletedProcess(process.args, process.returncode, log.read_text(), "")


def test_a_missing_secret_stops_the_worker_with_exit_2_naming_it(tmp_path: Path) -> None:
    write_providers_file(
        tmp_path / "providers.toml",
        {
            "twilio-main": {
                "type": "twilio",
                "account_sid": "AC" + "0" * 32,
                "auth_token_env": "TEST_TWILIO_TOKEN_NOT_SET",
                "from_number": "+15005550006",
            }
        },
        {"sms.transactional": ["twilio-main"]},
    )

    started = start_worker(tmp_path, "sms.transactional,receipts")

    assert started.returncode == 2, started.stdout + started.stderr
    output = " ".join((started.stdout + started.stderr).split())
    assert "cannot start the worker" in output and "TEST_TWILIO_TOKEN_NOT_SET" in output


def test_a_lane_without_providers_is_said_but_does_not_stop_the_worker(tmp_path: Path) -> None:
    write_providers_file(
        tmp_path / "providers.toml",
        {"box": {"type": "outbox", "path": str(tmp_path / "outbox")}},
        {"email.transactional": ["box"]},
    )

    started = start_worker(
        tmp_path, "email.transactional,sms.transactional", until="worker.lanes_without_provider"
    )

    output = started.stdout + started.stderr
    assert "cannot start the worker" not in output
    assert "worker.lanes_without_provider" in output and "sms.transactional" in output
