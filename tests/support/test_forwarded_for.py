"""A spoofed X-Forwarded-For changes nothing: uvicorn, configured as ``notifier api`` configures
it, believes the header only from the trusted proxies, and reads it from the right.

The real application is served by uvicorn on a free port and driven over HTTP; the per-address
sign-in limit (30 attempts per 15 minutes) is the thing a rotated header would walk past.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import uvicorn
from sqlalchemy import select

from notifier.api.app import create_app
from notifier.api.serving import uvicorn_options
from notifier.config import Environment, Settings
from notifier.support.models import AuditEntry
from tests.support.console import csrf_of

LIMIT = 30  # signin.ADDRESS_RATE_LIMIT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def serve(runtime) -> Iterator[Callable[[str], str]]:
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(trusted: str) -> str:
        runtime.settings.trusted_proxies = trusted
        port = _free_port()
        config = uvicorn.Config(
            create_app(runtime=runtime),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            **uvicorn_options(runtime.settings),
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.05)
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)


def _attempts(base: str, forwarded: Callable[[int], str], count: int) -> list[int]:
    codes = []
    with httpx.Client(base_url=base) as client:
        for i in range(count):
            token = csrf_of(client.get("/support/login").text)
            response = client.post(
                "/support/login",
                data={"email": f"guess{i}@example.com", "password": "x" * 12, "csrf_token": token},
                headers={"X-Forwarded-For": forwarded(i)},
            )
            codes.append(response.status_code)
    return codes


def test_a_client_that_is_not_a_trusted_proxy_cannot_rotate_its_address(serve, runtime, staff):
    base = serve("10.9.9.9")  # some other proxy; the test client (127.0.0.1) is not trusted
    codes = _attempts(base, lambda i: f"198.51.100.{i}", LIMIT + 2)
    assert codes[:LIMIT] == [401] * LIMIT and codes[LIMIT:] == [429, 429]
    with runtime.sessions() as s:
        sources = set(s.scalars(select(AuditEntry.client_address)))
    assert sources == {"127.0.0.1"}  # the peer, never the address the client wrote


def test_behind_the_trusted_proxy_the_address_it_saw_counts_not_what_the_client_wrote(
    serve, runtime, staff
):
    base = serve("127.0.0.1")  # the test client plays the proxy (nginx appends the peer)
    codes = _attempts(base, lambda i: f"198.51.100.{i}, 203.0.113.7", LIMIT + 2)
    assert codes[LIMIT:] == [429, 429]
    with runtime.sessions() as s:
        sources = set(s.scalars(select(AuditEntry.client_address)))
    assert sources == {"203.0.113.7"}


def test_distinct_clients_behind_the_proxy_are_limited_separately(serve, staff):
    base = serve("127.0.0.1")
    codes = _attempts(base, lambda i: f"203.0.113.{i}", LIMIT + 2)
    assert set(codes) == {401}  # the control: the proxy's word is taken, per real client


def test_production_refuses_to_trust_every_address() -> None:
    with pytest.raises(ValueError, match="NOTIFIER_TRUSTED_PROXIES"):
        Settings(env=Environment.PRODUCTION, secret_key="s" * 40, trusted_proxies="*")
