"""SMTP email provider (aiosmtplib): any SMTP relay, with a small pool of reused sessions.

Options (secrets already resolved):

==================  ===========================================================================
``host``            relay host name or IP (required)
``port``            TCP port; default 587 for ``starttls``, 465 for ``implicit``, 25 for ``none``
``username``        AUTH login (optional; AUTH PLAIN/LOGIN is used when given)
``password``        AUTH password (required with ``username``)
``tls``             ``"starttls"`` (default; STARTTLS is required, not opportunistic),
                    ``"implicit"`` (TLS from the first byte, "SMTPS") or ``"none"``
``ca_file``         PEM file of a private CA to trust instead of the system store (optional)
``from_address``    envelope sender and ``From:`` address (required)
``from_name``       display name of ``From:`` (optional)
``pool_size``       open sessions kept and the most used at once (default 4)
``timeout_seconds`` connect and per-command timeout (default 10)
``helo_hostname``   name announced in EHLO (default: this machine's FQDN, looked up once)
==================  ===========================================================================

Sessions: each provider instance keeps up to ``pool_size`` SMTP sessions open on the event loop
that calls :meth:`SmtpProvider.send` and reuses them (one transaction at a time per session). A
session the server closed while idle is replaced transparently: a failure of MAIL FROM on a
reused session (disconnect or 421) proves nothing was sent, so the message goes out on a fresh
session instead.

Outcomes (:mod:`providers.email.smtp_errors`): the SMTP reply code decides, through
:data:`REPLY_TABLE`. A recipient refused with an
RFC 3463 "bad destination mailbox" status (5.1.1, 5.1.2, 5.1.3, 5.1.6, 5.1.10) is an
:class:`InvalidRecipientError` (hard bounce, suppressed); any other 5xx is permanent, 4xx is
transient about this message, except 421 and 454 which say the relay itself is unavailable.
Network failures before DATA mean the relay is unavailable with ``accepted_unknown=False`` (the
message was not sent; failover is safe); a timeout or disconnect during DATA is the same with
``accepted_unknown=True`` (the relay may have queued it). A failed login (530/534/535/538) and a
server certificate that does not verify are account-level refusals: the message fails over and
the relay's breaker opens. Error messages carry the reply code, the enhanced status and the
relay's reply text, never the subject, the body or a credential.

Identity: the Message-ID is derived from the notification id (``<id@from-domain>``), so a
resend after "acceptance unknown" carries the same Message-ID and mail clients show one
message.
"""

from __future__ import annotations

import asyncio
import io
import socket
import ssl
from datetime import UTC, datetime
from email.generator import BytesGenerator
from email.headerregistry import Address
from email.message import EmailMessage as MimeMessage
from email.policy import SMTP as SMTP_POLICY
from email.policy import SMTPUTF8 as SMTPUTF8_POLICY
from email.utils import format_datetime
from pathlib import Path
from typing import ClassVar, Literal, Self

import aiosmtplib
from aiosmtplib.email import parse_address
from pydantic import model_validator

from providers.email.headers import extra_headers, message_id_for
from providers.email.smtp_errors import (
    Failed,
    Stage,
    translate_failure,
)
from providers.interface import (
    Channel,
    ConfigurationError,
    EmailMessage,
    InvalidRecipientError,
    Message,
    PermanentError,
    Provider,
    SendResult,
)
from providers.options import ProviderOptions, option

_DEFAULT_PORTS = {"starttls": 587, "implicit": 465, "none": 25}


class SmtpOptions(ProviderOptions):
    """The SMTP adapter's options (the table in the module docstring)."""

    host: str = option(help="relay host name or IP")
    port: int | None = option(
        None, ge=1, le=65535, help="TCP port; 587 for starttls, 465 for implicit, 25 for none"
    )
    tls: Literal["starttls", "implicit", "none"] = option("starttls", help="TLS mode")
    username: str | None = option(None, help="AUTH login")
    password: str | None = option(None, secret=True, help="AUTH password (with username)")
    ca_file: str | None = option(None, help="PEM file of a private CA to trust")
    from_address: str = option(help="envelope sender and From: address")
    from_name: str | None = option(None, help="display name of From:")
    pool_size: int = option(4, ge=1, help="open sessions kept and the most used at once")
    timeout_seconds: float = option(10, gt=0, help="connect and per-command timeout")
    helo_hostname: str | None = option(None, help="name announced in EHLO (default: FQDN)")

    @model_validator(mode="after")
    def _password_with_username(self) -> Self:
        if self.username and self.password is None:
            raise ValueError("username given without password")
        return self


def is_bare_address(address: str) -> bool:
    """True for a plain addr-spec that goes on MAIL/RCPT unchanged. The client library would
    quietly send "bob@example.com> NOTIFY=NEVER" or "Bob <bob@x>" to a different string."""
    try:
        return parse_address(address) == address
    except ValueError:
        return False


def wire_bytes(mime: MimeMessage, *, utf8: bool, cte_type: str) -> bytes:
    """The message as sent. Header lines fold only past RFC 5322's hard limit of 998
    characters: the default 78 would fold a long ``List-Unsubscribe`` URL, which has no space to
    fold at, into RFC 2047 encoded words that mail clients do not read as a URL."""
    policy = (SMTPUTF8_POLICY if utf8 else SMTP_POLICY).clone(
        max_line_length=998, cte_type=cte_type
    )
    buffer = io.BytesIO()
    BytesGenerator(buffer, policy=policy).flatten(mime)
    return buffer.getvalue()


# --------------------------------------------------------------------------- session pool


class _SessionPool:
    """Idle SMTP sessions of one event loop, and a bound on sessions in use."""

    def __init__(self, size: int) -> None:
        self.loop = asyncio.get_running_loop()
        self.slots = asyncio.Semaphore(size)
        self._idle: list[aiosmtplib.SMTP] = []

    def take_idle(self) -> aiosmtplib.SMTP | None:
        while self._idle:
            client = self._idle.pop()  # most recently used first: least likely timed out
            if client.is_connected:
                return client
        return None

    def put_back(self, client: aiosmtplib.SMTP) -> None:
        if client.is_connected:
            self._idle.append(client)

    async def put_back_after_failure(self, client: aiosmtplib.SMTP, timeout: float) -> None:
        """Reset the envelope so the session can carry the next message, or drop it."""
        if not client.is_connected:
            return
        try:
            await client.rset(timeout=timeout)
        except (aiosmtplib.SMTPException, OSError):
            client.close()
            return
        self.put_back(client)

    async def close(self, timeout: float) -> None:
        idle, self._idle = self._idle, []
        for client in idle:
            try:
                await client.quit(timeout=timeout)
            except (aiosmtplib.SMTPException, OSError):
                client.close()


# --------------------------------------------------------------------------- provider


class SmtpProvider(Provider):
    kind: ClassVar[str] = "smtp"
    channel: ClassVar[Channel] = Channel.EMAIL
    options_schema: ClassVar[type[ProviderOptions]] = SmtpOptions  # no default rate: the relay's
    config: SmtpOptions

    def _configure(self) -> None:
        config = self.config
        self.host, self.tls = config.host, config.tls
        self.port = config.port or _DEFAULT_PORTS[self.tls]
        self.username, self._password = config.username, config.password
        self.from_address, self.from_name = config.from_address, config.from_name
        self.from_domain = _domain_of(self.from_address)
        self.pool_size, self.timeout = config.pool_size, config.timeout_seconds
        self.helo_hostname = config.helo_hostname
        self._tls_context = self._build_tls_context(config.ca_file)
        self._pool: _SessionPool | None = None

    # ---------------------------------------------------------------- interface

    async def _send(self, message: Message) -> SendResult:
        message = self.narrow(message, EmailMessage)
        if not is_bare_address(message.to):
            raise InvalidRecipientError(
                "recipient is not a plain email address", code="invalid_address"
            )
        mime, message_id = self.compose(message)
        pool = self._pool_of_running_loop()
        async with pool.slots:
            try:
                response = await self._deliver(pool, message.to, mime)
            except Failed as failed:
                raise translate_failure(failed.stage, failed.cause) from failed.cause
        return SendResult(provider_message_id=message_id, response_code=str(response.code))

    async def check(self, connect: bool = False) -> str:
        description = f"smtp {self.host}:{self.port} tls={self.tls}"
        if self.username:
            description += f" as {self.username}"
        if not connect:
            return description
        try:
            client = await self._open()
        except Failed as failed:
            raise translate_failure(failed.stage, failed.cause) from failed.cause
        try:
            await client.quit(timeout=self.timeout)
        except (aiosmtplib.SMTPException, OSError):
            client.close()
        return description + ": connected"

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None and pool.loop is asyncio.get_running_loop():
            await pool.close(self.timeout)

    # ---------------------------------------------------------------- message

    def compose(self, message: EmailMessage) -> tuple[MimeMessage, str]:
        """The MIME message to transmit and its Message-ID without angle brackets."""
        mime = MimeMessage(policy=SMTP_POLICY)
        message_id = message_id_for(message.notification_id, self.from_domain)
        try:
            self._set_headers(mime, message, message_id)
            mime.set_content(message.text)
            if message.html:
                mime.add_alternative(message.html, subtype="html")
        except (ValueError, TypeError) as e:
            raise PermanentError(
                "message cannot be encoded as email (invalid address or header)",
                code="invalid_message",
            ) from e
        return mime, message_id.strip("<>")

    def _set_headers(self, mime: MimeMessage, message: EmailMessage, message_id: str) -> None:
        mime["From"] = Address(self.from_name or "", addr_spec=self._sender(message))
        mime["To"] = message.to
        mime["Subject"] = message.subject
        mime["Date"] = format_datetime(datetime.now(UTC))
        mime["Message-ID"] = message_id
        for header, value in extra_headers(message):
            mime[header] = value

    def _sender(self, message: EmailMessage) -> str:
        """The service's From address when the message carries one, else the configured one
        (also the envelope sender, so bounces go where the From says)."""
        return message.from_address or self.from_address

    # ---------------------------------------------------------------- sessions

    def _pool_of_running_loop(self) -> _SessionPool:
        loop = asyncio.get_running_loop()
        if self._pool is None or self._pool.loop is not loop:
            # Sessions belong to the loop that opened them; another loop starts afresh.
            self._pool = _SessionPool(self.pool_size)
        return self._pool

    async def _deliver(
        self, pool: _SessionPool, recipient: str, mime: MimeMessage
    ) -> aiosmtplib.SMTPResponse:
        reused = pool.take_idle()
        if reused is not None:
            try:
                return await self._use(pool, reused, recipient, mime)
            except Failed as failed:
                if not failed.stale_session:
                    raise
        return await self._use(pool, await self._open(), recipient, mime)

    async def _use(
        self, pool: _SessionPool, client: aiosmtplib.SMTP, recipient: str, mime: MimeMessage
    ) -> aiosmtplib.SMTPResponse:
        try:
            response = await self._transaction(client, recipient, mime)
        except Failed:
            await pool.put_back_after_failure(client, self.timeout)
            raise
        pool.put_back(client)
        return response

    async def _open(self) -> aiosmtplib.SMTP:
        if self.helo_hostname is None:
            self.helo_hostname = await asyncio.to_thread(socket.getfqdn)
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self._password,
            local_hostname=self.helo_hostname,
            timeout=self.timeout,
            use_tls=self.tls == "implicit",
            start_tls=self.tls == "starttls",
            tls_context=self._tls_context,
        )
        try:
            await client.connect()
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as e:
            client.close()
            raise Failed(Stage.CONNECT, e) from e
        return client

    async def _transaction(
        self, client: aiosmtplib.SMTP, recipient: str, mime: MimeMessage
    ) -> aiosmtplib.SMTPResponse:
        """MAIL, RCPT, DATA on an open session, each failure tagged with its stage."""
        try:
            payload, mail_options, encoding = self._envelope(client, recipient, mime)
            sender = mime["From"].addresses[0].addr_spec
            await client.mail(sender, options=mail_options, encoding=encoding)
            await client.rcpt(recipient, encoding=encoding)
        except (TimeoutError, aiosmtplib.SMTPException, OSError, ValueError) as e:
            raise Failed(Stage.ENVELOPE, e) from e
        try:
            return await client.data(payload)
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as e:
            raise Failed(Stage.DATA, e) from e

    def _envelope(
        self, client: aiosmtplib.SMTP, recipient: str, mime: MimeMessage
    ) -> tuple[bytes, list[str], str]:
        """The bytes to send, MAIL FROM options and address encoding for this session."""
        utf8 = not (mime["From"].addresses[0].addr_spec + recipient).isascii()
        if utf8 and not client.supports_extension("smtputf8"):
            raise aiosmtplib.SMTPNotSupported("SMTPUTF8 is needed for a non-ASCII address")
        eight_bit = client.supports_extension("8bitmime")
        payload = wire_bytes(mime, utf8=utf8, cte_type="8bit" if eight_bit else "7bit")
        options = ["SMTPUTF8"] if utf8 else []
        if eight_bit:
            options.append("BODY=8BITMIME")
        if client.supports_extension("size"):
            options.insert(0, f"SIZE={len(payload)}")
        return payload, options, "utf-8" if utf8 else "ascii"

    # ---------------------------------------------------------------- configuration

    def _build_tls_context(self, ca_file: str | None) -> ssl.SSLContext | None:
        if self.tls == "none":
            return None
        if ca_file and not Path(ca_file).is_file():
            raise ConfigurationError(f"ca_file {ca_file} not found")
        return ssl.create_default_context(cafile=ca_file or None)


def _domain_of(address: str) -> str:
    """The from-address's domain; refuses what cannot go on MAIL FROM, so that an address
    the client library refuses later can only be the recipient's."""
    local, _, domain = address.rpartition("@")
    if not local or not domain or not is_bare_address(address):
        raise ConfigurationError("from_address is not an address")
    return domain
