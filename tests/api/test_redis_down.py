"""Redis (the shared rate-limit storage) stopped under the API: intake keeps answering 202, never
500; the limits hold in process memory meanwhile (a key over its rate still gets 429); the
fallback is counted and logged; when Redis is back the shared counts are used again. A private
redis-server is stopped and started; the shared one is never touched."""

from __future__ import annotations

import logging
import time

import pytest
import redis
from fastapi.testclient import TestClient

from notifier import ratelimit
from notifier.api.app import create_app
from notifier.db.migrate import upgrade
from notifier.runtime import Runtime
from tests.factories import api_key, email, make_settings
from tests.private_services import require_private


def _fallbacks(client: TestClient) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("notifier_rate_limit_fallbacks_total "):
            return float(line.split()[1])
    return 0.0


@pytest.fixture
def private_redis():
    server = require_private("redis")
    yield server
    server.close()


def test_intake_answers_while_redis_is_down_with_local_limits(
    private_redis, tmp_path, caplog, monkeypatch
) -> None:
    monkeypatch.setattr(
        ratelimit, "RETRY_AFTER_FAILURE", 0.5
    )  # the test does not wait 5 s for the retry
    settings = make_settings(tmp_path, redis_url=private_redis.url)
    settings.data_dir.mkdir(parents=True)
    upgrade(settings.database_url)
    runtime = Runtime.build(settings)
    key = api_key(runtime, rate_limit="3/minute")
    auth = {"Authorization": f"Bearer {key}"}
    shared = redis.Redis.from_url(private_redis.url)
    try:
        with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as client:
            assert client.post("/v1/notifications", json=email(), headers=auth).status_code == 202
            assert shared.keys("LIMITS*"), "the count is kept in Redis while it is up"
            before = _fallbacks(client)

            private_redis.stop()
            with caplog.at_level(logging.INFO, logger="notifier.ratelimit"):
                answers = [
                    client.post("/v1/notifications", json=email(), headers=auth) for _ in range(4)
                ]
                codes = [r.status_code for r in answers]
                assert 500 not in codes, [r.text for r in answers]
                assert codes[:3] == [202, 202, 202]  # the local count starts afresh: 3 more fit
                assert codes[3] == 429 and answers[3].json()["error"]["code"] == "rate_limited"
                assert int(answers[3].headers["Retry-After"]) >= 1
                assert _fallbacks(client) - before == 4
                warnings = [
                    r for r in caplog.records if r.message == "ratelimit.storage_unavailable"
                ]
                assert len(warnings) == 1 and warnings[0].levelname == "WARNING"

                private_redis.start()
                shared.flushall()  # a fresh Redis: the shared window starts empty
                time.sleep(0.6)
                other = {"Authorization": f"Bearer {api_key(runtime, name='other')}"}
                assert (
                    client.post("/v1/notifications", json=email(), headers=other).status_code == 202
                )
                assert any(r.message == "ratelimit.storage_recovered" for r in caplog.records)
                assert shared.keys("LIMITS*"), "back to the shared count once Redis answers"
                assert _fallbacks(client) - before == 4
    finally:
        shared.close()
        runtime.close()
