"""Contract tests of the FCM adapter: pyfcm and google-auth over real HTTP to the local fake
(real signed JWT grant, real messages:send), one row per FCM answer in the error table."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

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
)
from providers.push.fcm import FCM_ERRORS, FCM_SCOPE, FcmProvider
from tests.fakes.fcm_server import (
    GOOGLE_TOKEN_AUDIENCE,
    FcmAnswer,
    FcmFakeServer,
    ServiceAccount,
    make_service_account,
)

DEVICE_TOKEN = "fcm-device-token-0123456789"
BODY = "Your code is 424242"


@pytest.fixture(scope="module")
def account() -> ServiceAccount:
    return make_service_account(project_id="notifier-test")


@pytest.fixture
def fcm(account: ServiceAccount) -> Iterator[FcmFakeServer]:
    with FcmFakeServer(account) as server:
        yield server


@pytest.fixture
def account_file(tmp_path: Path, account: ServiceAccount, fcm: FcmFakeServer) -> Path:
    path = tmp_path / "service-account.json"
    path.write_text(json.dumps(account.info_for(fcm.token_uri)))
    return path


@pytest.fixture
def options(account_file: Path, fcm: FcmFakeServer) -> dict[str, Any]:
    return {
        "service_account_file": str(account_file),
        "endpoint_base": fcm.endpoint_base,
        "timeout_seconds": 2,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


NOTIFICATION_ID = "5b0e3d0c-8a1e-4c43-9d43-0f1f1f9f2a11"


def push(lane: Lane = Lane.PUSH_TRANSACTIONAL, **changes: Any) -> PushMessage:
    fields: dict[str, Any] = {
        "notification_id": NOTIFICATION_ID,
        "lane": lane,
        "to": DEVICE_TOKEN,
        "platform": PushPlatform.FCM,
        "title": "Sign-in code",
        "body": BODY,
        "data": {"kind": "otp", "n": "1"},
        **changes,
    }
    return PushMessage(**fields)


async def send_and_close(provider: FcmProvider, *messages: PushMessage) -> list[Any]:
    try:
        return await asyncio.gather(
            *(provider.deliver(m) for m in messages), return_exceptions=True
        )
    finally:
        await provider.close()


def send_one(options: dict[str, Any], message: PushMessage, lane: Lane | None = None) -> Any:
    provider = FcmProvider("fcm-main", lane or message.lane, options)
    (outcome,) = asyncio.run(send_and_close(provider, message))
    return outcome


def test_send_posts_the_message_after_a_signed_jwt_grant(
    fcm: FcmFakeServer, account: ServiceAccount, options: dict[str, Any]
) -> None:
    expires_at = datetime.now(UTC) + timedelta(hours=1)

    result = send_one(options, push(expires_at=expires_at))

    assert isinstance(result, SendResult)
    assert result.provider_message_id.startswith("projects/notifier-test/messages/")
    (received,) = fcm.messages
    assert received.project == "notifier-test"
    assert received.body == {
        "message": {
            "token": DEVICE_TOKEN,
            "notification": {"title": "Sign-in code", "body": BODY},
            "data": {"kind": "otp", "n": "1"},
            "android": {"priority": "high", "ttl": "3600s", "collapse_key": NOTIFICATION_ID},
        },
        "validate_only": False,
    }
    (grant,) = fcm.grants
    assert grant["iss"] == account.client_email
    assert grant["aud"] == GOOGLE_TOKEN_AUDIENCE
    assert grant["scope"] == FCM_SCOPE


def test_promotional_lane_sends_normal_priority_without_ttl_or_data(
    fcm: FcmFakeServer, options: dict[str, Any]
) -> None:
    message = push(lane=Lane.PUSH_PROMOTIONAL, title=None, data={}, expires_at=None)

    result = send_one(options, message)

    assert isinstance(result, SendResult)
    assert fcm.messages[0].message == {
        "token": DEVICE_TOKEN,
        "notification": {"body": BODY},
        "android": {"priority": "normal", "collapse_key": NOTIFICATION_ID},
    }


def test_data_values_that_are_not_strings_go_as_json(
    fcm: FcmFakeServer, options: dict[str, Any]
) -> None:
    data = {"flag": True, "nested": {"a": 1}, "count": 3, "none": None, "text": "as is"}

    result = send_one(options, push(data=data))

    assert isinstance(result, SendResult)
    assert fcm.messages[0].message["data"] == {
        "flag": "true",
        "nested": '{"a":1}',
        "count": "3",
        "none": "null",
        "text": "as is",
    }


def test_concurrent_sends_share_one_access_token(
    fcm: FcmFakeServer, options: dict[str, Any]
) -> None:
    provider = FcmProvider("fcm-main", Lane.PUSH_TRANSACTIONAL, options)
    messages = [push(to=f"device-{i}") for i in range(20)]

    outcomes = asyncio.run(send_and_close(provider, *messages))

    assert all(isinstance(o, SendResult) for o in outcomes), outcomes
    assert len({o.provider_message_id for o in outcomes}) == 20
    assert sorted(m.message["token"] for m in fcm.messages) == sorted(m.to for m in messages)
    assert len(fcm.grants) == 1


# One row per FCM answer: (answer, error type, code, retry_after). Exact types: a
# ThrottledError where a TransientError is expected (or the reverse) fails the row.
ERROR_ROWS = [
    pytest.param(
        FcmAnswer(404, "UNREGISTERED", "Requested entity was not found."),
        InvalidRecipientError,
        "UNREGISTERED",
        None,
        id="404-UNREGISTERED",
    ),
    pytest.param(
        FcmAnswer(
            400,
            "INVALID_ARGUMENT",
            "The registration token is not a valid FCM registration token",
            field_violation="message.token",
        ),
        InvalidRecipientError,
        "INVALID_ARGUMENT",
        None,
        id="400-INVALID_ARGUMENT-token",
    ),
    pytest.param(
        FcmAnswer(400, "INVALID_ARGUMENT", "Invalid value at 'message.android.ttl'"),
        PermanentError,
        "INVALID_ARGUMENT",
        None,
        id="400-INVALID_ARGUMENT-other",
    ),
    pytest.param(
        FcmAnswer(403, "SENDER_ID_MISMATCH", "SenderId mismatch"),
        PermanentError,
        "SENDER_ID_MISMATCH",
        None,
        id="403-SENDER_ID_MISMATCH",
    ),
    pytest.param(
        FcmAnswer(401, "THIRD_PARTY_AUTH_ERROR", "Auth error from APNS or Web Push Service"),
        ProviderAccountError,
        "THIRD_PARTY_AUTH_ERROR",
        None,
        id="401-THIRD_PARTY_AUTH_ERROR",
    ),
    pytest.param(
        FcmAnswer(429, "QUOTA_EXCEEDED", "Quota exceeded", retry_after="30"),
        ThrottledError,
        "QUOTA_EXCEEDED",
        30.0,
        id="429-QUOTA_EXCEEDED",
    ),
    pytest.param(
        FcmAnswer(503, "UNAVAILABLE", "The service is currently unavailable.", retry_after="7"),
        ProviderUnavailableError,
        "UNAVAILABLE",
        7.0,
        id="503-UNAVAILABLE",
    ),
    pytest.param(
        FcmAnswer(500, "INTERNAL", "Internal error encountered."),
        ProviderUnavailableError,
        "INTERNAL",
        None,
        id="500-INTERNAL",
    ),
    pytest.param(FcmAnswer(404), InvalidRecipientError, "404", None, id="404-no-code"),
    pytest.param(FcmAnswer(429, retry_after="5"), ThrottledError, "429", 5.0, id="429-no-code"),
    pytest.param(FcmAnswer(502), ProviderUnavailableError, "502", None, id="502-no-code"),
    pytest.param(FcmAnswer(401), ProviderAccountError, "401", None, id="401-no-code"),
    pytest.param(FcmAnswer(403), ProviderAccountError, "403", None, id="403-no-code"),
    pytest.param(FcmAnswer(413), PermanentError, "413", None, id="413-other-4xx"),
]


@pytest.mark.parametrize(("answer", "error_type", "code", "retry_after"), ERROR_ROWS)
def test_fcm_answer_maps_to_typed_error(
    fcm: FcmFakeServer,
    options: dict[str, Any],
    answer: FcmAnswer,
    error_type: type[ProviderError],
    code: str,
    retry_after: float | None,
) -> None:
    fcm.program(DEVICE_TOKEN, answer)

    outcome = send_one(options, push())

    assert type(outcome) is error_type
    assert outcome.code == code
    assert outcome.retry_after == retry_after
    assert outcome.accepted_unknown is False
    if error_type is InvalidRecipientError:
        assert isinstance(outcome, InvalidRecipientError)
        assert outcome.reason == SuppressionReason.INVALID_TOKEN
    assert DEVICE_TOKEN not in str(outcome) and BODY not in str(outcome)
    assert len(fcm.messages) == 1  # one attempt: retrying is the delivery engine's job


def test_timeout_after_sending_is_accepted_unknown(
    fcm: FcmFakeServer, options: dict[str, Any]
) -> None:
    fcm.program(DEVICE_TOKEN, FcmAnswer(delay=5))

    outcome = send_one({**options, "timeout_seconds": 0.5}, push())

    assert type(outcome) is ProviderUnavailableError
    assert outcome.accepted_unknown is True
    assert len(fcm.messages) == 1


def test_connection_refused_is_transient_and_not_accepted(options: dict[str, Any]) -> None:
    refused = {**options, "endpoint_base": f"http://127.0.0.1:{free_port()}/v1/projects"}

    outcome = send_one(refused, push())

    assert type(outcome) is ProviderUnavailableError
    assert outcome.accepted_unknown is False
    assert outcome.code == "connect"


def test_unreachable_token_endpoint_is_transient_and_not_accepted(
    fcm: FcmFakeServer, account: ServiceAccount, tmp_path: Path, options: dict[str, Any]
) -> None:
    info = account.info_for(f"http://127.0.0.1:{free_port()}/token")

    outcome = send_one({**options, "service_account_json": json.dumps(info)}, push())

    assert type(outcome) is ProviderUnavailableError
    assert outcome.accepted_unknown is False
    assert fcm.messages == []


def test_grant_signed_with_another_key_is_refused(
    fcm: FcmFakeServer, account: ServiceAccount, options: dict[str, Any]
) -> None:
    impostor = make_service_account(project_id=account.project_id)
    info = {**account.info_for(fcm.token_uri), "private_key": impostor.private_key_pem}
    provider = FcmProvider(
        "fcm-main", Lane.PUSH_TRANSACTIONAL, {**options, "service_account_json": json.dumps(info)}
    )

    async def check_and_close() -> None:
        try:
            await provider.check(connect=True)
        finally:
            await provider.close()

    with pytest.raises(ProviderAccountError) as caught:
        asyncio.run(check_and_close())

    assert caught.value.code == "oauth"
    assert fcm.rejected_grants == 1 and fcm.grants == []


def test_check_connect_obtains_a_token_without_sending(
    fcm: FcmFakeServer, options: dict[str, Any]
) -> None:
    provider = FcmProvider("fcm-main", Lane.PUSH_TRANSACTIONAL, options)

    async def check_and_close() -> tuple[str, str]:
        try:
            return await provider.check(), await provider.check(connect=True)
        finally:
            await provider.close()

    offline, online = asyncio.run(check_and_close())

    assert "notifier-test" in offline
    assert "access token obtained" in online
    assert len(fcm.grants) == 1
    assert fcm.messages == []


@pytest.mark.parametrize(
    ("message", "lane", "code"),
    [
        pytest.param(push(platform=PushPlatform.APNS), None, "platform", id="apns-token"),
        pytest.param(push(), Lane.PUSH_PROMOTIONAL, "lane_mismatch", id="other-lane"),
        pytest.param(
            push(expires_at=datetime.now(UTC) - timedelta(seconds=1)), None, "expired", id="expired"
        ),
    ],
)
def test_refused_before_sending(
    fcm: FcmFakeServer, options: dict[str, Any], message: PushMessage, lane: Lane | None, code: str
) -> None:
    outcome = send_one(options, message, lane)

    assert type(outcome) is PermanentError
    assert outcome.code == code
    assert fcm.messages == [] and fcm.grants == []


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param({"service_account_file": None}, id="no-service-account"),
        pytest.param({"service_account_file": "/nonexistent/sa.json"}, id="missing-file"),
        pytest.param({"service_account_json": "{not json"}, id="bad-json"),
        pytest.param({"timeout_seconds": "soon"}, id="bad-timeout"),
        pytest.param({"max_concurrency": 0}, id="zero-concurrency"),
    ],
)
def test_bad_configuration_is_refused_at_construction(
    options: dict[str, Any], broken: dict[str, Any]
) -> None:
    with pytest.raises(ConfigurationError, match="fcm-main"):
        FcmProvider("fcm-main", Lane.PUSH_TRANSACTIONAL, {**options, **broken})


def test_push_provider_cannot_serve_an_sms_lane(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="cannot serve lane"):
        FcmProvider("fcm-main", Lane.SMS_TRANSACTIONAL, options)


class TestFcmContract(ProviderContract):
    """The contract every provider keeps (providers/contract.py), against the FCM fake, with
    the service account given as a secret value."""

    provider_class = FcmProvider
    lane = Lane.PUSH_TRANSACTIONAL
    error_tables = (FCM_ERRORS,)

    @pytest.fixture
    def provider_options(self, account: ServiceAccount, fcm: FcmFakeServer) -> dict[str, Any]:
        return {
            "service_account_json": json.dumps(account.info_for(fcm.token_uri)),
            "endpoint_base": fcm.endpoint_base,
            "timeout_seconds": 2,
        }

    @pytest.fixture
    def message_for(self) -> Callable[[Lane], PushMessage]:
        return push

    @pytest.fixture
    def received(self, fcm: FcmFakeServer) -> Callable[[], int]:
        return lambda: len(fcm.messages)

    @pytest.fixture
    def lost_answer(self, fcm: FcmFakeServer, provider_options: dict[str, Any]) -> dict[str, Any]:
        fcm.program(DEVICE_TOKEN, FcmAnswer(delay=5))
        return {**provider_options, "timeout_seconds": 0.5}
