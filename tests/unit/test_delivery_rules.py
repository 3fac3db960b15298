"""Unit tests of retry policy, circuit breaker, provider configuration and the engine's failover."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from notifier.provider_config import build_chains, load_chains
from providers.interface import (
    ConfigurationError,
    EmailMessage,
    InvalidRecipientError,
    Lane,
    ProviderAccountError,
    ProviderUnavailableError,
    SendResult,
    ThrottledError,
    TransientError,
)
from tests.fakes.scripted import ScriptedProvider
from workers.circuit import CircuitBreaker, CircuitState
from workers.engine import DeliveryEngine
from workers.retry_policy import RetryPolicy

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    policy = RetryPolicy(max_attempts=10, base_seconds=2, cap_seconds=60)
    rng = random.Random(7)
    for attempt in range(1, 10):
        delays = [policy.delay(attempt, rng=rng) for _ in range(200)]
        assert 0 <= min(delays) and max(delays) <= min(60, 2 * 2 ** (attempt - 1))


def test_retry_after_is_a_floor() -> None:
    assert RetryPolicy(base_seconds=0.01).delay(1, retry_after=30) == 30


def test_no_retry_past_max_attempts_or_ttl() -> None:
    policy = RetryPolicy(max_attempts=3, base_seconds=1, cap_seconds=1)
    assert policy.next_attempt_at(NOW, 3, None) is None
    assert policy.next_attempt_at(NOW, 1, NOW + timedelta(seconds=0.5), retry_after=5) is None
    when = policy.next_attempt_at(NOW, 1, NOW + timedelta(hours=1))
    assert when is not None and NOW <= when <= NOW + timedelta(seconds=1)


def _state(breaker: CircuitBreaker) -> CircuitState:
    """The breaker's state read anew: its clock or a call may have moved it, which a type checker
    narrowing ``breaker.state`` after an assert would not see."""
    return breaker.state


def test_circuit_opens_after_consecutive_failures_and_probes_once() -> None:
    clock = [0.0]
    breaker = CircuitBreaker(threshold=3, cooldown=10, clock=lambda: clock[0])
    for _ in range(3):
        assert breaker.allow()
        breaker.record_failure()
    assert _state(breaker) == CircuitState.OPEN and not breaker.allow()
    clock[0] = 10.0
    assert _state(breaker) == CircuitState.HALF_OPEN
    assert breaker.allow() and not breaker.allow()  # exactly one probe
    breaker.record_failure()
    assert _state(breaker) == CircuitState.OPEN
    clock[0] = 20.0
    assert breaker.allow()
    breaker.record_success()
    assert _state(breaker) == CircuitState.CLOSED


def message(lane: Lane = Lane.EMAIL_TRANSACTIONAL) -> EmailMessage:
    return EmailMessage(
        notification_id="n1", lane=lane, to="ada@example.com", subject="s", text="t"
    )


def run(engine: DeliveryEngine, msg: EmailMessage, pinned: str | None = None):
    return asyncio.run(engine.deliver(msg, pinned))


def test_failover_when_the_first_provider_provably_did_not_accept() -> None:
    first = ScriptedProvider(
        "first",
        Lane.EMAIL_TRANSACTIONAL,
        script=[ProviderUnavailableError("refused", code="ECONNREFUSED")],
    )
    second = ScriptedProvider("second", Lane.EMAIL_TRANSACTIONAL, script=[SendResult("m-2")])
    outcome = run(DeliveryEngine({Lane.EMAIL_TRANSACTIONAL: [first, second]}), message())
    assert [a.provider for a in outcome.attempts] == ["first", "second"]
    assert outcome.sent is not None and outcome.sent.result.provider_message_id == "m-2"


def test_no_failover_when_acceptance_is_unknown_and_the_retry_is_pinned() -> None:
    first = ScriptedProvider(
        "first",
        Lane.EMAIL_TRANSACTIONAL,
        script=[TransientError("read timeout", accepted_unknown=True)],
    )
    second = ScriptedProvider("second", Lane.EMAIL_TRANSACTIONAL)
    engine = DeliveryEngine({Lane.EMAIL_TRANSACTIONAL: [first, second]})
    outcome = run(engine, message())
    assert [a.provider for a in outcome.attempts] == ["first"]
    assert outcome.sent is None and outcome.pinned == "first"
    assert second.received == []
    retry = run(engine, message(), pinned="first")
    assert [a.provider for a in retry.attempts] == ["first"] and retry.sent is not None


def test_permanent_errors_stop_the_chain() -> None:
    first = ScriptedProvider(
        "first", Lane.EMAIL_TRANSACTIONAL, script=[InvalidRecipientError("550 5.1.1")]
    )
    second = ScriptedProvider("second", Lane.EMAIL_TRANSACTIONAL)
    outcome = run(DeliveryEngine({Lane.EMAIL_TRANSACTIONAL: [first, second]}), message())
    assert outcome.invalid_recipient is not None and second.received == []


def test_open_circuit_skips_the_provider_without_an_attempt() -> None:
    first = ScriptedProvider(
        "first", Lane.EMAIL_TRANSACTIONAL, script=[ProviderUnavailableError("503")] * 10
    )
    second = ScriptedProvider("second", Lane.EMAIL_TRANSACTIONAL)
    engine = DeliveryEngine({Lane.EMAIL_TRANSACTIONAL: [first, second]})
    for _ in range(5):
        run(engine, message())
    assert len(first.received) == 5
    outcome = run(engine, message())
    assert len(first.received) == 5  # skipped while open
    assert [a.provider for a in outcome.attempts] == ["second"] and outcome.sent is not None
    assert [s.provider for s in outcome.skipped] == ["first"]


@pytest.mark.parametrize(
    "answer",
    [
        TransientError("452 mailbox full", code=452),  # about one recipient
        ThrottledError("429", code=429, retry_after=1),  # paced by Retry-After instead
    ],
)
def test_recipient_level_and_throttling_answers_never_open_the_breaker(answer) -> None:
    provider = ScriptedProvider(
        "p", Lane.EMAIL_TRANSACTIONAL, script=[answer] * 6 + [SendResult("ok")]
    )
    engine = DeliveryEngine({Lane.EMAIL_TRANSACTIONAL: [provider]})
    for _ in range(6):
        assert run(engine, message()).attempts[0].error is answer
    assert engine.breaker(provider).state == CircuitState.CLOSED
    assert run(engine, message()).sent is not None and len(provider.received) == 7


def test_an_account_refusal_opens_the_breaker_at_once_and_fails_over() -> None:
    refused = ScriptedProvider(
        "smtp",
        Lane.EMAIL_TRANSACTIONAL,
        script=[ProviderAccountError("535 authentication failed", code=535)],
    )
    backup = ScriptedProvider("ses", Lane.EMAIL_TRANSACTIONAL)
    engine = DeliveryEngine({Lane.EMAIL_TRANSACTIONAL: [refused, backup]})
    outcome = run(engine, message())
    assert [a.provider for a in outcome.attempts] == ["smtp", "ses"] and outcome.sent is not None
    assert outcome.permanent is None
    assert engine.breaker(refused).state == CircuitState.OPEN
    again = run(engine, message())
    assert [a.provider for a in again.attempts] == ["ses"] and len(refused.received) == 1


def test_a_pinned_message_waits_for_its_open_provider_and_never_goes_elsewhere() -> None:
    clock = [0.0]
    first = ScriptedProvider(
        "first", Lane.EMAIL_TRANSACTIONAL, script=[ProviderUnavailableError("503")] * 5
    )
    second = ScriptedProvider("second", Lane.EMAIL_TRANSACTIONAL)
    engine = DeliveryEngine(
        {Lane.EMAIL_TRANSACTIONAL: [first, second]},
        breaker_factory=lambda: CircuitBreaker(5, 30, clock=lambda: clock[0]),
    )
    for _ in range(5):
        run(engine, message(), pinned="first")
    assert engine.breaker(first).state == CircuitState.OPEN and second.received == []
    waiting = run(engine, message(), pinned="first")
    assert waiting.attempts == [] and waiting.pinned == "first" and second.received == []
    assert waiting.wait_seconds == 30
    clock[0] = 30.0  # the cool-down is over: one trial goes to the pinned provider
    trial = run(engine, message(), pinned="first")
    assert [a.provider for a in trial.attempts] == ["first"] and trial.sent is not None


def test_every_provider_open_means_waiting_not_an_attempt() -> None:
    only = ScriptedProvider(
        "only", Lane.EMAIL_TRANSACTIONAL, script=[ProviderUnavailableError("503")] * 5
    )
    engine = DeliveryEngine({Lane.EMAIL_TRANSACTIONAL: [only]})
    for _ in range(5):
        run(engine, message())
    outcome = run(engine, message())
    assert (
        outcome.attempts == []
        and outcome.wait_seconds is not None
        and 0 < outcome.wait_seconds <= 30
    )


def test_a_pin_to_a_provider_no_longer_configured_is_reported_not_sent_elsewhere() -> None:
    other = ScriptedProvider("other", Lane.EMAIL_TRANSACTIONAL)
    outcome = run(DeliveryEngine({Lane.EMAIL_TRANSACTIONAL: [other]}), message(), pinned="gone")
    assert outcome.pin_lost and outcome.attempts == [] and other.received == []


def test_a_provider_refuses_a_message_of_another_lane() -> None:
    promotional = ScriptedProvider("promo", Lane.SMS_PROMOTIONAL)
    outcome = run(DeliveryEngine({Lane.EMAIL_TRANSACTIONAL: [promotional]}), message())
    assert outcome.permanent is not None and outcome.permanent.code == "lane_mismatch"


def test_providers_file_resolves_secrets_from_env_and_files(tmp_path: Path, monkeypatch) -> None:
    secret = tmp_path / "token"
    secret.write_text("s3cret\n")
    monkeypatch.setenv("TEST_OUTBOX_PATH", str(tmp_path / "outbox"))
    config = tmp_path / "providers.toml"
    config.write_text(f'''
[providers.box]
type = "outbox"
path_env = "TEST_OUTBOX_PATH"
token_file = "{secret}"

[lanes]
"email.transactional" = ["box"]
''')
    chains = load_chains(config, tmp_path)
    spec = chains[Lane.EMAIL_TRANSACTIONAL][0]
    assert spec.options == {"path": str(tmp_path / "outbox"), "token": "s3cret"}
    built = build_chains(chains)
    assert built[Lane.EMAIL_TRANSACTIONAL][0].kind == "outbox"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[providers.x]\ntype = "smtp"\npassword = "hunter2"\n', "is a secret"),
        ('[providers.x]\ntype = "outbox"\npath_env = "NOPE_NOT_SET_123"\n', "is not set"),
        ('[providers.x]\npath = "/tmp"\n', "has no type"),
        ('[lanes]\n"email.transactional" = ["ghost"]\n', "undefined providers"),
        ('[lanes]\n"fax.transactional" = []\n', "unknown lane"),
        ("not toml [", "cannot read"),
    ],
)
def test_bad_provider_files_are_refused_clearly(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "providers.toml"
    config.write_text(text)
    with pytest.raises(ConfigurationError, match=message):
        load_chains(config, tmp_path)
    assert "hunter2" not in message


def test_unknown_provider_type_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "providers.toml"
    config.write_text(
        '[providers.x]\ntype = "carrier-pigeon"\n[lanes]\n"sms.transactional" = ["x"]\n'
    )
    with pytest.raises(ConfigurationError, match="no provider type"):
        build_chains(load_chains(config, tmp_path))


def test_a_providers_shared_send_rate_is_respected() -> None:
    from notifier.ratelimit import RateLimiter
    from workers.throttle import ProviderThrottle, rule_for

    limited = ScriptedProvider(
        "twilio-main", Lane.EMAIL_TRANSACTIONAL, options={"rate_limit": "5/second"}
    )
    unlimited = ScriptedProvider("box", Lane.EMAIL_TRANSACTIONAL)
    assert rule_for(limited) == "5/second" and rule_for(unlimited) is None
    throttle = ProviderThrottle(RateLimiter())

    async def acquire_many() -> list[float]:
        return await asyncio.gather(*(throttle.acquire(limited) for _ in range(8)))

    waited = asyncio.run(acquire_many())
    assert sum(1 for w in waited if w == 0) == 5  # the window's five go at once
    assert all(w > 0 for w in sorted(waited)[5:])  # the other three waited for the next window
    engine = DeliveryEngine({Lane.EMAIL_TRANSACTIONAL: [limited]}, throttle=throttle)

    async def send_two() -> list:
        return await asyncio.gather(*(engine.deliver(message()) for _ in range(2)))

    assert all(
        o.sent is not None for o in asyncio.run(send_two())
    )  # over the rate: waited, never failed


def test_a_group_deadline_records_unanswered_sends_as_acceptance_unknown() -> None:
    slow = ScriptedProvider("slow", Lane.EMAIL_TRANSACTIONAL, script=[5.0])
    backup = ScriptedProvider("backup", Lane.EMAIL_TRANSACTIONAL)
    fast = ScriptedProvider("fast", Lane.SMS_TRANSACTIONAL)
    engine = DeliveryEngine(
        {Lane.EMAIL_TRANSACTIONAL: [slow, backup], Lane.SMS_TRANSACTIONAL: [fast]}, timeout=0.2
    )
    from providers.interface import SmsMessage

    sms = SmsMessage(
        notification_id="n2", lane=Lane.SMS_TRANSACTIONAL, to="+447911123456", body="hi"
    )
    stuck, quick = asyncio.run(engine.deliver_many([(message(), None), (sms, None)]))
    assert quick.sent is not None
    assert [a.provider for a in stuck.attempts] == ["slow"]
    assert stuck.sent is None and stuck.pinned == "slow"  # retried there only, never failed over
    assert stuck.last is not None and stuck.last.error is not None
    assert stuck.last.error.code == "timeout" and backup.received == []
