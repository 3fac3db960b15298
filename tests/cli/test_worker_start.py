"""``notifier worker`` refuses to start when a provider of its lanes cannot be built: a worker
that claimed messages it can never send would leave them ``sending`` until the sweeper noticed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.integration.providers_fakes import write_providers_file


def start_worker(tmp_path: Path, lanes: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "NOTIFIER_ENV": "test",
        "NOTIFIER_DATA_DIR": str(tmp_path / "data"),
        "NOTIFIER_PROVIDERS_FILE": str(tmp_path / "providers.toml"),
        "NOTIFIER_BROKER_URL": "memory://",
    }
    return subprocess.run(
        [sys.executable, "-m", "notifier.cli", "worker", "--lanes", lanes],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


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


def test_a_lane_without_providers_stops_the_worker(tmp_path: Path) -> None:
    write_providers_file(
        tmp_path / "providers.toml",
        {"box": {"type": "outbox", "path": str(tmp_path / "outbox")}},
        {"email.transactional": ["box"]},
    )

    started = start_worker(tmp_path, "email.transactional,sms.transactional")

    assert started.returncode == 2, started.stdout + started.stderr
    assert (
        "no provider is configured for lane(s) sms.transactional" in started.stdout + started.stderr
    )
