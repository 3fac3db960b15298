"""Contract tests of the Twilio adapter: the real SDK over HTTP against the local fake API."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from twilio.base.exceptions import TwilioException

from providers.contract import ProviderContract
from providers.interface import (
    ConfigurationError,
    InvalidRecipientError,
    Lane,
    PermanentError,
    ProviderAccountError,
    ProviderError,
    ProviderUnavailableError,
    SmsMessage,
    SuppressionReason,
    ThrottledError,
    parse_retry_after,
)
from providers.sms.twilio import ERROR_TABLE, TwilioProvider
from tests.fakes.twilio_api import FakeTwilioApi, TwilioAnswer

TO = "+447700900123"
BODY = "Your code is 123456"
CALLBACK = "https://notifier.example/webhooks/twilio/status"
SENDERS = {
    "transactional_messaging_service_sid": "MG" + "1" * 32,
    "promotional_from": "+15005550006",
}

ProviderFactory = Callable[..., TwilioProvider]


@pytest.fixture
def api() -> Iterator[FakeTwilioApi]:
    with FakeTwilioApi() as fake:
        yield fake


@pytest.fixture
def make_provider(api: FakeTwilioApi) -> Iterator[ProviderFactory]:
    made: list[TwilioProvider] = []

    def make(lane: Lane = Lane.SMS_TRANSACTIONAL, **overrides: Any) -> TwilioProvider:
        options = {
            **api.credentials,
            **SENDERS,
            "base_url": api.base_url,
            "status_callback_url": CALLBACK,
            "timeout_seconds": 5,
            **overrides,
        }
        provider = TwilioProvider("twilio-test", lane, options)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        asyncio.run(provider.close())


def sms(lane: Lane = Lane.SMS_TRANSACTIONAL, **fields: Any) -> SmsMessage:
    return SmsMessage(**{"notification_id": "n-1", "lane": lane, "to": TO, "body": BODY, **fields})


def send(provider: TwilioProvider, message: SmsMessage) -> Any:
    return asyncio.run(provider.deliver(message))


def send_error(provider: TwilioProvider, message: SmsMessage) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        send(provider, message)
    return caught.value


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ------------------------------------------------------------------------------ success


def test_transactional_send_posts_exactly_the_lane_sender_and_returns_the_sid(
    api: FakeTwilioApi, make_provider: ProviderFactory
) -> None:
    expires_at = datetime.now(UTC) + timedelta(seconds=3600.5)

    result = send(make_provider(), sms(expires_at=expires_at))

    [received] = api.messages
    assert received.path == f"/2010-04-01/Accounts/{api.account_sid}/Messages.json"
    assert received.auth == (api.account_sid, api.auth_token)
    validity = int(received.form.pop("ValidityPeriod"))
    assert 3590 <= validity <= 3600
    assert received.form == {
        "To": TO,
        "Body": BODY,
        "MessagingServiceSid": SENDERS["transactional_messaging_service_sid"],
        "StatusCallback": CALLBACK,
    }
    assert result.provider_message_id == api.created[0]["sid"]
    assert result.provider_message_id.startswith("SM")


def test_promotional_send_uses_only_the_promotional_sender(
    api: FakeTwilioApi, make_provider: ProviderFactory
) -> None:
    provider = make_provider(Lane.SMS_PROMOTIONAL, status_callback_url=None)

    send(provider, sms(Lane.SMS_PROMOTIONAL))

    [received] = api.messages
    assert received.form == {"To": TO, "Body": BODY, "From": SENDERS["promotional_from"]}


def test_service_and_number_of_the_lane_are_both_sent(
    api: FakeTwilioApi, make_provider: ProviderFactory
) -> None:
    provider = make_provider(
        Lane.SMS_PROMOTIONAL, promotional_messaging_service_sid="MG" + "2" * 32
    )

    send(provider, sms(Lane.SMS_PROMOTIONAL))

    assert api.messages[0].form["MessagingServiceSid"] == "MG" + "2" * 32
    assert api.messages[0].form["From"] == SENDERS["promotional_from"]


def test_expiry_beyond_twilio_maximum_is_capped(
    api: FakeTwilioApi, make_provider: ProviderFactory
) -> None:
    send(make_provider(), sms(expires_at=datetime.now(UTC) + timedelta(days=3)))

    assert api.messages[0].form["ValidityPeriod"] == "36000"


def test_expired_message_is_refused_without_calling_twilio(
    api: FakeTwilioApi, make_provider: ProviderFactory
) -> None:
    error = send_error(make_provider(), sms(expires_at=datetime.now(UTC) - timedelta(seconds=1)))

    assert type(error) is PermanentError
    assert error.code == "expired"
    assert api.requests == []


def test_message_of_another_lane_is_refused_without_calling_twilio(
    api: FakeTwilioApi, make_provider: ProviderFactory
) -> None:
    error = send_error(make_provider(Lane.SMS_TRANSACTIONAL), sms(Lane.SMS_PROMOTIONAL))

    assert type(error) is PermanentError
    assert error.code == "lane_mismatch"
    assert api.requests == []


def test_concurrent_sends_are_in_flight_together(
    api: FakeTwilioApi, make_provider: ProviderFactory
) -> None:
    provider = make_provider(max_concurrency=8)
    api.program(*[TwilioAnswer.slow(0.3)] * 8)

    async def send_all() -> list[str]:
        messages = [sms(notification_id=f"n-{i}") for i in range(8)]
        results = await asyncio.gather(*(provider.deliver(m) for m in messages))
        return [r.provider_message_id for r in results]

    sids = asyncio.run(send_all())

    assert sorted(sids) == sorted(created["sid"] for created in api.created)
    assert len(set(sids)) == 8
    assert api.max_in_flight > 1


# ------------------------------------------------------------------------------ configuration


@pytest.mark.parametrize(
    ("lane", "options", "missing"),
    [
        (Lane.SMS_PROMOTIONAL, {"transactional_from": "+15005550006"}, "promotional_"),
        (Lane.SMS_TRANSACTIONAL, {"promotional_from": "+15005550006"}, "transactional_"),
        (Lane.SMS_TRANSACTIONAL, {"transactional_from": "+15005550006", "auth_token": ""}, "auth"),
        (Lane.SMS_TRANSACTIONAL, {"transactional_from": "+1500", "account_sid": None}, "account"),
        (Lane.EMAIL_TRANSACTIONAL, {"transactional_from": "+15005550006"}, "email"),
        (Lane.SMS_TRANSACTIONAL, {"transactional_from": "+1500", "timeout_seconds": 0}, "timeout"),
    ],
)
def test_construction_is_refused_without_what_the_lane_needs(
    lane: Lane, options: dict[str, Any], missing: str
) -> None:
    full = {"account_sid": "AC" + "0" * 32, "auth_token": "secret", **options}

    with pytest.raises(ConfigurationError, match=missing):
        TwilioProvider("twilio-test", lane, full)


def test_check_without_connect_describes_the_lane_sender(make_provider: ProviderFactory) -> None:
    description = asyncio.run(make_provider(Lane.SMS_PROMOTIONAL).check())

    assert SENDERS["promotional_from"] in description


def test_check_with_connect_fetches_the_account(
    api: FakeTwilioApi, make_provider: ProviderFactory
) -> None:
    description = asyncio.run(make_provider().check(connect=True))

    assert "active" in description
    [fetched] = api.requests
    assert (fetched.method, fetched.path) == (
        "GET",
        f"/2010-04-01/Accounts/{api.account_sid}.json",
    )
    assert api.messages == []


def test_wrong_auth_token_is_an_account_refusal_on_send_and_check(
    api: FakeTwilioApi, make_provider: ProviderFactory
) -> None:
    provider = make_provider(auth_token="not-the-token")

    error = send_error(provider, sms())
    with pytest.raises(ProviderAccountError) as checked:
        asyncio.run(provider.check(connect=True))

    assert type(error) is ProviderAccountError
    assert error.code == "20003"
    assert checked.value.code == "20003"
    assert "not-the-token" not in str(error)


# ------------------------------------------------------------------------------ error table


@dataclass(frozen=True)
class Row:
    """One vendor answer and the typed outcome it must become."""

    answer: TwilioAnswer
    table_key: int | str
    error: type[ProviderError]
    code: str
    reason: SuppressionReason | None = None
    retry_after: float | None = None
    accepted_unknown: bool = False


PAST_DATE = "Wed, 21 Oct 2015 07:28:00 GMT"
RFC9457_INVALID_TO = {
    "type": "https://www.twilio.com/docs/errors/21211",
    "title": "Invalid 'To' Phone Number",
    "status": 400,
    "code": 21211,
}

ROWS = {
    "21211 invalid To": Row(
        TwilioAnswer.error(400, 21211),
        21211,
        InvalidRecipientError,
        "21211",
        SuppressionReason.INVALID_ADDRESS,
    ),
    "21214 unreachable To": Row(
        TwilioAnswer.error(400, 21214),
        21214,
        InvalidRecipientError,
        "21214",
        SuppressionReason.INVALID_ADDRESS,
    ),
    "21217 not a valid number": Row(
        TwilioAnswer.error(400, 21217),
        21217,
        InvalidRecipientError,
        "21217",
        SuppressionReason.INVALID_ADDRESS,
    ),
    "21614 not a mobile number": Row(
        TwilioAnswer.error(400, 21614),
        21614,
        InvalidRecipientError,
        "21614",
        SuppressionReason.INVALID_ADDRESS,
    ),
    "21211 in RFC 9457 shape": Row(
        TwilioAnswer(400, RFC9457_INVALID_TO),
        21211,
        InvalidRecipientError,
        "21211",
        SuppressionReason.INVALID_ADDRESS,
    ),
    "21610 replied STOP": Row(
        TwilioAnswer.error(400, 21610),
        21610,
        InvalidRecipientError,
        "21610",
        SuppressionReason.STOP,
    ),
    "20429 with Retry-After seconds": Row(
        TwilioAnswer.error(429, 20429, headers={"Retry-After": "7"}),
        20429,
        ThrottledError,
        "20429",
        retry_after=7.0,
    ),
    "20429 without Retry-After": Row(
        TwilioAnswer.error(429, 20429), 20429, ThrottledError, "20429"
    ),
    "HTTP 429 without code, Retry-After date passed": Row(
        TwilioAnswer(429, {"message": "Too Many Requests"}, {"Retry-After": PAST_DATE}),
        "http 429",
        ThrottledError,
        "429",
        retry_after=0.0,
    ),
    "HTTP 500": Row(TwilioAnswer.error(500, 20500), "http 5xx", ProviderUnavailableError, "20500"),
    "HTTP 503 with Retry-After": Row(
        TwilioAnswer.error(503, 20503, headers={"Retry-After": "30"}),
        "http 5xx",
        ProviderUnavailableError,
        "20503",
        retry_after=30.0,
    ),
    "HTTP 502 without JSON": Row(
        TwilioAnswer(502, {}, raw=b"<html>Bad Gateway</html>"),
        "http 5xx",
        ProviderUnavailableError,
        "502",
    ),
    "20003 authentication": Row(
        TwilioAnswer.error(401, 20003), 20003, ProviderAccountError, "20003"
    ),
    "20005 account not active": Row(
        TwilioAnswer.error(401, 20005), 20005, ProviderAccountError, "20005"
    ),
    "21212 invalid From": Row(TwilioAnswer.error(400, 21212), 21212, ProviderAccountError, "21212"),
    "21606 From not of this account": Row(
        TwilioAnswer.error(400, 21606), 21606, ProviderAccountError, "21606"
    ),
    "30002 account suspended": Row(
        TwilioAnswer.error(400, 30002), 30002, ProviderAccountError, "30002"
    ),
    "21602 body required (other 4xx)": Row(
        TwilioAnswer.error(400, 21602), "http 4xx", PermanentError, "21602"
    ),
    "20404 not found (other 4xx)": Row(
        TwilioAnswer.error(404, 20404), "http 4xx", PermanentError, "20404"
    ),
    "201 that is not JSON": Row(
        TwilioAnswer(raw=b"<html>oops</html>"),
        "answer lost",
        ProviderUnavailableError,
        "bad_answer",
        accepted_unknown=True,
    ),
}


@pytest.mark.parametrize("row", ROWS.values(), ids=ROWS.keys())
def test_error_table_row(row: Row, api: FakeTwilioApi, make_provider: ProviderFactory) -> None:
    api.program(row.answer)

    error = send_error(make_provider(), sms())

    assert type(error) is row.error
    assert error.code == row.code
    assert getattr(error, "reason", None) == row.reason
    if row.retry_after is None:
        assert error.retry_after is None
    else:
        assert error.retry_after == row.retry_after
    assert error.accepted_unknown is row.accepted_unknown
    assert isinstance(error.__cause__, TwilioException | ValueError)
    assert BODY not in str(error) and api.auth_token not in str(error)
    assert len(api.messages) == 1


def test_read_timeout_after_sending_may_have_been_accepted(
    api: FakeTwilioApi, make_provider: ProviderFactory
) -> None:
    api.program(TwilioAnswer.slow(10))

    error = send_error(make_provider(timeout_seconds=0.5), sms())

    assert type(error) is ProviderUnavailableError
    assert error.accepted_unknown is True
    assert error.code == "answer_lost"
    assert len(api.messages) == 1  # it did reach Twilio


def test_connection_refused_was_not_accepted(make_provider: ProviderFactory) -> None:
    provider = make_provider(base_url=f"http://127.0.0.1:{free_port()}")

    error = send_error(provider, sms())

    assert type(error) is ProviderUnavailableError
    assert error.accepted_unknown is False
    assert error.code == "connect_failed"


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        ("0", 0.0),
        ("Wed, 21 Oct 2015 08:28:00 GMT", 3600.0),
        ("Wed, 21 Oct 2015 06:28:00 GMT", 0.0),
        ("soon", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_date(header: str | None, seconds: float | None) -> None:
    now = datetime(2015, 10, 21, 7, 28, tzinfo=UTC)

    assert parse_retry_after(header, now) == seconds


def test_every_table_row_is_exercised() -> None:
    exercised = {row.table_key for row in ROWS.values()} | {"answer lost", "connect failed"}

    assert exercised == set(ERROR_TABLE)


# ------------------------------------------------------------------------------ shared contract


class TestTwilioContract(ProviderContract):
    """The contract every provider keeps (providers/contract.py), against the Twilio fake."""

    provider_class = TwilioProvider
    lane = Lane.SMS_TRANSACTIONAL
    error_tables = (ERROR_TABLE,)

    @pytest.fixture
    def provider_options(self, api: FakeTwilioApi) -> dict[str, Any]:
        return {**api.credentials, **SENDERS, "base_url": api.base_url, "timeout_seconds": 5}

    @pytest.fixture
    def message_for(self) -> Callable[[Lane], SmsMessage]:
        return sms

    @pytest.fixture
    def received(self, api: FakeTwilioApi) -> Callable[[], int]:
        return lambda: len(api.messages)

    @pytest.fixture
    def lost_answer(self, api: FakeTwilioApi, provider_options: dict[str, Any]) -> dict[str, Any]:
        api.program(TwilioAnswer.slow(10))
        return {**provider_options, "timeout_seconds": 0.5}
