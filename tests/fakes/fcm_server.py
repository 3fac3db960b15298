"""A local fake of FCM HTTP v1 and its OAuth token endpoint, for contract tests.

It speaks the real protocols: ``POST /token`` accepts a JWT-bearer grant only if the
assertion is an RS256 JWT signed by the test service account's key (audience = Google's
token endpoint, as google-auth sets it, or this one; issuer = the account's ``client_email``,
``kid`` = its ``private_key_id``) and issues a random access token;
``POST /v1/projects/{project}/messages:send`` accepts only those bearer tokens, records each
message and answers either success
(``{"name": "projects/<p>/messages/<id>"}``) or a programmed FCM v1 error.

Usage::

    account = make_service_account(project_id="demo")
    with FcmFakeServer(account) as fcm:
        account_file.write_text(json.dumps(account.info_for(fcm.token_uri)))
        options = {"service_account_file": str(account_file), "endpoint_base": fcm.endpoint_base}
        fcm.program("token-1", FcmAnswer(status=404, error_code="UNREGISTERED"))
        ...
        fcm.messages  # what was received, in order
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import threading
import urllib.parse
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Self

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.http_server import FakeHTTPServer

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# google-auth signs its grants for Google's token endpoint whatever the token_uri, as Google
# expects: the fake accepts that audience (and its own token URI).
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
_SEND_PATH = re.compile(r"^/v1/projects/(?P<project>[^/]+)/messages:send$")
_GRPC_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


@dataclass(frozen=True)
class ServiceAccount:
    """A freshly generated Google service account: RSA key and identity."""

    project_id: str
    client_email: str
    private_key_id: str
    private_key_pem: str
    public_key: rsa.RSAPublicKey

    def info_for(self, token_uri: str) -> dict[str, str]:
        """The service-account JSON (as a dict) whose ``token_uri`` is the fake's."""
        return {
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": self.private_key_id,
            "private_key": self.private_key_pem,
            "client_email": self.client_email,
            "client_id": "100000000000000000001",
            "token_uri": token_uri,
        }


def make_service_account(project_id: str = "notifier-test") -> ServiceAccount:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return ServiceAccount(
        project_id=project_id,
        client_email=f"notifier@{project_id}.iam.gserviceaccount.com",
        private_key_id=secrets.token_hex(20),
        private_key_pem=pem,
        public_key=key.public_key(),
    )


@dataclass(frozen=True)
class FcmAnswer:
    """A programmed answer: ``status`` 200 is success; otherwise an FCM v1 error body with
    ``error_code`` in its FcmError detail (and a BadRequest field violation on
    ``field_violation`` if given), an optional Retry-After header, after ``delay`` seconds."""

    status: int = 200
    error_code: str | None = None
    message: str = "error"
    field_violation: str | None = None
    retry_after: str | None = None
    delay: float = 0.0

    def error_body(self) -> dict[str, Any]:
        details: list[dict[str, Any]] = []
        if self.error_code:
            details.append(
                {
                    "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                    "errorCode": self.error_code,
                }
            )
        if self.field_violation:
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [
                        {"field": self.field_violation, "description": self.message}
                    ],
                }
            )
        status = _GRPC_STATUS.get(self.status, "UNKNOWN")
        return {
            "error": {
                "code": self.status,
                "message": self.message,
                "status": status,
                "details": details,
            }
        }


@dataclass(frozen=True)
class ReceivedMessage:
    """One request to messages:send that carried a valid access token."""

    project: str
    body: dict[str, Any]
    access_token: str

    @property
    def message(self) -> dict[str, Any]:
        return self.body.get("message", {})


@dataclass
class _State:
    account: ServiceAccount
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)
    grants: list[dict[str, Any]] = field(default_factory=list)
    rejected_grants: int = 0
    access_tokens: set[str] = field(default_factory=set)
    messages: list[ReceivedMessage] = field(default_factory=list)
    answers: dict[str, deque[FcmAnswer]] = field(default_factory=dict)
    default_answer: FcmAnswer = field(default_factory=FcmAnswer)
    token_uri: str = ""
    connections: set[socket.socket] = field(default_factory=set)


class _FcmHttpServer(FakeHTTPServer):
    """The HTTP server, carrying the fake's state to its request handlers."""

    state: _State


class FcmFakeServer:
    """The fake, on a ThreadingHTTPServer in a background thread (127.0.0.1, free port)."""

    def __init__(self, account: ServiceAccount) -> None:
        self._state = _State(account=account)
        self._httpd = _FcmHttpServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.state = self._state
        self.port: int = self._httpd.server_address[1]
        self._state.token_uri = f"{self.base_url}/token"
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token_uri(self) -> str:
        return self._state.token_uri

    @property
    def endpoint_base(self) -> str:
        """The value of the provider's ``endpoint_base`` option."""
        return f"{self.base_url}/v1/projects"

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="fcm-fake", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and cut open keep-alive connections, so no handler thread lingers."""
        self._state.stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()
        with self._state.lock:
            connections = list(self._state.connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def program(self, device_token: str, *answers: FcmAnswer) -> None:
        """Queue answers for a device token; once used up, it gets the default answer."""
        with self._state.lock:
            self._state.answers.setdefault(device_token, deque()).extend(answers)

    def set_default_answer(self, answer: FcmAnswer) -> None:
        with self._state.lock:
            self._state.default_answer = answer

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self._state.lock:
            return list(self._state.messages)

    @property
    def grants(self) -> list[dict[str, Any]]:
        """The verified JWT claims of every successful token grant."""
        with self._state.lock:
            return list(self._state.grants)

    @property
    def rejected_grants(self) -> int:
        with self._state.lock:
            return self._state.rejected_grants


class _Handler(BaseHTTPRequestHandler):
    server: _FcmHttpServer
    protocol_version = "HTTP/1.1"

    @property
    def state(self) -> _State:
        return self.server.state

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        with self.state.lock:
            self.state.connections.add(self.connection)

    def finish(self) -> None:
        with self.state.lock:
            self.state.connections.discard(self.connection)
        super().finish()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/token":
            self._token(body)
            return
        match = _SEND_PATH.match(self.path)
        if match is None:
            self._json(404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}})
            return
        self._send(match["project"], body)

    def _token(self, body: bytes) -> None:
        form = urllib.parse.parse_qs(body.decode())
        claims = self._verified_grant(form)
        if claims is None:
            with self.state.lock:
                self.state.rejected_grants += 1
            self._json(400, {"error": "invalid_grant", "error_description": "Invalid JWT"})
            return
        token = secrets.token_urlsafe(24)
        with self.state.lock:
            self.state.grants.append(claims)
            self.state.access_tokens.add(token)
        self._json(200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"})

    def _verified_grant(self, form: dict[str, list[str]]) -> dict[str, Any] | None:
        account = self.state.account
        if form.get("grant_type") != [JWT_BEARER] or len(form.get("assertion", [])) != 1:
            return None
        assertion = form["assertion"][0]
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(
                assertion,
                account.public_key,
                algorithms=["RS256"],
                audience=[GOOGLE_TOKEN_AUDIENCE, self.state.token_uri],
                options={"require": ["iss", "aud", "iat", "exp"]},
            )
        except jwt.PyJWTError:
            return None
        if header.get("kid") != account.private_key_id or claims["iss"] != account.client_email:
            return None
        return claims

    def _send(self, project: str, body: bytes) -> None:
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        with self.state.lock:
            known = token in self.state.access_tokens
        if not known:
            self._json(401, FcmAnswer(401, None, "Request had invalid credentials.").error_body())
            return
        if project != self.state.account.project_id:
            self._json(403, FcmAnswer(403, None, "Permission denied on project.").error_body())
            return
        payload = json.loads(body)
        answer = self._next_answer(payload.get("message", {}).get("token", ""))
        with self.state.lock:
            self.state.messages.append(ReceivedMessage(project, payload, token))
        if answer.delay and self.state.stopping.wait(answer.delay):
            return
        self._answer(project, answer)

    def _next_answer(self, device_token: str) -> FcmAnswer:
        with self.state.lock:
            queued = self.state.answers.get(device_token)
            return queued.popleft() if queued else self.state.default_answer

    def _answer(self, project: str, answer: FcmAnswer) -> None:
        if answer.status == 200:
            self._json(200, {"name": f"projects/{project}/messages/{secrets.token_hex(8)}"})
            return
        headers = {"Retry-After": answer.retry_after} if answer.retry_after else {}
        self._json(answer.status, answer.error_body(), headers)

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)
