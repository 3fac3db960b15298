"""A notification whose store fails costs no daily quota.

The quota is counted in ``Intake.prepare``, before the row is stored; when the store then fails
(503 ``database_unavailable``) the token is given back through the rate limiter's kept leases.
The store fails for real: a trigger in the database refuses one recipient's row, on each path
that stores (the group commit, an Idempotency-Key's direct write, a batch), with the count in
this process's memory and in Redis; and a batch item refused after it was counted (the batch's
content budget passed) costs none either."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from notifier.api.app import create_app
from notifier.db.migrate import upgrade
from notifier.db.models import Notification
from notifier.ratelimit import RateLimiter
from notifier.runtime import Runtime
from tests.factories import email, make_settings
from tests.notifier_services.helpers import bearer, service

REFUSED = "refused@example.com"


def _refuse_one_recipient(runtime: Runtime) -> None:
    connection = sqlite3.connect(runtime.settings.database_url.removeprefix("sqlite:///"))
    connection.execute(
        "CREATE TRIGGER refuse_one BEFORE INSERT ON notifications "
        f"WHEN NEW.recipient = '{REFUSED}' BEGIN SELECT RAISE(ABORT, 'refused here'); END"
    )
    connection.commit()
    connection.close()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def served(request, tmp_path) -> Iterator[tuple[TestClient, Runtime]]:
    redis_url = None
    if request.param == "redis":
        from urllib.parse import urlsplit

        from tests.services import REDIS_URL, require

        address = urlsplit(REDIS_URL)
        require("Redis", address.hostname or "127.0.0.1", address.port or 6379)
        redis_url = REDIS_URL
    settings = make_settings(tmp_path, redis_url=redis_url)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    runtime = Runtime.build(settings)
    _refuse_one_recipient(runtime)
    with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as c:
        yield c, runtime
    runtime.close()


def test_a_failed_store_costs_no_quota(served):
    client, runtime = served
    billing = service(runtime, "billing", daily_quotas={"email.transactional": 2})
    live = bearer(runtime, billing)
    keyed = {**live, "Idempotency-Key": "refused-1"}
    failures = [
        client.post("/v1/notifications", json=email(to=REFUSED), headers=live),
        client.post("/v1/notifications", json=email(to=REFUSED), headers=keyed),
        client.post(
            "/v1/notifications/batch",
            json={"notifications": [email(to=REFUSED), email(to="grace@example.com")]},
            headers=live,
        ),
    ]
    for failed in failures:
        assert failed.status_code == 503, failed.text
        assert failed.json()["error"]["code"] == "database_unavailable"
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Notification)) == 0
    # four counted, none stored: the whole quota of two is still there, and no more
    for _ in range(2):
        assert client.post("/v1/notifications", json=email(), headers=live).status_code == 202
    refused = client.post("/v1/notifications", json=email(), headers=live)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "quota_exceeded"
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Notification)) == 2


def test_a_refunded_token_is_spent_once() -> None:
    limiter = RateLimiter(None)
    counter = ("1/day", "service-quota", "svc", "email.transactional", "2026-12-02")
    assert limiter.quota_hit(*counter).allowed
    limiter.quota_refund(*counter)
    assert limiter.quota_in_memory(*counter)
    assert limiter.quota_hit(*counter).allowed
    assert not limiter.quota_hit(*counter).allowed


def test_a_batch_item_refused_after_counting_costs_no_quota(served):
    client, runtime = served
    billing = service(runtime, "billing", daily_quotas={"email.transactional": 2})
    live = bearer(runtime, billing)
    one = len("Your receipt") + len("Thanks, Ada")
    runtime.settings.batch_max_content_chars = one + 1  # the second item passes it
    batch = client.post(
        "/v1/notifications/batch", json={"notifications": [email(), email()]}, headers=live
    )
    assert batch.status_code == 202, batch.text
    results = batch.json()["results"]
    assert "error" not in results[0] and results[1]["error"]["code"] == "body_too_long"
    assert client.post("/v1/notifications", json=email(), headers=live).status_code == 202
    assert client.post("/v1/notifications", json=email(), headers=live).status_code == 429
