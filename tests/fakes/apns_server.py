"""A local fake of APNs: HTTP/2 over TLS on the ``h2`` package, for contract tests.

Like APNs it takes ``POST /3/device/<token>`` with an ES256 provider token in
``authorization: bearer <jwt>`` (signature checked with the public half of the test's .p8
key, ``kid`` = key id, ``iss`` = team id, ``iat`` within the hour), answers success with one
HEADERS frame ending the stream (``:status 200``, ``apns-id``) and errors with HEADERS plus
ONE JSON DATA frame ``{"reason": ...}``. (Hypercorn cannot play this part: it ends responses
with an empty DATA frame, which aioapns parses as JSON and dies on.)

It runs its own event loop in a background thread, so sync and async tests (and tests whose
code runs on other loops) can share it. Usage::

    key = make_provider_key()
    tls = make_certificates(tmp_path)
    with ApnsFakeServer(key, tls) as apns:
        options = {"key": key.private_pem, "key_id": key.key_id, "team_id": key.team_id,
                   "topic": "com.example.app", "host": apns.host, "port": apns.port,
                   "ca_file": str(tls.ca_file)}
        apns.program("device-token", ApnsAnswer(410, "Unregistered"))
        ...
        apns.requests, apns.connections_made
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import secrets
import ssl
import string
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self, cast

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import ConnectionTerminated, DataReceived, RequestReceived, StreamEnded
from h2.exceptions import H2Error

_DEFAULT_REASONS = {
    400: "BadDeviceToken",
    403: "InvalidProviderToken",
    405: "MethodNotAllowed",
    410: "Unregistered",
    413: "PayloadTooLarge",
    429: "TooManyRequests",
    500: "InternalServerError",
    503: "ServiceUnavailable",
}
_TOKEN_MAX_AGE = 3600  # APNs refuses provider tokens older than an hour


# --------------------------------------------------------------------------- credentials


@dataclass(frozen=True)
class ProviderKey:
    """An APNs signing key (.p8) with its key id and team id."""

    key_id: str
    team_id: str
    private_pem: str
    public_key: ec.EllipticCurvePublicKey

    def write_p8(self, path: Path) -> Path:
        path.write_text(self.private_pem)
        return path


def _apple_id() -> str:
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(10))


def make_provider_key(key_id: str | None = None, team_id: str | None = None) -> ProviderKey:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return ProviderKey(key_id or _apple_id(), team_id or _apple_id(), pem, key.public_key())


@dataclass(frozen=True)
class Certificates:
    """A throw-away CA and a server certificate it signed for localhost and 127.0.0.1."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _certificate(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    extensions: list[tuple[x509.ExtensionType, bool]],
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(issuer_key, hashes.SHA256())


def make_certificates(directory: Path, hostnames: tuple[str, ...] = ("localhost",)) -> Certificates:
    """Write ``ca.pem``, ``server.pem`` and ``server-key.pem`` into ``directory``."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("notifier test CA")
    ca_usage = x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip
    ca = _certificate(
        ca_name,
        ca_key.public_key(),
        ca_name,
        ca_key,
        [(x509.BasicConstraints(ca=True, path_length=0), True), (ca_usage, True)],
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(h) for h in hostnames]
    names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    server = _certificate(
        _name(hostnames[0]),
        server_key.public_key(),
        ca_name,
        ca_key,
        [
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (x509.SubjectAlternativeName(names), False),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        ],
    )
    files = Certificates(
        directory / "ca.pem", directory / "server.pem", directory / "server-key.pem"
    )
    files.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(_pem_key(server_key))
    return files


# --------------------------------------------------------------------------- answers, records


@dataclass(frozen=True)
class ApnsAnswer:
    """A programmed answer: 200 is success; otherwise ``reason`` (default by status) in the
    JSON body, after ``delay`` seconds."""

    status: int = 200
    reason: str | None = None
    delay: float = 0.0

    def body(self) -> bytes:
        reason = self.reason or _DEFAULT_REASONS.get(self.status, "BadRequest")
        document: dict[str, Any] = {"reason": reason}
        if self.status == 410:
            document["timestamp"] = int(time.time() * 1000)
        return json.dumps(document).encode()


@dataclass(frozen=True)
class ReceivedPush:
    """One request as the fake saw it. ``headers`` exclude ``authorization``; ``claims`` are
    the verified provider-token claims (None when the token was refused)."""

    device_token: str
    headers: dict[str, str]
    payload: Any
    claims: dict[str, Any] | None
    answer: ApnsAnswer

    @property
    def authorized(self) -> bool:
        return self.claims is not None


@dataclass
class _State:
    key: ProviderKey
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: list[ReceivedPush] = field(default_factory=list)
    answers: dict[str, deque[ApnsAnswer]] = field(default_factory=dict)
    default_answer: ApnsAnswer = field(default_factory=ApnsAnswer)
    connections_made: int = 0
    protocols: set[_Http2Connection] = field(default_factory=set)
    delayed: set[asyncio.Task[None]] = field(default_factory=set)

    def next_answer(self, device_token: str) -> ApnsAnswer:
        with self.lock:
            queued = self.answers.get(device_token)
            return queued.popleft() if queued else self.default_answer


def verify_provider_token(
    authorization: str, key: ProviderKey
) -> tuple[dict[str, Any] | None, str]:
    """The claims of a valid provider token, or None and the APNs reason for refusing it."""
    if not authorization.lower().startswith("bearer "):
        return None, "MissingProviderToken"
    token = authorization[len("bearer ") :]
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(
            token, key.public_key, algorithms=["ES256"], options={"require": ["iss", "iat"]}
        )
    except jwt.PyJWTError:
        return None, "InvalidProviderToken"
    if header.get("kid") != key.key_id or claims["iss"] != key.team_id:
        return None, "InvalidProviderToken"
    if claims["iat"] < time.time() - _TOKEN_MAX_AGE:
        return None, "ExpiredProviderToken"
    return claims, ""


# --------------------------------------------------------------------------- HTTP/2 protocol


@dataclass
class _Stream:
    headers: dict[str, str]
    body: bytearray = field(default_factory=bytearray)


class _Http2Connection(asyncio.Protocol):
    """One client connection, answering like APNs."""

    def __init__(self, state: _State) -> None:
        self.state = state
        self.conn = H2Connection(H2Configuration(client_side=False, header_encoding="utf-8"))
        self.streams: dict[int, _Stream] = {}
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)  # a stream server's connection
        self.transport = transport
        with self.state.lock:
            self.state.connections_made += 1
            self.state.protocols.add(self)
        self.conn.initiate_connection()
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        with self.state.lock:
            self.state.protocols.discard(self)

    def data_received(self, data: bytes) -> None:
        try:
            events = self.conn.receive_data(data)
        except H2Error:
            self.flush()
            self.close()
            return
        for event in events:
            self.on_event(event)
        self.flush()

    def on_event(self, event: Any) -> None:
        if isinstance(event, RequestReceived):
            # header_encoding="utf-8" (above) makes h2 hand over str pairs; its types say bytes
            headers = cast("list[tuple[str, str]]", event.headers)
            self.streams[event.stream_id] = _Stream(dict(headers))
        elif isinstance(event, DataReceived):
            self.streams[event.stream_id].body += event.data
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, StreamEnded):
            self.on_request(event.stream_id, self.streams.pop(event.stream_id))
        elif isinstance(event, ConnectionTerminated):
            self.close()

    def on_request(self, stream_id: int, stream: _Stream) -> None:
        headers = stream.headers
        apns_id = headers.get("apns-id") or str(uuid.uuid4()).upper()
        path = headers.get(":path", "")
        if headers.get(":method") != "POST" or not path.startswith("/3/device/"):
            self.respond(stream_id, apns_id, ApnsAnswer(405, "MethodNotAllowed"))
            return
        device_token = path.removeprefix("/3/device/")
        claims, refusal = verify_provider_token(headers.get("authorization", ""), self.state.key)
        answer = (
            ApnsAnswer(403, refusal) if claims is None else self.state.next_answer(device_token)
        )
        self.record(device_token, headers, bytes(stream.body), claims, answer)
        if answer.delay:
            task = asyncio.get_running_loop().create_task(
                self.respond_later(stream_id, apns_id, answer)
            )
            self.state.delayed.add(task)
            task.add_done_callback(self.state.delayed.discard)
        else:
            self.respond(stream_id, apns_id, answer)

    def record(
        self,
        device_token: str,
        headers: dict[str, str],
        body: bytes,
        claims: dict[str, Any] | None,
        answer: ApnsAnswer,
    ) -> None:
        try:
            payload: Any = json.loads(body)
        except ValueError:
            payload = body.decode(errors="replace")
        kept = {k: v for k, v in headers.items() if k != "authorization"}
        with self.state.lock:
            self.state.requests.append(ReceivedPush(device_token, kept, payload, claims, answer))

    async def respond_later(self, stream_id: int, apns_id: str, answer: ApnsAnswer) -> None:
        await asyncio.sleep(answer.delay)
        self.respond(stream_id, apns_id, answer)
        self.flush()

    def respond(self, stream_id: int, apns_id: str, answer: ApnsAnswer) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        try:
            if answer.status == 200:
                headers = [(":status", "200"), ("apns-id", apns_id)]
                self.conn.send_headers(stream_id, headers, end_stream=True)
                return
            body = answer.body()
            self.conn.send_headers(
                stream_id,
                [
                    (":status", str(answer.status)),
                    ("apns-id", apns_id),
                    ("content-type", "application/json; charset=utf-8"),
                    ("content-length", str(len(body))),
                ],
            )
            self.conn.send_data(stream_id, body, end_stream=True)
        except H2Error:
            pass  # the client reset the stream or went away

    def flush(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(self.conn.data_to_send())

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


# --------------------------------------------------------------------------- server


class ApnsFakeServer:
    """The fake on 127.0.0.1 (free port), its own event loop in a background thread."""

    def __init__(self, key: ProviderKey, certificates: Certificates) -> None:
        self._state = _State(key=key)
        self.certificates = certificates
        self.host = "127.0.0.1"  # the server certificate names it (IP SAN) and localhost
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None

    @property
    def ca_file(self) -> Path:
        return self.certificates.ca_file

    def _tls(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.certificates.cert_file, self.certificates.key_file)
        context.set_alpn_protocols(["h2"])
        return context

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="apns-fake", daemon=True
        )
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _serve(self) -> asyncio.Server:
        return await asyncio.get_running_loop().create_server(
            lambda: _Http2Connection(self._state), "127.0.0.1", 0, ssl=self._tls()
        )

    def stop(self) -> None:
        if self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
        self._thread = None

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._state.delayed):
            task.cancel()
        with self._state.lock:
            protocols = list(self._state.protocols)
        for protocol in protocols:
            protocol.close()
        await asyncio.sleep(0)
        await asyncio.wait_for(self._server.wait_closed(), timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def program(self, device_token: str, *answers: ApnsAnswer) -> None:
        """Queue answers for a device token; once used up, it gets the default answer."""
        with self._state.lock:
            self._state.answers.setdefault(device_token, deque()).extend(answers)

    def set_default_answer(self, answer: ApnsAnswer) -> None:
        with self._state.lock:
            self._state.default_answer = answer

    @property
    def requests(self) -> list[ReceivedPush]:
        with self._state.lock:
            return list(self._state.requests)

    @property
    def connections_made(self) -> int:
        """TLS connections accepted so far."""
        with self._state.lock:
            return self._state.connections_made
