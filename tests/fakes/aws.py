"""Local stand-ins for AWS, spoken to by the real boto3 client over HTTP, and SNS message signing.

* :class:`MotoSes`: moto's ``ThreadedMotoServer`` on 127.0.0.1 (a free port). SES refuses an
  unverified sender with ``MessageRejected``, so call :meth:`MotoSes.verify_identity` first;
  :meth:`MotoSes.sent_messages` reads back what was "sent" from ``GET /moto-api/data.json``
  (source, destinations, subject, body; moto keeps the HTML body when there is one, and does not
  keep tags, headers or the configuration set). :meth:`MotoSes.reset` wipes moto's state.
* :class:`SesApiFake`: a tiny HTTP server that answers SES v2 (rest-json) the way AWS does,
  with programmable answers (:class:`AwsAnswer`: status, ``x-amzn-ErrorType``, body, delay, or
  closing the connection without an answer) and a record of every request
  (:class:`RecordedRequest`) and the most requests answered at once (``max_in_flight``),
  so throttling, 5xx, timeouts and the exact wire request can be
  exercised through the real client. Unprogrammed, it accepts SendEmail (``MessageId``
  ``fake-<n>``) and answers GetAccount.
* :class:`SnsSigner`: signs SNS messages as SNS does (SignatureVersion 1 = SHA1withRSA,
  2 = SHA256withRSA over the documented canonical string) with an RSA key and a self-signed
  certificate generated here; hand :meth:`SnsSigner.fetch_certificate` to the verifier.
  :func:`ses_event` builds the SES event JSON that SNS carries.

All servers bind 127.0.0.1 and are context managers; stop them in fixture teardown.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import threading
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Self

import boto3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from moto.server import ThreadedMotoServer

from tests.fakes.http_server import FakeHTTPServer

TEST_CREDENTIALS = {"aws_access_key_id": "AKIDTESTING", "aws_secret_access_key": "testing"}


# --------------------------------------------------------------------------- moto


class MotoSes:
    """moto's SES v2 on a local port; see the module docstring."""

    def __init__(self, region: str = "eu-west-1") -> None:
        self.region = region
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint_url = ""

    def start(self) -> Self:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def client(self) -> Any:
        return boto3.client(
            "sesv2", region_name=self.region, endpoint_url=self.endpoint_url, **TEST_CREDENTIALS
        )

    def verify_identity(self, identity: str) -> None:
        """Create (and so, in moto, verify) an email address or domain identity."""
        self.client().create_email_identity(EmailIdentity=identity)

    def sent_messages(self) -> list[dict[str, Any]]:
        """What moto accepted: dicts with id, source, destinations, subject and body."""
        with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/data.json", timeout=5) as r:
            data = json.load(r)
        return list(data.get("ses", {}).get("Message", []))

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=5).close()


# --------------------------------------------------------------------------- programmable SES


@dataclass(frozen=True)
class AwsAnswer:
    """How :class:`SesApiFake` answers the next requests."""

    status: int = 200
    error_type: str | None = None  # sent as x-amzn-ErrorType, like AWS rest-json services
    message: str = "scripted error"
    body: Mapping[str, Any] | None = None  # None: a default for the status
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering
    drop_connection: bool = False  # read the request, then close without answering


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None


class _SesHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _SesHttpServer
    timeout = 10  # a keep-alive connection idle this long is closed

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def do_PUT(self) -> None:
        self._answer()

    def do_DELETE(self) -> None:
        self._answer()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        fake = self.server.fake
        with fake.in_flight():
            self._respond(fake)

    def _respond(self, fake: SesApiFake) -> None:
        request = self._record()
        answer = fake.answer_for(request)
        if answer.delay and fake.stopping.wait(answer.delay):
            self.close_connection = True
            return
        if answer.drop_connection:
            self.close_connection = True
            return
        status, headers, body = fake.render(request, answer)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _record(self) -> RecordedRequest:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        request = RecordedRequest(
            method=self.command,
            path=self.path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=json.loads(raw) if raw else None,
        )
        self.server.fake.requests.append(request)
        return request


class _SesHttpServer(FakeHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, fake: SesApiFake, host: str) -> None:
        super().__init__((host, 0), _SesHandler)
        self.fake = fake


class SesApiFake:
    """A programmable SES v2 endpoint; see the module docstring."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.requests: list[RecordedRequest] = []
        self.stopping = threading.Event()
        self.max_in_flight = 0  # the most requests it was answering at once
        self._in_flight = 0
        self._lock = threading.Lock()
        self._answer = AwsAnswer()
        self._server = _SesHttpServer(self, host)
        self._thread: threading.Thread | None = None
        host_, port = self._server.server_address[:2]
        assert isinstance(host_, str)  # an AF_INET address: (host, port)
        self.endpoint_url = f"http://{host_}:{port}"

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def answer(self, answer: AwsAnswer) -> None:
        """Answer every following request so (until the next call)."""
        self._answer = answer

    def sent_emails(self) -> list[dict[str, Any]]:
        """The JSON bodies of the SendEmail requests received, as the client sent them."""
        return [
            request.body or {}
            for request in self.requests
            if request.method == "POST" and request.path == "/v2/email/outbound-emails"
        ]

    @contextlib.contextmanager
    def in_flight(self) -> Iterator[None]:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1

    def answer_for(self, request: RecordedRequest) -> AwsAnswer:
        return self._answer

    def render(
        self, request: RecordedRequest, answer: AwsAnswer
    ) -> tuple[int, dict[str, str], bytes]:
        headers = {
            "Content-Type": "application/json",
            "x-amzn-RequestId": str(uuid.uuid4()),
            **answer.headers,
        }
        if answer.error_type:
            headers["x-amzn-ErrorType"] = (
                f"{answer.error_type}:http://internal.amazon.com/coral/com.amazon.sesv2/"
            )
        body = answer.body if answer.body is not None else self._default_body(request, answer)
        return answer.status, headers, json.dumps(body).encode()

    def _default_body(self, request: RecordedRequest, answer: AwsAnswer) -> dict[str, Any]:
        if answer.status >= 300:
            return {"message": answer.message}
        if request.path == "/v2/email/outbound-emails":
            return {"MessageId": f"fake-{len(self.sent_emails())}"}
        if request.path == "/v2/email/account":
            return {
                "SendingEnabled": True,
                "ProductionAccessEnabled": True,
                "EnforcementStatus": "HEALTHY",
                "SendQuota": {"Max24HourSend": 50000.0, "MaxSendRate": 14.0, "SentLast24Hours": 0},
            }
        return {}


# --------------------------------------------------------------------------- SNS signing

_NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_CONFIRMATION_KEYS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
_SIGNATURE_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}


def _string_to_sign(message: Mapping[str, Any]) -> bytes:
    """AWS's canonical string, written independently of the verifier under test."""
    keys = _NOTIFICATION_KEYS if message["Type"] == "Notification" else _CONFIRMATION_KEYS
    return "".join(f"{key}\n{message[key]}\n" for key in keys if key in message).encode()


class SnsSigner:
    """Signs SNS messages like SNS, with a key and self-signed certificate made at test time."""

    def __init__(self, region: str = "eu-west-1", *, expired: bool = False) -> None:
        self.region = region
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        certificate = _self_signed(self.key, expired=expired)
        self.certificate_pem = certificate.public_bytes(serialization.Encoding.PEM)
        # A fresh URL per signer, as AWS publishes each certificate under its own name.
        self.cert_url = (
            f"https://sns.{region}.amazonaws.com/SimpleNotificationService-{uuid.uuid4().hex}.pem"
        )
        self.fetched: list[str] = []

    def fetch_certificate(self, url: str) -> bytes:
        """What the verifier downloads; only this signer's URL exists."""
        self.fetched.append(url)
        if url != self.cert_url:
            raise LookupError(f"no certificate at {url}")
        return self.certificate_pem

    def sign(
        self, message: Mapping[str, Any], signature_version: str = "1", cert_url: str | None = None
    ) -> dict[str, Any]:
        """``message`` with SignatureVersion, SigningCertURL and a genuine Signature."""
        signed = {
            **message,
            "SignatureVersion": signature_version,
            "SigningCertURL": cert_url or self.cert_url,
        }
        digest = _SIGNATURE_HASHES[signature_version]()
        signature = self.key.sign(_string_to_sign(signed), padding.PKCS1v15(), digest)
        signed["Signature"] = base64.b64encode(signature).decode()
        return signed

    def notification(
        self,
        payload: Mapping[str, Any] | str,
        *,
        topic_arn: str | None = None,
        subject: str | None = None,
        signature_version: str = "1",
    ) -> dict[str, Any]:
        """A signed SNS Notification carrying ``payload`` (JSON-encoded when a mapping)."""
        message: dict[str, Any] = {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": topic_arn or self.topic_arn(),
            "Message": payload if isinstance(payload, str) else json.dumps(payload),
            "Timestamp": _now_iso(),
            "UnsubscribeURL": f"https://sns.{self.region}.amazonaws.com/?Action=Unsubscribe",
        }
        if subject is not None:
            message["Subject"] = subject
        return self.sign(message, signature_version)

    def subscription_confirmation(
        self, *, topic_arn: str | None = None, signature_version: str = "1"
    ) -> dict[str, Any]:
        """A signed SubscriptionConfirmation, as SNS posts when a subscription is created."""
        arn = topic_arn or self.topic_arn()
        token = uuid.uuid4().hex * 2
        message = {
            "Type": "SubscriptionConfirmation",
            "MessageId": str(uuid.uuid4()),
            "Token": token,
            "TopicArn": arn,
            "Message": f"You have chosen to subscribe to the topic {arn}.",
            "SubscribeURL": (
                f"https://sns.{self.region}.amazonaws.com/"
                f"?Action=ConfirmSubscription&TopicArn={arn}&Token={token}"
            ),
            "Timestamp": _now_iso(),
        }
        return self.sign(message, signature_version)

    def topic_arn(self, name: str = "ses-events") -> str:
        return f"arn:aws:sns:{self.region}:123456789012:{name}"


def _self_signed(key: rsa.RSAPrivateKey, *, expired: bool) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=10 if expired else 0)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .sign(key, hashes.SHA256())
    )


def _now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# --------------------------------------------------------------------------- SES events


def ses_event(
    event_type: str,
    message_id: str,
    recipients: list[str],
    *,
    publishing: bool = True,
    bounce_type: str = "Permanent",
    bounce_sub_type: str = "General",
    status: str = "5.1.1",
    diagnostic_code: str = "smtp; 550 5.1.1 user unknown",
    timestamp: str = "2026-01-15T10:00:00.000Z",
) -> dict[str, Any]:
    """The JSON SES publishes for an event (``eventType`` for configuration-set event publishing,
    or ``notificationType`` for identity notifications when ``publishing`` is False).

    Event types: "Send", "Delivery", "Bounce", "Complaint", "Reject", "DeliveryDelay", "Open"...
    """
    event: dict[str, Any] = {
        "eventType" if publishing else "notificationType": event_type,
        "mail": {
            "timestamp": timestamp,
            "messageId": message_id,
            "source": "notify@notifier.example",
            "destination": recipients,
            "tags": {"notification_id": ["ntf_0001"]},
        },
    }
    detail = _event_detail(
        event_type, recipients, bounce_type, bounce_sub_type, status, diagnostic_code, timestamp
    )
    if detail is not None:
        event[_detail_key(event_type)] = detail
    return event


def _detail_key(event_type: str) -> str:
    return {"DeliveryDelay": "deliveryDelay", "Rendering Failure": "failure"}.get(
        event_type, event_type[:1].lower() + event_type[1:]
    )


def _event_detail(
    event_type: str,
    recipients: list[str],
    bounce_type: str,
    bounce_sub_type: str,
    status: str,
    diagnostic_code: str,
    timestamp: str,
) -> dict[str, Any] | None:
    if event_type == "Delivery":
        return {
            "timestamp": timestamp,
            "processingTimeMillis": 412,
            "recipients": recipients,
            "smtpResponse": "250 2.6.0 Message received",
            "reportingMTA": "a8-70.smtp-out.amazonses.com",
        }
    if event_type == "Bounce":
        return {
            "bounceType": bounce_type,
            "bounceSubType": bounce_sub_type,
            "bouncedRecipients": [
                {"emailAddress": r, "action": "failed", "status": status,
                 "diagnosticCode": diagnostic_code}
                for r in recipients
            ],
            "timestamp": timestamp,
            "feedbackId": str(uuid.uuid4()),
        }  # fmt: skip
    if event_type == "Complaint":
        return {
            "complainedRecipients": [{"emailAddress": r} for r in recipients],
            "timestamp": timestamp,
            "feedbackId": str(uuid.uuid4()),
            "complaintFeedbackType": "abuse",
        }
    if event_type == "DeliveryDelay":
        return {
            "delayType": "MailboxFull",
            "delayedRecipients": [
                {"emailAddress": r, "status": "4.2.2", "diagnosticCode": "smtp; 452 4.2.2 full"}
                for r in recipients
            ],
            "timestamp": timestamp,
        }
    if event_type == "Reject":
        return {"reason": "Bad content"}
    if event_type == "Send":
        return {}
    if event_type == "Rendering Failure":
        return {"templateName": "welcome", "errorMessage": "Attribute 'name' is not present"}
    return None
