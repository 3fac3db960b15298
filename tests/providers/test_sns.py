"""Contract tests of the SNS adapter: the real boto3 client over SNS's query protocol, against
moto's server (what SNS accepts and keeps) and a programmable fake (its error answers)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from providers.contract import ProviderContract
from providers.interface import (
    ConfigurationError,
    InvalidRecipientError,
    Lane,
    PermanentError,
    ProviderAccountError,
    ProviderError,
    ProviderUnavailableError,
    SendResult,
    SmsMessage,
    SuppressionReason,
    ThrottledError,
)
from providers.sms.sns import ERROR_TABLE, SnsProvider
from tests.fakes.sns import SECRET_ACCESS_KEY, FakeSnsApi, MotoSns, SentSms, SnsAnswer

TO = "+447700900123"
BODY = "Your code is 654321"

ProviderFactory = Callable[..., SnsProvider]


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoSns]:
    with MotoSns() as server:
        yield server


@pytest.fixture
def api() -> Iterator[FakeSnsApi]:
    with FakeSnsApi() as fake:
        yield fake


@pytest.fixture
def providers() -> Iterator[Callable[[SnsProvider], SnsProvider]]:
    made: list[SnsProvider] = []

    def keep(provider: SnsProvider) -> SnsProvider:
        made.append(provider)
        return provider

    yield keep
    for provider in made:
        asyncio.run(provider.close())


@pytest.fixture
def on_moto(moto: MotoSns, providers: Callable[[SnsProvider], SnsProvider]) -> ProviderFactory:
    def make(lane: Lane = Lane.SMS_TRANSACTIONAL, **overrides: Any) -> SnsProvider:
        return providers(SnsProvider("sns-test", lane, {**moto.options, **overrides}))

    return make


@pytest.fixture
def on_fake(api: FakeSnsApi, providers: Callable[[SnsProvider], SnsProvider]) -> ProviderFactory:
    def make(lane: Lane = Lane.SMS_TRANSACTIONAL, **overrides: Any) -> SnsProvider:
        options = {**api.options, "timeout_seconds": 5, **overrides}
        return providers(SnsProvider("sns-test", lane, options))

    return make


def sms(lane: Lane = Lane.SMS_TRANSACTIONAL, **fields: Any) -> SmsMessage:
    return SmsMessage(**{"notification_id": "n-1", "lane": lane, "to": TO, "body": BODY, **fields})


def send(provider: SnsProvider, message: SmsMessage) -> SendResult:
    return asyncio.run(provider.deliver(message))


def send_error(provider: SnsProvider, message: SmsMessage) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        send(provider, message)
    return caught.value


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ------------------------------------------------------------------------------ success (moto)


@pytest.mark.parametrize("lane", [Lane.SMS_TRANSACTIONAL, Lane.SMS_PROMOTIONAL])
def test_publish_reaches_sns_with_phone_and_message(
    lane: Lane, moto: MotoSns, on_moto: ProviderFactory
) -> None:
    body = f"{BODY} ({lane})"

    result = send(on_moto(lane), sms(lane, body=body))

    assert moto.sms_message(result.provider_message_id) == SentSms(
        result.provider_message_id, TO, body
    )


def test_invalid_number_is_refused_by_sns_and_suppressed(
    moto: MotoSns, on_moto: ProviderFactory
) -> None:
    error = send_error(on_moto(), sms(to="+0447700900123"))

    assert type(error) is InvalidRecipientError
    assert error.reason == SuppressionReason.INVALID_ADDRESS
    assert error.code == "InvalidParameter"
    assert all(m.phone_number != "+0447700900123" for m in moto.sms_messages())


def test_opted_out_number_is_refused_before_publishing_when_asked(
    moto: MotoSns, on_moto: ProviderFactory
) -> None:
    opted_out = "+447700900199"  # moto reports numbers ending in 99 as opted out

    error = send_error(on_moto(check_opted_out=True), sms(to=opted_out))

    assert type(error) is InvalidRecipientError
    assert error.reason == SuppressionReason.STOP
    assert all(m.phone_number != opted_out for m in moto.sms_messages())


def test_opt_out_check_lets_other_numbers_through(moto: MotoSns, on_moto: ProviderFactory) -> None:
    result = send(on_moto(check_opted_out=True), sms())

    assert moto.sms_message(result.provider_message_id) is not None


def test_check_with_connect_reads_sms_attributes(on_moto: ProviderFactory) -> None:
    description = asyncio.run(on_moto().check(connect=True))

    assert "authenticated" in description


# ------------------------------------------------------------------------------ what is sent


@pytest.mark.parametrize(
    ("lane", "options", "attributes"),
    [
        (Lane.SMS_TRANSACTIONAL, {}, {"AWS.SNS.SMS.SMSType": "Transactional"}),
        (Lane.SMS_PROMOTIONAL, {}, {"AWS.SNS.SMS.SMSType": "Promotional"}),
        (
            Lane.SMS_PROMOTIONAL,
            {"sender_id": "ACME"},
            {"AWS.SNS.SMS.SMSType": "Promotional", "AWS.SNS.SMS.SenderID": "ACME"},
        ),
    ],
)
def test_sms_type_comes_from_the_lane(
    lane: Lane,
    options: dict[str, str],
    attributes: dict[str, str],
    api: FakeSnsApi,
    on_fake: ProviderFactory,
) -> None:
    result = send(on_fake(lane, **options), sms(lane))

    [publish] = api.publishes
    assert (publish.form["PhoneNumber"], publish.form["Message"]) == (TO, BODY)
    assert publish.message_attributes() == attributes
    assert result.provider_message_id


def test_message_of_another_lane_is_refused_without_calling_sns(
    api: FakeSnsApi, on_fake: ProviderFactory
) -> None:
    error = send_error(on_fake(Lane.SMS_TRANSACTIONAL), sms(Lane.SMS_PROMOTIONAL))

    assert type(error) is PermanentError
    assert error.code == "lane_mismatch"
    assert api.requests == []


def test_concurrent_publishes_are_in_flight_together(
    api: FakeSnsApi, on_fake: ProviderFactory
) -> None:
    provider = on_fake(max_concurrency=8)
    api.program(*[SnsAnswer.slow(0.3)] * 8)

    async def send_all() -> list[SendResult]:
        return await asyncio.gather(
            *(provider.deliver(sms(notification_id=f"n-{i}")) for i in range(8))
        )

    results = asyncio.run(send_all())

    assert len({r.provider_message_id for r in results}) == 8
    assert api.max_in_flight > 1


# ------------------------------------------------------------------------------ configuration


@pytest.mark.parametrize(
    ("lane", "options", "complaint"),
    [
        (Lane.SMS_TRANSACTIONAL, {"region": ""}, "region"),
        (Lane.SMS_TRANSACTIONAL, {"secret_access_key": None}, "access_key"),
        (Lane.SMS_TRANSACTIONAL, {"access_key_id": ""}, "access_key"),
        (Lane.SMS_TRANSACTIONAL, {"timeout_seconds": -1}, "timeout"),
        (Lane.SMS_TRANSACTIONAL, {"max_concurrency": 0}, "max_concurrency"),
        (Lane.PUSH_PROMOTIONAL, {}, "push"),
    ],
)
def test_construction_is_refused_with_incomplete_options(
    lane: Lane, options: dict[str, Any], complaint: str
) -> None:
    full = {
        "region": "eu-west-1",
        "access_key_id": "AKIA0",
        "secret_access_key": "s",
        **options,
    }

    with pytest.raises(ConfigurationError, match=complaint):
        SnsProvider("sns-test", lane, full)


def test_check_without_connect_describes_the_lane(on_fake: ProviderFactory) -> None:
    assert "Promotional" in asyncio.run(on_fake(Lane.SMS_PROMOTIONAL).check())


def test_wrong_credentials_are_an_account_refusal_on_send_and_check(
    api: FakeSnsApi, on_fake: ProviderFactory
) -> None:
    provider = on_fake(access_key_id="AKIAWRONG0000000000", secret_access_key="wrong-secret")

    error = send_error(provider, sms())
    with pytest.raises(ProviderAccountError) as checked:
        asyncio.run(provider.check(connect=True))

    assert type(error) is ProviderAccountError
    assert error.code == checked.value.code == "InvalidClientTokenId"
    assert "wrong-secret" not in str(error)


# ------------------------------------------------------------------------------ error table


@dataclass(frozen=True)
class Row:
    """One vendor answer and the typed outcome it must become."""

    answer: SnsAnswer
    table_key: str
    error: type[ProviderError]
    code: str
    reason: SuppressionReason | None = None
    retry_after: float | None = None


PHONE_INVALID = "Invalid parameter: PhoneNumber Reason: +447700900123 is not valid to publish to"
ROWS = {
    "Throttling (common error)": Row(
        SnsAnswer.error(400, "Throttling", "Rate exceeded"),
        "Throttling",
        ThrottledError,
        "Throttling",
    ),
    "Throttled (ThrottledException)": Row(
        SnsAnswer.error(429, "Throttled"), "Throttled", ThrottledError, "Throttled"
    ),
    "HTTP 429, unknown code, Retry-After": Row(
        SnsAnswer.error(429, "SlowDown", headers={"Retry-After": "3"}),
        "http 429",
        ThrottledError,
        "SlowDown",
        retry_after=3.0,
    ),
    "InternalError": Row(
        SnsAnswer.error(500, "InternalError"),
        "InternalError",
        ProviderUnavailableError,
        "InternalError",
    ),
    "InternalFailure": Row(
        SnsAnswer.error(500, "InternalFailure"),
        "InternalFailure",
        ProviderUnavailableError,
        "InternalFailure",
    ),
    "ServiceUnavailable with Retry-After": Row(
        SnsAnswer.error(503, "ServiceUnavailable", headers={"Retry-After": "20"}),
        "ServiceUnavailable",
        ProviderUnavailableError,
        "ServiceUnavailable",
        retry_after=20.0,
    ),
    "HTTP 502, unknown code": Row(
        SnsAnswer.error(502, "BadGateway"), "http 5xx", ProviderUnavailableError, "BadGateway"
    ),
    "InvalidParameter on the phone number": Row(
        SnsAnswer.error(400, "InvalidParameter", PHONE_INVALID),
        "InvalidParameter:PhoneNumber",
        InvalidRecipientError,
        "InvalidParameter",
        SuppressionReason.INVALID_ADDRESS,
    ),
    "InvalidParameterValue on the phone number": Row(
        SnsAnswer.error(400, "InvalidParameterValue", "Invalid phone number"),
        "InvalidParameterValue:PhoneNumber",
        InvalidRecipientError,
        "InvalidParameterValue",
        SuppressionReason.INVALID_ADDRESS,
    ),
    "ParameterValueInvalid on the phone number": Row(
        SnsAnswer.error(400, "ParameterValueInvalid", "Invalid parameter: phoneNumber"),
        "ParameterValueInvalid:PhoneNumber",
        InvalidRecipientError,
        "ParameterValueInvalid",
        SuppressionReason.INVALID_ADDRESS,
    ),
    "InvalidParameter on something else (never suppresses)": Row(
        SnsAnswer.error(400, "InvalidParameter", "Invalid parameter: Message too long"),
        "http 4xx",
        PermanentError,
        "InvalidParameter",
    ),
    "OptedOut": Row(
        SnsAnswer.error(400, "OptedOut", "Phone number is opted out"),
        "OptedOut",
        InvalidRecipientError,
        "OptedOut",
        SuppressionReason.STOP,
    ),
    "AuthorizationError": Row(
        SnsAnswer.error(403, "AuthorizationError"),
        "AuthorizationError",
        ProviderAccountError,
        "AuthorizationError",
    ),
    "InvalidClientTokenId": Row(
        SnsAnswer.error(403, "InvalidClientTokenId"),
        "InvalidClientTokenId",
        ProviderAccountError,
        "InvalidClientTokenId",
    ),
    "SignatureDoesNotMatch": Row(
        SnsAnswer.error(403, "SignatureDoesNotMatch"),
        "SignatureDoesNotMatch",
        ProviderAccountError,
        "SignatureDoesNotMatch",
    ),
    "AccessDenied": Row(
        SnsAnswer.error(403, "AccessDenied"), "AccessDenied", ProviderAccountError, "AccessDenied"
    ),
    "KMSAccessDenied": Row(
        SnsAnswer.error(400, "KMSAccessDenied"),
        "KMSAccessDenied",
        ProviderAccountError,
        "KMSAccessDenied",
    ),
    "Another 4xx": Row(
        SnsAnswer.error(400, "ValidationError"), "http 4xx", PermanentError, "ValidationError"
    ),
}


@pytest.mark.parametrize("row", ROWS.values(), ids=ROWS.keys())
def test_error_table_row(row: Row, api: FakeSnsApi, on_fake: ProviderFactory) -> None:
    api.program(row.answer)

    error = send_error(on_fake(), sms())

    assert type(error) is row.error
    assert error.code == row.code
    assert getattr(error, "reason", None) == row.reason
    assert error.retry_after == row.retry_after
    assert error.accepted_unknown is False
    assert isinstance(error.__cause__, ClientError)
    assert BODY not in str(error) and SECRET_ACCESS_KEY not in str(error)
    assert len(api.publishes) == 1  # botocore did not retry on its own


def test_read_timeout_after_sending_may_have_been_accepted(
    api: FakeSnsApi, on_fake: ProviderFactory
) -> None:
    api.program(SnsAnswer.slow(10))

    error = send_error(on_fake(timeout_seconds=0.5), sms())

    assert type(error) is ProviderUnavailableError
    assert error.accepted_unknown is True
    assert error.code == "answer_lost"
    assert isinstance(error.__cause__, BotoCoreError)
    assert len(api.publishes) == 1  # it did reach SNS, once


def test_connection_refused_was_not_accepted(on_fake: ProviderFactory) -> None:
    provider = on_fake(endpoint_url=f"http://127.0.0.1:{free_port()}")

    error = send_error(provider, sms())

    assert type(error) is ProviderUnavailableError
    assert error.accepted_unknown is False
    assert error.code == "connect_failed"


def test_missing_credentials_are_refused_before_sending(
    api: FakeSnsApi, on_fake: ProviderFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
    ):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    error = send_error(on_fake(access_key_id=None, secret_access_key=None), sms())

    assert type(error) is ProviderAccountError
    assert error.code == "client_refused"
    assert api.requests == []


def test_every_table_row_is_exercised() -> None:
    exercised = {row.table_key for row in ROWS.values()}
    exercised |= {"answer lost", "connect failed", "client refused", "bad parameters"}

    assert exercised == set(ERROR_TABLE)


# ------------------------------------------------------------------------------ shared contract


class TestSnsContract(ProviderContract):
    """The contract every provider keeps (providers/contract.py), against the SNS fake."""

    provider_class = SnsProvider
    lane = Lane.SMS_TRANSACTIONAL
    error_tables = (ERROR_TABLE,)

    @pytest.fixture
    def provider_options(self, api: FakeSnsApi) -> dict[str, Any]:
        return {**api.options, "timeout_seconds": 5}

    @pytest.fixture
    def message_for(self) -> Callable[[Lane], SmsMessage]:
        return sms

    @pytest.fixture
    def received(self, api: FakeSnsApi) -> Callable[[], int]:
        return lambda: len(api.publishes)

    @pytest.fixture
    def lost_answer(self, api: FakeSnsApi, provider_options: dict[str, Any]) -> dict[str, Any]:
        api.program(SnsAnswer.slow(10))
        return {**provider_options, "timeout_seconds": 0.5}
