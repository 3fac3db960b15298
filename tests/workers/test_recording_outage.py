"""PostgreSQL goes away between the provider's acceptance and the record of it.

A private PostgreSQL cluster is stopped at the very moment the provider accepts the message and
started again a few seconds later. The worker holds the result and retries the write; the
provider is asked once, the notification ends ``sent``, and a second delivery of the same task
(as a broker redelivers after a failure) sends nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fastapi.testclient import TestClient

from notifier import metrics
from notifier.api.app import create_app
from notifier.db.migrate import upgrade
from notifier.runtime import Runtime
from providers.interface import Channel, Lane, Message, Provider, SendResult
from tests.factories import api_key, email, make_settings
from tests.private_services import PrivatePostgres, require_private
from workers.context import DeliveryContext
from workers.delivery import deliver_ids

DOWN_SECONDS = 3.0


class AcceptsThenTheDatabaseGoes(Provider):
    """Accepts every message, and at the first one stops the database for a few seconds."""

    kind: ClassVar[str] = "accepts-then-outage"
    channel: ClassVar[Channel] = Channel.EMAIL

    def __init__(self, name: str, lane: Lane, options: Mapping[str, Any]) -> None:
        super().__init__(name, lane, options)
        self.postgres: PrivatePostgres = options["postgres"]
        self.accepted: list[str] = []
        self.restarted = threading.Event()

    async def _send(self, message: Message) -> SendResult:
        self.accepted.append(message.notification_id)
        if len(self.accepted) == 1:
            self.postgres.stop()
            threading.Thread(target=self._come_back, daemon=True).start()
        return SendResult(f"accepted-{len(self.accepted)}", "250")

    def _come_back(self) -> None:
        time.sleep(DOWN_SECONDS)
        self.postgres.start()
        self.restarted.set()


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    service = require_private("postgres")
    assert isinstance(service, PrivatePostgres)
    try:
        yield service
    finally:
        service.close()


def test_an_acceptance_is_recorded_after_the_database_comes_back_and_never_sent_twice(
    tmp_path: Path, postgres: PrivatePostgres
) -> None:
    settings = make_settings(tmp_path, database_url=postgres.create_database("notifier"))
    upgrade(settings.database_url)
    runtime = Runtime.build(settings)
    provider = AcceptsThenTheDatabaseGoes("relay", Lane.EMAIL_TRANSACTIONAL, {"postgres": postgres})
    ctx = DeliveryContext(runtime, providers={Lane.EMAIL_TRANSACTIONAL: [provider]})
    retries_before = metrics.RECORD_RETRIES._value.get()
    try:
        with TestClient(create_app(runtime=runtime)) as client:
            headers = {"Authorization": f"Bearer {api_key(runtime)}"}
            notification_id = client.post(
                "/v1/notifications", json=email(), headers=headers
            ).json()["id"]

            started = time.monotonic()
            deliver_ids(ctx, [notification_id])  # the database is stopped mid-way
            held_for = time.monotonic() - started
            deliver_ids(ctx, [notification_id])  # the broker hands the same task over again

            body = client.get(f"/v1/notifications/{notification_id}", headers=headers).json()
    finally:
        ctx.close()
        runtime.close()

    assert provider.restarted.is_set() and held_for >= DOWN_SECONDS - 0.5
    assert provider.accepted == [notification_id]  # asked once, whatever happened after
    assert body["status"] == "sent", body
    assert body["provider_message_id"] == "accepted-1"
    assert metrics.RECORD_RETRIES._value.get() > retries_before
