"""GET /v1/support/notifications[/{id}]: support:read keys search across callers, audited."""

from __future__ import annotations

from sqlalchemy import select

from notifier.services.models import DEFAULT_SERVICE_ID
from notifier.support.models import AuditEntry
from tests.factories import api_key, email, sms
from workers.delivery import deliver_ids


def test_needs_a_key(client):
    response = client.get("/v1/support/notifications", params={"recipient": "ada@example.com"})
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthenticated"
    assert client.get("/v1/support/notifications/x").status_code == 401


def test_needs_the_support_read_scope(client, auth):
    response = client.get("/v1/support/notifications", headers=auth)
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden_scope"
    assert client.get("/v1/support/notifications/x", headers=auth).status_code == 403


def test_searches_across_callers_with_redacted_data(client, auth, runtime, support_key, worker_app):
    shop = {"Authorization": f"Bearer {api_key(runtime, name='shop')}"}
    otp = client.post("/v1/notifications", json=sms(), headers=auth).json()["id"]
    receipt = client.post(
        "/v1/notifications", json=email(reference="order-9"), headers=shop
    ).json()["id"]
    deliver_ids(worker_app.delivery, [otp, receipt])

    found = client.get(
        "/v1/support/notifications", params={"recipient": "07911 123456"}, headers=support_key
    )
    assert found.status_code == 200
    body = found.json()
    assert [i["id"] for i in body["items"]] == [otp]
    assert body["items"][0]["content"] == {"body": "Your code is [redacted]"}
    assert body["items"][0]["caller"] == "billing"
    assert body["counts"] == {"sent": 1} and body["total"] == 1

    everything = client.get("/v1/support/notifications", headers=support_key).json()
    assert {i["id"] for i in everything["items"]} == {otp, receipt}
    by_caller = client.get(
        "/v1/support/notifications", params={"caller": "shop"}, headers=support_key
    ).json()
    assert [i["id"] for i in by_caller["items"]] == [receipt]
    by_ref = client.get(
        "/v1/support/notifications",
        params={"reference": "order-9", "channel": "email"},
        headers=support_key,
    ).json()
    assert [i["id"] for i in by_ref["items"]] == [receipt]

    detail = client.get(f"/v1/support/notifications/{otp}", headers=support_key).json()
    assert [e["kind"] for e in detail["events"]] == ["queued", "attempt", "sent"]
    assert detail["summary"].startswith("The text message was accepted by outbox")
    assert detail["suppressions"] == []
    assert "583920" not in found.text + str(everything) + str(detail)
    assert client.get("/v1/support/notifications/nope", headers=support_key).status_code == 404


def test_bad_input_is_a_clear_4xx(client, support_key):
    for params, code in (
        ({"status": "lost"}, 422),
        ({"since": "2026-11-20T00:00:00"}, 422),
        ({"cursor": "garbage"}, 422),
        ({"limit": 1000}, 422),
    ):
        response = client.get("/v1/support/notifications", params=params, headers=support_key)
        assert response.status_code == code, params
        assert "error" in response.json()


def test_api_searches_and_views_are_audited_with_the_key_name(client, auth, runtime, support_key):
    notification_id = client.post("/v1/notifications", json=email(), headers=auth).json()["id"]
    client.get("/v1/support/notifications", params={"q": "ada@example.com"}, headers=support_key)
    client.get(f"/v1/support/notifications/{notification_id}", headers=support_key)
    with runtime.sessions() as s:
        rows = s.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [(r.actor, r.actor_kind, r.action) for r in rows] == [
        ("helpdesk", "api_key", "search"),
        ("helpdesk", "api_key", "view_notification"),
    ]
    # the audit says whose rows the search looked at: the key's service
    assert rows[0].query == {"anything": "ada@example.com", "service_id": DEFAULT_SERVICE_ID}
    assert rows[1].notification_id == notification_id


def test_summary_follows_retries_until_it_gives_up(client, auth, runtime, support_key, worker_app):
    from sqlalchemy import update

    from notifier.db.models import Notification
    from notifier.db.session import transaction

    notification_id = client.post(
        "/v1/notifications", json=email(to="temporary-failure@simulator.notifier.dev"), headers=auth
    ).json()["id"]

    def summary() -> str:
        return client.get(
            f"/v1/support/notifications/{notification_id}", headers=support_key
        ).json()["summary"]

    assert summary().startswith("Waiting to be sent on the email.transactional lane since ")
    deliver_ids(worker_app.delivery, [notification_id])
    assert summary().startswith(
        "Not sent yet: attempt 1 at outbox failed temporarily (simulated temporary failure (503)); "
        "the next attempt is due at "
    )
    for _ in range(runtime.settings.max_attempts - 1):
        with transaction(runtime.sessions) as s:
            s.execute(update(Notification).values(not_before=None))
        deliver_ids(worker_app.delivery, [notification_id])
    assert summary() == (
        "Not delivered: every attempt failed; "
        f"gave up after {runtime.settings.max_attempts} attempts. "
        "The last answer from outbox was: simulated temporary failure (503)."
    )  # an answer about one recipient never opens the provider's breaker: every attempt reached it
