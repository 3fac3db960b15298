"""Metrics, request ids, structured logs without secrets, Sentry scrubbing, circuit visibility."""

from __future__ import annotations

import io
import json
import logging

from notifier import sentry
from notifier.logs import JsonFormatter
from providers.interface import Lane, ProviderUnavailableError
from tests.factories import email, make_settings, sms
from tests.fakes.scripted import ScriptedProvider
from workers import sweeper
from workers.delivery import deliver_ids


def test_metrics_count_requests_and_acceptances_per_lane(client, auth, runtime):
    client.post("/v1/notifications", json=email(), headers=auth)
    client.post("/v1/notifications", json=email(to="bad"), headers=auth)
    sweeper.sweep(runtime)
    text = client.get("/metrics").text
    assert (
        'notifier_http_requests_total{method="POST",route="/v1/notifications",status="202"}' in text
    )
    assert (
        'notifier_http_requests_total{method="POST",route="/v1/notifications",status="422"}' in text
    )
    assert 'notifier_notifications_accepted_total{lane="email.transactional"}' in text
    assert 'notifier_queue_depth{queue="email.transactional"}' in text
    assert "notifier_beat_last_tick_timestamp_seconds " in text


def test_request_ids_are_echoed_or_made(client):
    assert (
        client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )
    made = client.get("/healthz", headers={"X-Request-ID": "bad id\nwith newline"}).headers[
        "x-request-id"
    ]
    assert len(made) == 32 and "\n" not in made


def test_logs_are_json_with_ids_and_never_carry_secrets(client, auth, key, runtime, worker_app):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.INFO)
    try:
        first = client.post(
            "/v1/notifications", json=sms(), headers={**auth, "X-Request-ID": "req-42"}
        ).json()
        second = client.post(
            "/v1/notifications",
            json=email(to="temporary-failure@simulator.notifier.dev"),
            headers=auth,
        ).json()
        client.post("/v1/notifications", json=sms(), headers={"Authorization": f"Bearer {key}x"})
        deliver_ids(worker_app.delivery, [first["id"], second["id"]])
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
    output = stream.getvalue()
    assert "583920" not in output and key not in output and key[:20] not in output
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    attempts = [line for line in lines if line["event"] == "delivery.attempt"]
    assert {a["notification_id"] for a in attempts} == {first["id"], second["id"]}
    assert {a["outcome"] for a in attempts} == {"sent", "transient"}
    assert {a["response_code"] for a in attempts} == {"250", "503"}  # ids and codes are not masked


def test_the_formatter_masks_fields_named_as_secrets() -> None:
    record = logging.LogRecord("t", logging.INFO, "", 0, "e", (), None)
    for name, value in {
        "password": "p",
        "auth_token": "t",
        "code": "583920",
        "webhook_secret": "s",
        "response_code": "550",
        "api_key_id": "k1",
        "notification_id": "n1",
    }.items():
        setattr(record, name, value)
    entry = json.loads(JsonFormatter().format(record))
    assert [entry[k] for k in ("password", "auth_token", "code", "webhook_secret")] == [
        "[redacted]"
    ] * 4
    assert (entry["response_code"], entry["api_key_id"], entry["notification_id"]) == (
        "550",
        "k1",
        "n1",
    )


def test_sentry_events_are_scrubbed_of_personal_data() -> None:
    event = {
        "message": (
            "failed for ada@example.com and +44 7911 123456 with ntf_0123456789ab_secretpart"
        ),
        "request": {
            "data": {"to": "ada@example.com"},
            "headers": {"Authorization": "Bearer x"},
            "url": "/v1/x",
        },
        "exception": {
            "values": [
                {"value": "bad whsec_abcdef", "stacktrace": {"frames": [{"vars": {"code": "1"}}]}}
            ]
        },
        "extra": {"data": {"code": "583920"}},
    }
    scrubbed = json.dumps(sentry.scrub_event(event))
    for secret in (
        "ada@example.com",
        "7911 123456",
        "ntf_0123456789ab",
        "whsec_abcdef",
        "583920",
        "Bearer",
    ):
        assert secret not in scrubbed
    assert "/v1/x" in scrubbed
    assert sentry.init(None, "test") is False


def test_an_open_circuit_shows_in_readiness_and_metrics(tmp_path):
    from fastapi.testclient import TestClient

    from notifier.api.app import create_app
    from notifier.db.migrate import upgrade
    from notifier.runtime import Runtime
    from tests.factories import api_key
    from workers.app import create_worker_app

    settings = make_settings(tmp_path, max_attempts=50)
    settings.data_dir.mkdir(parents=True)
    upgrade(settings.database_url)
    flaky = ScriptedProvider(
        "flaky-smtp",
        Lane.EMAIL_TRANSACTIONAL,
        script=[ProviderUnavailableError("503", code=503)] * 10,
    )
    worker = create_worker_app(settings, providers={Lane.EMAIL_TRANSACTIONAL: [flaky]})
    runtime = Runtime.build(settings)
    headers = {"Authorization": f"Bearer {api_key(runtime)}"}
    with TestClient(create_app(runtime=runtime)) as client:
        ids = [
            client.post("/v1/notifications", json=email(), headers=headers).json()["id"]
            for _ in range(5)
        ]
        deliver_ids(worker.delivery, ids)
        ready = client.get("/readyz").json()
    worker.delivery.close()
    assert ready["providers"] == {"flaky-smtp@email.transactional": "open"}  # one per instance
    from notifier import metrics

    assert metrics.CIRCUIT_STATE.labels("flaky-smtp", "email.transactional")._value.get() == 2
