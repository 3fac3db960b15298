"""Local SNS endpoints for the real boto3 client.

* :class:`MotoSns` runs moto's server (``ThreadedMotoServer``) on 127.0.0.1: real SNS
  semantics for what moto implements (E.164 validation, SMS attributes, opt-out checks: moto
  treats numbers ending in ``99`` as opted out). What it "sent" is read back over HTTP from
  ``GET /moto-api/data.json``. Moto's state is process-wide; look messages up by the
  ``MessageId`` you got back rather than counting them.
* :class:`FakeSnsApi` is a tiny SNS query-protocol server with programmable answers (AWS XML
  errors with status and code, Retry-After, delays), so throttling, 5xx and timeouts go through
  the real boto3 client. It records every request with its form fields (so the message
  attributes, which moto does not keep, can be asserted) and checks that requests are signed
  with its access key id (403 ``InvalidClientTokenId`` otherwise, like AWS).
"""

from __future__ import annotations

import json
import threading
import urllib.request
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from moto.server import ThreadedMotoServer

from tests.fakes.http_server import FakeHTTPServer

REGION = "eu-west-1"
ACCESS_KEY_ID = "AKIAFAKESNS000000000"
SECRET_ACCESS_KEY = "fake-sns-secret-access-key-0123456789"
NAMESPACE = "http://sns.amazonaws.com/doc/2010-03-31/"


@dataclass(frozen=True)
class SentSms:
    message_id: str
    phone_number: str
    message: str


class MotoSns:
    """moto's SNS in a thread, for ``endpoint_url``."""

    def __init__(self, region: str = REGION) -> None:
        self.region = region
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._started = False

    def start(self) -> Self:
        self._server.start()
        self._started = True
        return self

    def stop(self) -> None:
        if self._started:
            self._server.stop()
            self._started = False

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    @property
    def options(self) -> dict[str, str]:
        """Provider options reaching this server."""
        return {
            "region": self.region,
            "access_key_id": ACCESS_KEY_ID,
            "secret_access_key": SECRET_ACCESS_KEY,
            "endpoint_url": self.endpoint_url,
        }

    def sms_messages(self) -> list[SentSms]:
        """Every SMS moto's SNS accepted in this process."""
        with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/data.json", timeout=10) as r:
            data = json.load(r)
        return [
            SentSms(sms["message_id"], sms["phone_number"], sms["message"])
            for sms in data.get("sns", {}).get("SMS", [])
        ]

    def sms_message(self, message_id: str) -> SentSms | None:
        return next((m for m in self.sms_messages() if m.message_id == message_id), None)


# ------------------------------------------------------------------------------ fake SNS API


@dataclass(frozen=True)
class SnsAnswer:
    """A programmed answer: ``code=None`` means the action's normal answer, sent with these
    headers after this delay."""

    status: int = 200
    code: str | None = None
    message: str = "fake sns error"
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0

    @classmethod
    def error(
        cls,
        status: int,
        code: str,
        message: str = "fake sns error",
        headers: Mapping[str, str] | None = None,
    ) -> SnsAnswer:
        return cls(status, code, message, dict(headers or {}))

    @classmethod
    def slow(cls, delay: float) -> SnsAnswer:
        return cls(delay=delay)


@dataclass(frozen=True)
class SnsRequest:
    form: dict[str, str]
    headers: dict[str, str]

    @property
    def action(self) -> str:
        return self.form.get("Action", "")

    def message_attributes(self) -> dict[str, str]:
        """``MessageAttributes`` as name -> string value."""
        entries: dict[str, dict[str, str]] = {}
        for key, value in self.form.items():
            if key.startswith("MessageAttributes.entry."):
                index, _, part = key.removeprefix("MessageAttributes.entry.").partition(".")
                entries.setdefault(index, {})[part] = value
        return {e["Name"]: e.get("Value.StringValue", "") for e in entries.values()}


class FakeSnsApi:
    def __init__(self, access_key_id: str = ACCESS_KEY_ID, region: str = REGION) -> None:
        self.access_key_id = access_key_id
        self.region = region
        self.requests: list[SnsRequest] = []
        self.opted_out: set[str] = set()  # numbers CheckIfPhoneNumberIsOptedOut reports
        self.in_flight = 0
        self.max_in_flight = 0
        self._answers: deque[SnsAnswer] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        self._server = FakeHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases delayed answers
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint_url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        assert isinstance(host, str)  # an AF_INET address: (host, port)
        return f"http://{host}:{port}"

    @property
    def options(self) -> dict[str, str]:
        """Provider options reaching this server with the right credentials."""
        return {
            "region": self.region,
            "access_key_id": self.access_key_id,
            "secret_access_key": SECRET_ACCESS_KEY,
            "endpoint_url": self.endpoint_url,
        }

    @property
    def publishes(self) -> list[SnsRequest]:
        return [r for r in self.requests if r.action == "Publish"]

    def program(self, *answers: SnsAnswer) -> None:
        """Answer the next signed requests with these, in order; then normally."""
        with self._lock:
            self._answers.extend(answers)

    # ----------------------------------------------------------------- serving

    def handle(self, request: SnsRequest) -> tuple[SnsAnswer, str]:
        """The answer and its XML for one request (called on the server's threads)."""
        with self._lock:
            self.requests.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if f"Credential={self.access_key_id}/" not in request.headers.get("Authorization", ""):
            denied = SnsAnswer.error(
                403,
                "InvalidClientTokenId",
                "The security token included in the request is invalid.",
            )
            return denied, error_xml(denied)
        answer = self._next_answer()
        if answer.code is not None:
            return answer, error_xml(answer)
        normal = self._normal_answer(request)
        if normal.code is not None:
            return normal, error_xml(normal)
        return answer, success_xml(request.action, self._result(request))

    def done(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def wait(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    def _next_answer(self) -> SnsAnswer:
        with self._lock:
            return self._answers.popleft() if self._answers else SnsAnswer()

    def _normal_answer(self, request: SnsRequest) -> SnsAnswer:
        if request.action not in ("Publish", "GetSMSAttributes", "CheckIfPhoneNumberIsOptedOut"):
            return SnsAnswer.error(400, "InvalidAction", f"Unknown action {request.action}")
        return SnsAnswer()

    def _result(self, request: SnsRequest) -> str:
        if request.action == "Publish":
            return f"<MessageId>{uuid.uuid4()}</MessageId>"
        if request.action == "CheckIfPhoneNumberIsOptedOut":
            opted_out = request.form.get("phoneNumber") in self.opted_out
            return f"<isOptedOut>{str(opted_out).lower()}</isOptedOut>"
        return (
            "<attributes><entry><key>DefaultSMSType</key><value>Transactional</value></entry>"
            "<entry><key>MonthlySpendLimit</key><value>1</value></entry></attributes>"
        )


def success_xml(action: str, result: str) -> str:
    return (
        f'<{action}Response xmlns="{NAMESPACE}"><{action}Result>{result}</{action}Result>'
        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
        f"</{action}Response>"
    )


def error_xml(answer: SnsAnswer) -> str:
    fault = "Receiver" if answer.status >= 500 else "Sender"
    return (
        f'<ErrorResponse xmlns="{NAMESPACE}"><Error><Type>{fault}</Type>'
        f"<Code>{escape(answer.code or '')}</Code><Message>{escape(answer.message)}</Message>"
        f"</Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    )


def _handler_for(api: FakeSnsApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            request = SnsRequest(
                form=dict(parse_qsl(raw, keep_blank_values=True)),
                headers=dict(self.headers.items()),
            )
            try:
                answer, xml = api.handle(request)
                if answer.delay:
                    api.wait(answer.delay)
                self._answer(answer, xml)
            finally:
                api.done()

        def _answer(self, answer: SnsAnswer, xml: str) -> None:
            payload = xml.encode()
            try:
                self.send_response(answer.status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
