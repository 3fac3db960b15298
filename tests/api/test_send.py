"""POST /v1/notifications: accepted requests, and every rejection leaving nothing stored."""

from __future__ import annotations

from datetime import UTC

import pytest
from sqlalchemy import func, select

from notifier.db.models import DeliveryEvent, Notification
from notifier.errors import ErrorCode
from tests.factories import api_key, daytime_timezone, email, push, sms


def stored(runtime) -> tuple[int, int]:
    with runtime.sessions() as s:
        return (
            s.scalar(select(func.count()).select_from(Notification)),
            s.scalar(select(func.count()).select_from(DeliveryEvent)),
        )


@pytest.mark.parametrize(
    ("payload", "lane", "to"),
    [
        (email(to="Ada@Example.COM"), "email.transactional", "ada@example.com"),
        (sms(), "sms.transactional", "+447911123456"),
        (
            sms(category="promotional", to="+44 7911 123456", timezone=daytime_timezone()),
            "sms.promotional",
            "+447911123456",
        ),
        (push(), "push.transactional", "a" * 64),
        (
            push(platform="fcm", to="fcm-token_abc:DEF-1234567890", category="promotional"),
            "push.promotional",
            "fcm-token_abc:DEF-1234567890",
        ),
    ],
)
def test_accepts_each_channel_on_its_lane(client, auth, runtime, payload, lane, to):
    response = client.post("/v1/notifications", json=payload, headers=auth)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "queued"
    assert body["lane"] == lane
    assert body["to"] == to
    assert stored(runtime) == (1, 1)


def test_renders_personalisation_and_redacts_sensitive_values(client, auth):
    body = client.post("/v1/notifications", json=sms(), headers=auth).json()
    assert body["content"] == {"body": "Your code is [redacted]"}
    assert "583920" not in client.get(f"/v1/notifications/{body['id']}", headers=auth).text
    assert body["sms_segments"] == 1


def test_sensitive_value_is_sealed_not_stored_in_clear(client, auth, runtime):
    notification_id = client.post("/v1/notifications", json=sms(), headers=auth).json()["id"]
    with runtime.sessions() as s:
        row = s.get(Notification, notification_id)
        events = s.scalars(select(DeliveryEvent)).all()
    assert "583920" not in str(row.content)
    assert row.sealed_content and "583920" not in row.sealed_content
    assert runtime.sealer.unseal(row.sealed_content) == {"body": "Your code is 583920"}
    assert all("583920" not in (e.detail or "") for e in events)


def test_send_at_in_the_future_is_scheduled(client, auth):
    from datetime import datetime, timedelta

    when = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    body = client.post(
        "/v1/notifications", json=email(send_at=when.isoformat()), headers=auth
    ).json()
    assert body["status"] == "scheduled"
    assert body["send_at"].startswith(when.isoformat()[:19])


def test_ttl_sets_expiry(client, auth):
    body = client.post("/v1/notifications", json=email(ttl_seconds=60), headers=auth).json()
    assert body["expires_at"] is not None


REJECTIONS = [
    # (payload or raw body, status, code, field)
    (email(to="not-an-email"), 422, ErrorCode.INVALID_RECIPIENT, "to"),
    (sms(to="12345"), 422, ErrorCode.INVALID_RECIPIENT, "to"),
    (sms(to="+44 7700"), 422, ErrorCode.INVALID_RECIPIENT, "to"),
    (push(to="short"), 422, ErrorCode.INVALID_RECIPIENT, "to"),
    (email(channel="fax"), 422, ErrorCode.INVALID_CHANNEL, "channel"),
    ({"to": "ada@example.com", "body": "x"}, 422, ErrorCode.INVALID_CHANNEL, "channel"),
    (email(data={}), 422, ErrorCode.MISSING_PERSONALISATION, "data"),
    (email(body="{{ name.__class__.__mro__ }}"), 422, ErrorCode.TEMPLATE_ERROR, "body"),
    (email(body="{% if %}"), 422, ErrorCode.TEMPLATE_ERROR, "body"),
    (sms(body="x" * 1601, data={}, sensitive=[]), 422, ErrorCode.BODY_TOO_LONG, "body"),
    (sms(body="你" * 700, data={}, sensitive=[]), 422, ErrorCode.BODY_TOO_LONG, "body"),
    (email(subject=""), 422, ErrorCode.VALIDATION_ERROR, "subject"),
    (email(unknown_field=1), 422, ErrorCode.VALIDATION_ERROR, "unknown_field"),
    (email(category="marketing"), 422, ErrorCode.VALIDATION_ERROR, "category"),
    (email(ttl_seconds=0), 422, ErrorCode.VALIDATION_ERROR, "ttl_seconds"),
    (email(send_at="2030-01-01T09:00:00"), 422, ErrorCode.VALIDATION_ERROR, "send_at"),
    (push(platform="windows"), 422, ErrorCode.VALIDATION_ERROR, "platform"),
]


@pytest.mark.parametrize(("payload", "status", "code", "field"), REJECTIONS)
def test_rejections_name_the_field_and_store_nothing(
    client, auth, runtime, payload, status, code, field
):
    response = client.post("/v1/notifications", json=payload, headers=auth)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code.value
    assert field in [d.get("field") for d in error["details"]], error
    assert stored(runtime) == (0, 0)


def test_malformed_json_is_400(client, auth, runtime):
    response = client.post(
        "/v1/notifications",
        content=b'{"channel": "email",',
        headers={**auth, "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"
    assert stored(runtime) == (0, 0)


def test_body_over_the_limit_is_413(client, auth, runtime):
    huge = email(body="x" * 1_100_000)
    response = client.post("/v1/notifications", json=huge, headers=auth)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert stored(runtime) == (0, 0)


@pytest.mark.parametrize("header", [None, "Bearer ntf_000000000000_nope", "Basic abc", "Bearer "])
def test_missing_or_unknown_key_is_401(client, runtime, header):
    headers = {"Authorization": header} if header else {}
    response = client.post("/v1/notifications", json=email(), headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    assert stored(runtime) == (0, 0)


def test_revoked_key_is_401(client, runtime):
    from notifier.db.session import transaction
    from notifier.keys import revoke_key
    from notifier.security import parse_prefix

    plaintext = api_key(runtime, name="old")
    prefix = parse_prefix(plaintext)
    assert prefix is not None
    with transaction(runtime.sessions) as s:
        revoke_key(s, prefix)
    response = client.post(
        "/v1/notifications", json=email(), headers={"Authorization": f"Bearer {plaintext}"}
    )
    assert response.status_code == 401


def test_key_without_send_scope_is_403(client, runtime):
    reader = api_key(runtime, scopes=["notifications:read"])
    response = client.post(
        "/v1/notifications", json=email(), headers={"Authorization": f"Bearer {reader}"}
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden_scope"
    assert stored(runtime) == (0, 0)


def test_key_without_the_lane_is_403(client, runtime):
    otp_only = api_key(runtime, lanes=["sms.transactional"])
    headers = {"Authorization": f"Bearer {otp_only}"}
    assert client.post("/v1/notifications", json=sms(), headers=headers).status_code == 202
    response = client.post("/v1/notifications", json=sms(category="promotional"), headers=headers)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden_lane"
    assert stored(runtime) == (1, 1)


def test_api_key_rate_limit_is_429_with_retry_after(client, runtime):
    limited = api_key(runtime, rate_limit="2/minute")
    headers = {"Authorization": f"Bearer {limited}"}
    codes = [
        client.post("/v1/notifications", json=email(), headers=headers).status_code
        for _ in range(3)
    ]
    assert codes == [202, 202, 429]
    response = client.post("/v1/notifications", json=email(), headers=headers)
    assert response.json()["error"]["code"] == "rate_limited"
    assert int(response.headers["Retry-After"]) >= 1


def test_transactional_sms_is_limited_per_phone_number(client, auth, runtime):
    codes = [
        client.post("/v1/notifications", json=sms(to="+447911123555"), headers=auth).status_code
        for _ in range(6)
    ]
    assert codes == [202] * 5 + [429]
    other = client.post("/v1/notifications", json=sms(to="+447911123556"), headers=auth)
    assert other.status_code == 202
    promo = client.post(
        "/v1/notifications", json=sms(to="+447911123555", category="promotional"), headers=auth
    )
    assert promo.status_code == 202
    assert stored(runtime) == (7, 7)


def test_unknown_route_and_method_use_the_envelope(client, auth):
    assert client.get("/v1/nothing", headers=auth).json()["error"]["code"] == "not_found"
    response = client.delete("/v1/notifications", headers=auth)
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
