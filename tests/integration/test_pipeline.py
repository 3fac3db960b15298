"""The whole path on PostgreSQL with a real broker: API -> broker -> worker -> provider ->
events."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from notifier.api.app import create_app
from notifier.db.migrate import upgrade
from notifier.runtime import Runtime
from notifier.tasks import ALL_QUEUES
from tests.factories import api_key, email, make_settings, push, sms
from tests.integration.conftest import broker_url, purge
from tests.notifications_api import wait_for
from workers import sweeper
from workers.app import create_worker_app
from workers.embedded import embedded_worker


@pytest.fixture(params=["redis", "rabbitmq"])
def stack(request, pg_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, dict, Runtime]]:
    settings = make_settings(tmp_path, database_url=pg_url, broker_url=broker_url(request.param))
    upgrade(settings.database_url)
    worker = create_worker_app(settings, pool_size=5)
    purge(worker, ALL_QUEUES)
    runtime = Runtime.build(settings)
    headers = {"Authorization": f"Bearer {api_key(runtime)}"}
    with embedded_worker(worker, ALL_QUEUES, concurrency=8):
        with TestClient(create_app(runtime=runtime)) as client:
            yield client, headers, runtime
    runtime.close()
    worker.runtime.close()


def test_every_channel_is_delivered_and_logged(stack):
    client, headers, runtime = stack
    ids = [
        client.post("/v1/notifications", json=payload, headers=headers).json()["id"]
        for payload in (email(), sms(), email(category="promotional"), push())
    ]
    for notification_id in ids:
        body = wait_for(client, headers, notification_id)
        assert body["status"] == "sent", body
        assert [e["kind"] for e in body["events"]] == ["queued", "attempt", "sent"]
        assert body["events"][1]["provider"] == "outbox"
    outbox = runtime.settings.outbox_dir
    assert (outbox / "email.promotional" / f"{ids[2]}.json").exists()
    assert not (outbox / "email.transactional" / f"{ids[2]}.json").exists()


def test_batch_is_delivered(stack):
    client, headers, _ = stack
    items = [email(to=f"user{i}@example.com") for i in range(120)]
    results = client.post(
        "/v1/notifications/batch", json={"notifications": items}, headers=headers
    ).json()["results"]
    for result in results[::17]:
        assert wait_for(client, headers, result["id"])["status"] == "sent"


def test_a_retry_goes_back_through_the_broker(stack):
    client, headers, _runtime = stack
    notification_id = client.post(
        "/v1/notifications", json=email(to="throttled@simulator.notifier.dev"), headers=headers
    ).json()["id"]
    deadline = time.monotonic() + 20
    body: dict = {}
    while time.monotonic() < deadline:
        body = client.get(f"/v1/notifications/{notification_id}", headers=headers).json()
        if body["attempts"] >= 2:
            break
        time.sleep(0.2)
    assert body["attempts"] >= 2, (
        body
    )  # retried after Retry-After without anyone republishing by hand
    assert "retry_scheduled" in [e["kind"] for e in body["events"]]


def test_broker_down_at_intake_loses_nothing(pg_url: str, tmp_path: Path):
    dead = make_settings(tmp_path, database_url=pg_url, broker_url="redis://127.0.0.1:1/0")
    upgrade(dead.database_url)
    api_runtime = Runtime.build(dead)
    headers = {"Authorization": f"Bearer {api_key(api_runtime)}"}
    with TestClient(create_app(runtime=api_runtime)) as client:
        response = client.post(
            "/v1/notifications", json=email(reference="broker-down"), headers=headers
        )
        assert response.status_code == 202
        notification_id = response.json()["id"]
        assert client.get("/readyz").status_code == 503
    live = make_settings(tmp_path, database_url=pg_url, broker_url=broker_url("redis"))
    worker = create_worker_app(live, pool_size=5)
    with embedded_worker(worker, ALL_QUEUES, concurrency=4):
        report = sweeper.sweep(worker.runtime, queued_stale=0)
        assert report.republished >= 1
        live_runtime = Runtime.build(live)
        with TestClient(create_app(runtime=live_runtime)) as client:
            body = wait_for(client, headers, notification_id)
        live_runtime.close()
    assert body["status"] == "sent"
    assert "republished" in [e["kind"] for e in body["events"]]
    api_runtime.close()
    worker.runtime.close()


def test_database_down_is_503_and_stores_nothing(tmp_path: Path):
    settings = make_settings(
        tmp_path, database_url="postgresql+psycopg://postgres@127.0.0.1:1/none"
    )
    with TestClient(
        create_app(runtime=Runtime.build(settings)), raise_server_exceptions=False
    ) as client:
        response = client.post(
            "/v1/notifications",
            json=email(),
            headers={"Authorization": "Bearer ntf_000000000000_x"},
        )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "database_unavailable"
    assert "Retry-After" in response.headers
