"""Inputs a hostile or careless caller sends: each a clear 4xx with a stable code, nothing
stored."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from notifier.db.models import IdempotencyRecord, Notification
from tests.factories import email, push, sms


def stored(runtime) -> int:
    with runtime.sessions() as s:
        return s.scalar(select(func.count()).select_from(Notification))


UNSTORABLE = [
    (email(to="ada\x00@example.com"), "to"),
    (email(subject="Hi\x00"), "subject"),
    (email(body="x\ud800y"), "body"),
    (email(reference="order-\x00"), "reference"),
    (email(data={"name": "Ada\x00"}), "data.name"),
    (email(data={"name": {"deep": ["ok", "bad\x00"]}}), "data.name.deep.1"),
    (sms(body="code\x00"), "body"),
    (push(title="\udfff"), "title"),
    (email(template="t\x00", subject=None, body=None), "template"),
]


@pytest.mark.parametrize(("payload", "field"), UNSTORABLE)
def test_text_the_database_cannot_store_is_refused_in_every_field(
    client, auth, runtime, payload, field
):
    body = json.dumps(payload)  # \u0000 and lone surrogates survive as JSON escapes
    response = client.post(
        "/v1/notifications", content=body, headers={**auth, "Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"][0] == {
        "field": field,
        "message": error["details"][0]["message"],
        "code": "unstorable_text",
    }
    assert stored(runtime) == 0


def test_unstorable_query_parameters_and_path_ids_are_422_not_503(client, auth):
    for url, field in [
        ("/v1/notifications?reference=a%00b", "reference"),
        ("/v1/notifications/abc%00", "path"),
    ]:
        response = client.get(url, headers=auth)
        assert response.status_code == 422, (url, response.text)
        assert response.json()["error"]["details"][0]["field"] == field
        assert "retry-after" not in response.headers


def test_idempotency_key_headers_have_a_maximum(client, auth, runtime):
    single = client.post(
        "/v1/notifications", json=email(), headers={**auth, "Idempotency-Key": "k" * 256}
    )
    batch = client.post(
        "/v1/notifications/batch",
        json={"notifications": [email()]},
        headers={**auth, "Idempotency-Key": "k" * 241},
    )
    for response in (single, batch):
        assert response.status_code == 422
        assert response.json()["error"]["details"][0]["field"] == "header.idempotency-key"
    assert stored(runtime) == 0


@pytest.mark.parametrize(
    ("to", "reason"),
    [
        ("+447911abc456", "letters"),
        ("+447911123456 ext 5", "extension"),
        ("+447911123456;ext=5", "extension"),
        ("+44 7911 123456 x5", "extension"),
    ],
)
def test_phone_numbers_with_letters_or_extensions_are_refused(client, auth, to, reason):
    response = client.post("/v1/notifications", json=sms(to=to), headers=auth)
    assert response.status_code == 422, (reason, response.text)
    assert response.json()["error"]["code"] == "invalid_recipient"


def test_the_example_number_in_the_phone_error_is_itself_accepted(client, auth):
    message = client.post("/v1/notifications", json=sms(to="12345"), headers=auth).json()["error"][
        "message"
    ]
    example = message.rsplit("e.g. ", 1)[1].split()[0]
    assert client.post("/v1/notifications", json=sms(to=example), headers=auth).status_code == 202


@pytest.mark.parametrize("subject", ["Hi\r\nBcc: eve@example.com", "line\nbreak"])
def test_cr_lf_in_subject_is_refused(client, auth, subject):
    response = client.post("/v1/notifications", json=email(subject=subject), headers=auth)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "subject"


def test_cr_lf_rendered_into_subject_is_refused(client, auth):
    response = client.post(
        "/v1/notifications",
        json=email(subject="Hi {{ name }}", data={"name": "A\r\nBcc: x"}),
        headers=auth,
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "subject"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (email(subject="x" * 999), "subject"),
        (email(html="x" * 500_001), "html"),
        (push(title="x" * 501), "title"),
        (email(reference="r" * 256), "reference"),
        (email(data={f"k{i}": i for i in range(201)}), "data"),
    ],
)
def test_every_field_has_a_maximum(client, auth, payload, field):
    response = client.post("/v1/notifications", json=payload, headers=auth)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["field"] == field


def _at(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


@pytest.mark.parametrize(
    "send_at", ["9999-12-31T23:59:59Z", _at(days=91), _at(minutes=-10), "0001-01-01T00:00:00Z"]
)
def test_send_at_out_of_bounds_is_422_never_500(client, auth, runtime, send_at):
    response = client.post("/v1/notifications", json=email(send_at=send_at), headers=auth)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["field"] == "send_at"
    assert stored(runtime) == 0


def test_send_at_a_few_seconds_ago_is_sent_now(client, auth):
    response = client.post("/v1/notifications", json=email(send_at=_at(seconds=-10)), headers=auth)
    assert response.status_code == 202 and response.json()["status"] == "queued"


def test_empty_and_unparseable_bodies_are_400_malformed_json(client, auth):
    headers = {**auth, "Content-Type": "application/json"}
    for content in (b"", b"{not json", b'{"channel": "email",'):
        response = client.post("/v1/notifications", content=content, headers=headers)
        assert response.status_code == 400, (content, response.text)
        assert response.json()["error"]["code"] == "malformed_json"


def test_a_body_not_declared_as_json_is_415_with_a_hint(client, auth):
    response = client.post(
        "/v1/notifications",
        content=json.dumps(email()),
        headers={**auth, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415
    assert "Content-Type: application/json" in response.json()["error"]["message"]


def test_a_chunked_body_over_the_limit_is_413(client, auth, runtime):
    def chunks():
        yield b'{"channel": "email", "body": "'
        for _ in range(48):
            yield b"x" * 65536
        yield b'"}'

    response = client.post(
        "/v1/notifications", content=chunks(), headers={**auth, "Content-Type": "application/json"}
    )
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "payload_too_large"
    assert stored(runtime) == 0


def test_idempotency_fingerprint_is_keyed_so_a_dump_cannot_confirm_a_guess(client, auth, runtime):
    payload = sms()
    assert (
        client.post(
            "/v1/notifications", json=payload, headers={**auth, "Idempotency-Key": "k1"}
        ).status_code
        == 202
    )
    with runtime.sessions() as s:
        fingerprint = s.scalars(select(IdempotencyRecord.fingerprint)).one()
    # what an attacker holding the dump would try: the plain SHA-256 of each candidate body
    from notifier.notifications.schemas import SmsRequest

    def plain(code: str) -> str:
        body = SmsRequest.model_validate({**payload, "data": {"code": code}}).model_dump(
            mode="json"
        )
        return hashlib.sha256(
            json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()
        ).hexdigest()

    assert fingerprint not in {plain(f"{n:06d}") for n in range(583_900, 583_950)}


def test_batch_honours_the_idempotency_key_header(client, auth, runtime):
    batch = {"notifications": [email(), email(to="bad"), sms()]}
    headers = {**auth, "Idempotency-Key": "batch-1"}
    first = client.post("/v1/notifications/batch", json=batch, headers=headers).json()["results"]
    again = client.post("/v1/notifications/batch", json=batch, headers=headers).json()["results"]
    assert stored(runtime) == 2
    assert [r.get("id") for r in again] == [r.get("id") for r in first]
    assert again[0]["replayed"] is True and again[2]["replayed"] is True
    assert again[1]["error"]["code"] == "invalid_recipient"
    changed = {"notifications": [email(subject="Other"), email(to="bad"), sms()]}
    third = client.post("/v1/notifications/batch", json=changed, headers=headers).json()["results"]
    assert third[0]["error"]["code"] == "idempotency_key_reused"
    assert third[2]["replayed"] is True
    assert stored(runtime) == 2


def test_batch_items_may_carry_their_own_idempotency_keys(client, auth, runtime):
    items = [
        {**email(), "idempotency_key": "order-42-receipt"},
        {**sms(), "idempotency_key": "login-7"},
    ]
    first = client.post(
        "/v1/notifications/batch", json={"notifications": items}, headers=auth
    ).json()["results"]
    second = client.post(
        "/v1/notifications/batch", json={"notifications": items[::-1]}, headers=auth
    ).json()["results"]
    assert [r["id"] for r in second] == [first[1]["id"], first[0]["id"]]
    assert stored(runtime) == 2
    bad = client.post(
        "/v1/notifications/batch",
        json={"notifications": [{**email(), "idempotency_key": 7}]},
        headers=auth,
    ).json()["results"]
    assert bad[0]["error"]["details"][0]["field"] == "idempotency_key"


def test_a_batch_stores_a_bounded_amount_of_content(tmp_path):
    from fastapi.testclient import TestClient

    from notifier.api.app import create_app
    from notifier.db.migrate import upgrade
    from notifier.runtime import Runtime
    from tests.factories import api_key, make_settings

    settings = make_settings(tmp_path, batch_max_content_chars=25_000)
    settings.data_dir.mkdir(parents=True)
    upgrade(settings.database_url)
    runtime = Runtime.build(settings)
    key = api_key(runtime)
    items = [email(body="x" * 10_000) for _ in range(4)]
    with TestClient(create_app(runtime=runtime)) as client:
        results = client.post(
            "/v1/notifications/batch",
            json={"notifications": items},
            headers={"Authorization": f"Bearer {key}"},
        ).json()["results"]
    assert [r.get("error", {}).get("code") for r in results] == [
        None,
        None,
        "body_too_long",
        "body_too_long",
    ]
    assert stored(runtime) == 2
    runtime.close()


def test_a_key_stored_with_an_unparsable_rate_uses_the_default_instead_of_failing(client, runtime):
    from tests.factories import api_key

    key = api_key(runtime, "old", rate_limit="lots")  # as `keys create` accepted before it checked
    response = client.post(
        "/v1/notifications", json=email(), headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 202, response.text
