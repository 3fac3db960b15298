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


def _send(caller: Caller, limiter: RateLimiter, lane: Lane = Lane.SMS_TRANSACTIONAL, now=EVENING):
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


@pytest.mark.redis
def test_a_busy_quota_costs_no_round_trip_per_notification() -> None:
    """Eight threads (intake's workers) count 2,000 notifications against a quota of 2,000 and
    ask Redis for leased tokens a few at a time; once Redis says the day is used up, refusals
    ask it no more. What Redis counted is exactly what was allowed plus what is still leased."""
    from concurrent.futures import ThreadPoolExecutor
    from urllib.parse import urlsplit

    from tests.services import REDIS_URL, require

    address = urlsplit(REDIS_URL)
    require("Redis", address.hostname or "127.0.0.1", address.port or 6379)
    limiter = RateLimiter(REDIS_URL)
    from limits.storage import RedisStorage

    assert limiter._shared is not None
    storage = limiter._shared.storage  # the real storage, observed
    assert isinstance(storage, RedisStorage)
    asked: list[int] = []
    acquire = storage.acquire_sliding_window_entry

    def counted(key, limit, expiry, amount=1):
        asked.append(amount)
        return acquire(key, limit, expiry, amount)

    storage.acquire_sliding_window_entry = counted  # type: ignore[method-assign]  # counts calls
    caller = _caller({"email.transactional": 2000})
    now = datetime.now(UTC)

    def send(_: int) -> bool:
        try:
            enforce_daily_quota(caller, Lane.EMAIL_TRANSACTIONAL, limiter, now=now)
        except NotifierError as e:
            assert e.code.value == "quota_exceeded"
            return False
        return True

    with ThreadPoolExecutor(8) as pool:
        allowed = sum(pool.map(send, range(2000)))
        asked_while_open = len(asked)
        refused = sum(not ok for ok in pool.map(send, range(200)))
    assert 2000 - 20 <= allowed <= 2000  # at most one lease (1 % of 2,000) still held
    assert asked_while_open < 2000 / 5, asked_while_open  # leases, not one trip per hit
    assert sum(asked) >= allowed
    assert refused == 200  # every later one refused
    # a used-up day is remembered: at most the threads already asking when it filled ask again
    assert len(asked) - asked_while_open <= 8, asked[asked_while_open:]
