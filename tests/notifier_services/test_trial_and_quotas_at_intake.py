"""Intake's rules of a service: team keys and live keys of a trial service send only to the
allow-list (400 ``recipient_not_allowed``; test keys anyone), batch items judged on their own
with nothing half-stored, and the daily quota counted at intake (429 ``quota_exceeded`` with
Retry-After and ``reset_at``; test keys not counted), shared through Redis."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from notifier.api.app import create_app
from notifier.db.migrate import upgrade
from notifier.db.models import Notification
from notifier.db.session import transaction
from notifier.keys import KeyType
from notifier.runtime import Runtime
from notifier.services import registry
from providers.interface import Channel
from tests.factories import email, make_settings, sms
from tests.notifier_services.helpers import bearer, service


def _stored(runtime: Runtime) -> int:
    with runtime.sessions() as s:
        return s.scalar(select(func.count()).select_from(Notification)) or 0


def _allow(runtime: Runtime, name: str, channel: Channel, recipient: str) -> None:
    with transaction(runtime.sessions) as s:
        registry.allow(s, registry.get(s, name), channel, recipient)


@pytest.mark.parametrize(
    ("trial", "key_type", "why"),
    [(True, KeyType.LIVE, "trial mode"), (False, KeyType.TEAM, "team key")],
)
def test_only_the_allow_list(client, runtime, trial, key_type, why):
    billing = service(runtime, "billing", trial=trial)
    _allow(runtime, "billing", Channel.EMAIL, "Ada@Example.com")  # normalised like intake
    auth = bearer(runtime, billing, key_type)
    refused = client.post("/v1/notifications", json=email(to="grace@example.com"), headers=auth)
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["code"] == "recipient_not_allowed" and why in error["message"]
    assert _stored(runtime) == 0
    assert client.post("/v1/notifications", json=email(), headers=auth).status_code == 202
    # a test key of the same service may name anyone: nothing it sends is delivered
    ci = bearer(runtime, billing, KeyType.TEST)
    ok = client.post("/v1/notifications", json=email(to="grace@example.com"), headers=ci)
    assert ok.status_code == 202 and ok.json()["test"] is True


def test_a_batch_refuses_per_item_and_stores_nothing_half(client, runtime):
    billing = service(runtime, "billing", trial=True)
    _allow(runtime, "billing", Channel.SMS, "+447911123456")
    auth = bearer(runtime, billing)
    items = [sms(to="+447911123456"), sms(to="+447911123457"), email()]
    answered = client.post("/v1/notifications/batch", json={"notifications": items}, headers=auth)
    assert answered.status_code == 202
    body = answered.json()
    assert body["accepted"] == 1 and body["rejected"] == 2
    assert [r.get("error", {}).get("code") for r in body["results"]] == [
        None,
        "recipient_not_allowed",
        "recipient_not_allowed",
    ]
    assert _stored(runtime) == 1


@pytest.fixture
def redis_client(tmp_path) -> Iterator[tuple[TestClient, Runtime]]:
    from tests.services import REDIS_URL, require

    address = urlsplit(REDIS_URL)
    require("Redis", address.hostname or "127.0.0.1", address.port or 6379)
    settings = make_settings(tmp_path, redis_url=REDIS_URL)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    runtime = Runtime.build(settings)
    with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as c:
        yield c, runtime
    runtime.close()


@pytest.mark.redis
def test_the_daily_quota_at_intake_through_redis(redis_client):
    client, runtime = redis_client
    billing = service(runtime, "billing", daily_quotas={"email.transactional": 2})
    live, ci = bearer(runtime, billing), bearer(runtime, billing, KeyType.TEST)
    for _ in range(3):  # test keys are not counted
        assert client.post("/v1/notifications", json=email(), headers=ci).status_code == 202
    # a refused request costs no quota
    bad = client.post("/v1/notifications", json=email(to="not-an-address"), headers=live)
    assert bad.status_code == 422
    assert client.post("/v1/notifications", json=email(), headers=live).status_code == 202
    batch = client.post(
        "/v1/notifications/batch", json={"notifications": [email(), email()]}, headers=live
    )
    results = batch.json()["results"]
    assert "error" not in results[0] and results[1]["error"]["code"] == "quota_exceeded"
    refused = client.post("/v1/notifications", json=email(), headers=live)
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "quota_exceeded" and error["reset_at"].endswith("T00:00:00+00:00")
    assert 1 <= int(refused.headers["Retry-After"]) <= 86400
    # another lane of the service has no quota; the count lives in Redis, not this process
    assert client.post("/v1/notifications", json=sms(), headers=live).status_code == 202
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Notification)) == 3 + 2 + 1
