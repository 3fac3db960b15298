"""Contract tests of the SES adapter: the real boto3 client against moto's server and a
programmable SES endpoint (tests/fakes/aws.py), over HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from providers.contract import ProviderContract
from providers.email.ses import ERROR_TABLE, SesProvider
from providers.interface import (
    ConfigurationError,
    EmailMessage,
    Lane,
    PermanentError,
    ProviderAccountError,
    ProviderError,
    ProviderUnavailableError,
    SendResult,
    ThrottledError,
    TransientError,
)
from tests.fakes.aws import TEST_CREDENTIALS, AwsAnswer, MotoSes, SesApiFake
from tests.fakes.smtp_server import free_port

pytestmark = pytest.mark.anyio

SENDER = "notify@notifier.example"
SUBJECT = "Your sign-in code ✓"
TEXT = "Your code is 424242."
HTML = "<p>Your code is <b>424242</b>.</p>"
SECRET = TEST_CREDENTIALS["aws_secret_access_key"]

MakeProvider = Callable[..., SesProvider]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def moto_server() -> Iterator[MotoSes]:
    with MotoSes(region="eu-west-1") as moto:
        yield moto


@pytest.fixture
def moto(moto_server: MotoSes) -> Iterator[MotoSes]:
    moto_server.reset()  # moto's backends are process-wide: start from nothing whatever ran before
    moto_server.verify_identity(SENDER)
    yield moto_server
    moto_server.reset()


@pytest.fixture
def ses_api() -> Iterator[SesApiFake]:
    with SesApiFake() as fake:
        yield fake


@pytest.fixture
async def make_provider() -> AsyncIterator[MakeProvider]:
    """Builds providers for an endpoint and closes them (threads, client) after the test."""
    made: list[SesProvider] = []

    def make(
        endpoint_url: str, lane: Lane = Lane.EMAIL_TRANSACTIONAL, **options: Any
    ) -> SesProvider:
        settings: dict[str, Any] = {
            "region": "eu-west-1",
            "endpoint_url": endpoint_url,
            "access_key_id": TEST_CREDENTIALS["aws_access_key_id"],
            "secret_access_key": SECRET,
            "from_address": SENDER,
            "timeout_seconds": 5,
        }
        settings.update(options)
        provider = SesProvider("ses-test", lane, settings)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.close()


def email(**overrides: Any) -> EmailMessage:
    message = EmailMessage(
        notification_id="ntf_0001",
        lane=Lane.EMAIL_TRANSACTIONAL,
        to="alice@example.com",
        subject=SUBJECT,
        text=TEXT,
        html=HTML,
    )
    return dataclasses.replace(message, **overrides)


async def outcome_of(send: Any) -> SendResult | ProviderError:
    try:
        return await send
    except ProviderError as error:
        return error


# --------------------------------------------------------------------------- success


async def test_sends_through_moto(moto: MotoSes, make_provider: MakeProvider) -> None:
    provider = make_provider(moto.endpoint_url, configuration_set="notifier-events")

    result = await provider.deliver(email())

    # moto's backend is process-wide: other tests' messages may be there too, so find ours by id
    [sent] = [m for m in moto.sent_messages() if m["id"] == result.provider_message_id]
    assert result.response_code == "200"
    assert sent["source"] == SENDER
    assert sent["destinations"] == {"ToAddresses": ["alice@example.com"]}
    assert sent["subject"] == SUBJECT
    assert sent["body"] == HTML  # moto keeps the HTML part when there is one


async def test_text_only_message_through_moto(moto: MotoSes, make_provider: MakeProvider) -> None:
    result = await make_provider(moto.endpoint_url).deliver(email(html=None))

    [sent] = [m for m in moto.sent_messages() if m["id"] == result.provider_message_id]
    assert sent["body"] == TEXT


async def test_wire_request_has_tags_configuration_set_and_both_parts(
    ses_api: SesApiFake, make_provider: MakeProvider
) -> None:
    provider = make_provider(
        ses_api.endpoint_url, configuration_set="notifier-events", from_name="Notifier Ltd"
    )

    result = await provider.deliver(email(headers={"Reply-To": "help@notifier.example"}))

    assert result.provider_message_id == "fake-1"
    [request] = ses_api.requests
    assert request.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDTESTING/")
    assert "/eu-west-1/ses/aws4_request" in request.headers["authorization"]
    assert request.body == {
        "FromEmailAddress": "Notifier Ltd <notify@notifier.example>",
        "Destination": {"ToAddresses": ["alice@example.com"]},
        "Content": {
            "Simple": {
                "Subject": {"Data": SUBJECT, "Charset": "UTF-8"},
                "Body": {
                    "Text": {"Data": TEXT, "Charset": "UTF-8"},
                    "Html": {"Data": HTML, "Charset": "UTF-8"},
                },
                "Headers": [
                    {"Name": "X-Notifier-Notification-Id", "Value": "ntf_0001"},
                    {"Name": "Reply-To", "Value": "help@notifier.example"},
                ],
            }
        },
        "EmailTags": [{"Name": "notification_id", "Value": "ntf_0001"}],
        "ConfigurationSetName": "notifier-events",
    }


@pytest.mark.parametrize(
    ("lane", "expected"),
    [
        (Lane.EMAIL_PROMOTIONAL, ["<https://notifier.example/u/1>", "List-Unsubscribe=One-Click"]),
        (Lane.EMAIL_TRANSACTIONAL, []),
    ],
)
async def test_list_unsubscribe_only_on_promotional_lane(
    ses_api: SesApiFake, make_provider: MakeProvider, lane: Lane, expected: list[str]
) -> None:
    provider = make_provider(ses_api.endpoint_url, lane=lane)

    await provider.deliver(email(lane=lane, unsubscribe_url="https://notifier.example/u/1"))

    [body] = ses_api.sent_emails()
    headers = body["Content"]["Simple"]["Headers"]
    values = [h["Value"] for h in headers if h["Name"].startswith("List-Unsubscribe")]
    assert values == expected
    assert "ConfigurationSetName" not in body


async def test_tag_value_keeps_to_the_characters_ses_allows(
    ses_api: SesApiFake, make_provider: MakeProvider
) -> None:
    await make_provider(ses_api.endpoint_url).deliver(email(notification_id="ntf:01/ä"))

    [body] = ses_api.sent_emails()
    assert body["EmailTags"] == [{"Name": "notification_id", "Value": "ntf_01__"}]


async def test_many_sends_wait_on_ses_concurrently(
    ses_api: SesApiFake, make_provider: MakeProvider
) -> None:
    ses_api.answer(AwsAnswer(delay=0.5))
    provider = make_provider(ses_api.endpoint_url)

    results = await asyncio.gather(
        *(provider.deliver(email(notification_id=f"ntf_{n}")) for n in range(24))
    )

    assert len(results) == 24
    assert ses_api.max_in_flight > 6  # more than asyncio.to_thread's default pool would allow


# --------------------------------------------------------------------------- errors


async def test_unverified_sender_is_rejected_permanently(
    moto: MotoSes, make_provider: MakeProvider
) -> None:
    provider = make_provider(moto.endpoint_url, from_address="stranger@elsewhere.example")

    with pytest.raises(PermanentError) as caught:
        await provider.deliver(email())

    assert type(caught.value) is PermanentError
    assert caught.value.code == "MessageRejected"
    assert moto.sent_messages() == []


@dataclasses.dataclass(frozen=True)
class Row:
    """One answer of SES and the typed outcome the adapter must produce."""

    answer: AwsAnswer
    outcome: type[ProviderError]
    code: str
    retry_after: float | None = None


def aws(status: int, error_type: str | None, **extra: Any) -> AwsAnswer:
    return AwsAnswer(status=status, error_type=error_type, **extra)


VENDOR_ANSWERS = [
    Row(aws(429, "TooManyRequestsException"), ThrottledError, "TooManyRequestsException", 1.0),
    Row(aws(429, "TooManyRequestsException", headers={"Retry-After": "7"}), ThrottledError,
        "TooManyRequestsException", 7.0),
    Row(aws(400, "Throttling", message="Maximum sending rate exceeded."), ThrottledError,
        "Throttling", 1.0),
    Row(aws(400, "LimitExceededException"), ThrottledError, "LimitExceededException", 1.0),
    Row(aws(500, "InternalFailure"), ProviderUnavailableError, "InternalFailure"),
    Row(aws(503, "ServiceUnavailable"), ProviderUnavailableError, "ServiceUnavailable"),
    Row(aws(500, "SomethingUnheardOf"), ProviderUnavailableError, "SomethingUnheardOf"),
    Row(aws(502, None, body={}), ProviderUnavailableError, "502"),
    Row(aws(400, "MessageRejected", message="Email address is not verified."), PermanentError,
        "MessageRejected"),
    Row(aws(400, "BadRequestException"), PermanentError, "BadRequestException"),
    Row(aws(400, "InvalidParameterValue"), PermanentError, "InvalidParameterValue"),
    Row(aws(400, "MailFromDomainNotVerifiedException"), ProviderAccountError,
        "MailFromDomainNotVerifiedException"),
    Row(aws(400, "AccountSuspendedException"), ProviderAccountError, "AccountSuspendedException"),
    Row(aws(400, "SendingPausedException"), ProviderAccountError, "SendingPausedException"),
    Row(aws(404, "NotFoundException", message="Configuration set <x> does not exist."),
        ProviderAccountError, "NotFoundException"),
    Row(aws(403, "UnrecognizedClientException", message=f"bad token {SECRET}"),
        ProviderAccountError, "UnrecognizedClientException"),
    Row(aws(418, "SomethingNewAndOdd"), PermanentError, "SomethingNewAndOdd"),
]  # fmt: skip


@pytest.mark.parametrize("row", VENDOR_ANSWERS, ids=lambda row: f"{row.answer.status}:{row.code}")
async def test_vendor_answers(ses_api: SesApiFake, make_provider: MakeProvider, row: Row) -> None:
    ses_api.answer(row.answer)

    outcome = await outcome_of(make_provider(ses_api.endpoint_url).deliver(email()))

    assert type(outcome) is row.outcome
    assert isinstance(outcome, ProviderError)
    assert outcome.code == row.code
    assert outcome.retry_after == row.retry_after
    assert outcome.accepted_unknown is False  # SES answered: it did not take the message
    for content_or_secret in (SUBJECT, "424242", SECRET):
        assert content_or_secret not in str(outcome)
    assert len(ses_api.requests) == 1  # botocore did not retry behind our back


@pytest.mark.parametrize("code", sorted(key for key in ERROR_TABLE if not key.startswith("http ")))
async def test_every_row_of_the_error_table(
    ses_api: SesApiFake, make_provider: MakeProvider, code: str
) -> None:
    expected, retry_after = ERROR_TABLE[code].error, ERROR_TABLE[code].retry_after
    ses_api.answer(aws(400, code))

    outcome = await outcome_of(make_provider(ses_api.endpoint_url).deliver(email()))

    assert type(outcome) is expected
    assert isinstance(outcome, ProviderError)
    assert (outcome.code, outcome.retry_after) == (code, retry_after)


async def test_read_timeout_may_have_been_accepted(
    ses_api: SesApiFake, make_provider: MakeProvider
) -> None:
    ses_api.answer(AwsAnswer(delay=5))
    provider = make_provider(ses_api.endpoint_url, timeout_seconds=0.5)

    with pytest.raises(TransientError) as caught:
        await provider.deliver(email())

    assert (caught.value.code, caught.value.accepted_unknown) == ("timeout", True)
    assert len(ses_api.requests) == 1


async def test_connection_closed_before_the_answer_may_have_been_accepted(
    ses_api: SesApiFake, make_provider: MakeProvider
) -> None:
    ses_api.answer(AwsAnswer(drop_connection=True))

    with pytest.raises(TransientError) as caught:
        await make_provider(ses_api.endpoint_url).deliver(email())

    assert (caught.value.code, caught.value.accepted_unknown) == ("disconnected", True)


async def test_connection_refused_was_not_accepted(make_provider: MakeProvider) -> None:
    provider = make_provider(f"http://127.0.0.1:{free_port()}")

    with pytest.raises(TransientError) as caught:
        await provider.deliver(email())

    assert type(caught.value) is ProviderUnavailableError
    assert (caught.value.code, caught.value.accepted_unknown) == ("connect", False)


async def test_refuses_a_message_of_another_lane(
    ses_api: SesApiFake, make_provider: MakeProvider
) -> None:
    provider = make_provider(ses_api.endpoint_url, lane=Lane.EMAIL_TRANSACTIONAL)

    with pytest.raises(PermanentError) as caught:
        await provider.deliver(email(lane=Lane.EMAIL_PROMOTIONAL))

    assert caught.value.code == "lane_mismatch"
    assert ses_api.requests == []


# --------------------------------------------------------------------------- check and config


async def test_check_connects_with_get_account(
    ses_api: SesApiFake, make_provider: MakeProvider
) -> None:
    provider = make_provider(ses_api.endpoint_url)

    description = await provider.check(connect=True)

    assert "sending enabled" in description
    assert [(r.method, r.path) for r in ses_api.requests] == [("GET", "/v2/email/account")]


async def test_check_reports_paused_sending(
    ses_api: SesApiFake, make_provider: MakeProvider
) -> None:
    ses_api.answer(AwsAnswer(body={"SendingEnabled": False}))

    with pytest.raises(ProviderAccountError) as caught:
        await make_provider(ses_api.endpoint_url).check(connect=True)

    assert caught.value.code == "sending_paused"


async def test_check_with_bad_credentials_is_an_account_refusal(
    ses_api: SesApiFake, make_provider: MakeProvider
) -> None:
    ses_api.answer(aws(403, "UnrecognizedClientException"))

    with pytest.raises(ProviderAccountError) as caught:
        await make_provider(ses_api.endpoint_url).check(connect=True)

    assert caught.value.code == "UnrecognizedClientException"


async def test_check_without_connect_calls_nothing(
    ses_api: SesApiFake, make_provider: MakeProvider
) -> None:
    description = await make_provider(ses_api.endpoint_url).check()

    assert description == "ses eu-west-1 from notify@notifier.example"
    assert ses_api.requests == []


@pytest.mark.parametrize(
    "options",
    [
        {"from_address": SENDER},
        {"region": "eu-west-1"},
        {"region": "eu-west-1", "from_address": SENDER, "access_key_id": "AKID"},
        {"region": "eu-west-1", "from_address": SENDER, "timeout_seconds": 0},
        {"region": "eu-west-1", "from_address": SENDER, "max_concurrency": "many"},
    ],
)
def test_incomplete_configuration_is_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        SesProvider("ses-test", Lane.EMAIL_TRANSACTIONAL, options)


# --------------------------------------------------------------------------- shared contract


class TestSesContract(ProviderContract):
    """The contract every provider keeps (providers/contract.py), against the SES API fake."""

    provider_class = SesProvider
    lane = Lane.EMAIL_TRANSACTIONAL
    error_tables = (ERROR_TABLE,)

    @pytest.fixture
    def provider_options(self, ses_api: SesApiFake) -> dict[str, Any]:
        return {
            "region": "eu-west-1",
            "endpoint_url": ses_api.endpoint_url,
            "access_key_id": TEST_CREDENTIALS["aws_access_key_id"],
            "secret_access_key": SECRET,
            "from_address": SENDER,
            "timeout_seconds": 5,
        }

    @pytest.fixture
    def message_for(self) -> Callable[[Lane], EmailMessage]:
        return lambda lane: email(lane=lane)

    @pytest.fixture
    def received(self, ses_api: SesApiFake) -> Callable[[], int]:
        return lambda: len(ses_api.requests)

    @pytest.fixture
    def lost_answer(self, ses_api: SesApiFake, provider_options: dict[str, Any]) -> dict[str, Any]:
        ses_api.answer(AwsAnswer(delay=5))
        return {**provider_options, "timeout_seconds": 0.5}
