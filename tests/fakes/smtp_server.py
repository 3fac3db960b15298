"""A real SMTP server for tests: aiosmtpd in a thread, with TLS, AUTH and programmable replies.

The server speaks genuine SMTP on a TCP port of 127.0.0.1, so the adapter under test uses its
real client library over the wire. It supports:

* ``tls="none"``, ``"starttls"`` (STARTTLS required before MAIL) or ``"implicit"`` (TLS from the
  first byte), with a private CA and a server certificate generated at test time
  (:func:`make_tls_files`; give clients ``server.tls_files.ca_file``);
* AUTH PLAIN and LOGIN against ``users`` (a mapping of login to password); a wrong password is
  answered ``535 5.7.8``;
* programmable replies: :meth:`FakeSmtpServer.reply_to_mail`, :meth:`reply_to_rcpt` (per
  address), :meth:`reply_to_data`, and :meth:`delay_data` (wait before answering DATA);
* records: every accepted message in :attr:`messages` (:class:`ReceivedMail`: envelope, raw
  bytes, parsed message, TLS and login) and the number of TCP connections in
  :attr:`connections`; :meth:`drop_connections` closes every open session from the server side
  (what an idle timeout does).

Use it as a context manager (or ``start()`` / ``stop()``) so no server outlives its test.

Facts this relies on (checked against aiosmtpd 1.4): aiosmtpd's ``Controller(port=0)`` fails
its self-check, so a free port is bound first and passed in; the authenticator answers
``AuthResult(success=..., handled=False)`` so a failed login gets its 535.
"""

from __future__ import annotations

import asyncio
import datetime
import email
import email.message
import email.policy
import ipaddress
import socket
import ssl
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TlsMode = Literal["none", "starttls", "implicit"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (also the 'connection refused' target)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- certificates


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of a private CA and of a server certificate it signed."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def make_tls_files(
    directory: Path, hostnames: Sequence[str] = ("localhost", "127.0.0.1")
) -> TlsFiles:
    """Generate a self-signed CA and a server certificate for ``hostnames`` (names or IPs)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _ca_certificate(ca_key)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _server_certificate(server_key, ca_key, ca_cert, hostnames)
    files = TlsFiles(
        ca_file=directory / "ca.pem",
        cert_file=directory / "server.pem",
        key_file=directory / "server.key",
    )
    files.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


def _validity() -> tuple[datetime.datetime, datetime.datetime]:
    now = datetime.datetime.now(datetime.UTC)
    return now - datetime.timedelta(hours=1), now + datetime.timedelta(days=2)


def _ca_certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "notifier test CA")])
    not_before, not_after = _validity()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _server_certificate(
    key: ec.EllipticCurvePrivateKey,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    hostnames: Sequence[str],
) -> x509.Certificate:
    not_before, not_after = _validity()
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(_alt_names(hostnames)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def _alt_names(hostnames: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hostnames:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


# --------------------------------------------------------------------------- server


@dataclass(frozen=True)
class ReceivedMail:
    """One message the fake accepted."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: email.message.EmailMessage
    tls: bool
    login: str | None


@dataclass
class _Script:
    """What the server answers instead of its default "250 OK"."""

    mail_reply: str | None = None
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_reply: str | None = None
    data_delay: float = 0.0
    accept_before_delay: bool = False  # a relay that queued the message, then lost the answer


class _Handler:
    def __init__(self, server: FakeSmtpServer) -> None:
        self._server = server

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if self._server.script.mail_reply:
            return self._server.script.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        reply = self._server.script.rcpt_replies.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        script = self._server.script
        if script.accept_before_delay:
            self._server.record(server, session, envelope)
        if script.data_delay:
            await asyncio.sleep(script.data_delay)
        if script.accept_before_delay:
            return "250 2.0.0 OK queued"
        if script.data_reply:
            return script.data_reply
        self._server.record(server, session, envelope)
        return f"250 2.0.0 OK queued as fake-{len(self._server.messages)}"


class _Controller(Controller):
    """Builds one SMTP protocol per connection and tells the fake about each."""

    def __init__(self, fake: FakeSmtpServer, handler: _Handler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._fake = fake

    def factory(self) -> SMTP:
        protocol = super().factory()
        self._fake.opened(protocol)
        return protocol


class FakeSmtpServer:
    """A real SMTP server on 127.0.0.1; see the module docstring."""

    def __init__(
        self,
        *,
        tls: TlsMode = "none",
        users: Mapping[str, str] | None = None,
        certificate_dir: Path | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        if tls != "none" and certificate_dir is None:
            raise ValueError("a TLS fake needs a certificate_dir for its generated certificate")
        self.tls = tls
        self.users = dict(users or {})
        self.host = host
        self.port = free_port(host)
        self.tls_files = make_tls_files(certificate_dir) if certificate_dir else None
        self.script = _Script()
        self.messages: list[ReceivedMail] = []
        self._protocols: list[SMTP] = []
        self._lock = threading.Lock()
        self._controller: _Controller | None = None

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        self._controller = _Controller(self, _Handler(self), **self._controller_options())
        self._controller.start()
        with self._lock:
            self._protocols.clear()  # forget the controller's own start-up probe
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _controller_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"hostname": self.host, "port": self.port}
        if self.users:
            options["authenticator"] = self._authenticate
            # aiosmtpd counts only STARTTLS as TLS; with implicit TLS every byte is encrypted.
            options["auth_require_tls"] = self.tls == "starttls"
        if self.tls == "starttls":
            assert self.tls_files is not None
            options["tls_context"] = self.tls_files.server_context()
            options["require_starttls"] = True
        if self.tls == "implicit":
            assert self.tls_files is not None
            options["ssl_context"] = self.tls_files.server_context()
        return options

    # ---------------------------------------------------------------- programming

    def reply_to_mail(self, reply: str | None) -> None:
        """Answer every MAIL FROM with ``reply`` (e.g. "451 4.3.0 try later"); None: accept."""
        self.script.mail_reply = reply

    def reply_to_rcpt(self, address: str, reply: str | None) -> None:
        """Answer RCPT TO:<address> with ``reply`` (e.g. "550 5.1.1 user unknown")."""
        if reply is None:
            self.script.rcpt_replies.pop(address.lower(), None)
        else:
            self.script.rcpt_replies[address.lower()] = reply

    def reply_to_data(self, reply: str | None) -> None:
        """Answer the end of DATA with ``reply`` instead of accepting the message."""
        self.script.data_reply = reply

    def delay_data(self, seconds: float) -> None:
        """Wait this long after the message content before answering DATA."""
        self.script.data_delay = seconds

    def accept_then_stall(self, seconds: float) -> None:
        """Take the message in (it counts as received: a recipient would see it), then wait
        this long before answering DATA: the relay has it, the client never hears so."""
        self.script.accept_before_delay = True
        self.script.data_delay = seconds

    def reset(self) -> None:
        """Forget the programmed replies and what was received."""
        self.script = _Script()
        with self._lock:
            self.messages.clear()
            self._protocols.clear()

    # ---------------------------------------------------------------- observation

    @property
    def connections(self) -> int:
        """TCP connections accepted since start (or the last reset)."""
        with self._lock:
            return len(self._protocols)

    def drop_connections(self) -> None:
        """Close every open session from the server side, like an idle timeout would."""
        controller = self._controller
        if controller is None:
            return
        done = threading.Event()

        def close_all() -> None:
            with self._lock:
                protocols = list(self._protocols)
            for protocol in protocols:
                if protocol.transport is not None:
                    protocol.transport.close()
            done.set()

        controller.loop.call_soon_threadsafe(close_all)
        done.wait(5)

    def opened(self, protocol: SMTP) -> None:
        with self._lock:
            self._protocols.append(protocol)

    def record(self, server: SMTP, session: Session, envelope: Envelope) -> None:
        raw = bytes(envelope.original_content or b"")
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        transport = server.transport
        received = ReceivedMail(
            mail_from=str(envelope.mail_from),
            rcpt_tos=list(envelope.rcpt_tos),
            raw=raw,
            message=parsed,
            tls=transport is not None and transport.get_extra_info("ssl_object") is not None,
            login=session.auth_data if session.authenticated else None,
        )
        with self._lock:
            self.messages.append(received)

    def _authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode()
        password = auth_data.password.decode()
        ok = login in self.users and self.users[login] == password
        return AuthResult(success=ok, handled=False, auth_data=login if ok else None)
