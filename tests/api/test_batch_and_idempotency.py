"""Batch intake and Idempotency-Key."""

from __future__ import annotations

from sqlalchemy import func, select

from notifier.db.models import Notification
from tests.factories import email, sms


def count(runtime) -> int:
    with runtime.sessions() as s:
        return s.scalar(select(func.count()).select_from(Notification))


def test_batch_answers_one_result_per_item_in_order(client, auth, runtime):
    items = [email(), email(to="bad"), sms(), {"channel": "pigeon"}, email(data={})]
    response = client.post("/v1/notifications/batch", json={"notifications": items}, headers=auth)
    assert response.status_code == 202
    body = response.json()
    results = body["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
    assert results[0]["status"] == "queued" and results[0]["id"]
    assert results[1]["error"]["code"] == "invalid_recipient"
    assert results[2]["status"] == "queued"
    assert results[3]["error"]["code"] == "invalid_channel"
    assert results[4]["error"]["code"] == "missing_personalisation"
    assert (body["accepted"], body["rejected"]) == (2, 3)
    assert count(runtime) == 2
    fetched = client.get(f"/v1/notifications/{results[2]['id']}", headers=auth).json()
    assert fetched["lane"] == "sms.transactional"


def test_batch_over_the_item_limit_is_413_and_stores_nothing(client, auth, runtime):
    response = client.post(
        "/v1/notifications/batch", json={"notifications": [email()] * 1001}, headers=auth
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "batch_too_large"
    assert count(runtime) == 0


def test_batch_of_a_thousand_is_accepted(client, auth, runtime):
    items = [email(to=f"user{i}@example.com", reference=f"r{i}") for i in range(1000)]
    response = client.post("/v1/notifications/batch", json={"notifications": items}, headers=auth)
    assert response.status_code == 202
    assert response.json()["accepted"] == 1000
    assert count(runtime) == 1000


def test_empty_batch_is_422(client, auth):
    response = client.post("/v1/notifications/batch", json={"notifications": []}, headers=auth)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


def test_same_idempotency_key_and_body_replays_the_original(client, auth, runtime):
    headers = {**auth, "Idempotency-Key": "order-42-receipt"}
    first = client.post("/v1/notifications", json=email(), headers=headers)
    second = client.post("/v1/notifications", json=email(), headers=headers)
    assert first.status_code == second.status_code == 202
    assert second.json()["id"] == first.json()["id"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert count(runtime) == 1


def test_same_idempotency_key_with_another_body_is_422(client, auth, runtime):
    headers = {**auth, "Idempotency-Key": "k1"}
    client.post("/v1/notifications", json=email(), headers=headers)
    response = client.post("/v1/notifications", json=email(subject="Changed"), headers=headers)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert count(runtime) == 1


def test_idempotency_keys_are_scoped_to_the_api_key(client, auth, runtime):
    from tests.factories import api_key

    other = {
        "Authorization": f"Bearer {api_key(runtime, name='other')}",
        "Idempotency-Key": "shared",
    }
    mine = {**auth, "Idempotency-Key": "shared"}
    a = client.post("/v1/notifications", json=email(), headers=mine).json()["id"]
    b = client.post("/v1/notifications", json=email(), headers=other).json()["id"]
    assert a != b
    assert count(runtime) == 2
