"""Contract tests of the APNs adapter: aioapns over real HTTP/2 and TLS to the local fake,
with real ES256 provider tokens, one row per APNs answer in the error table."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from providers.contract import ProviderContract
from providers.interface import (
    ConfigurationError,
    InvalidRecipientError,
    Lane,
    PermanentError,
    ProviderAccountError,
    ProviderError,
    ProviderUnavailableError,
    PushMessage,
    PushPlatform,
    SendResult,
    SuppressionReason,
    ThrottledError,
    TransientError,
)
from providers.push.apns import APNS_ERRORS, ApnsProvider
from tests.fakes.apns_server import (
    ApnsAnswer,
    ApnsFakeServer,
    Certificates,
    ProviderKey,
    make_certificates,
    make_provider_key,
)

DEVICE_TOKEN = "a" * 64
BODY = "Your code is 424242"
TOPIC = "com.example.notifier"
NOTIFICATION_ID = "5b0e3d0c-8a1e-4c43-9d43-0f1f1f9f2a11"
T = TypeVar("T")


@pytest.fixture(scope="module")
def provider_key() -> ProviderKey:
    return make_provider_key()


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("apns-tls"))


@pytest.fixture
def apns(provider_key: ProviderKey, certificates: Certificates) -> Iterator[ApnsFakeServer]:
    with ApnsFakeServer(provider_key, certificates) as server:
        yield server


@pytest.fixture
def options(apns: ApnsFakeServer, provider_key: ProviderKey, tmp_path: Path) -> dict[str, Any]:
    return {
        "key_file": str(provider_key.write_p8(tmp_path / "AuthKey.p8")),
        "key_id": provider_key.key_id,
        "team_id": provider_key.team_id,
        "topic": TOPIC,
        "host": apns.host,
        "port": apns.port,
        "ca_file": str(apns.ca_file),
        "timeout_seconds": 5,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def push(lane: Lane = Lane.PUSH_TRANSACTIONAL, **changes: Any) -> PushMessage:
    fields: dict[str, Any] = {
        "notification_id": NOTIFICATION_ID,
        "lane": lane,
        "to": DEVICE_TOKEN,
        "platform": PushPlatform.APNS,
        "title": "Sign-in code",
        "body": BODY,
        "data": {"kind": "otp"},
        **changes,
    }
    return PushMessage(**fields)


def run(provider: ApnsProvider, use: Callable[[ApnsProvider], Awaitable[T]]) -> T:
    async def use_and_close() -> T:
        try:
            return await use(provider)
        finally:
            await provider.close()

    return asyncio.run(use_and_close())


def send_one(options: dict[str, Any], message: PushMessage, lane: Lane | None = None) -> Any:
    provider = ApnsProvider("apns-main", lane or message.lane, options)

    async def send(p: ApnsProvider) -> Any:
        try:
            return await p.deliver(message)
        except ProviderError as e:
            return e

    return run(provider, send)


def test_send_posts_alert_with_apns_headers(
    apns: ApnsFakeServer, provider_key: ProviderKey, options: dict[str, Any]
) -> None:
    expires_at = datetime.now(UTC) + timedelta(hours=1)

    result = send_one(options, push(expires_at=expires_at))

    assert result == SendResult(provider_message_id=NOTIFICATION_ID, response_code="200")
    (received,) = apns.requests
    assert received.device_token == DEVICE_TOKEN
    assert received.payload == {
        "kind": "otp",
        "aps": {"alert": {"title": "Sign-in code", "body": BODY}},
    }
    headers = received.headers
    assert headers[":method"] == "POST"
    assert headers["apns-topic"] == TOPIC
    assert headers["apns-push-type"] == "alert"
    assert headers["apns-priority"] == "10"
    assert headers["apns-id"] == NOTIFICATION_ID
    assert headers["apns-collapse-id"] == NOTIFICATION_ID
    assert abs(int(headers["apns-expiration"]) - int(expires_at.timestamp())) <= 1
    assert received.claims is not None
    assert received.claims["iss"] == provider_key.team_id


def test_promotional_lane_sends_priority_5_without_expiration(
    apns: ApnsFakeServer, provider_key: ProviderKey, options: dict[str, Any]
) -> None:
    pem_options = {**options, "key_file": None, "key": provider_key.private_pem}
    message = push(lane=Lane.PUSH_PROMOTIONAL, notification_id="campaign-7/42", title=None, data={})

    result = send_one(pem_options, message)

    (received,) = apns.requests
    assert received.payload == {"aps": {"alert": {"body": BODY}}}
    assert received.headers["apns-priority"] == "5"
    assert "apns-expiration" not in received.headers
    assert received.headers["apns-collapse-id"] == "campaign-7/42"
    apns_id = received.headers["apns-id"]
    assert str(uuid.UUID(apns_id)) == apns_id  # APNs wants a UUID: derived from the id
    assert result == SendResult(provider_message_id=apns_id, response_code="200")


def test_fifty_concurrent_sends_share_one_connection(
    apns: ApnsFakeServer, options: dict[str, Any]
) -> None:
    provider = ApnsProvider("apns-main", Lane.PUSH_TRANSACTIONAL, options)
    messages = [push(notification_id=str(uuid.uuid4()), to=f"{i:064x}") for i in range(50)]

    async def send_all(p: ApnsProvider) -> list[SendResult]:
        return await asyncio.gather(*(p.deliver(m) for m in messages))

    results = run(provider, send_all)

    assert [r.provider_message_id for r in results] == [m.notification_id for m in messages]
    assert sorted(r.device_token for r in apns.requests) == sorted(m.to for m in messages)
    assert apns.connections_made == 1


# One row per APNs answer: (status, reason, error type). Exact types: a ThrottledError where a
# TransientError is expected (or the reverse) fails the row.
ERROR_ROWS = [
    (410, "Unregistered", InvalidRecipientError),
    (410, "ExpiredToken", InvalidRecipientError),
    (400, "BadDeviceToken", InvalidRecipientError),
    (400, "DeviceTokenNotForTopic", InvalidRecipientError),
    (429, "TooManyRequests", ThrottledError),
    (429, "TooManyProviderTokenUpdates", ThrottledError),
    (500, "InternalServerError", ProviderUnavailableError),
    (503, "ServiceUnavailable", ProviderUnavailableError),
    (503, "Shutdown", ProviderUnavailableError),
    (403, "InvalidProviderToken", ProviderAccountError),
    (403, "ExpiredProviderToken", ProviderAccountError),
    (403, "BadCertificateEnvironment", ProviderAccountError),
    (400, "BadTopic", ProviderAccountError),
    (400, "BadExpirationDate", PermanentError),
    (405, "MethodNotAllowed", PermanentError),
    (413, "PayloadTooLarge", PermanentError),
]


@pytest.mark.parametrize(
    ("status", "reason", "error_type"),
    [pytest.param(*row, id=f"{row[0]}-{row[1]}") for row in ERROR_ROWS],
)
def test_apns_answer_maps_to_typed_error(
    apns: ApnsFakeServer,
    options: dict[str, Any],
    status: int,
    reason: str,
    error_type: type[ProviderError],
) -> None:
    apns.program(DEVICE_TOKEN, ApnsAnswer(status, reason))

    outcome = send_one(options, push())

    assert type(outcome) is error_type
    assert outcome.code == f"{status} {reason}"
    assert outcome.accepted_unknown is False
    if error_type is InvalidRecipientError:
        assert isinstance(outcome, InvalidRecipientError)
        assert outcome.reason == SuppressionReason.INVALID_TOKEN
    assert DEVICE_TOKEN not in str(outcome) and BODY not in str(outcome)
    assert len(apns.requests) == 1  # one attempt: retrying is the delivery engine's job


def test_timeout_after_sending_is_accepted_unknown_and_keeps_the_connection(
    apns: ApnsFakeServer, options: dict[str, Any]
) -> None:
    apns.program(DEVICE_TOKEN, ApnsAnswer(delay=1.0))
    provider = ApnsProvider(
        "apns-main", Lane.PUSH_TRANSACTIONAL, {**options, "timeout_seconds": 0.3}
    )

    async def time_out_then_send_again(p: ApnsProvider) -> tuple[ProviderError, SendResult]:
        with pytest.raises(TransientError) as caught:
            await p.deliver(push())
        await asyncio.sleep(1.2)  # the late answer arrives on the shared connection
        return caught.value, await p.deliver(push())

    timed_out, retried = run(provider, time_out_then_send_again)

    assert type(timed_out) is ProviderUnavailableError
    assert timed_out.accepted_unknown is True
    assert retried.provider_message_id == NOTIFICATION_ID
    assert len(apns.requests) == 2
    assert apns.connections_made == 1


def test_connection_refused_is_transient_and_not_accepted(options: dict[str, Any]) -> None:
    outcome = send_one({**options, "port": free_port()}, push())

    assert type(outcome) is ProviderUnavailableError
    assert outcome.accepted_unknown is False
    assert outcome.code == "connect"


def test_server_not_trusted_is_transient_and_not_accepted(
    apns: ApnsFakeServer, options: dict[str, Any]
) -> None:
    outcome = send_one({**options, "ca_file": None}, push())  # the system's trust store

    assert type(outcome) is ProviderUnavailableError
    assert outcome.accepted_unknown is False
    assert apns.requests == []


@pytest.mark.parametrize(
    "impostor",
    [
        pytest.param({"key": make_provider_key().private_pem, "key_file": None}, id="other-key"),
        pytest.param({"key_id": "ZZZZZZZZZZ"}, id="other-key-id"),
        pytest.param({"team_id": "ZZZZZZZZZZ"}, id="other-team"),
    ],
)
def test_bad_provider_token_is_rejected(
    apns: ApnsFakeServer, options: dict[str, Any], impostor: dict[str, Any]
) -> None:
    outcome = send_one({**options, **impostor}, push())

    assert type(outcome) is ProviderAccountError
    assert outcome.code == "403 InvalidProviderToken"
    (received,) = apns.requests
    assert received.authorized is False


def test_check_connect_opens_the_connection_without_sending(
    apns: ApnsFakeServer, options: dict[str, Any]
) -> None:
    provider = ApnsProvider("apns-main", Lane.PUSH_TRANSACTIONAL, options)

    async def check_both(p: ApnsProvider) -> tuple[str, str]:
        return await p.check(), await p.check(connect=True)

    offline, online = run(provider, check_both)

    assert TOPIC in offline and str(apns.port) in offline
    assert "connection open" in online
    assert apns.connections_made == 1
    assert apns.requests == []


def test_check_connect_refused_raises_transient(options: dict[str, Any]) -> None:
    provider = ApnsProvider("apns-main", Lane.PUSH_TRANSACTIONAL, {**options, "port": free_port()})

    with pytest.raises(TransientError) as caught:
        run(provider, lambda p: p.check(connect=True))

    assert caught.value.accepted_unknown is False


@pytest.mark.parametrize(
    ("message", "lane", "code"),
    [
        pytest.param(push(platform=PushPlatform.FCM), None, "platform", id="fcm-token"),
        pytest.param(push(), Lane.PUSH_PROMOTIONAL, "lane_mismatch", id="other-lane"),
        pytest.param(
            push(expires_at=datetime.now(UTC) - timedelta(seconds=1)), None, "expired", id="expired"
        ),
    ],
)
def test_refused_before_sending(
    apns: ApnsFakeServer,
    options: dict[str, Any],
    message: PushMessage,
    lane: Lane | None,
    code: str,
) -> None:
    outcome = send_one(options, message, lane)

    assert type(outcome) is PermanentError
    assert outcome.code == code
    assert apns.requests == [] and apns.connections_made == 0


def rsa_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param({"key_file": None}, id="no-key"),
        pytest.param({"key_file": "/nonexistent/AuthKey.p8"}, id="missing-key-file"),
        pytest.param({"key_file": None, "key": "not a pem"}, id="not-pem"),
        pytest.param({"key_file": None, "key": rsa_pem()}, id="rsa-key"),
        pytest.param({"topic": ""}, id="no-topic"),
        pytest.param({"team_id": None}, id="no-team"),
        pytest.param({"use_sandbox": "maybe"}, id="bad-sandbox-flag"),
        pytest.param({"timeout_seconds": "soon"}, id="bad-timeout"),
        pytest.param({"max_connections": 0}, id="zero-connections"),
    ],
)
def test_bad_configuration_is_refused_at_construction(
    options: dict[str, Any], broken: dict[str, Any]
) -> None:
    with pytest.raises(ConfigurationError, match="apns-main"):
        ApnsProvider("apns-main", Lane.PUSH_TRANSACTIONAL, {**options, **broken})


def test_sandbox_flag_selects_the_development_server(options: dict[str, Any]) -> None:
    provider = ApnsProvider(
        "apns-main", Lane.PUSH_TRANSACTIONAL, {**options, "host": None, "use_sandbox": "true"}
    )

    description = asyncio.run(provider.check())

    assert "api.development.push.apple.com:443" in description


class TestApnsContract(ProviderContract):
    """The contract every provider keeps (providers/contract.py), against the APNs fake, with
    the signing key given as a secret value."""

    provider_class = ApnsProvider
    lane = Lane.PUSH_TRANSACTIONAL
    error_tables = (APNS_ERRORS,)

    @pytest.fixture
    def provider_options(
        self, options: dict[str, Any], provider_key: ProviderKey
    ) -> dict[str, Any]:
        return {**options, "key_file": None, "key": provider_key.private_pem}

    @pytest.fixture
    def message_for(self) -> Callable[[Lane], PushMessage]:
        return push

    @pytest.fixture
    def received(self, apns: ApnsFakeServer) -> Callable[[], int]:
        return lambda: len(apns.requests)

    @pytest.fixture
    def lost_answer(self, apns: ApnsFakeServer, provider_options: dict[str, Any]) -> dict[str, Any]:
        apns.program(DEVICE_TOKEN, ApnsAnswer(delay=1.0))
        return {**provider_options, "timeout_seconds": 0.3}
