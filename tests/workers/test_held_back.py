"""A lane held back by its provider's send rate shows in `notifier status`.

Real pieces: the API takes six emails, a delivery context sends them through the SMTP fake
configured at 2 messages/second (the shared limiter of the runtime), and ``notifier status``
(the CLI, in-process) reads what the workers recorded. The fake's arrival times show that the
rate held the sends back; the status row says which provider and lane, and for how long.
"""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from notifier.cli import app as cli
from notifier.db.session import transaction
from notifier.operations import held_back
from notifier.runtime import Runtime
from providers.interface import Lane
from tests.factories import email
from tests.fakes.smtp_server import FakeSmtpServer
from tests.notifier_services.helpers import smtp_spec
from workers.context import DeliveryContext
from workers.delivery import deliver_ids


def test_a_lane_held_back_by_its_providers_rate_is_in_status(
    runtime: Runtime, client: TestClient, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeSmtpServer() as smtp:
        spec = smtp_spec("relay", smtp)
        spec.options["rate_limit"] = "2/second"
        ctx = DeliveryContext(runtime, chains={Lane.EMAIL_TRANSACTIONAL: [spec]})
        try:
            ids = [
                client.post(
                    "/v1/notifications", json=email(to=f"u{i}@example.com"), headers=auth
                ).json()["id"]
                for i in range(6)
            ]
            started = time.monotonic()
            deliver_ids(ctx, ids)
            took = time.monotonic() - started
            deadline = time.monotonic() + 5
            while True:  # the row is written off the event loop
                with transaction(runtime.sessions) as session:
                    seen = held_back(session)
                if "relay" in seen or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        finally:
            ctx.close()
        received = len(smtp.messages)

    assert received == 6 and took >= 1.5  # six at two a second: the rate made them wait
    assert seen["relay"]["lane"] == "email.transactional"
    assert seen["relay"]["rate"] == "2/second" and seen["relay"]["waited_seconds"] > 0

    monkeypatch.setenv("NOTIFIER_DATABASE_URL", runtime.settings.database_url)
    monkeypatch.setenv("NOTIFIER_BROKER_URL", "memory://")
    monkeypatch.setenv("NOTIFIER_DATA_DIR", str(runtime.settings.data_dir))
    out = CliRunner().invoke(cli, ["status"], env={"COLUMNS": "200"}).output
    assert "held back relay" in out and "email.transactional: waited" in out, out
