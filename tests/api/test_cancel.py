"""POST /v1/notifications/{id}/cancel: while scheduled it is cancelled and never sent; once
queued it is on its way (409); refusals change nothing."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from notifier.db.models import DeliveryEvent, Notification, utcnow
from tests.factories import api_key, email
from workers.sweeper import release_scheduled


def _later() -> str:
    return (utcnow() + timedelta(hours=2)).isoformat()


def _state(runtime, notification_id: str):
    with runtime.sessions() as s:
        row = s.get(Notification, notification_id)
        events = s.scalar(
            select(func.count())
            .select_from(DeliveryEvent)
            .where(DeliveryEvent.notification_id == notification_id)
        )
        return row.status, events


def test_a_scheduled_notification_is_cancelled_and_never_released(client, auth, runtime):
    created = client.post("/v1/notifications", json=email(send_at=_later()), headers=auth).json()
    assert created["status"] == "scheduled"
    response = client.post(f"/v1/notifications/{created['id']}/cancel", headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["status_code"]) == ("cancelled", "cancelled")
    assert body["events"][-1]["kind"] == "cancelled"
    with runtime.sessions() as s:
        s.execute(
            Notification.__table__.update()
            .where(Notification.id == created["id"])
            .values(send_at=utcnow() - timedelta(seconds=1))
        )
        s.commit()
    assert release_scheduled(runtime) == 0  # due now, but cancelled: never sent
    again = client.post(f"/v1/notifications/{created['id']}/cancel", headers=auth)
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"


def test_once_queued_it_is_on_its_way(client, auth, runtime):
    created = client.post("/v1/notifications", json=email(), headers=auth).json()
    before = _state(runtime, created["id"])
    response = client.post(f"/v1/notifications/{created['id']}/cancel", headers=auth)
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "conflict" and "queued" in error["message"]
    assert _state(runtime, created["id"]) == before


def test_auth_matrix_and_unknown_ids(client, auth, runtime):
    created = client.post("/v1/notifications", json=email(send_at=_later()), headers=auth).json()
    path = f"/v1/notifications/{created['id']}/cancel"
    other = {"Authorization": f"Bearer {api_key(runtime, 'other')}"}
    read_only = {
        "Authorization": f"Bearer {api_key(runtime, 'reader', scopes=['notifications:read'])}"
    }
    cases = [
        ({}, 401, "unauthenticated"),
        ({"Authorization": "Bearer nope"}, 401, "unauthenticated"),
        (read_only, 403, "forbidden_scope"),
        (other, 404, "not_found"),  # another key's notification does not exist for it
    ]
    for headers, status, code in cases:
        response = client.post(path, headers=headers)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), headers
    missing = client.post(
        "/v1/notifications/00000000-0000-0000-0000-000000000000/cancel", headers=auth
    )
    assert missing.status_code == 404
    assert client.get(path, headers=auth).status_code == 405
    assert _state(runtime, created["id"]) == ("scheduled", 1)  # nothing changed on refusal
