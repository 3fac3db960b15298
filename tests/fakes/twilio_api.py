"""A local stand-in for Twilio's REST API, spoken to by the real ``twilio`` SDK over HTTP.

It implements what the SMS adapter uses:

* ``POST /2010-04-01/Accounts/{sid}/Messages.json`` (form-encoded) answering 201 with a
  Twilio-shaped message (``sid`` ``SM...``), or 400 with Twilio's codes when To, Body or the
  sender is missing;
* ``GET /2010-04-01/Accounts/{sid}.json`` answering the account;

checks HTTP basic auth against its account SID and auth token (401, code 20003, like Twilio),
records every request, and can be programmed with the next answers (status, JSON body with
``code``/``message``, headers such as Retry-After, a delay before answering).

Usage::

    with FakeTwilioApi() as api:
        api.program(TwilioAnswer.error(429, 20429, headers={"Retry-After": "7"}))
        ... TwilioProvider(..., {"base_url": api.base_url, **api.credentials}) ...
        api.messages[0].form["To"]
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl

from tests.fakes.http_server import FakeHTTPServer

DEFAULT_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
DEFAULT_AUTH_TOKEN = "fake-twilio-auth-token-0123456789"
API_VERSION = "2010-04-01"

MESSAGES_PATH = re.compile(rf"^/{API_VERSION}/Accounts/(?P<sid>AC\w+)/Messages\.json$")
ACCOUNT_PATH = re.compile(rf"^/{API_VERSION}/Accounts/(?P<sid>AC\w+)\.json$")


@dataclass(frozen=True)
class TwilioAnswer:
    """A programmed answer. ``body=None`` means the route's normal answer (status and body),
    sent with this answer's headers and after its delay."""

    status: int = 201
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    raw: bytes | None = None  # sent instead of any JSON body (a broken answer)

    @classmethod
    def error(
        cls,
        status: int,
        code: int,
        message: str = "fake twilio error",
        headers: Mapping[str, str] | None = None,
    ) -> TwilioAnswer:
        """An error in Twilio's JSON shape."""
        return cls(status, twilio_error_body(status, code, message), dict(headers or {}))

    @classmethod
    def slow(cls, delay: float) -> TwilioAnswer:
        """The normal success, after ``delay`` seconds."""
        return cls(delay=delay)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    form: dict[str, str]
    headers: dict[str, str]
    auth: tuple[str, str] | None


def twilio_error_body(status: int, code: int, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


class FakeTwilioApi:
    def __init__(
        self, account_sid: str = DEFAULT_ACCOUNT_SID, auth_token: str = DEFAULT_AUTH_TOKEN
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.requests: list[RecordedRequest] = []
        self.created: list[dict[str, Any]] = []  # message resources answered with 201
        self.in_flight = 0
        self.max_in_flight = 0  # most requests served at the same time
        self._answers: deque[TwilioAnswer] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle

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

    # ----------------------------------------------------------------- test API

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        assert isinstance(host, str)  # an AF_INET address: (host, port)
        return f"http://{host}:{port}"

    @property
    def credentials(self) -> dict[str, str]:
        return {"account_sid": self.account_sid, "auth_token": self.auth_token}

    @property
    def messages(self) -> list[RecordedRequest]:
        """The message creations received (authenticated or not)."""
        return [r for r in self.requests if MESSAGES_PATH.match(r.path) and r.method == "POST"]

    def program(self, *answers: TwilioAnswer) -> None:
        """Answer the next authenticated requests with these, in order; then normally."""
        with self._lock:
            self._answers.extend(answers)

    # ----------------------------------------------------------------- serving

    def handle(self, request: RecordedRequest) -> tuple[TwilioAnswer, dict[str, Any]]:
        """The answer and its JSON body for one request (called on the server's threads)."""
        with self._lock:
            self.requests.append(request)
        if request.auth != (self.account_sid, self.auth_token):
            denied = TwilioAnswer.error(401, 20003, "Authenticate")
            return denied, dict(denied.body or {})
        answer = self._next_answer()
        if answer.body is not None:
            return answer, dict(answer.body)
        normal = self._normal_answer(request)
        if normal.status == 201:
            with self._lock:
                self.created.append(dict(normal.body or {}))
        return replace(answer, status=normal.status), dict(normal.body or {})

    def wait(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    def enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _next_answer(self) -> TwilioAnswer:
        with self._lock:
            return self._answers.popleft() if self._answers else TwilioAnswer()

    def _normal_answer(self, request: RecordedRequest) -> TwilioAnswer:
        messages = MESSAGES_PATH.match(request.path)
        account = ACCOUNT_PATH.match(request.path)
        if request.method == "POST" and messages and messages["sid"] == self.account_sid:
            return self._created_message(request.form)
        if request.method == "GET" and account and account["sid"] == self.account_sid:
            return TwilioAnswer(200, account_body(self.account_sid))
        return TwilioAnswer.error(404, 20404, "The requested resource was not found")

    def _created_message(self, form: Mapping[str, str]) -> TwilioAnswer:
        if not form.get("To"):
            return TwilioAnswer.error(400, 21604, "A 'To' phone number is required.")
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return TwilioAnswer.error(400, 21603, "A 'From' phone number is required.")
        if not form.get("Body"):
            return TwilioAnswer.error(400, 21602, "Message body is required.")
        return TwilioAnswer(201, message_body(self.account_sid, form))


def message_body(account_sid: str, form: Mapping[str, str]) -> dict[str, Any]:
    sid = "SM" + uuid.uuid4().hex
    now = format_datetime(datetime.now(UTC), usegmt=True)
    return {
        "account_sid": account_sid,
        "api_version": API_VERSION,
        "body": form["Body"],
        "date_created": now,
        "date_sent": None,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": form.get("From"),
        "messaging_service_sid": form.get("MessagingServiceSid"),
        "num_media": "0",
        "num_segments": "1",
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        "status": "accepted" if form.get("MessagingServiceSid") else "queued",
        "subresource_uris": {
            "media": f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}/Media.json"
        },
        "to": form["To"],
        "uri": f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}.json",
    }


def account_body(account_sid: str) -> dict[str, Any]:
    return {
        "auth_token": "hidden",
        "date_created": format_datetime(datetime(2020, 1, 1, tzinfo=UTC), usegmt=True),
        "date_updated": format_datetime(datetime(2020, 1, 1, tzinfo=UTC), usegmt=True),
        "friendly_name": "notifier tests",
        "owner_account_sid": account_sid,
        "sid": account_sid,
        "status": "active",
        "subresource_uris": {},
        "type": "Full",
        "uri": f"/{API_VERSION}/Accounts/{account_sid}.json",
    }


def basic_auth(header: str | None) -> tuple[str, str] | None:
    if not header or not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


def _handler_for(api: FakeTwilioApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            request = RecordedRequest(
                method=self.command,
                path=self.path.split("?", 1)[0],
                form=dict(parse_qsl(raw, keep_blank_values=True)),
                headers=dict(self.headers.items()),
                auth=basic_auth(self.headers.get("Authorization")),
            )
            api.enter()
            try:
                answer, body = api.handle(request)
                if answer.delay:
                    api.wait(answer.delay)
                self._answer(answer, body)
            finally:
                api.leave()

        def _answer(self, answer: TwilioAnswer, body: Mapping[str, Any]) -> None:
            payload = answer.raw if answer.raw is not None else json.dumps(body).encode()
            try:
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
