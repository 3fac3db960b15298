"""The receipts task on a real Celery worker (embedded, threads) consuming the receipts queue."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from celery import Celery, _state

from notifier.tasks import RECEIPTS
from tests.factories import sms
from tests.notifications_api import timeline
from tests.receipts.flow import send
from tests.receipts.test_twilio_receipts import callback, deliver_callback
from workers.app import create_worker_app
from workers.embedded import embedded_worker


@pytest.fixture
def receipts_worker(settings, runtime) -> Iterator[Celery]:
    app = create_worker_app(settings, pool_size=2)
    # The thread pool runs each task on the process's *default* app, which embedded_worker sets
    # to this app: put the previous default back afterwards so no later test runs on this one.
    previous = _state.default_app
    try:
        with embedded_worker(app, [RECEIPTS], concurrency=2):
            yield app
    finally:
        _state.set_default_app(previous)
        app.runtime.close()


def test_a_real_worker_applies_a_twilio_receipt(client, auth, worker_app, receipts_worker) -> None:
    sent = send(client, auth, worker_app, sms())

    deliver_callback(client, callback(sent["provider_message_id"], "delivered"))

    deadline = time.monotonic() + 15
    while (body := timeline(client, auth, sent["id"]))["status"] != "delivered":
        assert time.monotonic() < deadline, "the worker did not apply the receipt"
        time.sleep(0.05)
    assert [e["kind"] for e in body["events"]][-1] == "receipt"
