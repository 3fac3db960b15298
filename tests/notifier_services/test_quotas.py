"""Daily quotas per service and lane: counted in a UTC-day window on the shared limiter (in
memory and in Redis), 429 ``quota_exceeded`` with Retry-After and ``reset_at`` (the next
midnight UTC), a new count the next day, test keys not counted."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from types import MappingProxyType

import pytest

from notifier.api.errors import error_response
from notifier.errors import NotifierError
from notifier.keys import Caller, KeyType
from notifier.ratelimit import RateLimiter
from notifier.services.quotas import enforce_daily_quota
from notifier.services.snapshot import ServiceSnapshot
from providers.interface import Lane

EVENING = datetime(2026, 3, 1, 22, 30, tzinfo=UTC)
MIDNIGHT = datetime(2026, 3, 2, tzinfo=UTC)


def _caller(quotas: dict[str, int], key_type: KeyType = KeyType.LIVE) -> Caller:
    service = ServiceSnapshot(
        id=str(uuid.uuid4()), name="billing", daily_quotas=MappingProxyType(quotas)
    )
    return Caller("k", "ci", frozenset(), None, None, key_type=key_type, service=service)


def _send(caller: Caller, limiter: RateLimiter, lane: Lane = Lane.SMS_TRANSACTIONAL, now=EVENING):  # type: ignore[no-untyped-def]
    enforce_daily_quota(caller, lane, limiter, now=now)


def _quota_used_up(limiter: RateLimiter) -> None:
    caller = _caller({"sms.transactional": 2})
    _send(caller, limiter)
    _send(caller, limiter)
    with pytest.raises(NotifierError) as refused:
        _send(caller, limiter)
    error = refused.value
    assert error.code.value == "quota_exceeded" and error.http_status == 429
    assert error.reset_at == MIDNIGHT and error.retry_after == 90 * 60
    response = error_response(error)
    assert response.headers["Retry-After"] == str(90 * 60)
    body = json.loads(bytes(response.body))
    assert body["error"]["reset_at"] == "2026-03-02T00:00:00+00:00"
    _send(caller, limiter, Lane.SMS_PROMOTIONAL)  # another lane: no quota there
    _send(caller, limiter, now=MIDNIGHT)  # a new day, a new count


def test_quota_in_memory() -> None:
    _quota_used_up(RateLimiter(None))


@pytest.mark.redis
def test_quota_shared_through_redis() -> None:
    from urllib.parse import urlsplit

    from tests.services import REDIS_URL, require

    address = urlsplit(REDIS_URL)
    require("Redis", address.hostname or "127.0.0.1", address.port or 6379)
    _quota_used_up(RateLimiter(REDIS_URL))
    # two limiters (two API processes) share one count
    caller = _caller({"email.promotional": 1})
    _send(caller, RateLimiter(REDIS_URL), Lane.EMAIL_PROMOTIONAL)
    with pytest.raises(NotifierError):
        _send(caller, RateLimiter(REDIS_URL), Lane.EMAIL_PROMOTIONAL)


def test_test_keys_do_not_count_and_zero_closes_the_lane() -> None:
    limiter = RateLimiter(None)
    test_key = _caller({"sms.transactional": 1}, KeyType.TEST)
    for _ in range(3):
        _send(test_key, limiter)
    closed = _caller({"sms.transactional": 0}, KeyType.TEAM)
    with pytest.raises(NotifierError):
        _send(closed, limiter)
