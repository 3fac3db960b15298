"""A local stand-in for an SNS host: https on port 443 of a loopback address of its own.

The verifier only fetches signing certificates and SubscribeURLs over https, on port 443, from a
host matching ``NOTIFIER_SNS_CERTIFICATE_HOST_PATTERN``. This server binds 443 on a random
127.x.y.z address (so parallel runs do not collide), with a server certificate for that address
signed by a private CA generated here; tests point ``SSL_CERT_FILE`` at that CA (httpx reads it)
and the host pattern at the address. It serves registered documents (the signing certificate)
and answers ``?Action=ConfirmSubscription`` like SNS, recording every request.
"""

from __future__ import annotations

import random
import re
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import pytest

from tests.fakes.smtp_server import make_tls_files

CONFIRMED = (
    b'<ConfirmSubscriptionResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
    b"<ConfirmSubscriptionResult><SubscriptionArn>arn:aws:sns:eu-west-1:123456789012:ses-events:"
    b"0f0e</SubscriptionArn></ConfirmSubscriptionResult></ConfirmSubscriptionResponse>"
)


class LocalSnsHost:
    def __init__(self, directory: Path) -> None:
        self.documents: dict[str, bytes] = {}
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._server = self._bind()
        self.ip = str(self._server.server_address[0])
        self.tls = make_tls_files(directory, hostnames=(self.ip,))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.tls.cert_file, self.tls.key_file)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread: threading.Thread | None = None

    @property
    def host_pattern(self) -> str:
        return rf"^{re.escape(self.ip)}$"

    def url(self, path: str) -> str:
        return f"https://{self.ip}{path}"

    def publish(self, path: str, body: bytes) -> str:
        self.documents[path] = body
        return self.url(path)

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _bind(self) -> ThreadingHTTPServer:
        handler = _handler_for(self)
        for _ in range(20):
            address = (
                f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
            )
            try:
                server = ThreadingHTTPServer((address, 443), handler)
            except PermissionError:
                pytest.skip("binding port 443 is not permitted here (SNS URLs must use it)")
            except OSError:
                continue
            server.daemon_threads = True
            return server
        pytest.skip("no free loopback address with port 443")

    def answer(self, path: str) -> tuple[int, bytes]:
        with self._lock:
            self.requests.append(path)
        if "Action=ConfirmSubscription" in path:
            return 200, CONFIRMED
        if path in self.documents:
            return 200, self.documents[path]
        return 404, b"not found"


def _handler_for(host: LocalSnsHost) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = host.answer(self.path)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
