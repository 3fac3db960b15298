"""Contract tests of the SMTP adapter against a real SMTP server (aiosmtpd, tests/fakes)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable, Iterator
from email import parser as email_parser
from email import policy as email_policy
from pathlib import Path
from typing import Any

import pytest

from providers.contract import ProviderContract
from providers.email.smtp import SmtpProvider
from providers.email.smtp_errors import REPLY_TABLE
from providers.interface import (
    ConfigurationError,
    EmailMessage,
    InvalidRecipientError,
    Lane,
    PermanentError,
    ProviderAccountError,
    ProviderError,
    ProviderUnavailableError,
    SendResult,
    SuppressionReason,
    TransientError,
)
from tests.fakes.smtp_server import FakeSmtpServer, free_port

pytestmark = pytest.mark.anyio

USERS = {"mailer": "correct horse battery staple"}
SUBJECT = "Votre code de connexion ✓"
TEXT = "Grüße, Alice!\n.\nYour code is 424242.\n"
HTML = "<p>Grüße, <b>Alice</b>! Your code is 424242.</p>"

MakeProvider = Callable[..., SmtpProvider]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def server() -> Iterator[FakeSmtpServer]:
    with FakeSmtpServer() as fake:
        yield fake


@pytest.fixture
def starttls_server(tmp_path: Path) -> Iterator[FakeSmtpServer]:
    with FakeSmtpServer(tls="starttls", users=USERS, certificate_dir=tmp_path) as fake:
        yield fake


@pytest.fixture
def implicit_tls_server(tmp_path: Path) -> Iterator[FakeSmtpServer]:
    with FakeSmtpServer(tls="implicit", users=USERS, certificate_dir=tmp_path) as fake:
        yield fake


@pytest.fixture
async def make_provider() -> AsyncIterator[MakeProvider]:
    """Builds providers pointed at a fake and closes them (their sessions) after the test."""
    made: list[SmtpProvider] = []

    def make(
        server: FakeSmtpServer, lane: Lane = Lane.EMAIL_TRANSACTIONAL, **options: Any
    ) -> SmtpProvider:
        settings: dict[str, Any] = {
            "host": server.host,
            "port": server.port,
            "tls": server.tls,
            "from_address": "notify@notifier.example",
            "from_name": "Notifier Ltd",
            "timeout_seconds": 5,
            "helo_hostname": "worker.notifier.example",
        }
        if server.tls_files is not None:
            settings["ca_file"] = str(server.tls_files.ca_file)
        settings.update(options)
        provider = SmtpProvider("smtp-test", lane, settings)
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


# --------------------------------------------------------------------------- the message


async def test_sends_the_exact_multipart_message(
    server: FakeSmtpServer, make_provider: MakeProvider
) -> None:
    provider = make_provider(server)

    result = await provider.deliver(email(headers={"Reply-To": "help@notifier.example"}))

    assert isinstance(result, SendResult) and result.response_code == "250"
    [received] = server.messages
    assert received.mail_from == "notify@notifier.example"
    assert received.rcpt_tos == ["alice@example.com"]
    message = received.message
    assert message["Message-ID"] == f"<{result.provider_message_id}>"
    assert result.provider_message_id.endswith("@notifier.example")
    assert message["From"] == "Notifier Ltd <notify@notifier.example>"
    assert message["To"] == "alice@example.com"
    assert message["Subject"] == SUBJECT
    assert message["Reply-To"] == "help@notifier.example"
    assert message["X-Notifier-Notification-Id"] == "ntf_0001"
    assert message["Date"] is not None
    assert message.get_content_type() == "multipart/alternative"
    text_part, html_part = message.iter_parts()
    assert text_part.get_content_type() == "text/plain"
    assert text_part.get_content() == TEXT
    assert html_part.get_content_type() == "text/html"
    assert html_part.get_content() == HTML + "\n"
    assert "List-Unsubscribe" not in message


async def test_text_only_message_is_plain_text(
    server: FakeSmtpServer, make_provider: MakeProvider
) -> None:
    await make_provider(server).deliver(email(html=None))

    [received] = server.messages
    assert received.message.get_content_type() == "text/plain"
    assert received.message.get_content() == TEXT


async def test_caller_headers_cannot_override_ours(
    server: FakeSmtpServer, make_provider: MakeProvider
) -> None:
    await make_provider(server).deliver(email(headers={"From": "ceo@bank.example", "X-Tag": "a"}))

    [received] = server.messages
    assert received.message.get_all("From") == ["Notifier Ltd <notify@notifier.example>"]
    assert received.message["X-Tag"] == "a"


@pytest.mark.parametrize(
    ("lane", "expected"),
    [
        (Lane.EMAIL_PROMOTIONAL, "<https://notifier.example/u/abc>"),
        (Lane.EMAIL_TRANSACTIONAL, None),
    ],
)
async def test_list_unsubscribe_only_on_promotional_lane(
    server: FakeSmtpServer, make_provider: MakeProvider, lane: Lane, expected: str | None
) -> None:
    provider = make_provider(server, lane=lane)

    await provider.deliver(email(lane=lane, unsubscribe_url="https://notifier.example/u/abc"))

    [received] = server.messages
    assert received.message["List-Unsubscribe"] == expected
    one_click = "List-Unsubscribe=One-Click" if expected else None
    assert received.message["List-Unsubscribe-Post"] == one_click


async def test_a_long_list_unsubscribe_leaves_as_plain_ascii_never_encoded(
    server: FakeSmtpServer, make_provider: MakeProvider
) -> None:
    url = "https://notifier.example/v1/unsubscribe/" + "a1B2c3D4e5" * 12  # folds past 78 columns
    provider = make_provider(server, lane=Lane.EMAIL_PROMOTIONAL)

    await provider.deliver(email(lane=Lane.EMAIL_PROMOTIONAL, unsubscribe_url=url))

    [received] = server.messages
    head = received.raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    at = next(i for i, raw in enumerate(head) if raw.lower().startswith(b"list-unsubscribe:"))
    assert head[at] == f"List-Unsubscribe: <{url}>".encode("ascii")  # one plain line, no =?utf-8?
    assert not head[at + 1].startswith((b" ", b"\t"))  # and nothing folded after it
    parsed = email_parser.BytesParser(policy=email_policy.default).parsebytes(received.raw)
    assert parsed["List-Unsubscribe"] == f"<{url}>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


async def test_every_send_of_one_notification_carries_the_same_message_id(
    server: FakeSmtpServer, make_provider: MakeProvider
) -> None:
    provider = make_provider(server)

    first = await provider.deliver(email())
    again = await provider.deliver(email())
    other = await provider.deliver(email(notification_id="ntf_0002"))

    ids = [m.message["Message-ID"] for m in server.messages]
    assert ids == ["<ntf_0001@notifier.example>"] * 2 + ["<ntf_0002@notifier.example>"]
    assert first.provider_message_id == again.provider_message_id == "ntf_0001@notifier.example"
    assert other.provider_message_id != first.provider_message_id


async def test_refuses_a_message_of_another_lane(
    server: FakeSmtpServer, make_provider: MakeProvider
) -> None:
    provider = make_provider(server, lane=Lane.EMAIL_TRANSACTIONAL)

    with pytest.raises(PermanentError) as caught:
        await provider.deliver(email(lane=Lane.EMAIL_PROMOTIONAL))

    assert caught.value.code == "lane_mismatch"
    assert server.messages == []


# --------------------------------------------------------------------------- TLS and AUTH


async def test_starttls_and_auth(
    starttls_server: FakeSmtpServer, make_provider: MakeProvider
) -> None:
    provider = make_provider(starttls_server, username="mailer", password=USERS["mailer"])

    await provider.deliver(email())

    [received] = starttls_server.messages
    assert received.tls is True
    assert received.login == "mailer"


async def test_implicit_tls_and_auth(
    implicit_tls_server: FakeSmtpServer, make_provider: MakeProvider
) -> None:
    provider = make_provider(implicit_tls_server, username="mailer", password=USERS["mailer"])

    await provider.deliver(email())

    [received] = implicit_tls_server.messages
    assert received.tls is True
    assert received.login == "mailer"


async def test_wrong_password_is_an_account_refusal_without_the_password(
    starttls_server: FakeSmtpServer, make_provider: MakeProvider
) -> None:
    provider = make_provider(starttls_server, username="mailer", password="hunter2-wrong")

    with pytest.raises(ProviderAccountError) as caught:
        await provider.deliver(email())

    error = caught.value
    assert type(error) is ProviderAccountError
    assert error.accepted_unknown is False  # nothing was sent: the next provider may have it
    assert error.code == "535"
    assert "authentication failed" in str(error)
    for secret_or_content in ("hunter2-wrong", SUBJECT, "424242"):
        assert secret_or_content not in str(error)
    assert starttls_server.messages == []


async def test_untrusted_server_certificate_is_an_account_refusal(
    starttls_server: FakeSmtpServer, make_provider: MakeProvider
) -> None:
    provider = make_provider(starttls_server, ca_file=None)  # system CAs only

    with pytest.raises(ProviderAccountError) as caught:
        await provider.deliver(email())

    assert caught.value.code == "tls_verify"


async def test_check_connects_and_authenticates_without_sending(
    starttls_server: FakeSmtpServer, make_provider: MakeProvider
) -> None:
    good = make_provider(starttls_server, username="mailer", password=USERS["mailer"])
    bad = make_provider(starttls_server, username="mailer", password="wrong")

    assert "connected" in await good.check(connect=True)
    with pytest.raises(ProviderAccountError) as caught:
        await bad.check(connect=True)

    assert caught.value.code == "535"
    assert starttls_server.connections == 2
    assert starttls_server.messages == []


async def test_check_without_connect_only_validates(
    server: FakeSmtpServer, make_provider: MakeProvider
) -> None:
    description = await make_provider(server).check()

    assert description.startswith("smtp 127.0.0.1:")
    assert server.connections == 0


# --------------------------------------------------------------------------- sessions


async def test_reuses_a_small_pool_of_sessions(
    server: FakeSmtpServer, make_provider: MakeProvider
) -> None:
    provider = make_provider(server, pool_size=4)
    messages = [email(notification_id=f"ntf_{n:04}") for n in range(20)]

    results = await asyncio.gather(*(provider.deliver(message) for message in messages))

    assert len({result.provider_message_id for result in results}) == 20
    assert len(server.messages) == 20
    assert 1 <= server.connections <= 4


async def test_reconnects_when_the_server_closed_an_idle_session(
    server: FakeSmtpServer, make_provider: MakeProvider
) -> None:
    provider = make_provider(server)
    await provider.deliver(email(notification_id="ntf_first"))

    server.drop_connections()
    await provider.deliver(email(notification_id="ntf_second"))

    ids = [received.message["X-Notifier-Notification-Id"] for received in server.messages]
    assert ids == ["ntf_first", "ntf_second"]
    assert server.connections == 2


async def test_session_stays_usable_after_a_refused_recipient(
    server: FakeSmtpServer, make_provider: MakeProvider
) -> None:
    provider = make_provider(server)
    server.reply_to_rcpt("gone@example.com", "550 5.1.1 user unknown")

    with pytest.raises(InvalidRecipientError):
        await provider.deliver(email(to="gone@example.com"))
    await provider.deliver(email(to="alice@example.com"))

    assert [received.rcpt_tos for received in server.messages] == [["alice@example.com"]]
    assert server.connections == 1


# --------------------------------------------------------------------------- reply table


@dataclasses.dataclass(frozen=True)
class Row:
    """One relay answer and the typed outcome the adapter must produce."""

    stage: str  # "mail", "rcpt" or "data": where the fake answers with ``reply``
    reply: str | None  # None: accept
    outcome: type[ProviderError | SendResult]
    code: str | None = None
    reason: SuppressionReason | None = None


VENDOR_ANSWERS = [
    Row("rcpt", None, SendResult),
    Row("rcpt", "550 5.1.1 <bob@example.com>: user unknown", InvalidRecipientError, "550",
        SuppressionReason.HARD_BOUNCE),
    Row("rcpt", "551 5.1.6 user has moved", InvalidRecipientError, "551",
        SuppressionReason.HARD_BOUNCE),
    Row("rcpt", "553 5.1.3 bad destination mailbox syntax", InvalidRecipientError, "553",
        SuppressionReason.HARD_BOUNCE),
    Row("rcpt", "550 5.1.10 recipient domain has null MX", InvalidRecipientError, "550",
        SuppressionReason.HARD_BOUNCE),
    Row("rcpt", "550 5.7.1 relaying denied", PermanentError, "550"),
    Row("rcpt", "550 mailbox unavailable", PermanentError, "550"),
    Row("rcpt", "554 5.7.1 rejected by policy", PermanentError, "554"),
    Row("rcpt", "450 4.2.1 mailbox busy, try later", TransientError, "450"),
    Row("rcpt", "452 4.5.3 too many recipients", TransientError, "452"),
    Row("rcpt", "499 4.0.0 something temporary", TransientError, "499"),
    Row("rcpt", "521 5.3.2 does not accept mail", PermanentError, "521"),
    Row("mail", "421 4.3.2 service shutting down", ProviderUnavailableError, "421"),
    Row("mail", "451 4.3.0 greylisted, try later", TransientError, "451"),
    Row("mail", "552 5.3.4 message size exceeds limit", PermanentError, "552"),
    Row("mail", "530 5.7.0 authentication required", ProviderAccountError, "530"),
    Row("data", "451 4.3.0 local error in processing", TransientError, "451"),
    Row("data", "452 4.3.1 insufficient system storage", TransientError, "452"),
    Row("data", "554 5.6.0 message content rejected", PermanentError, "554"),
    Row("data", "550 5.1.1 user unknown", InvalidRecipientError, "550",
        SuppressionReason.HARD_BOUNCE),
]  # fmt: skip


def program(server: FakeSmtpServer, stage: str, recipient: str, reply: str | None) -> None:
    if stage == "mail":
        server.reply_to_mail(reply)
    elif stage == "rcpt":
        server.reply_to_rcpt(recipient, reply)
    else:
        server.reply_to_data(reply)


@pytest.mark.parametrize("row", VENDOR_ANSWERS, ids=lambda row: f"{row.stage}:{row.reply}")
async def test_vendor_answers(
    server: FakeSmtpServer, make_provider: MakeProvider, row: Row
) -> None:
    program(server, row.stage, "bob@example.com", row.reply)

    outcome = await outcome_of(make_provider(server).deliver(email(to="bob@example.com")))

    assert type(outcome) is row.outcome
    if isinstance(outcome, ProviderError):
        assert outcome.code == row.code
        assert outcome.accepted_unknown is False
        assert SUBJECT not in str(outcome) and "424242" not in str(outcome)
        assert len(server.messages) == 0
    if isinstance(outcome, InvalidRecipientError):
        assert outcome.reason == row.reason
    if isinstance(outcome, SendResult):
        assert len(server.messages) == 1


@pytest.mark.parametrize("code", sorted(key for key in REPLY_TABLE if isinstance(key, int)))
async def test_every_row_of_the_reply_table(
    server: FakeSmtpServer, make_provider: MakeProvider, code: int
) -> None:
    expected = REPLY_TABLE[code].error
    server.reply_to_rcpt("bob@example.com", f"{code} {code // 100}.1.1 scripted reply")

    outcome = await outcome_of(make_provider(server).deliver(email(to="bob@example.com")))

    assert type(outcome) is expected
    assert isinstance(outcome, ProviderError) and outcome.code == str(code)


async def outcome_of(send: Any) -> SendResult | ProviderError:
    try:
        return await send
    except ProviderError as error:
        return error


async def test_timeout_after_data_may_have_been_accepted(
    server: FakeSmtpServer, make_provider: MakeProvider
) -> None:
    server.delay_data(5)
    provider = make_provider(server, timeout_seconds=0.5)

    with pytest.raises(TransientError) as caught:
        await provider.deliver(email())

    assert caught.value.code == "timeout"
    assert caught.value.accepted_unknown is True


@pytest.mark.parametrize(
    "recipient",
    ["bob@example.com> NOTIFY=NEVER", "bob@example.com\r\nRCPT TO:<eve@evil.example>",
     "Bob <bob@example.com>", "bob@exa mple.com"],
)  # fmt: skip
async def test_recipient_that_is_not_a_plain_address_is_invalid(
    server: FakeSmtpServer, make_provider: MakeProvider, recipient: str
) -> None:
    provider = make_provider(server)

    with pytest.raises(InvalidRecipientError) as caught:
        await provider.deliver(email(to=recipient))

    assert caught.value.reason == SuppressionReason.INVALID_ADDRESS
    assert server.messages == []


async def test_connection_refused_was_not_accepted() -> None:
    provider = SmtpProvider(
        "smtp-test",
        Lane.EMAIL_TRANSACTIONAL,
        {
            "host": "127.0.0.1",
            "port": free_port(),
            "tls": "none",
            "from_address": "notify@notifier.example",
            "helo_hostname": "worker.notifier.example",
        },
    )

    with pytest.raises(TransientError) as caught:
        await provider.deliver(email())

    assert type(caught.value) is ProviderUnavailableError
    assert caught.value.code == "connect"
    assert caught.value.accepted_unknown is False


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    "options",
    [
        {"from_address": "notify@notifier.example"},
        {"host": "smtp.example", "from_address": "not-an-address"},
        {"host": "smtp.example", "from_address": "a@b.example> SIZE=1"},
        {"host": "smtp.example", "from_address": "a@b.example", "tls": "ssl"},
        {"host": "smtp.example", "from_address": "a@b.example", "username": "u"},
        {"host": "smtp.example", "from_address": "a@b.example", "pool_size": 0},
        {"host": "smtp.example", "from_address": "a@b.example", "ca_file": "/nonexistent.pem"},
    ],
)
def test_incomplete_configuration_is_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        SmtpProvider("smtp-test", Lane.EMAIL_TRANSACTIONAL, options)


def test_cannot_serve_an_sms_lane() -> None:
    options = {"host": "smtp.example", "from_address": "a@b.example"}

    with pytest.raises(ConfigurationError):
        SmtpProvider("smtp-test", Lane.SMS_TRANSACTIONAL, options)


# --------------------------------------------------------------------------- shared contract


class TestSmtpContract(ProviderContract):
    """The contract every provider keeps (providers/contract.py), against the SMTP fake with
    STARTTLS and AUTH, so the password is one of the options."""

    provider_class = SmtpProvider
    lane = Lane.EMAIL_TRANSACTIONAL
    error_tables = (REPLY_TABLE,)

    @pytest.fixture
    def contract_server(self, tmp_path: Path) -> Iterator[FakeSmtpServer]:
        with FakeSmtpServer(tls="starttls", users=USERS, certificate_dir=tmp_path) as fake:
            yield fake

    @pytest.fixture
    def provider_options(self, contract_server: FakeSmtpServer) -> dict[str, Any]:
        assert contract_server.tls_files is not None
        return {
            "host": contract_server.host,
            "port": contract_server.port,
            "from_address": "notify@notifier.example",
            "username": "mailer",
            "password": USERS["mailer"],
            "ca_file": str(contract_server.tls_files.ca_file),
            "timeout_seconds": 5,
            "helo_hostname": "worker.notifier.example",
        }

    @pytest.fixture
    def message_for(self) -> Callable[[Lane], EmailMessage]:
        return lambda lane: email(lane=lane)

    @pytest.fixture
    def received(self, contract_server: FakeSmtpServer) -> Callable[[], int]:
        return lambda: len(contract_server.messages)

    @pytest.fixture
    def lost_answer(
        self, contract_server: FakeSmtpServer, provider_options: dict[str, Any]
    ) -> dict[str, Any]:
        contract_server.delay_data(5)
        return {**provider_options, "timeout_seconds": 0.5}
