"""/v1/services: the platform admin creates, lists, reads and changes services and their
allow-lists; other keys get 403 and no key 401; every refusal has its own code and stores
nothing; a webhook secret is answered once and kept sealed."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from notifier.api.app import create_app
from notifier.db.migrate import upgrade
from notifier.keys import callback_sealer
from notifier.runtime import Runtime
from notifier.services.models import AllowedRecipient, Service
from tests.factories import make_settings

ROUTES = (
    ("post", "/v1/services", {"name": "billing"}),
    ("get", "/v1/services", None),
    ("get", "/v1/services/default", None),
    ("patch", "/v1/services/default", {"trial": False}),
    ("get", "/v1/services/default/allowed-recipients", None),
    (
        "post",
        "/v1/services/default/allowed-recipients",
        {"channel": "email", "recipient": "a@b.io"},
    ),
    ("delete", "/v1/services/default/allowed-recipients/1", None),
)


def _services(runtime: Runtime) -> int:
    with runtime.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(Service)) or 0)


def _call(client: TestClient, method: str, path: str, body, headers):
    kwargs = {"json": body} if body is not None else {}
    return client.request(method.upper(), path, headers=headers, **kwargs)


def test_401_without_a_key_and_403_without_the_admin_scope(client, auth, runtime):
    for method, path, body in ROUTES:
        for headers, status, code in (({}, 401, "unauthenticated"), (auth, 403, "forbidden_scope")):
            response = _call(client, method, path, body, headers)
            assert response.status_code == status, (method, path)
            assert response.json()["error"]["code"] == code
    assert _services(runtime) == 1  # the default service only


def test_create_list_show_and_change_a_service(client, platform_admin, runtime):
    created = client.post("/v1/services", json={"name": "billing"}, headers=platform_admin)
    assert created.status_code == 201, created.text
    assert created.json()["trial"] is True and created.json()["callback_secret"] is None
    names = [s["name"] for s in client.get("/v1/services", headers=platform_admin).json()]
    assert names == ["billing", "default"]
    changed = client.patch(
        "/v1/services/billing",
        json={
            "trial": False,
            "senders": {
                "email.transactional": {"from_address": "Billing@Example.com"},
                "sms.transactional": {"sender_id": "ACME"},
            },
            "provider_chains": {"email.transactional": ["outbox"]},
            "rate_limits": {"sms.transactional": "10/second"},
            "daily_quotas": {"email.promotional": 1000},
            "retention_days": 3,
            "callback_url": "https://billing.example.com/hooks",
        },
        headers=platform_admin,
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["trial"] is False
    assert body["senders"]["email.transactional"] == {"from_address": "billing@example.com"}
    assert body["daily_quotas"] == {"email.promotional": 1000}
    secret = body["callback_secret"]
    assert secret.startswith("whsec_")
    shown = client.get("/v1/services/billing", headers=platform_admin).json()
    assert "callback_secret" not in shown and shown["retention_days"] == 3
    with runtime.sessions() as s:
        row = s.scalars(select(Service).where(Service.name == "billing")).one()
        assert secret not in (row.callback_secret_sealed or "")
        assert (
            callback_sealer(runtime.settings.secret_key).unseal(row.callback_secret_sealed)
            == secret
        )
    # a change names what it changes: the rest stays
    again = client.patch("/v1/services/billing", json={"retention_days": 2}, headers=platform_admin)
    assert again.json()["senders"] == body["senders"] and again.json()["callback_secret"] is None
    cleared = client.patch("/v1/services/billing", json={"senders": None}, headers=platform_admin)
    assert cleared.json()["senders"] == {}
    assert client.get("/v1/services/nope", headers=platform_admin).status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"name": "Billing"}, 422, "invalid_service_name"),
        ({"name": "b"}, 422, "invalid_service_name"),
        ({"name": "billing-"}, 422, "invalid_service_name"),
        ({"name": "default"}, 409, "service_exists"),
        (
            {"name": "xyz", "provider_chains": {"sms.transactional": ["twilio-main"]}},
            422,
            "unknown_provider",
        ),
        ({"name": "xyz", "retention_days": 91}, 422, "retention_too_long"),
        ({"name": "xyz", "retention_days": 0}, 422, "validation_error"),
        ({"name": "xyz", "senders": {"fax.promotional": {}}}, 422, "validation_error"),
        (
            {"name": "xyz", "senders": {"sms.promotional": {"from_address": "a@b.io"}}},
            422,
            "validation_error",
        ),
        (
            {"name": "xyz", "senders": {"email.promotional": {"from_address": "nope"}}},
            422,
            "validation_error",
        ),
        (
            {"name": "xyz", "senders": {"email.promotional": {"reply_to": "a@b.io"}}},
            422,
            "validation_error",
        ),
        ({"name": "xyz", "rate_limits": {"sms.promotional": "lots"}}, 422, "validation_error"),
        ({"name": "xyz", "daily_quotas": {"sms.promotional": -1}}, 422, "validation_error"),
        ({"name": "xyz", "callback_url": "ftp://example.com"}, 422, "validation_error"),
        ({"name": "xyz", "id": "mine"}, 422, "validation_error"),
        (
            {
                "name": "xyz",
                "senders": {
                    "sms.transactional": {"sender_id": "ACME"},
                    "sms.promotional": {"sender_id": "acme"},
                },
            },
            422,
            "sender_not_allowed",
        ),
    ],
)
def test_bad_input_has_its_code_and_stores_nothing(
    client, platform_admin, runtime, body, status, code
):
    response = client.post("/v1/services", json=body, headers=platform_admin)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert _services(runtime) == 1


@pytest.fixture
def twilio_platform(tmp_path: Path, monkeypatch):
    """A platform whose SMS lanes send through Twilio with a sender per category, and whose
    promotional email goes out from its own address."""
    monkeypatch.setenv("SVC_TEST_TWILIO_TOKEN", "token")
    providers = tmp_path / "providers.toml"
    providers.write_text(
        """
[providers.twilio-main]
type = "twilio"
account_sid = "AC00000000000000000000000000000000"
auth_token_env = "SVC_TEST_TWILIO_TOKEN"
transactional_from = "+447700900001"
promotional_messaging_service_sid = "MG00000000000000000000000000000001"
promotional_from = "+447700900002"

[providers.smtp-news]
type = "smtp"
host = "127.0.0.1"
from_address = "news@example.com"

[lanes]
"sms.transactional" = ["twilio-main"]
"sms.promotional" = ["twilio-main"]
"email.promotional" = ["smtp-news"]
"""
    )
    settings = make_settings(tmp_path, providers_file=providers)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    runtime = Runtime.build(settings)
    with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as client:
        from tests.factories import api_key

        key = api_key(runtime, "platform", scopes=["services:manage"])
        yield client, {"Authorization": f"Bearer {key}"}
    runtime.close()


@pytest.mark.parametrize(
    ("lane", "sender", "code"),
    [
        # the platform's promotional senders cannot become a transactional lane's
        ("sms.transactional", {"sender_id": "+447700900002"}, "sender_not_allowed"),
        (
            "sms.transactional",
            {"messaging_service_sid": "MG00000000000000000000000000000001"},
            "sender_not_allowed",
        ),
        ("email.transactional", {"from_address": "News@example.com"}, "sender_not_allowed"),
        # nor the transactional sender a promotional lane's
        ("sms.promotional", {"sender_id": "+447700900001"}, "sender_not_allowed"),
        # the platform's own sender of that very lane, or a new one, is fine
        ("sms.transactional", {"sender_id": "+447700900001"}, None),
        ("sms.promotional", {"sender_id": "+447700900009"}, None),
    ],
)
def test_senders_cannot_cross_the_platforms_categories(twilio_platform, lane, sender, code):
    client, admin = twilio_platform
    response = client.post(
        "/v1/services", json={"name": "growth", "senders": {lane: sender}}, headers=admin
    )
    if code is None:
        assert response.status_code == 201, response.text
    else:
        assert response.status_code == 422 and response.json()["error"]["code"] == code
        assert response.json()["error"]["details"][0]["field"] == f"senders.{lane}"


def test_chains_name_the_platforms_providers_of_that_lane(twilio_platform):
    client, admin = twilio_platform
    wrong_lane = client.post(
        "/v1/services",
        json={"name": "growth", "provider_chains": {"email.transactional": ["smtp-news"]}},
        headers=admin,
    )
    assert wrong_lane.json()["error"]["code"] == "unknown_provider"
    right = client.post(
        "/v1/services",
        json={"name": "growth", "provider_chains": {"sms.promotional": ["twilio-main"]}},
        headers=admin,
    )
    assert right.status_code == 201, right.text


def test_allow_list_add_list_remove(client, platform_admin, runtime):
    client.post("/v1/services", json={"name": "billing"}, headers=platform_admin)
    path = "/v1/services/billing/allowed-recipients"
    first = client.post(
        path, json={"channel": "email", "recipient": " Ada@Example.COM "}, headers=platform_admin
    )
    assert first.status_code == 201, first.text
    assert first.json()["recipient"] == "ada@example.com"
    twice = client.post(
        path, json={"channel": "email", "recipient": "Ada@example.com"}, headers=platform_admin
    )
    assert twice.json()["id"] == first.json()["id"]
    bad = client.post(
        path, json={"channel": "sms", "recipient": "not a number"}, headers=platform_admin
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_recipient"
    assert [e["recipient"] for e in client.get(path, headers=platform_admin).json()] == [
        "ada@example.com"
    ]
    other = client.delete(
        f"/v1/services/default/allowed-recipients/{first.json()['id']}", headers=platform_admin
    )
    assert other.status_code == 404  # an entry of another service is not this one's
    gone = client.delete(f"{path}/{first.json()['id']}", headers=platform_admin)
    assert gone.status_code == 204
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(AllowedRecipient)) == 0


def test_the_routes_are_documented(client):
    spec = client.get("/openapi.json").json()
    assert {"post", "get"} <= set(spec["paths"]["/v1/services"])
    assert {"get", "patch"} <= set(spec["paths"]["/v1/services/{name}"])
    assert "delete" in spec["paths"]["/v1/services/{name}/allowed-recipients/{entry_id}"]
    operation = spec["paths"]["/v1/services"]["post"]
    assert operation["security"] == [{"bearer": []}]
    for status in ("401", "403", "409", "422"):
        assert status in operation["responses"], status
    assert "services:manage" in spec["components"]["schemas"]["Scope"]["enum"]
    assert {"service", "type"} <= set(spec["components"]["schemas"]["KeyIn"]["properties"])
