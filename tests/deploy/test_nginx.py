"""deploy/nginx: `nginx -t` accepts it, and a running nginx does what the config promises.

The test copies the configuration into a temporary directory, points the /etc/nginx paths
there, gives it a throwaway self-signed certificate, replaces the Compose upstream `api:8000`
by a local stub, and (for the live test) moves the listeners to free ports. Needs Debian's
nginx (`apt-get install nginx`): without it the tests skip, unless CI=true, where they fail.
"""

from __future__ import annotations

import datetime
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ._files import NGINX

MIB = 1024 * 1024


def _nginx() -> str:
    path = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("nginx is not installed; CI must install it (apt-get install -y nginx)")
        pytest.skip("nginx is not installed (apt-get install -y nginx); CI=true makes this fail")
    return path


def _self_signed(directory: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "tls.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _test_copy(tmp_path: Path, upstream: str, http_port: int = 80, https_port: int = 443) -> Path:
    """A copy of deploy/nginx that runs from tmp_path; returns the nginx.conf path."""
    root = tmp_path / "nginx"
    shutil.copytree(NGINX, root, ignore=shutil.ignore_patterns("*.md", ".gitignore", "certs"))
    _self_signed(root / "certs")
    for path in [root / "nginx.conf", *(root / "conf.d").iterdir()]:
        text = path.read_text()
        text = text.replace("/etc/nginx/", f"{root}/")
        text = text.replace("server api:8000", f"server {upstream}")
        text = text.replace("pid /tmp/nginx.pid;", f"pid {root}/nginx.pid;")
        text = re.sub(
            r"listen (\[::\]:)?443 ", lambda m: f"listen {m.group(1) or ''}{https_port} ", text
        )
        text = re.sub(
            r"listen (\[::\]:)?80 ", lambda m: f"listen {m.group(1) or ''}{http_port} ", text
        )
        path.write_text(text)
    return root / "nginx.conf"


def test_nginx_t_accepts_the_configuration(tmp_path: Path) -> None:
    conf = _test_copy(tmp_path, upstream="127.0.0.1:8000")
    result = subprocess.run(
        [_nginx(), "-t", "-e", "stderr", "-p", str(conf.parent), "-c", str(conf)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


# --------------------------------------------------------------------------- static checks

CONF = (NGINX / "nginx.conf").read_text() + (NGINX / "conf.d" / "notifier.conf").read_text()


def _location(path: str) -> str:
    match = re.search(rf"location {re.escape(path)} \{{(.*?)\n    \}}", CONF, flags=re.DOTALL)
    assert match, f"no location {path}"
    return match.group(1)


def _size(value: str) -> int:
    units = {"k": 1024, "m": MIB, "g": 1024 * MIB}
    return int(value[:-1]) * units[value[-1].lower()] if value[-1].isalpha() else int(value)


def _app_limits() -> tuple[int, int]:
    try:
        from notifier.config import Settings
    except ImportError:
        return MIB, 8 * MIB
    fields = Settings.model_fields
    return fields["max_body_bytes"].default, fields["max_batch_bytes"].default


def test_body_limits_match_the_application() -> None:
    body, batch = _app_limits()
    http_level = re.search(r"^    client_max_body_size (\S+);", CONF, flags=re.MULTILINE)
    assert http_level and _size(http_level.group(1)) == body
    batch_location = _location("= /v1/notifications/batch")
    match = re.search(r"client_max_body_size (\S+);", batch_location)
    assert match and _size(match.group(1)) == batch
    imports = _location("~ ^/v1/audiences/[^/]+/import$")
    match = re.search(r"client_max_body_size (\S+);", imports)
    from notifier.config import Settings

    assert match and _size(match.group(1)) == Settings.model_fields["max_import_bytes"].default
    assert "proxy_request_buffering off;" in imports


def test_v1_is_rate_limited_per_ip_and_internal_endpoints_are_hidden() -> None:
    assert re.search(r"limit_req_zone \$binary_remote_addr zone=notifier_v1_per_ip:", CONF)
    assert "limit_req zone=notifier_v1_per_ip" in _location("/v1/")
    assert "return 404;" in _location("= /metrics")
    assert "return 404;" in _location("= /readyz")
    assert "proxy_pass" not in _location("= /metrics")


def test_tls_and_forwarding_headers() -> None:
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in CONF
    headers = (NGINX / "conf.d" / "response-headers.inc").read_text()
    assert "Strict-Transport-Security" in headers
    for header in ("X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Request-ID"):
        assert f"proxy_set_header {header} " in CONF, header
    assert "gzip off;" in CONF


# --------------------------------------------------------------------------- live


@dataclass
class Stub:
    port: int
    requests: list[dict[str, str]]


@pytest.fixture
def stub_api() -> Iterator[Stub]:
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
            body = json.dumps({"path": self.path, "bytes": length}).encode()
            self.send_response(202)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Stub(server.server_address[1], seen)
    server.shutdown()
    server.server_close()


@pytest.fixture
def running_nginx(tmp_path: Path, stub_api: Stub) -> Iterator[int]:
    nginx = _nginx()
    http_port, https_port = _free_port(), _free_port()
    conf = _test_copy(tmp_path, f"127.0.0.1:{stub_api.port}", http_port, https_port)
    text = conf.read_text().replace(
        "error_log /dev/stderr warn;", f"error_log {tmp_path}/error.log;"
    )
    conf.write_text(text.replace("access_log /dev/stdout", f"access_log {tmp_path}/access.log"))
    process = subprocess.Popen(
        [nginx, "-e", "stderr", "-p", str(conf.parent), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", https_port), timeout=0.2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    assert process.stderr is not None
                    pytest.fail(f"nginx did not start: {process.stderr.read().decode()}")
                time.sleep(0.05)
        yield https_port
    finally:
        process.terminate()
        process.wait(timeout=10)


def _request(
    port: int, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    try:
        conn.request(
            method, path, body=body or None, headers={"Host": "localhost", **(headers or {})}
        )
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_live_proxy_limits_and_hidden_endpoints(running_nginx: int, stub_api: Stub) -> None:
    port = running_nginx
    body, batch = _app_limits()

    status, headers, _ = _request(
        port, "POST", "/v1/notifications", b"{}", {"X-Request-ID": "req-1"}
    )
    assert status == 202
    assert headers["X-Request-ID"] == "req-1"
    assert "max-age=" in headers["Strict-Transport-Security"]
    forwarded = stub_api.requests[-1]
    assert forwarded["x-request-id"] == "req-1"
    assert forwarded["x-forwarded-proto"] == "https"
    assert forwarded["x-forwarded-for"] == "127.0.0.1"

    status, headers, _ = _request(
        port, "GET", "/v1/notifications/x", headers={"X-Request-ID": "bad id!"}
    )
    assert status == 202
    assert re.fullmatch(r"[0-9a-f]{32}", headers["X-Request-ID"]), "malformed ids are replaced"

    for hidden in ("/metrics", "/readyz", "/"):
        status, headers, payload = _request(port, "GET", hidden)
        assert status == 404, hidden
        assert json.loads(payload)["error"]["code"] == "not_found"
    assert all(r["path"] not in {"/metrics", "/readyz"} for r in stub_api.requests)

    status, _, payload = _request(port, "POST", "/v1/notifications", b"x" * (body + 1))
    assert status == 413
    assert json.loads(payload)["error"]["code"] == "payload_too_large"

    status, _, payload = _request(port, "POST", "/v1/notifications/batch", b"x" * (2 * body))
    assert status == 202 and json.loads(payload)["bytes"] == 2 * body
    status, _, _ = _request(port, "POST", "/v1/notifications/batch", b"x" * (batch + 1))
    assert status == 413

    status, _, payload = _request(port, "POST", "/v1/audiences/everyone/import", b"x" * (2 * batch))
    assert status == 202 and json.loads(payload)["bytes"] == 2 * batch  # imports stream through

    status, _, _ = _request(port, "GET", "/healthz")
    assert status == 202  # proxied to the stub
