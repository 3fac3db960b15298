"""GET one notification with its timeline; list the caller's own, newest first, keyset-paginated."""

from __future__ import annotations

from tests.factories import api_key, email, sms


def test_get_returns_status_and_timeline(client, auth):
    created = client.post("/v1/notifications", json=email(), headers=auth).json()
    body = client.get(f"/v1/notifications/{created['id']}", headers=auth).json()
    assert body["status"] == "queued"
    assert body["content"] == {"subject": "Your receipt", "body": "Thanks, Ada"}
    assert [e["kind"] for e in body["events"]] == ["queued"]


def test_other_callers_notifications_are_404(client, auth, runtime):
    created = client.post("/v1/notifications", json=email(), headers=auth).json()
    other = {"Authorization": f"Bearer {api_key(runtime, name='other')}"}
    response = client.get(f"/v1/notifications/{created['id']}", headers=other)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert client.get("/v1/notifications", headers=other).json()["items"] == []


def test_reading_needs_the_read_scope(client, runtime):
    sender = {"Authorization": f"Bearer {api_key(runtime, scopes=['notifications:send'])}"}
    created = client.post("/v1/notifications", json=email(), headers=sender).json()
    assert client.get(f"/v1/notifications/{created['id']}", headers=sender).status_code == 403
    assert client.get("/v1/notifications", headers=sender).status_code == 403


def test_list_filters_by_normalised_recipient_reference_status_and_channel(client, auth):
    a = client.post(
        "/v1/notifications", json=email(to="Ada@Example.com", reference="order-1"), headers=auth
    ).json()
    client.post(
        "/v1/notifications", json=email(to="bob@example.com", reference="order-2"), headers=auth
    )
    s = client.post("/v1/notifications", json=sms(to="+447911123456"), headers=auth).json()

    def ids(**params):
        return [
            i["id"]
            for i in client.get("/v1/notifications", params=params, headers=auth).json()["items"]
        ]

    assert ids(recipient="ADA@example.COM") == [a["id"]]
    assert ids(recipient="+44 7911 123456") == [s["id"]]
    assert ids(recipient="07911 123456") == [s["id"]]
    assert ids(reference="order-1") == [a["id"]]
    assert ids(channel="sms") == [s["id"]]
    assert len(ids(status="queued")) == 3
    assert ids(status="sent") == []


def test_list_is_newest_first_with_keyset_pagination(client, auth):
    created = [
        client.post("/v1/notifications", json=email(reference=f"r{i}"), headers=auth).json()["id"]
        for i in range(5)
    ]
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/notifications", params=params, headers=auth).json()
        seen.extend(i["id"] for i in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(created))


def test_bad_cursor_and_naive_dates_are_422(client, auth):
    response = client.get("/v1/notifications", params={"cursor": "garbage!"}, headers=auth)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_cursor"
    response = client.get(
        "/v1/notifications", params={"since": "2026-01-01T00:00:00"}, headers=auth
    )
    assert response.status_code == 422
    response = client.get("/v1/notifications", params={"limit": 0}, headers=auth)
    assert response.status_code == 422


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
    assert client.get("/openapi.json").json()["info"]["title"] == "notifier"
    assert client.get("/docs").status_code == 200


def test_readiness_is_503_when_the_broker_is_unreachable(tmp_path):
    from fastapi.testclient import TestClient

    from notifier.api.app import create_app
    from notifier.db.migrate import upgrade
    from notifier.runtime import Runtime
    from tests.factories import make_settings
    from tests.services import port_open

    dead_port = 1
    assert not port_open("127.0.0.1", dead_port)
    settings = make_settings(tmp_path, broker_url=f"amqp://guest:guest@127.0.0.1:{dead_port}//")
    settings.data_dir.mkdir(parents=True)
    upgrade(settings.database_url)
    with TestClient(create_app(runtime=Runtime.build(settings))) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == "unreachable"
    assert response.json()["error"]["code"] == "service_unavailable"
